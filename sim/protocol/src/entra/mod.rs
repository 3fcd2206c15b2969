//! Microsoft Entra ID as client libraries (MSAL, azure-identity) meet it: the token
//! endpoints — v2 `/{tenant}/oauth2/v2.0/token` (scope) and v1 `/{tenant}/oauth2/token`
//! (resource) with the client credentials, password and refresh token grants — and the
//! discovery documents they read first: OpenID configuration (v1 and v2), the signing key
//! set, instance discovery and user realm discovery. Errors carry the AADSTS code in Entra's
//! JSON shape.

mod discovery;

use crate::request::{decode, Request, Response};
use crate::Endpoints;
use base64::Engine;
use dwsim_model::entra::{
    self, Audience, Drawn, EntraError, Grant, Issuer, TOKEN_LIFETIME_SECONDS,
};
use dwsim_model::World;
use serde_json::json;

/// Answers an Entra ID request: the token endpoints and discovery documents of each tenant.
pub fn handle(world: &mut World, endpoints: &Endpoints, req: &Request) -> Response {
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let answer = match (req.method.as_str(), segs.as_slice()) {
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => token(world, endpoints, req, tenant, true),
        ("POST", [tenant, "oauth2", "token"]) => token(world, endpoints, req, tenant, false),
        (_, [_, "oauth2", "v2.0", "token"]) | (_, [_, "oauth2", "token"]) => Err(EntraError {
            status: 405,
            error: "invalid_request",
            code: 900561,
            description: "AADSTS900561: The endpoint only accepts POST requests.".into(),
        }),
        ("GET", [tenant, "v2.0", ".well-known", "openid-configuration"]) => {
            discovery::openid_configuration(world, endpoints, tenant, true)
        }
        ("GET", [tenant, ".well-known", "openid-configuration"]) => {
            discovery::openid_configuration(world, endpoints, tenant, false)
        }
        ("GET", [tenant, "discovery", "v2.0", "keys"]) => discovery::keys(world, endpoints, tenant, true),
        ("GET", [tenant, "discovery", "keys"]) => discovery::keys(world, endpoints, tenant, false),
        ("GET", [tenant, "discovery", "instance"]) => discovery::instance(world, endpoints, req, tenant),
        ("GET", [tenant, "userrealm", user]) => discovery::user_realm(world, tenant, user),
        _ => Err(EntraError {
            status: 404,
            error: "invalid_request",
            code: 900023,
            description: format!("AADSTS900023: Specified tenant identifier '{}' is neither a valid DNS name, nor a valid external domain.", segs.first().unwrap_or(&"")),
        }),
    };
    answer.unwrap_or_else(|e| error_response(world, &e))
}

fn token(
    world: &mut World,
    endpoints: &Endpoints,
    req: &Request,
    tenant: &str,
    v2: bool,
) -> Result<Response, EntraError> {
    let form = Form(req.form());
    let grant = grant(world, endpoints, req, &form, tenant, v2)?;
    let requested_default = form
        .get("scope")
        .is_some_and(|s| s.split_whitespace().any(|s| s.ends_with("/.default")));
    Ok(mint(world, endpoints, grant, requested_default))
}

/// The token request's form fields.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, k: &str) -> Option<String> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }
    fn need(&self, k: &str) -> Result<String, EntraError> {
        self.get(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| entra::missing_parameter(k))
    }
}

/// Reads and checks a token request: the tenant, the grant and its credentials, the
/// resource the token is for.
fn grant(
    world: &World,
    endpoints: &Endpoints,
    req: &Request,
    form: &Form,
    tenant: &str,
    v2: bool,
) -> Result<Grant, EntraError> {
    if !world.tenant.knows(tenant) {
        return Err(entra::unknown_tenant(tenant));
    }
    let grant = form.need("grant_type")?;
    if !matches!(
        grant.as_str(),
        "client_credentials" | "password" | "refresh_token"
    ) {
        return Err(entra::unsupported_grant(&grant));
    }
    let (client_id, secret) = client_credentials(req, form)?;
    world.tenant.app(&client_id)?;
    // A confidential client proves itself with its secret in every grant; a public client
    // (no secret sent) may still sign a user in.
    if let Some(secret) = &secret {
        world.tenant.check_secret(&client_id, secret)?;
    }
    let resource = if v2 {
        scope_resource(form)?
    } else {
        form.need("resource")?
    };
    let audience = endpoints
        .audience(&resource)
        .ok_or_else(|| entra::resource_not_found(&resource, &world.tenant.domain))?;
    let user = match grant.as_str() {
        "client_credentials" => {
            if secret.is_none() {
                return Err(entra::missing_parameter("client_secret"));
            }
            if audience == Audience::Lcs {
                return Err(EntraError {
                    status: 400,
                    error: "invalid_grant",
                    code: 500011,
                    description: "AADSTS500011: Lifecycle Services accepts delegated (user) tokens only; use a user sign-in.".into(),
                });
            }
            None
        }
        "password" => {
            let upn = form.need("username")?;
            let password = form.need("password")?;
            Some(world.tenant.check_password(&upn, &password)?.upn.clone())
        }
        _ => {
            let refresh = form.need("refresh_token")?;
            Some(
                world
                    .tenant
                    .redeem_refresh_token(&refresh, &client_id, world.clock.now())?,
            )
        }
    };
    Ok(Grant {
        resource,
        client_id,
        confidential: secret.is_some(),
        user,
        v2,
    })
}

/// The client id and secret, from the form or from HTTP Basic authentication.
fn client_credentials(req: &Request, form: &Form) -> Result<(String, Option<String>), EntraError> {
    let (mut client_id, mut secret) = (form.get("client_id"), form.get("client_secret"));
    if let Some(basic) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
    {
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(basic.trim()) {
            let raw = String::from_utf8_lossy(&raw).into_owned();
            if let Some((id, s)) = raw.split_once(':') {
                client_id = Some(decode(id, true));
                secret = Some(decode(s, true));
            }
        }
    }
    let client_id = client_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| entra::missing_parameter("client_id"))?;
    Ok((client_id, secret))
}

/// The one resource a v2 `scope` names (`<resource>/.default` or `/user_impersonation`,
/// besides the OpenID scopes); v2 refuses `resource`.
fn scope_resource(form: &Form) -> Result<String, EntraError> {
    if form.get("resource").is_some() {
        return Err(entra::resource_on_v2());
    }
    let scope = form.need("scope")?;
    let scopes: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access"))
        .collect();
    match scopes.as_slice() {
        [one] => one
            .strip_suffix("/.default")
            .or_else(|| one.strip_suffix("/user_impersonation"))
            .map(str::to_string)
            .ok_or_else(|| entra::invalid_scope(&scope)),
        [] => Err(entra::invalid_scope(&scope)),
        _ => Err(EntraError {
            status: 400,
            error: "invalid_scope",
            code: 700022,
            description: format!("AADSTS700022: The provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."),
        }),
    }
}

/// Issues the tokens of a grant and answers them in the v1 or v2 shape: an access token,
/// and for a user sign-in an ID token, `client_info` and a refresh token.
fn mint(
    world: &mut World,
    endpoints: &Endpoints,
    grant: Grant,
    requested_default: bool,
) -> Response {
    let now = world.clock.now();
    let drawn = Drawn {
        uti: world.ids.guid(),
        aio: world.ids.hex(32),
    };
    let issuer = Issuer {
        origin: endpoints.entra.clone(),
    };
    let issued = world.tenant.issue(&issuer, &grant, now, drawn);
    let mut body = if grant.v2 {
        json!({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS, "ext_expires_in": TOKEN_LIFETIME_SECONDS})
    } else {
        json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS.to_string(),
            "ext_expires_in": TOKEN_LIFETIME_SECONDS.to_string(),
            "expires_on": issued.expires_at.unix_seconds().to_string(),
            "not_before": now.unix_seconds().to_string(),
            "resource": grant.resource,
        })
    };
    if grant.user.is_some() {
        // The delegated permission granted, and the `.default` it was asked as: MSAL caches
        // the token under these scopes and finds it again for the same request.
        let resource = grant.resource.trim_end_matches('/');
        let mut scope = format!("{resource}/user_impersonation");
        if grant.v2 && requested_default {
            scope.push_str(&format!(" {resource}/.default"));
        }
        body["scope"] = json!(scope);
    }
    body["access_token"] = json!(issued.access_token);
    for (name, value) in [
        ("refresh_token", issued.refresh_token),
        ("id_token", issued.id_token),
        ("client_info", issued.client_info),
    ] {
        if let Some(value) = value {
            body[name] = json!(value);
        }
    }
    Response::json(200, &body)
        .with_header("content-type", "application/json; charset=utf-8")
        .with_header("cache-control", "no-store, no-cache")
}

/// Entra's error JSON; the description ends with trace and correlation ids and a timestamp.
pub fn error_response(world: &mut World, e: &EntraError) -> Response {
    let trace = world.ids.guid();
    let correlation = world.ids.guid();
    let timestamp = world.clock.now().iso().replace('T', " ");
    Response::json(
        e.status,
        &json!({
            "error": e.error,
            "error_description": format!("{}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}", e.description),
            "error_codes": [e.code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", e.code),
        }),
    )
    .with_header("content-type", "application/json; charset=utf-8")
}
