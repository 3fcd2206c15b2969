//! The simulator's own verbs under `/_dwsim/` on every server: export and import state, the
//! end state, reset, advance the virtual clock, the harness credentials, and the Dataverse
//! service protection limits, and the faults injected into dual-write writes.

use crate::request::{Request, Response};
use crate::{Endpoints, Product};
use dwsim_model::faults::FaultPlan;
use dwsim_model::limits::ServiceProtection;
use dwsim_model::World;
use serde_json::json;

fn error(status: u16, message: &str) -> Response {
    Response::json(status, &json!({"error": message}))
        .with_header("content-type", "application/json")
}

/// Answers a `/_dwsim/...` request: export, end state, clock, faults, harness. The import
/// (`PUT state`) is [`Sim::import_state`](crate::Sim::import_state)'s: it reads the new world
/// before taking the world's lock, which a handler given the locked world cannot.
pub fn handle(
    world: &mut World,
    _product: Product,
    endpoints: &Endpoints,
    req: &Request,
) -> Response {
    let segs = req.segments();
    let s: Vec<&str> = segs.iter().skip(1).map(String::as_str).collect();
    match (req.method.as_str(), s.as_slice()) {
        ("GET", ["state"]) => {
            let mut body = Vec::new();
            match write_state(world, req, &mut body) {
                Ok(()) => Response::text(200, "application/json", body),
                Err(e) => e,
            }
        }
        ("GET", ["endstate"]) => Response::json(200, &json!(world.end_state()))
            .with_header("content-type", "application/json"),
        ("POST", ["reset"]) => {
            match World::with_catalogue(world.spec.clone(), world.catalogue.clone()) {
                Ok(w) => {
                    *world = w;
                    Response::new(204)
                }
                Err(e) => error(500, &e.message),
            }
        }
        ("POST", ["clock"]) => {
            let minutes = req
                .param("advanceMinutes")
                .and_then(|m| m.parse::<i64>().ok());
            let left = (dwsim_model::clock::MAX_INSTANT.0 - world.clock.now().0) / 60_000;
            match minutes {
                Some(m) if m > left => error(
                    400,
                    &format!("advanceMinutes may be at most {left}: the clock stops at 9999-12-31T23:59:59Z"),
                ),
                Some(m) if m >= 0 => {
                    world.advance(m);
                    Response::json(200, &json!({"now": world.clock.now().iso()}))
                }
                _ => error(400, "advanceMinutes must be a non-negative integer"),
            }
        }
        ("GET", ["clock"]) => Response::json(200, &json!({"now": world.clock.now().iso()})),
        ("GET", ["harness"]) => Response::json(200, &harness(world, endpoints)),
        ("GET", ["limits"]) => Response::json(200, &json!(world.config.service_protection)),
        ("GET", ["lcs"]) => Response::json(
            200,
            &json!({"dataverse_capacity_mb": world.lcs.dataverse_capacity_mb}),
        ),
        ("PUT", ["lcs"]) => match serde_json::from_slice::<serde_json::Value>(&req.body)
            .ok()
            .and_then(|v| v["dataverse_capacity_mb"].as_i64())
        {
            Some(mb) if mb >= 0 => {
                world.lcs.dataverse_capacity_mb = mb;
                Response::json(200, &json!({"dataverse_capacity_mb": mb}))
            }
            _ => error(
                400,
                "The body must be {\"dataverse_capacity_mb\": N} with N not negative",
            ),
        },
        ("GET", ["dualwrite"]) => Response::json(200, &dual_write_settings(world)),
        ("PUT", ["dualwrite"]) => put_dual_write_settings(world, req),
        ("PUT", ["limits"]) => put_limits(world, req),
        ("GET", ["faults"]) => Response::json(200, &json!(world.config.faults)),
        ("PUT", ["faults"]) => put_faults(world, req),
        ("DELETE", ["faults"]) => {
            world.config.faults = Default::default();
            Response::new(204)
        }
        _ => error(
            404,
            &format!("Unknown admin verb {} {}", req.method, req.path),
        ),
    }
}

/// Writes the state export (`GET /_dwsim/state`) to `out`, straight from the world with no
/// JSON tree in between: the export of a large world costs its bytes, not a second copy of
/// the world as values. Secrets are redacted unless `?secrets=true`.
pub(crate) fn write_state(
    world: &mut World,
    req: &Request,
    out: impl std::io::Write,
) -> Result<(), Response> {
    let redacted = req.param("secrets").as_deref() != Some("true");
    let secrets = redacted.then(|| swap_secrets(world, Secrets::redacted(world)));
    let written = serde_json::to_writer(out, &*world);
    if let Some(secrets) = secrets {
        swap_secrets(world, secrets);
    }
    written.map_err(|e| error(500, &format!("The state could not be written: {e}")))
}

/// Puts an imported world in place of `world`: it keeps the catalogue it was served with
/// and the secrets the export redacted, and its custom maps are applied again.
pub(crate) fn install_state(world: &mut World, mut imported: World) -> Response {
    imported.catalogue = world.catalogue.clone();
    keep_redacted_secrets(&mut imported, world);
    imported.apply_custom_maps();
    *world = imported;
    Response::new(204)
}

/// The answer to a state import that does not read as a world export.
pub(crate) fn not_a_state(e: &dyn std::fmt::Display) -> Response {
    error(400, &format!("The state is not a dwsim world export: {e}"))
}

/// What a redacted secret reads as in an export.
pub const REDACTED: &str = "<redacted>";

/// Replaces the secrets of an exported world (the harness secret and password, every app's
/// secret, every user's password) with [`REDACTED`]; `?secrets=true` keeps them.
/// The secrets a state export leaves out: the harness's client secret and password, every
/// app's secret and every user's password.
struct Secrets {
    client_secret: String,
    password: String,
    apps: Vec<String>,
    users: Vec<String>,
}

impl Secrets {
    /// As many redaction marks as `world` has secrets.
    fn redacted(world: &World) -> Secrets {
        Secrets {
            client_secret: REDACTED.into(),
            password: REDACTED.into(),
            apps: vec![REDACTED.into(); world.tenant.apps.len()],
            users: vec![REDACTED.into(); world.tenant.users.len()],
        }
    }
}

/// Puts `secrets` into `world` and answers the ones that were there.
fn swap_secrets(world: &mut World, mut secrets: Secrets) -> Secrets {
    std::mem::swap(&mut world.harness.client_secret, &mut secrets.client_secret);
    std::mem::swap(&mut world.harness.password, &mut secrets.password);
    for (app, secret) in world.tenant.apps.values_mut().zip(secrets.apps.iter_mut()) {
        std::mem::swap(&mut app.secret, secret);
    }
    for (user, password) in world
        .tenant
        .users
        .values_mut()
        .zip(secrets.users.iter_mut())
    {
        std::mem::swap(&mut user.password, password);
    }
    secrets
}

/// An imported world whose secrets were redacted keeps the current world's.
fn keep_redacted_secrets(imported: &mut World, current: &World) {
    let keep = |new: &mut String, old: &str| {
        if new == REDACTED {
            *new = old.to_string();
        }
    };
    keep(
        &mut imported.harness.client_secret,
        &current.harness.client_secret,
    );
    keep(&mut imported.harness.password, &current.harness.password);
    for (id, app) in imported.tenant.apps.iter_mut() {
        if let Some(old) = current.tenant.apps.get(id) {
            keep(&mut app.secret, &old.secret);
        }
    }
    for (upn, user) in imported.tenant.users.iter_mut() {
        if let Some(old) = current.tenant.users.get(upn) {
            keep(&mut user.password, &old.password);
        }
    }
}

/// Changes the Dataverse service protection settings. The body may name only some of them;
/// the rest keep their current values. The windows are kept, so lowering a limit can
/// throttle a caller at once.
/// The dual-write runtime's limits: records per F&O transaction and the initial-sync limits.
fn dual_write_settings(world: &World) -> serde_json::Value {
    json!({"records_per_transaction": world.config.dual_write.records_per_transaction, "initial_sync": world.config.dual_write.initial_sync, "live_sync": world.config.dual_write.live_sync})
}

/// Changes what it names of `{"records_per_transaction", "initial_sync": {...}}`.
fn put_dual_write_settings(world: &mut World, req: &Request) -> Response {
    let patch = match serde_json::from_slice::<serde_json::Value>(&req.body) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return error(400, "The body must be a JSON object of dual-write settings"),
    };
    for (k, v) in patch {
        match k.as_str() {
            "records_per_transaction" => match v.as_u64() {
                Some(n) if n > 0 => world.config.dual_write.records_per_transaction = n as usize,
                _ => return error(400, "records_per_transaction must be a positive integer"),
            },
            "initial_sync" => {
                let mut merged = json!(world.config.dual_write.initial_sync);
                if let (Some(current), serde_json::Value::Object(p)) = (merged.as_object_mut(), v) {
                    current.extend(p);
                }
                match serde_json::from_value(merged) {
                    Ok(l) => world.config.dual_write.initial_sync = l,
                    Err(e) => return error(400, &format!("Not valid initial-sync limits: {e}")),
                }
            }
            "live_sync" => {
                let mut merged = json!(world.config.dual_write.live_sync);
                if let (Some(current), serde_json::Value::Object(p)) = (merged.as_object_mut(), v) {
                    current.extend(p);
                }
                match serde_json::from_value(merged) {
                    Ok(l) => world.config.dual_write.live_sync = l,
                    Err(e) => return error(400, &format!("Not valid live-sync settings: {e}")),
                }
            }
            other => return error(400, &format!("Unknown dual-write setting '{other}'")),
        }
    }
    Response::json(200, &dual_write_settings(world))
}

fn put_limits(world: &mut World, req: &Request) -> Response {
    let patch = match serde_json::from_slice::<serde_json::Value>(&req.body) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return error(400, "The body must be a JSON object of limit settings"),
    };
    let mut merged = json!(world.config.service_protection);
    if let Some(current) = merged.as_object_mut() {
        current.extend(patch);
    }
    match serde_json::from_value::<ServiceProtection>(merged) {
        Ok(s) if s.window_seconds < 1 || s.cost_ms < 0 || s.max_execution_ms < 0 => error(
            400,
            "window_seconds must be at least 1; cost_ms and max_execution_ms not negative",
        ),
        Ok(s) => {
            world.config.service_protection = s;
            Response::json(200, &json!(world.config.service_protection))
        }
        Err(e) => error(400, &format!("Not valid limit settings: {e}")),
    }
}

/// Replaces the fault plan: `{"faults": [{"side": "Dataverse", "table": "msdyn_customergroup",
/// "count": 1, "kind": "pluginFailure"}]}`. Answers the plan as stored.
fn put_faults(world: &mut World, req: &Request) -> Response {
    match serde_json::from_slice::<FaultPlan>(&req.body) {
        Ok(plan) => match plan
            .validate()
            .and_then(|()| plan.check_tables(&world.catalogue))
        {
            Ok(()) => {
                world.config.faults = plan;
                Response::json(200, &json!(world.config.faults))
            }
            Err(e) => error(400, &e.to_string()),
        },
        Err(e) => error(400, &format!("Not a fault plan: {e}")),
    }
}

/// What a client needs to connect: tenant, client id and secret, user, and base URLs.
pub fn harness(world: &World, endpoints: &Endpoints) -> serde_json::Value {
    let h = &world.harness;
    json!({
        "tenant_id": h.tenant_id,
        "tenant_domain": h.tenant_domain,
        "client_id": h.client_id,
        "client_secret": h.client_secret,
        "username": h.username,
        "password": h.password,
        "lcs_project_id": h.lcs_project_id,
        "entra": endpoints.entra,
        "authority": format!("{}/{}", endpoints.entra, h.tenant_id),
        "token_endpoint_v2": format!("{}/{}/oauth2/v2.0/token", endpoints.entra, h.tenant_id),
        "token_endpoint_v1": format!("{}/{}/oauth2/token", endpoints.entra, h.tenant_id),
        "lcs": endpoints.lcs,
        "fno": world.fno.keys().map(|e| json!({"environment": e, "url": endpoints.fno(e)})).collect::<Vec<_>>(),
        "dataverse": world.dataverse.keys().map(|o| json!({
            "environment": o, "url": endpoints.dataverse(o),
            "web_api": format!("{}/api/data/v9.2", endpoints.dataverse(o)),
        })).collect::<Vec<_>>(),
    })
}
