//! Finance and operations: OData data entities under `{env}/data/…` (company context through
//! `dataAreaId` and `cross-company`, F&O's filter dialect, `$skip` paging at 10,000 rows,
//! Infolog errors in an `innererror`), and the dual-write administration as JSON custom
//! services under `{env}/api/services/DualWriteServices/…`.

use crate::dualwrite_services::{self, GROUP, SERVICES};
use crate::fno_metadata;
use crate::odata::filter::Dialect;
use crate::odata::{self, KeySpec};
use crate::request::{Request, Response};
use crate::Endpoints;
use base64::Engine;
use dwsim_model::entra::Audience;
use dwsim_model::error::{ErrorKind, SimError, SimResult};
use dwsim_model::fno::{row_id, value_text};
use dwsim_model::schema::FnoEntity;
use dwsim_model::store::Row;
use dwsim_model::World;
use serde_json::{json, Map, Value};

/// F&O's server-driven page size.
pub const PAGE_SIZE: usize = 10_000;
mod csdl;

const NAMESPACE: &str = "Microsoft.Dynamics.DataEntities";

/// Answers an F&O request (`/{env}/data/...` and `/{env}/api/services/...`).
pub fn handle(world: &mut World, endpoints: &Endpoints, req: &Request) -> Response {
    let segs = req.segments();
    let services = segs.get(1).map(String::as_str) == Some("api");
    match route(world, endpoints, req, &segs) {
        Ok(r) if r.header("OData-Version").is_none() => r.with_header("OData-Version", "4.0"),
        Ok(r) => r,
        Err(e) if services => service_error(world, &e),
        Err(e) => odata_error(&e),
    }
}

fn route(
    world: &mut World,
    endpoints: &Endpoints,
    req: &Request,
    segs: &[String],
) -> SimResult<Response> {
    let (env, rest) = match segs {
        [env, rest @ ..] => (env.to_ascii_lowercase(), rest),
        [] => {
            return Err(SimError::not_found(
                "No HTTP resource was found that matches the request URI '/'.",
            ))
        }
    };
    if !world.fno.contains_key(&env) {
        return Err(SimError::not_found(format!(
            "The environment '{env}' does not exist."
        )));
    }
    let token = endpoints.authenticate(world, req, &Audience::Fno(env.clone()))?;
    if !world.fno[&env].entra_apps.contains(&token.client_id) {
        return Err(SimError::new(
            ErrorKind::Unauthorized,
            "",
            format!("The application {} is not registered under Microsoft Entra ID applications in this environment.", token.client_id),
        ));
    }
    let base = endpoints.fno(&env);
    match rest {
        [d, rest @ ..] if d == "data" => data(world, endpoints, &env, &base, req, rest),
        [m, rest @ ..] if m.eq_ignore_ascii_case("metadata") => {
            fno_metadata::metadata_api(world, &base, req, rest)
        }
        [a, s, rest @ ..] if a == "api" && s == "services" => services(world, &env, req, rest),
        _ => Err(SimError::not_found(format!(
            "No HTTP resource was found that matches the request URI '{base}/{}'.",
            rest.join("/")
        ))),
    }
}

fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::BadRequest => 400,
        ErrorKind::Unauthorized => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::MethodNotAllowed => 405,
        ErrorKind::PreconditionFailed | ErrorKind::Duplicate => 412,
        ErrorKind::Throttled(_) => 429,
        ErrorKind::Conflict | ErrorKind::WriteFailed => 500,
        ErrorKind::NotImplemented => 501,
        ErrorKind::Transport(status) => status,
    }
}

/// The OData error envelope F&O sends, with the Infolog in `innererror`.
pub fn odata_error(e: &SimError) -> Response {
    let status = status_of(e.kind);
    let kind = match e.kind {
        ErrorKind::WriteFailed => {
            "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"
        }
        ErrorKind::NotFound => {
            "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataObjectNotFoundException"
        }
        ErrorKind::Unauthorized => "System.UnauthorizedAccessException",
        _ => "Microsoft.OData.ODataException",
    };
    let mut r = Response::json(
        status,
        &json!({"error": {"code": "", "message": "An error has occurred.", "innererror": {"message": e.message, "type": kind, "stacktrace": ""}}}),
    )
    .with_header("content-type", "application/json; odata.metadata=minimal; charset=utf-8")
    .with_header("OData-Version", "4.0");
    if status == 401 {
        r = r.with_header("WWW-Authenticate", "Bearer");
    }
    if let ErrorKind::Throttled(s) = e.kind {
        r = r.with_header("Retry-After", &s.to_string());
    }
    r
}

/// Custom services answer errors as `{"Message","ExceptionType","ActivityId"}`.
/// An unreadable key, literal or query option, as F&O refuses it (a 400 whose text lands
/// in the innererror envelope).
fn query_refused(e: odata::QueryError) -> SimError {
    SimError::bad_request(e.to_string())
}

fn service_error(world: &mut World, e: &SimError) -> Response {
    let status = status_of(e.kind);
    let mut r = Response::json(
        status,
        &json!({"Message": e.message, "ExceptionType": if e.kind == ErrorKind::Conflict || e.kind == ErrorKind::WriteFailed { "XppServicesException" } else { "ArgumentException" }, "ActivityId": world.ids.guid(), "Code": e.code}),
    )
    .with_header("content-type", "application/json; charset=utf-8");
    if status == 401 {
        r = r.with_header("WWW-Authenticate", "Bearer");
    }
    r
}

fn data(
    world: &mut World,
    endpoints: &Endpoints,
    env: &str,
    base: &str,
    req: &Request,
    rest: &[String],
) -> SimResult<Response> {
    let method = req.method.as_str();
    match rest {
        [] => {
            let value: Vec<Value> = world
                .catalogue
                .fno_entities
                .keys()
                .map(String::as_str)
                .chain(["Companies", "DataManagementEntities"])
                .map(|s| json!({"name": s, "kind": "EntitySet", "url": s}))
                .collect();
            Ok(Response::json(
                200,
                &json!({"@odata.context": format!("{base}/data/$metadata"), "value": value}),
            ))
        }
        [m] if m == "$metadata" => Ok(Response::text(
            200,
            "application/xml",
            csdl::csdl(&world.catalogue),
        )),
        [b] if b == "$batch" => crate::fno_batch::handle(world, endpoints, req, env),
        [set, action] if set == "DataManagementEntities" => {
            match action.strip_prefix(&format!("{NAMESPACE}.")) {
                Some(a) => fno_metadata::version_action(world, env, base, req, a),
                None => Err(SimError::not_found(format!(
                    "Resource not found for the segment '{action}'."
                ))),
            }
        }
        [seg, more @ ..] => {
            let (set, key) = odata::parse_segment(seg).map_err(query_refused)?;
            if set == fno_metadata::COMPANIES && more.is_empty() {
                return fno_metadata::companies(world, env, base, req, seg, key);
            }
            // The definitions are shared: hold the catalogue rather than copy the entity.
            let catalogue = world.catalogue.clone();
            let entity = catalogue.fno_entities.get(&set).ok_or_else(|| {
                SimError::not_found(format!("Resource not found for the segment '{set}'."))
            })?;
            match (key, more, method) {
                (None, [], "GET") => list(world, env, base, req, entity),
                (None, [], "POST") => create(world, env, base, req, entity),
                (None, [c], "GET") if c == "$count" => {
                    let rows = query_rows(world, env, req, entity, None)?;
                    Ok(Response::text(200, "text/plain", rows.len().to_string()))
                }
                (Some(key), [], m) => {
                    let id = key_id(entity, &key)?;
                    record(world, env, base, req, entity, &id, m)
                }
                (None, [], other) => Err(SimError::new(
                    ErrorKind::MethodNotAllowed,
                    "",
                    format!(
                        "The HTTP method '{other}' is not supported on the entity set '{set}'."
                    ),
                )),
                _ => Err(SimError::not_found(format!(
                    "Resource not found for the segment '{}'.",
                    more.last().map_or(seg.as_str(), String::as_str)
                ))),
            }
        }
    }
}

/// One record, addressed by its key: read (with `$select`/`$expand`), update or delete.
/// Optimistic concurrency: an `If-Match` other than `*` must be the record's current ETag
/// (its RecVersion moves on with every write), or the write is refused with 412.
fn check_if_match(
    world: &World,
    env: &str,
    req: &Request,
    entity: &FnoEntity,
    id: &str,
) -> SimResult<()> {
    let Some(wanted) = req.header("if-match").map(str::trim) else {
        return Ok(());
    };
    if wanted == "*" {
        return Ok(());
    }
    let current = world.fno[env]
        .get(&entity.entity_set, id)
        .map(etag)
        .unwrap_or_default();
    if wanted.split(',').any(|tag| tag.trim() == current) {
        return Ok(());
    }
    Err(SimError::new(
        ErrorKind::PreconditionFailed,
        "",
        format!(
            "The record of '{}' was changed after it was read: the If-Match ETag {wanted} is not its current ETag {current}.",
            entity.name
        ),
    ))
}

fn record(
    world: &mut World,
    env: &str,
    base: &str,
    req: &Request,
    entity: &FnoEntity,
    id: &str,
    method: &str,
) -> SimResult<Response> {
    match method {
        "GET" => {
            let row = world.fno[env]
                .get(&entity.entity_set, id)
                .cloned()
                .ok_or_else(|| dwsim_model::fno::not_found(entity))?;
            let params = req.params();
            let o = odata::parse_options(&params, Dialect::FinOps).map_err(query_refused)?;
            let mut body = render(entity, &row, o.select.as_deref())?;
            expand(world, env, entity, &o.expand, &row, &mut body)?;
            body.insert(
                "@odata.context".into(),
                json!(format!(
                    "{base}/data/$metadata#{}/$entity",
                    entity.entity_set
                )),
            );
            Ok(Response::json(200, &Value::Object(body)))
        }
        "PATCH" | "PUT" => {
            check_if_match(world, env, req, entity, id)?;
            let changes = body_row(req, entity)?;
            world.fno_update(env, &entity.entity_set, id, changes)?;
            Ok(Response::new(204))
        }
        "DELETE" => {
            check_if_match(world, env, req, entity, id)?;
            world.fno_delete(env, &entity.entity_set, id)?;
            Ok(Response::new(204))
        }
        other => Err(SimError::new(
            ErrorKind::MethodNotAllowed,
            "",
            format!("The HTTP method '{other}' is not supported on an entity."),
        )),
    }
}

fn etag(row: &Row) -> String {
    let raw = format!(
        "'{},{}'",
        row.get("RecVersion").and_then(Value::as_i64).unwrap_or(0),
        row.get("RecId").and_then(Value::as_i64).unwrap_or(0)
    );
    format!(
        "W/\"{}\"",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn unknown_property(entity: &FnoEntity, name: &str) -> SimError {
    SimError::bad_request(format!(
        "Could not find a property named '{name}' on type '{NAMESPACE}.{}'.",
        entity.name
    ))
}

fn render(
    entity: &FnoEntity,
    row: &Row,
    select: Option<&[String]>,
) -> SimResult<Map<String, Value>> {
    let mut out = Map::new();
    out.insert("@odata.etag".into(), json!(etag(row)));
    let names: Vec<String> = match select {
        Some(s) => {
            for n in s {
                if entity.field(n).is_none() {
                    return Err(unknown_property(entity, n));
                }
            }
            s.to_vec()
        }
        None => entity.fields.iter().map(|f| f.name.clone()).collect(),
    };
    for n in names {
        out.insert(n.clone(), row.get(&n).cloned().unwrap_or(Value::Null));
    }
    Ok(out)
}

/// One level of `$expand`: a relation's navigation property is named after the related
/// entity type (`CustomersV3` → `CustomerGroup`), with an optional nested `$select`.
fn expand(
    world: &World,
    env: &str,
    entity: &FnoEntity,
    items: &[String],
    row: &Row,
    out: &mut Map<String, Value>,
) -> SimResult<()> {
    for item in items {
        let parsed = odata::parse_expand_item(item).map_err(query_refused)?;
        if let Some(filter) = &parsed.filter {
            // A single-valued navigation property has nothing to filter.
            return Err(query_refused(odata::QueryError::ExpandOption(format!(
                "$filter={filter}"
            ))));
        }
        let (nav, select) = (parsed.nav.as_str(), parsed.select);
        let (relation, target) = entity
            .relations
            .iter()
            .find_map(|r| {
                world
                    .catalogue
                    .fno_entities
                    .get(&r.entity_set)
                    .filter(|t| t.name == nav)
                    .map(|t| (r, t))
            })
            .ok_or_else(|| unknown_property(entity, nav))?;
        let value = value_text(row.get(&relation.field));
        let company = value_text(row.get("dataAreaId"));
        let related = world.fno[env]
            .store
            .rows(&target.entity_set)
            .find(|(_, r)| {
                value_text(r.get(&relation.target_field)).eq_ignore_ascii_case(&value)
                    && (!target.company_specific
                        || value_text(r.get("dataAreaId")).eq_ignore_ascii_case(&company))
            });
        let v = match related {
            Some((_, r)) => Value::Object(render(target, r, select.as_deref())?),
            None => Value::Null,
        };
        out.insert(nav.to_string(), v);
    }
    Ok(())
}

/// The store id a URL key names; every key field must be given.
fn key_id(entity: &FnoEntity, key: &KeySpec) -> SimResult<String> {
    let mut row = Row::new();
    match key {
        KeySpec::Single(v) if entity.keys.len() == 1 => {
            row.insert(entity.keys[0].as_str().into(), v.clone());
        }
        KeySpec::Named(pairs) if pairs.len() == entity.keys.len() && pairs.iter().all(|(k, _)| entity.keys.contains(k)) => {
            for (k, v) in pairs {
                row.insert(k.as_str().into(), v.clone());
            }
        }
        _ => {
            return Err(SimError::bad_request(format!(
                "The number of keys specified in the URI does not match number of key properties for the resource '{NAMESPACE}.{}'.",
                entity.name
            )))
        }
    }
    Ok(row_id(entity, &row))
}

fn body_row(req: &Request, entity: &FnoEntity) -> SimResult<Row> {
    let body = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => m,
        _ => return Err(SimError::bad_request("The request body is not a valid JSON object. An error occurred while reading the request payload.")),
    };
    let mut row = Row::new();
    for (k, v) in body {
        if k.starts_with('@') || k.contains("@odata.") {
            continue;
        }
        if entity.field(&k).is_none() {
            return Err(SimError::bad_request(format!(
                "The property '{k}' does not exist on type '{NAMESPACE}.{}'. Make sure to only use property names that are defined by the type.",
                entity.name
            )));
        }
        row.insert(k.into(), v);
    }
    Ok(row)
}

fn create(
    world: &mut World,
    env: &str,
    base: &str,
    req: &Request,
    entity: &FnoEntity,
) -> SimResult<Response> {
    let row = body_row(req, entity)?;
    let created = world.fno_create(env, &entity.entity_set, row)?;
    let mut body = render(entity, &created, None)?;
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{base}/data/$metadata#{}/$entity",
            entity.entity_set
        )),
    );
    let key = entity
        .keys
        .iter()
        .map(|k| format!("{k}='{}'", value_text(created.get(k)).replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(",");
    Ok(Response::json(201, &Value::Object(body))
        .with_header(
            "Location",
            &format!("{base}/data/{}({key})", entity.entity_set),
        )
        .with_header("ETag", &etag(&created)))
}

/// Rows visible to the query: the default company unless `cross-company=true`, filtered
/// and sorted.
fn query_rows<'w>(
    world: &'w World,
    env: &str,
    req: &Request,
    entity: &FnoEntity,
    cap: Option<usize>,
) -> SimResult<Vec<&'w Row>> {
    let params = req.params();
    let o = odata::parse_options(&params, Dialect::FinOps).map_err(query_refused)?;
    if let Some(u) = o.unknown.iter().find(|u| u.as_str() != "$format") {
        return Err(SimError::bad_request(format!(
            "The query parameter '{u}' is not supported."
        )));
    }
    if let Some(f) = &o.filter {
        for p in odata::filter::properties(f) {
            if entity.field(&p).is_none() {
                return Err(unknown_property(entity, &p));
            }
        }
    }
    let cross_company = req
        .param("cross-company")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let fno = &world.fno[env];
    let company = Value::from(fno.default_company.clone());
    let mut pins: Vec<(&str, Option<&Value>)> = o
        .filter
        .as_ref()
        .map(odata::equality_pins)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    if entity.company_specific && !cross_company {
        pins.push(("dataAreaId", Some(&company)));
    }
    let rows = fno
        .store
        .candidates(&entity.entity_set, &pins)
        .filter(|(_, r)| {
            !entity.company_specific
                || cross_company
                || value_text(r.get("dataAreaId")).eq_ignore_ascii_case(&fno.default_company)
        })
        .map(|(_, r)| r);
    odata::select_rows(rows, &o, Dialect::FinOps, cap).map_err(query_refused)
}

fn list(
    world: &World,
    env: &str,
    base: &str,
    req: &Request,
    entity: &FnoEntity,
) -> SimResult<Response> {
    let params = req.params();
    let o = odata::parse_options(&params, Dialect::FinOps).map_err(query_refused)?;
    // Without a count, rows past this page (and one to know there is more) change nothing.
    let cap = (!o.count).then(|| {
        o.skip
            .unwrap_or(0)
            .saturating_add(o.top.unwrap_or(PAGE_SIZE).min(PAGE_SIZE))
            .saturating_add(1)
    });
    let rows = query_rows(world, env, req, entity, cap)?;
    let total = rows.len();
    let skip = o.skip.unwrap_or(0);
    let wanted = o.top.map_or(total.saturating_sub(skip), |t| {
        t.min(total.saturating_sub(skip))
    });
    let take = wanted.min(PAGE_SIZE);
    let mut value = Vec::new();
    for r in rows.iter().skip(skip).take(take) {
        let mut v = render(entity, r, o.select.as_deref())?;
        expand(world, env, entity, &o.expand, r, &mut v)?;
        value.push(Value::Object(v));
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!("{base}/data/$metadata#{}", entity.entity_set)),
    );
    if o.count {
        body.insert("@odata.count".into(), json!(total));
    }
    body.insert("value".into(), Value::Array(value));
    if take < wanted {
        let kept: Vec<&str> = req
            .query
            .split('&')
            .filter(|p| {
                !p.is_empty()
                    && !p.starts_with("$skip=")
                    && !p.starts_with("%24skip=")
                    && !p.starts_with("$top=")
                    && !p.starts_with("%24top=")
            })
            .collect();
        let mut q = kept.join("&");
        if !q.is_empty() {
            q.push('&');
        }
        let top = o
            .top
            .map(|t| format!("&$top={}", t - take))
            .unwrap_or_default();
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{base}/data/{}?{q}$skip={}{top}",
                entity.entity_set,
                skip + take
            )),
        );
    }
    Ok(Response::json(200, &Value::Object(body)).with_header(
        "content-type",
        "application/json; odata.metadata=minimal; charset=utf-8",
    ))
}

// ---------------------------------------------------------------------------------------
// Dual-write administration as custom services.
// ---------------------------------------------------------------------------------------

fn services(world: &mut World, env: &str, req: &Request, rest: &[String]) -> SimResult<Response> {
    let names: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (req.method.as_str(), names.as_slice()) {
        ("GET", []) => Ok(Response::json(200, &json!({"ServiceGroups": [{"Name": GROUP}]}))),
        ("GET", [g]) if *g == GROUP => Ok(Response::json(200, &json!({"Services": SERVICES.iter().map(|(s, _)| json!({"Name": s})).collect::<Vec<_>>()}))),
        ("GET", [g, s]) if *g == GROUP => {
            let ops = SERVICES.iter().find(|(n, _)| n == s).ok_or_else(|| SimError::not_found(format!("Service {s} was not found in service group {GROUP}.")))?;
            Ok(Response::json(200, &json!({"Operations": ops.1.iter().map(|o| json!({"Name": o})).collect::<Vec<_>>()})))
        }
        ("POST", [g, s, op]) if *g == GROUP => {
            let known = SERVICES.iter().any(|(n, ops)| n == s && ops.contains(op));
            if !known {
                return Err(SimError::not_found(format!("Operation {op} was not found in service {s} of group {GROUP}.")));
            }
            let args = match serde_json::from_slice::<Value>(&req.body) {
                Ok(Value::Object(m)) => m,
                _ if req.body.iter().all(u8::is_ascii_whitespace) => Map::new(),
                _ => return Err(SimError::bad_request("The request body is not a valid JSON object.")),
            };
            let value = dualwrite_services::call(world, env, s, op, args)
                .unwrap_or_else(|| Err(SimError::not_found(format!("Operation {op} was not found."))))?;
            Ok(Response::json(200, &value).with_header("content-type", "application/json; charset=utf-8"))
        }
        (_, [g, ..]) if *g != GROUP => Err(SimError::not_found(format!("Service group {g} was not found."))),
        (m, _) => Err(SimError::new(ErrorKind::MethodNotAllowed, "", format!("The HTTP method '{m}' is not supported here; service operations are called with POST."))),
    }
}
