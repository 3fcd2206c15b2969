//! Microsoft Entra token endpoints: v2 `/{tenant}/oauth2/v2.0/token` (scope) and v1
//! `/{tenant}/oauth2/token` (resource), client credentials and the password grant that LCS
//! tools use. Errors carry the AADSTS code in Entra's JSON shape.

use crate::request::{decode, Request, Response};
use crate::Endpoints;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dwsim_model::entra::{self, Audience, EntraError, Token, TOKEN_LIFETIME_SECONDS};
use dwsim_model::World;
use serde_json::json;

/// Answers an Entra ID request: the token endpoints of each tenant.
pub fn handle(world: &mut World, endpoints: &Endpoints, req: &Request) -> Response {
    let segs = req.segments();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", [tenant, "oauth2", "v2.0", "token"]) => token(world, endpoints, req, tenant, true),
        ("POST", [tenant, "oauth2", "token"]) => token(world, endpoints, req, tenant, false),
        ("GET", [tenant, "v2.0", ".well-known", "openid-configuration"]) => discovery(world, endpoints, tenant, true),
        ("GET", [tenant, ".well-known", "openid-configuration"]) => discovery(world, endpoints, tenant, false),
        (_, [_, "oauth2", "v2.0", "token"]) | (_, [_, "oauth2", "token"]) => error_response(
            world,
            &EntraError {
                status: 405,
                error: "invalid_request",
                code: 900561,
                description: "AADSTS900561: The endpoint only accepts POST requests.".into(),
            },
        ),
        _ => error_response(
            world,
            &EntraError {
                status: 404,
                error: "invalid_request",
                code: 900023,
                description: format!("AADSTS900023: Specified tenant identifier '{}' is neither a valid DNS name, nor a valid external domain.", segs.first().unwrap_or(&"")),
            },
        ),
    }
}

fn discovery(world: &mut World, endpoints: &Endpoints, tenant: &str, v2: bool) -> Response {
    if !world.tenant.knows(tenant) {
        return error_response(world, &entra::unknown_tenant(tenant));
    }
    let base = format!("{}/{}", endpoints.entra, world.tenant.id);
    let (token, issuer) = if v2 {
        (format!("{base}/oauth2/v2.0/token"), format!("{base}/v2.0"))
    } else {
        (
            format!("{base}/oauth2/token"),
            format!("{}/{}/", endpoints.entra, world.tenant.id),
        )
    };
    Response::json(
        200,
        &json!({
            "token_endpoint": token,
            "authorization_endpoint": if v2 { format!("{base}/oauth2/v2.0/authorize") } else { format!("{base}/oauth2/authorize") },
            "issuer": issuer,
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials", "password"],
            "tenant_region_scope": "NA",
        }),
    )
    .with_header("content-type", "application/json; charset=utf-8")
}

fn form(req: &Request) -> Vec<(String, String)> {
    req.body_text()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

fn token(
    world: &mut World,
    endpoints: &Endpoints,
    req: &Request,
    tenant: &str,
    v2: bool,
) -> Response {
    match issue(world, endpoints, req, tenant, v2) {
        Ok(r) => r,
        Err(e) => error_response(world, &e),
    }
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

fn issue(
    world: &mut World,
    endpoints: &Endpoints,
    req: &Request,
    tenant: &str,
    v2: bool,
) -> Result<Response, EntraError> {
    if !world.tenant.knows(tenant) {
        return Err(entra::unknown_tenant(tenant));
    }
    let form = Form(form(req));
    let grant = form.need("grant_type")?;
    if grant != "client_credentials" && grant != "password" {
        return Err(entra::unsupported_grant(&grant));
    }
    let (client_id, secret) = client_credentials(req, &form)?;
    let resource = if v2 {
        scope_resource(&form)?
    } else {
        form.need("resource")?
    };
    let audience = endpoints
        .audience(&resource)
        .ok_or_else(|| entra::resource_not_found(&resource, &world.tenant.domain))?;
    let user = match grant.as_str() {
        "client_credentials" => {
            let secret = secret.ok_or_else(|| entra::missing_parameter("client_secret"))?;
            world.tenant.check_secret(&client_id, &secret)?;
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
            world.tenant.app(&client_id)?;
            let upn = form.need("username")?;
            let password = form.need("password")?;
            Some(world.tenant.check_password(&upn, &password)?.upn.clone())
        }
        other => return Err(entra::unsupported_grant(other)),
    };
    let grant = Grant {
        resource,
        audience,
        client_id,
        user,
        v2,
    };
    Ok(mint(world, endpoints, grant))
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

/// What a granted request gets a token for.
struct Grant {
    resource: String,
    audience: Audience,
    client_id: String,
    user: Option<String>,
    v2: bool,
}

/// Issues the access token of a grant and answers it in the v1 or v2 shape.
fn mint(world: &mut World, endpoints: &Endpoints, grant: Grant) -> Response {
    let Grant {
        resource,
        audience,
        client_id,
        user,
        v2,
    } = grant;
    let now = world.clock.now();
    let expires_at = now.plus_seconds(TOKEN_LIFETIME_SECONDS);
    let claims = json!({
        "aud": resource,
        "iss": format!("{}/{}/", endpoints.entra, world.tenant.id),
        "iat": now.unix_seconds(),
        "nbf": now.unix_seconds(),
        "exp": expires_at.unix_seconds(),
        "appid": client_id,
        "tid": world.tenant.id,
        "upn": user,
        "ver": if v2 { "2.0" } else { "1.0" },
        "jti": world.ids.guid(),
    });
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256","kid":"dwsim"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(world.ids.hex(32));
    let access_token = format!("{header}.{payload}.{signature}");
    world.tenant.issue(
        access_token.clone(),
        Token {
            audience,
            tenant_id: world.tenant.id.clone(),
            client_id,
            user,
            expires_at,
        },
    );
    let body = if v2 {
        json!({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS, "ext_expires_in": TOKEN_LIFETIME_SECONDS, "access_token": access_token})
    } else {
        json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS.to_string(),
            "ext_expires_in": TOKEN_LIFETIME_SECONDS.to_string(),
            "expires_on": expires_at.unix_seconds().to_string(),
            "not_before": now.unix_seconds().to_string(),
            "resource": resource,
            "access_token": access_token,
        })
    };
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
