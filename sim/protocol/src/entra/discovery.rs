//! The documents a client library reads before it asks for a token: the OpenID Connect
//! configuration of a tenant (v1 and v2, every field OpenID Connect Discovery 1.0 requires
//! and those Entra adds), the key set the tokens are signed with, instance discovery (the
//! aliases of the authority host) and user realm discovery (is this user managed or
//! federated). They name the origin Entra is served at, so MSAL and azure-identity stay on it.

use super::Endpoints;
use crate::request::{Request, Response};
use dwsim_model::entra::{self, jwt, EntraError};
use dwsim_model::World;
use serde_json::{json, Value};

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` and the v1 one without `v2.0`.
pub(super) fn openid_configuration(
    world: &World,
    endpoints: &Endpoints,
    tenant: &str,
    v2: bool,
) -> Result<Response, EntraError> {
    if !world.tenant.knows(tenant) {
        return Err(entra::unknown_tenant(tenant));
    }
    let origin = &endpoints.entra;
    // As Entra does: a named tenant's documents carry its id; `common` and `organizations`
    // carry the `{tenantid}` placeholder the client fills in from the token.
    let tid =
        if tenant.eq_ignore_ascii_case("common") || tenant.eq_ignore_ascii_case("organizations") {
            "{tenantid}".to_string()
        } else {
            world.tenant.id.clone()
        };
    let base = format!("{origin}/{tenant}");
    let host = host_of(origin);
    let (oauth, issuer, jwks) = if v2 {
        (
            format!("{base}/oauth2/v2.0"),
            format!("{origin}/{tid}/v2.0"),
            format!("{base}/discovery/v2.0/keys"),
        )
    } else {
        (
            format!("{base}/oauth2"),
            format!("{origin}/{tid}/"),
            format!("{base}/discovery/keys"),
        )
    };
    let mut doc = json!({
        "token_endpoint": format!("{oauth}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": jwks,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{origin}/oidc/userinfo"),
        "authorization_endpoint": format!("{oauth}/authorize"),
        "device_authorization_endpoint": format!("{oauth}/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{oauth}/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/kerberos"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": host,
        "cloud_graph_host_name": host,
        "msgraph_host": host,
        "rbac_url": origin,
        "grant_types_supported": ["client_credentials", "password", "refresh_token"],
    });
    if !v2 {
        doc["response_types_supported"] = json!([
            "code",
            "id_token",
            "code id_token",
            "token id_token",
            "token"
        ]);
        doc["scopes_supported"] = json!(["openid"]);
        doc["microsoft_multi_refresh_token"] = json!(true);
        doc["check_session_iframe"] = json!(format!("{oauth}/checksession"));
    }
    Ok(json_response(&doc))
}

/// `GET /{tenant}/discovery/v2.0/keys` (and v1 `/discovery/keys`): the key set every token
/// is signed with; each key names the issuer it signs for.
pub(super) fn keys(
    world: &World,
    endpoints: &Endpoints,
    tenant: &str,
    v2: bool,
) -> Result<Response, EntraError> {
    if !world.tenant.knows(tenant) {
        return Err(entra::unknown_tenant(tenant));
    }
    let issuer = if v2 {
        format!("{}/{{tenantid}}/v2.0", endpoints.entra)
    } else {
        format!("{}/{{tenantid}}/", endpoints.entra)
    };
    Ok(json_response(&json!({"keys": [jwt::jwk(&issuer)]})))
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=…`: where the
/// tenant's configuration is and which host names are aliases of this authority (only its
/// own: dwsim's Entra has no other hosts).
pub(super) fn instance(
    world: &World,
    endpoints: &Endpoints,
    req: &Request,
    tenant: &str,
) -> Result<Response, EntraError> {
    if !world.tenant.knows(tenant) {
        return Err(entra::unknown_tenant(tenant));
    }
    let authorize = req
        .param("authorization_endpoint")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| entra::missing_parameter("authorization_endpoint"))?;
    // The tenant is the first path segment of the authorize endpoint the client holds.
    let named = authorize
        .strip_prefix(&endpoints.entra)
        .and_then(|rest| rest.trim_start_matches('/').split('/').next())
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    let host = host_of(&endpoints.entra);
    Ok(json_response(&json!({
        "tenant_discovery_endpoint": format!("{}/{named}/v2.0/.well-known/openid-configuration", endpoints.entra),
        "api-version": req.param("api-version").unwrap_or_else(|| "1.1".into()),
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    })))
}

/// `GET /common/userrealm/{user}?api-version=1.0`: a user of the tenant is `Managed` (signs in
/// with a password at Entra itself); anyone else is `Unknown`.
pub(super) fn user_realm(world: &World, tenant: &str, user: &str) -> Result<Response, EntraError> {
    if !world.tenant.knows(tenant) {
        return Err(entra::unknown_tenant(tenant));
    }
    let known = world.tenant.users.contains_key(&user.to_ascii_lowercase());
    let mut realm = json!({
        "ver": "1.0",
        "account_type": if known { "Managed" } else { "Unknown" },
        "cloud_instance_name": "microsoftonline.com",
        "cloud_audience_urn": "urn:federation:MicrosoftOnline",
    });
    if known {
        realm["domain_name"] = Value::String(world.tenant.domain.clone());
    }
    Ok(json_response(&realm))
}

/// The host (and port) of an origin, as instance discovery names hosts.
fn host_of(origin: &str) -> String {
    origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/')
        .to_string()
}

fn json_response(doc: &Value) -> Response {
    Response::json(200, doc).with_header("content-type", "application/json; charset=utf-8")
}
