//! Lifecycle Services (`{lcs}/…`) and, on the same server, the Power Platform admin (BAP)
//! API (`{lcs}/providers/Microsoft.BusinessAppPlatform/…`).
//!
//! LCS answers HTTP 200 with its envelope (`IsSuccess`, `OperationActivityId`,
//! `ErrorMessage`, `VersionEOL`) once authenticated, and needs `x-ms-version`. Deployment,
//! Power Platform integration and the dual-write application setup and link are portal
//! buttons in the real LCS; dwsim offers them as API calls in the same conventions, each a
//! long-running operation polled through fetchstatus. Each poll advances the virtual clock.

use crate::request::{Request, Response};
use crate::Endpoints;
use dwsim_model::entra::Audience;
use dwsim_model::error::{ErrorKind, SimError, SimResult};
use dwsim_model::lcs::{DeploymentState, LcsOperationKind, OperationStatus};
use dwsim_model::power_platform::EnvironmentRequest;
use dwsim_model::World;
use serde_json::{json, Map, Value};

/// The API version LCS requires in `x-ms-version`.
pub const API_VERSION: &str = "2017-09-15";
const VERSION_EOL: &str = "9999-12-31T23:59:59.9999999";
/// Virtual minutes each fetchstatus poll lets pass.
pub const POLL_MINUTES: i64 = 15;
/// Virtual minutes each BAP lifecycle-operation poll lets pass.
pub const BAP_POLL_MINUTES: i64 = 5;
const BAP: &str = "/providers/Microsoft.BusinessAppPlatform";

/// Answers an LCS or Power Platform admin API request.
pub fn handle(world: &mut World, endpoints: &Endpoints, req: &Request) -> Response {
    if req.path.starts_with(BAP) {
        return match bap(world, endpoints, req) {
            Ok(r) => r,
            Err(e) => bap_error(&e),
        };
    }
    let activity = world.ids.guid();
    match lcs(world, endpoints, req) {
        Ok(fields) => envelope(200, true, &activity, None, fields),
        Err(e) => {
            let status = match e.kind {
                ErrorKind::Unauthorized => 401,
                ErrorKind::NotFound if e.code == "route" => 404,
                ErrorKind::Throttled(_) => 429,
                ErrorKind::Transport(status) => status,
                _ => 200,
            };
            let mut r = envelope(status, false, &activity, Some(&e.message), Map::new());
            if let ErrorKind::Throttled(s) = e.kind {
                r = r.with_header("retry-after", &s.to_string());
            }
            if status == 401 {
                r = r.with_header("WWW-Authenticate", "Bearer");
            }
            r
        }
    }
}

/// A request LCS refused before reading it (too large, unreadable): the envelope with the
/// status the front door answers.
pub(crate) fn refused(world: &mut World, status: u16, message: &str) -> Response {
    let activity = world.ids.guid();
    envelope(status, false, &activity, Some(message), Map::new())
}

fn envelope(
    status: u16,
    ok: bool,
    activity: &str,
    error: Option<&str>,
    fields: Map<String, Value>,
) -> Response {
    let mut body = fields;
    body.insert("IsSuccess".into(), json!(ok));
    // A call that starts an operation answers that operation's activity id.
    body.entry("OperationActivityId").or_insert(json!(activity));
    body.insert("ErrorMessage".into(), json!(error));
    body.insert("VersionEOL".into(), json!(VERSION_EOL));
    Response::json(status, &Value::Object(body))
        .with_header("content-type", "application/json; charset=utf-8")
}

fn route_not_found(path: &str) -> SimError {
    SimError::new(
        ErrorKind::NotFound,
        "route",
        format!("No HTTP resource was found that matches the request URI '{path}'."),
    )
}

fn lcs(world: &mut World, endpoints: &Endpoints, req: &Request) -> SimResult<Map<String, Value>> {
    authorize(world, endpoints, req)?;
    let segs = req.segments();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.as_str(), s.as_slice()) {
        ("GET", ["environmentinfo", "v1", "detail", "project", p]) => {
            let pid = project(world, p)?;
            rate_limited(
                world,
                &[(format!("detail:{pid}"), 6, 60)],
                "Rate limit exceeded: 6 calls per project per 1 minute.",
            )?;
            Ok(metadata(world, endpoints, req))
        }
        ("GET", ["environmentinfo", "v1", "history", "project", p, "environment", e]) => {
            let pid = project(world, p)?;
            history(world, pid, e)
        }
        ("POST", ["environment", "v1", "deploy", "project", p]) => {
            project(world, p)?;
            let name = req.param("environmentName").unwrap_or_default();
            let demo = req
                .param("demoData")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let (env, activity) = world.lcs_deploy(&name, demo)?;
            Ok(obj(
                json!({"OperationActivityId": activity, "EnvironmentId": env}),
            ))
        }
        ("POST", ["environment", "v1", "powerplatform", "project", p, "environment", e]) => {
            project(world, p)?;
            let template = req
                .param("template")
                .unwrap_or_else(|| "standard-with-dual-write".into());
            let existing = req.param("dataverseEnvironment").filter(|v| !v.is_empty());
            let activity = world.lcs_power_platform(e, &template, existing.as_deref())?;
            Ok(obj(json!({"OperationActivityId": activity})))
        }
        ("POST", ["environment", "v1", "dualwrite", "setup", "project", p, "environment", e]) => {
            project(world, p)?;
            let activity = world.lcs_dual_write_setup(e)?;
            Ok(obj(json!({"OperationActivityId": activity})))
        }
        ("POST", ["environment", "v1", "dualwrite", "link", "project", p, "environment", e]) => {
            project(world, p)?;
            let activity = world.lcs_dual_write_link(e)?;
            Ok(obj(json!({"OperationActivityId": activity})))
        }
        (
            "GET",
            ["environment", "v2", "fetchstatus", "project", p, "environment", e, "operationactivity", a],
        )
        | (
            "GET",
            ["databasemovement", "v1", "fetchstatus", "project", p, "environment", e, "operationactivity", a],
        ) => {
            let pid = project(world, p)?;
            fetch_status(world, pid, e, a)
        }
        _ => Err(route_not_found(&req.path)),
    }
}

/// A delegated LCS token and the API version LCS requires.
fn authorize(world: &World, endpoints: &Endpoints, req: &Request) -> SimResult<()> {
    endpoints.authenticate(world, req, &Audience::Lcs)?;
    match req.header("x-ms-version") {
        Some(API_VERSION) => Ok(()),
        Some(other) => Err(SimError::bad_request(format!(
            "The API version '{other}' is not supported. Use x-ms-version: {API_VERSION}."
        ))),
        None => Err(SimError::bad_request(format!(
            "The x-ms-version header is required. Use x-ms-version: {API_VERSION}."
        ))),
    }
}

/// The project id of a path, which must be the world's project.
fn project(world: &World, p: &str) -> SimResult<i64> {
    let id: i64 = p
        .parse()
        .map_err(|_| SimError::bad_request(format!("'{p}' is not a valid project id.")))?;
    if id != world.lcs.project_id {
        return Err(SimError::not_found(format!(
            "Project {id} was not found, or you are not a member of it."
        )));
    }
    Ok(id)
}

/// Records the call in each (bucket, limit, window seconds); the first bucket over its
/// limit refuses it with 429 and the seconds to wait.
fn rate_limited(
    world: &mut World,
    buckets: &[(String, usize, i64)],
    message: &str,
) -> SimResult<()> {
    let now = world.clock.now();
    let wait = buckets
        .iter()
        .find_map(|(bucket, limit, window)| world.lcs.rate_limit(bucket, *limit, *window, now));
    match wait {
        Some(wait) => Err(SimError::new(ErrorKind::Throttled(wait), "", message)),
        None => Ok(()),
    }
}

fn history(world: &mut World, pid: i64, e: &str) -> SimResult<Map<String, Value>> {
    rate_limited(
        world,
        &[
            (format!("history-env:{e}"), 6, 30),
            (format!("history:{pid}"), 6, 60),
        ],
        "Rate limit exceeded for environment history.",
    )?;
    let env = world
        .lcs
        .environments
        .get(e)
        .ok_or_else(|| SimError::not_found(format!("Environment {e} was not found.")))?;
    let data: Vec<Value> = env
        .history
        .iter()
        .map(|h| {
            json!({"Name": h.name, "Type": h.kind, "TypeDisplay": h.name, "StartDateTimeUtc": h.started.iso(),
                   "EndDateTimeUtc": h.ended.map(|t| t.iso()), "Status": h.status, "ActivityId": h.activity_id,
                   "EnvironmentId": env.id, "ProjectId": pid})
        })
        .collect();
    Ok(obj(
        json!({"ResultPageCurrent": 1, "ResultHasMorePages": false, "Data": data}),
    ))
}

/// fetchstatus: each poll lets [`POLL_MINUTES`] pass on the virtual clock.
fn fetch_status(world: &mut World, pid: i64, e: &str, a: &str) -> SimResult<Map<String, Value>> {
    world.lcs_operation(e, a)?;
    world.advance(POLL_MINUTES);
    let op = world.lcs_operation(e, a)?.clone();
    let mut fields = obj(json!({
        "ProjectId": pid, "EnvironmentId": e, "ActivityId": a,
        "CompletionDate": (op.status != OperationStatus::InProgress).then(|| op.completes.iso()),
        "OperationStatus": op.status,
    }));
    if let Some(err) = op.error {
        fields.insert("OperationErrorMessage".into(), json!(err));
    }
    Ok(fields)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Environment metadata, one page; filtered by `environmentId` or `environmentName`.
fn metadata(world: &World, endpoints: &Endpoints, req: &Request) -> Map<String, Value> {
    let by_id = req.param("environmentId");
    let by_name = req.param("environmentName");
    let data: Vec<Value> = world
        .lcs
        .environments
        .values()
        .filter(|e| by_id.as_ref().is_none_or(|id| &e.id == id) && by_name.as_ref().is_none_or(|n| &e.name == n))
        .map(|e| {
            let fno = world.fno.get(&e.fno_env);
            let mut v = json!({
                "EnvironmentId": e.id, "EnvironmentName": e.name, "ProjectId": world.lcs.project_id,
                "EnvironmentInfrastructure": "MicrosoftManaged", "EnvironmentType": "Sandbox", "EnvironmentGroup": "Primary",
                "EnvironmentProduct": "Finance and Operations",
                "EnvironmentEndpointBaseUrl": format!("{}/", endpoints.fno(&e.fno_env)),
                "DeploymentState": if e.state == DeploymentState::Deployed { "Finished" } else { e.state.as_str() },
                "TopologyDisplayName": "Finance and Operations - Standard",
                "CurrentApplicationBuildVersion": fno.map(|f| f.application_version.clone()),
                "CurrentPlatformReleaseName": fno.map(|f| format!("Update{}", f.platform_update)),
                "DeployedOnUTC": e.deployed_on.map(|t| t.iso()),
                "CloudStorageLocation": "East US", "DisasterRecoveryLocation": "West US",
                "DeploymentStatusDisplay": e.state.as_str(),
                "CanStart": false, "CanStop": false,
                "PowerPlatformIntegration": e.power_platform.as_ref().map(|p| json!({"Template": p.template, "EnvironmentName": p.dataverse_org, "Status": p.status})),
                "DualWriteApplication": e.dual_write_application, "DualWriteLinked": e.dual_write_linked,
            });
            if let (Some(pp), Some(linked)) = (&e.power_platform, world.linked_dataverse(&e.fno_env)) {
                if pp.dataverse_org != linked {
                    v["Warning"] = json!("Microsoft has detected that your environment is linked via Dual-write to a different destination than specified in Power Platform Integration, which is not recommended.");
                }
            }
            v
        })
        .collect();
    obj(json!({"ResultPageCurrent": 1, "ResultHasMorePages": false, "Data": data}))
}

// ---------------------------------------------------------------------------------------
// Power Platform admin (BAP).
// ---------------------------------------------------------------------------------------

fn bap_error(e: &SimError) -> Response {
    let (status, code) = match e.kind {
        ErrorKind::Unauthorized => (401, "InvalidAuthenticationToken"),
        ErrorKind::NotFound => (404, "NotFound"),
        ErrorKind::Conflict => (409, "Conflict"),
        ErrorKind::MethodNotAllowed => (405, "MethodNotAllowed"),
        ErrorKind::Transport(status) => (status, "BadRequest"),
        _ => (
            400,
            if e.code.is_empty() {
                "BadRequest"
            } else {
                e.code.as_str()
            },
        ),
    };
    Response::json(
        status,
        &json!({"error": {"code": code, "message": e.message}}),
    )
    .with_header("content-type", "application/json; charset=utf-8")
}

fn bap(world: &mut World, endpoints: &Endpoints, req: &Request) -> SimResult<Response> {
    if req.param("api-version").is_none_or(|v| v.is_empty()) {
        return Err(SimError::new(
            ErrorKind::BadRequest,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        ));
    }
    endpoints.authenticate(world, req, &Audience::PowerPlatform)?;
    let segs = req.segments();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (req.method.as_str(), s.as_slice()) {
        ("POST", ["providers", "Microsoft.BusinessAppPlatform", "environments"]) => {
            create_environment(world, endpoints, req)
        }
        ("GET", ["providers", "Microsoft.BusinessAppPlatform", "lifecycleOperations", id]) => {
            lifecycle_operation(world, id)
        }
        (
            "GET",
            ["providers", "Microsoft.BusinessAppPlatform", "scopes", "admin", "environments", id],
        )
        | ("GET", ["providers", "Microsoft.BusinessAppPlatform", "environments", id]) => {
            environment(world, endpoints, id)
        }
        _ => Err(SimError::not_found(format!(
            "The route '{}' is not found.",
            req.path
        ))),
    }
}

/// Starts creating an environment: 202 with the lifecycle operation to poll.
fn create_environment(
    world: &mut World,
    endpoints: &Endpoints,
    req: &Request,
) -> SimResult<Response> {
    let base = format!("{}{BAP}", endpoints.lcs);
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| SimError::bad_request(format!("The request body is not valid JSON: {e}")))?;
    let props = &body["properties"];
    let linked = &props["linkedEnvironmentMetadata"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let packages: Vec<String> = linked["templateMetadata"]["PostProvisioningPackages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["applicationUniqueName"].as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let op = world.bap_create_environment(EnvironmentRequest {
        display_name: text(&props["displayName"]),
        domain_name: text(&linked["domainName"]),
        location: text(&body["location"]),
        sku: text(&props["environmentSku"]),
        templates: list(&linked["templates"]),
        packages,
    })?;
    Ok(Response::new(202).with_header(
        "Location",
        &format!("{base}/lifecycleOperations/{op}?api-version=2023-06-01"),
    ))
}

/// A lifecycle operation; each poll lets [`BAP_POLL_MINUTES`] pass on the virtual clock.
fn lifecycle_operation(world: &mut World, id: &str) -> SimResult<Response> {
    if !world.power_platform.operations.contains_key(id) {
        return Err(SimError::not_found(format!(
            "The lifecycle operation '{id}' was not found."
        )));
    }
    world.advance(BAP_POLL_MINUTES);
    let op = world.power_platform.operations[id].clone();
    let user = world.harness.username.clone();
    Ok(Response::json(
        200,
        &json!({
            "id": op.id,
            "links": {"self": {"path": format!("{BAP}/lifecycleOperations/{}", op.id)}, "environment": {"path": format!("{BAP}/environments/{}", op.environment_id)}},
            "state": {"id": op.state},
            "type": {"id": "Create"},
            "createdDateTime": op.started.iso(),
            "lastActionDateTime": world.clock.now().iso(),
            "requestedBy": {"id": user, "displayName": user, "type": "User"},
            "stages": [{"id": "1", "name": "Provision database", "state": {"id": op.state}, "firstActionDateTime": op.started.iso(), "lastActionDateTime": world.clock.now().iso()}],
        }),
    ))
}

fn environment(world: &World, endpoints: &Endpoints, id: &str) -> SimResult<Response> {
    let env = world.power_platform.environments.get(id).ok_or_else(|| {
        SimError::not_found(format!("The environment '{id}' could not be found."))
    })?;
    let dv = world.dataverse.get(&env.domain_name);
    Ok(Response::json(
        200,
        &json!({
            "id": format!("{BAP}/environments/{}", env.id), "name": env.id, "type": "Microsoft.BusinessAppPlatform/scopes/environments",
            "location": env.location,
            "properties": {
                "displayName": env.display_name, "environmentSku": env.sku, "provisioningState": env.provisioning_state,
                "createdTime": env.created.iso(),
                "linkedEnvironmentMetadata": {
                    "domainName": env.domain_name, "uniqueName": env.domain_name,
                    "instanceUrl": format!("{}/", endpoints.dataverse(&env.domain_name)),
                    "instanceApiUrl": endpoints.dataverse(&env.domain_name),
                    "resourceId": dv.map(|d| d.organization_id.clone()),
                },
            },
        }),
    ))
}

/// Names LCS shows for an operation kind (used by reports).
pub fn operation_name(kind: &LcsOperationKind) -> &'static str {
    kind.history_name()
}
