//! Microsoft Entra ID: one tenant with the app registrations and users the harness signs in
//! with, and the tokens it issues. Tokens are RS256-signed JWTs ([`jwt`]) carrying Entra's
//! claims; a resource server accepts one by verifying it, so nothing is kept per token and a
//! partner can verify them too with the published key set.

mod issue;
pub mod jwt;

pub use issue::{Drawn, Grant, Issued, Issuer};

use crate::clock::Instant;
use crate::error::{ErrorKind, SimError, SimResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Application ids that dual-write itself uses (`requirements-and-prerequisites`).
pub const DUAL_WRITE_DV_TO_FNO_APP: &str = "6f7d0213-62b1-43a8-b7f4-ff2bb8b7b452";
/// The dual-write app (Dataverse to F&O and F&O's own use).
pub const DUAL_WRITE_APP: &str = "2e49aa60-1bd3-43b6-8ab6-03ada3d9f08b";
/// The dual-write runtime app, whose application user writes in Dataverse.
pub const DUAL_WRITE_RUNTIME_APP: &str = "00000015-0000-0000-c000-000000000000";

/// Lifetime of an access token, as Entra reports `expires_in`.
pub const TOKEN_LIFETIME_SECONDS: i64 = 3599;

/// What a token is for: its audience, resolved from the `scope` or `resource` requested.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Audience {
    /// A Dataverse organization.
    Dataverse(String),
    /// An F&O environment.
    Fno(String),
    /// Lifecycle Services.
    Lcs,
    /// The Power Platform admin API.
    PowerPlatform,
}

/// An app registration of the tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppRegistration {
    /// The application (client) id.
    pub client_id: String,
    /// Its display name.
    pub display_name: String,
    /// Its one client secret.
    pub secret: String,
}

/// A user of the tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// The sign-in name.
    pub upn: String,
    /// The user's object id.
    pub object_id: String,
    /// The display name.
    pub display_name: String,
    /// The password the password grant checks.
    pub password: String,
}

/// An access token a resource server accepted: what its verified claims say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is for.
    pub audience: Audience,
    /// The tenant that issued it.
    pub tenant_id: String,
    /// The app it was issued to.
    pub client_id: String,
    /// The signed-in user for delegated tokens (LCS), none for app-only tokens.
    pub user: Option<String>,
    /// When it stops being accepted.
    pub expires_at: Instant,
}

/// The one Entra tenant of a world.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    /// The tenant id.
    pub id: String,
    /// The tenant's domain.
    pub domain: String,
    /// App registrations by client id.
    pub apps: BTreeMap<String, AppRegistration>,
    /// Users by sign-in name (lower case).
    pub users: BTreeMap<String, User>,
}

/// An Entra error: the OAuth `error` value, the AADSTS code and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraError {
    /// The HTTP status Entra answers with.
    pub status: u16,
    /// The OAuth `error` value.
    pub error: &'static str,
    /// The AADSTS number.
    pub code: u32,
    /// The AADSTS text.
    pub description: String,
}

impl EntraError {
    fn new(status: u16, error: &'static str, code: u32, description: impl Into<String>) -> Self {
        EntraError {
            status,
            error,
            code,
            description: description.into(),
        }
    }
}

impl Tenant {
    /// Whether a tenant name in a URL is this tenant (id, domain, `common`, `organizations`).
    pub fn knows(&self, tenant: &str) -> bool {
        tenant.eq_ignore_ascii_case(&self.id)
            || tenant.eq_ignore_ascii_case(&self.domain)
            || tenant == "common"
            || tenant == "organizations"
    }

    /// An app registration, or AADSTS700016 for an unknown client.
    pub fn app(&self, client_id: &str) -> Result<&AppRegistration, EntraError> {
        self.apps.get(client_id).ok_or_else(|| {
            EntraError::new(
                400,
                "unauthorized_client",
                700016,
                format!(
                    "AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                    self.domain
                ),
            )
        })
    }

    /// Checks an app's secret (client credentials).
    pub fn check_secret(&self, client_id: &str, secret: &str) -> Result<(), EntraError> {
        let app = self.app(client_id)?;
        if app.secret != secret {
            return Err(EntraError::new(
                401,
                "invalid_client",
                7000215,
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '".to_string()
                    + client_id
                    + "'.",
            ));
        }
        Ok(())
    }

    /// Checks a user's password (the ROPC grant LCS tools use).
    pub fn check_password(&self, upn: &str, password: &str) -> Result<&User, EntraError> {
        match self.users.get(&upn.to_ascii_lowercase()) {
            Some(u) if u.password == password => Ok(u),
            _ => Err(EntraError::new(
                400,
                "invalid_grant",
                50126,
                "AADSTS50126: Error validating credentials due to invalid username or password.",
            )),
        }
    }

    /// The app a bearer token of this tenant was issued to, whatever its audience, if it is
    /// valid at `now` (the simulator's admin verbs accept the harness app's tokens).
    pub fn client_of(&self, bearer: &str, now: Instant) -> Option<String> {
        let claims = jwt::verify(bearer).ok()?;
        let claim = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
        if claim("tid") != Some(self.id.as_str()) || claim("typ") == Some(issue::REFRESH_TYPE) {
            return None;
        }
        let exp = claims.get("exp").and_then(serde_json::Value::as_i64)?;
        (Instant::from_unix_seconds(exp) > now).then(|| claim("appid").map(str::to_string))?
    }

    /// Accepts a bearer token for `expected` at `now`: signed by this tenant's key, issued by
    /// this tenant, not expired, and for that audience (`audience_of` reads the `aud` claim,
    /// which may be an origin or a real host name). The message is what the resource server
    /// puts in its 401.
    pub fn validate(
        &self,
        bearer: Option<&str>,
        now: Instant,
        audience_of: impl Fn(&str) -> Option<Audience>,
        expected: &Audience,
    ) -> SimResult<Token> {
        let unauthorized = |m: &str| SimError::new(ErrorKind::Unauthorized, "", m);
        let text = bearer.ok_or_else(|| unauthorized("The access token is missing."))?;
        let invalid = || unauthorized("The access token is invalid.");
        let claims = jwt::verify(text).map_err(|_| invalid())?;
        let claim = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
        if claim("tid") != Some(self.id.as_str()) || claim("typ") == Some(issue::REFRESH_TYPE) {
            return Err(invalid());
        }
        let (Some(aud), Some(client_id), Some(exp)) = (
            claim("aud"),
            claim("appid"),
            claims.get("exp").and_then(serde_json::Value::as_i64),
        ) else {
            return Err(invalid());
        };
        let expires_at = Instant::from_unix_seconds(exp);
        if expires_at <= now {
            return Err(unauthorized("The access token has expired."));
        }
        let audience = audience_of(aud)
            .filter(|a| a == expected)
            .ok_or_else(|| unauthorized("The access token was issued for another audience."))?;
        Ok(Token {
            audience,
            tenant_id: self.id.clone(),
            client_id: client_id.to_string(),
            user: claim("upn").map(str::to_string),
            expires_at,
        })
    }
}

/// AADSTS90002: the tenant does not exist.
pub fn unknown_tenant(tenant: &str) -> EntraError {
    EntraError::new(
        400,
        "invalid_request",
        90002,
        format!("AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
    )
}

/// AADSTS900144: a required parameter is missing.
pub fn missing_parameter(name: &str) -> EntraError {
    EntraError::new(
        400,
        "invalid_request",
        900144,
        format!("AADSTS900144: The request body must contain the following parameter: '{name}'."),
    )
}

/// AADSTS70003: a grant type Entra does not support here.
pub fn unsupported_grant(grant: &str) -> EntraError {
    EntraError::new(
        400,
        "unsupported_grant_type",
        70003,
        format!("AADSTS70003: The app requested an unsupported grant type '{grant}'."),
    )
}

/// AADSTS500011: no resource of that name in the tenant.
pub fn resource_not_found(resource: &str, domain: &str) -> EntraError {
    EntraError::new(
        400,
        "invalid_resource",
        500011,
        format!("AADSTS500011: The resource principal named {resource} was not found in the tenant named {domain}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."),
    )
}

/// AADSTS70011: the scope is not valid.
pub fn invalid_scope(scope: &str) -> EntraError {
    EntraError::new(
        400,
        "invalid_scope",
        70011,
        format!("AADSTS70011: The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
    )
}

/// AADSTS901002: the v2 endpoint takes `scope`, not `resource`.
pub fn resource_on_v2() -> EntraError {
    EntraError::new(
        400,
        "invalid_request",
        901002,
        "AADSTS901002: The 'resource' request parameter isn't supported.",
    )
}
