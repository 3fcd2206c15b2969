//! Who may call the simulator's own verbs under `/_dwsim/`. They export every secret, import a
//! whole world and reset it, so on a partner's machine they must not be open to any local
//! process or to a web page the partner happens to browse. Three checks, in order:
//!
//! 1. the `Host` header names an origin this simulator serves (a DNS-rebinding page's host
//!    does not);
//! 2. the request is not cross-site: an `Origin` that is not one of ours, `Sec-Fetch-Site:
//!    cross-site`, or a state-changing request with a form or plain-text body (what a page can
//!    post without asking) is refused with 403;
//! 3. when an admin key is set (`dwsim serve` sets and prints one), the bearer token is that key
//!    or an access token issued to the harness app; otherwise 401.
//!
//! In-process calls carry no `Host`; tests and `dwsim run` set no key.

use crate::{Endpoints, Request, Response};
use dwsim_model::World;
use serde_json::json;

fn refused(status: u16, message: &str) -> Response {
    let r = Response::json(status, &json!({ "error": message }))
        .with_header("content-type", "application/json");
    if status == 401 {
        r.with_header("WWW-Authenticate", "Bearer realm=\"dwsim admin\"")
    } else {
        r
    }
}

/// The host and port of an origin (`https://127.0.0.1:7001` → `127.0.0.1:7001`).
fn authority(origin: &str) -> &str {
    origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/')
}

/// Whether `host` (a `Host` header or an `Origin`'s authority) is one of the served origins,
/// by their address or as `localhost` on the same port.
fn served(endpoints: &Endpoints, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let mut origins = vec![endpoints.entra.clone(), endpoints.lcs.clone()];
    origins.extend(endpoints.environments().into_iter().map(|(_, o)| o));
    origins.iter().any(|o| {
        let ours = authority(o).to_ascii_lowercase();
        if ours == host {
            return true;
        }
        match (ours.rsplit_once(':'), host.rsplit_once(':')) {
            (Some((_, port)), Some((name, their_port))) => {
                port == their_port && matches!(name, "localhost" | "127.0.0.1" | "[::1]")
            }
            _ => false,
        }
    })
}

/// The refusal for an admin request that fails a check, or none when it may go on.
pub fn check(
    world: &World,
    endpoints: &Endpoints,
    key: Option<&str>,
    req: &Request,
) -> Option<Response> {
    if let Some(host) = req.header("host") {
        if !served(endpoints, host) {
            return Some(refused(
                403,
                &format!("The Host '{host}' is not an origin this simulator serves."),
            ));
        }
    }
    if let Some(origin) = req.header("origin") {
        if origin == "null" || !served(endpoints, authority(origin)) {
            return Some(refused(
                403,
                "Cross-site requests to the admin verbs are refused.",
            ));
        }
    }
    if req
        .header("sec-fetch-site")
        .is_some_and(|s| s.eq_ignore_ascii_case("cross-site"))
    {
        return Some(refused(
            403,
            "Cross-site requests to the admin verbs are refused.",
        ));
    }
    let simple_body = req.header("content-type").is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("application/x-www-form-urlencoded")
            || ct.starts_with("multipart/form-data")
            || ct.starts_with("text/plain")
    });
    if req.method != "GET" && simple_body {
        return Some(refused(
            403,
            "The admin verbs take JSON; a form or plain-text body is refused (a web page can post those cross-site).",
        ));
    }
    let key = key?;
    let bearer = req.bearer();
    let is_key = bearer.is_some_and(|b| constant_time_eq(b.as_bytes(), key.as_bytes()));
    let is_harness = bearer
        .and_then(|b| world.tenant.client_of(b, world.clock.now()))
        .is_some_and(|app| app.eq_ignore_ascii_case(&world.harness.client_id));
    if is_key || is_harness {
        return None;
    }
    Some(refused(
        401,
        "The admin verbs need 'Authorization: Bearer <admin key>' (printed by dwsim serve) or an access token of the harness app.",
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
