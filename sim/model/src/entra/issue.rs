//! What Entra puts in the tokens of a grant: a v1 access token for the resource (Dataverse,
//! F&O and LCS accept v1 tokens, whichever endpoint issued them), and for a user sign-in an
//! ID token in the endpoint's version, `client_info` and a refresh token.
//!
//! Claims follow Entra's access and ID token references: `aud`, `iss`, `iat`, `nbf`, `exp`,
//! `appid`, `appidacr`, `idp`, `oid`, `sub`, `tid`, `uti`, `ver`, and `roles` for app-only
//! tokens or `scp`, `upn`, `unique_name`, `name`, `amr` for delegated ones. Object ids that
//! the world does not draw (an app's service principal, a pairwise `sub`) are derived from
//! names, so issuing a token draws no more ids than it did before tokens were signed.

use super::{jwt, Tenant};
use crate::clock::Instant;
use crate::ids::derived_guid;
use serde_json::{json, Value};

/// `typ` claim of refresh tokens, so one is never taken as an access token.
pub(crate) const REFRESH_TYPE: &str = "dwsim-refresh";

/// How long a refresh token stays redeemable (Entra's default inactivity lifetime).
const REFRESH_LIFETIME_SECONDS: i64 = 90 * 24 * 3600;

/// The Entra origin a tenant's tokens say they come from.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// Scheme, host and port of the token server, without a trailing slash.
    pub origin: String,
}

impl Issuer {
    /// The v1 issuer, `{origin}/{tenant}/`: access tokens and v1 ID tokens.
    pub fn v1(&self, tenant: &str) -> String {
        format!("{}/{tenant}/", self.origin)
    }
    /// The v2 issuer, `{origin}/{tenant}/v2.0`: v2 ID tokens and the v2 discovery document.
    pub fn v2(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.origin)
    }
}

/// A granted request: who gets a token for what.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The resource as requested (`resource=`, or the scope without `/.default`).
    pub resource: String,
    /// The app the tokens are issued to.
    pub client_id: String,
    /// Whether the app proved itself with its secret (`appidacr` 1) or not (0).
    pub confidential: bool,
    /// The signed-in user (sign-in name) for delegated tokens; none for app-only tokens.
    pub user: Option<String>,
    /// Issued by the v2 endpoint (v2 ID token) or the v1 one.
    pub v2: bool,
}

/// The tokens of one grant.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The signed access token.
    pub access_token: String,
    /// When the access token stops being accepted.
    pub expires_at: Instant,
    /// For a user sign-in: the signed ID token.
    pub id_token: Option<String>,
    /// For a user sign-in: base64url JSON `{"uid": user object id, "utid": tenant id}`.
    pub client_info: Option<String>,
    /// For a user sign-in: a refresh token the refresh grant redeems.
    pub refresh_token: Option<String>,
}

/// The per-token values Entra draws at random (`uti`, `aio`): the caller draws them from the
/// world's seeded ids.
#[derive(Debug, Clone)]
pub struct Drawn {
    /// The token's unique identifier.
    pub uti: String,
    /// Entra's opaque internal claim.
    pub aio: String,
}

impl Tenant {
    /// Issues the tokens of `grant` at `now`.
    pub fn issue(&self, issuer: &Issuer, grant: &Grant, now: Instant, drawn: Drawn) -> Issued {
        let expires_at = now.plus_seconds(super::TOKEN_LIFETIME_SECONDS);
        let iss = issuer.v1(&self.id);
        let mut claims = json!({
            "aud": grant.resource,
            "iss": iss,
            "iat": now.unix_seconds(),
            "nbf": now.unix_seconds(),
            "exp": expires_at.unix_seconds(),
            "aio": drawn.aio,
            "appid": grant.client_id,
            "appidacr": if grant.confidential { "1" } else { "0" },
            "idp": iss,
            "tid": self.id,
            "uti": drawn.uti,
            "ver": "1.0",
        });
        let user = grant.user.as_ref().and_then(|u| self.users.get(u));
        match user {
            None => {
                let oid = derived_guid(&["service-principal", &self.id, &grant.client_id]);
                claims["oid"] = json!(oid);
                claims["sub"] = json!(oid);
                claims["roles"] = json!([]);
            }
            Some(user) => {
                claims["oid"] = json!(user.object_id);
                claims["sub"] = json!(derived_guid(&["sub", &user.object_id, &grant.resource]));
                claims["scp"] = json!("user_impersonation");
                claims["amr"] = json!(["pwd"]);
                claims["name"] = json!(user.display_name);
                claims["upn"] = json!(user.upn);
                claims["unique_name"] = json!(user.upn);
            }
        }
        let access_token = jwt::sign(&claims);
        let Some(user) = user else {
            return Issued {
                access_token,
                expires_at,
                id_token: None,
                client_info: None,
                refresh_token: None,
            };
        };
        let sub = derived_guid(&["sub", &user.object_id, &grant.client_id]);
        let mut id = json!({
            "aud": grant.client_id,
            "iat": now.unix_seconds(),
            "nbf": now.unix_seconds(),
            "exp": expires_at.unix_seconds(),
            "name": user.display_name,
            "oid": user.object_id,
            "sub": sub,
            "tid": self.id,
        });
        if grant.v2 {
            id["iss"] = json!(issuer.v2(&self.id));
            id["preferred_username"] = json!(user.upn);
            id["ver"] = json!("2.0");
        } else {
            id["iss"] = json!(issuer.v1(&self.id));
            id["amr"] = json!(["pwd"]);
            id["upn"] = json!(user.upn);
            id["unique_name"] = json!(user.upn);
            id["ver"] = json!("1.0");
        }
        let refresh = json!({
            "typ": REFRESH_TYPE,
            "iss": iss,
            "tid": self.id,
            "appid": grant.client_id,
            "upn": user.upn,
            "iat": now.unix_seconds(),
            "exp": now.plus_seconds(REFRESH_LIFETIME_SECONDS).unix_seconds(),
        });
        Issued {
            access_token,
            expires_at,
            id_token: Some(jwt::sign(&id)),
            client_info: Some(jwt::encode_json(
                &json!({"uid": user.object_id, "utid": self.id}),
            )),
            refresh_token: Some(jwt::sign(&refresh)),
        }
    }

    /// The user a refresh token was issued to, if it is this tenant's, for `client_id`, and
    /// not expired at `now`.
    pub fn redeem_refresh_token(
        &self,
        token: &str,
        client_id: &str,
        now: Instant,
    ) -> Result<String, super::EntraError> {
        let invalid = || {
            super::EntraError::new(
                400,
                "invalid_grant",
                9002313,
                "AADSTS9002313: Invalid request. Request is malformed or invalid.",
            )
        };
        let claims = jwt::verify(token).map_err(|_| invalid())?;
        let claim = |name: &str| claims.get(name).and_then(Value::as_str);
        if claim("typ") != Some(REFRESH_TYPE) || claim("tid") != Some(self.id.as_str()) {
            return Err(invalid());
        }
        if claim("appid") != Some(client_id) {
            return Err(super::EntraError::new(
                400,
                "invalid_grant",
                70000,
                "AADSTS70000: The provided value for the 'refresh_token' is not valid. The refresh token was issued to a different client.",
            ));
        }
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        if Instant::from_unix_seconds(exp) <= now {
            return Err(super::EntraError::new(
                400,
                "invalid_grant",
                700082,
                "AADSTS700082: The refresh token has expired due to inactivity.",
            ));
        }
        let upn = claim("upn").unwrap_or_default().to_ascii_lowercase();
        if !self.users.contains_key(&upn) {
            return Err(invalid());
        }
        Ok(upn)
    }
}
