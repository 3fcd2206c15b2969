//! The Dataverse Web API: `{org}/api/data/v9.2/…`. Entity sets, keys (primary and
//! alternate), query options with server paging, create/update/upsert/delete with ETags,
//! single-property reads and writes, WhoAmI, and `{"error":{"code","message"}}` errors.

use crate::dataverse_annotations::{Annotations, Annotator};
use crate::dataverse_metadata::{entity_definitions, global_option_sets, MetadataCall};
use crate::odata::filter::Dialect;
use crate::odata::{self, KeySpec, QueryOptions};
use crate::request::{Request, Response};
use crate::Endpoints;
use dwsim_model::entra::Audience;
use dwsim_model::error::{ErrorKind, SimError, SimResult};
use dwsim_model::schema::{DvColumn, DvTable};
use dwsim_model::store::Row;
use dwsim_model::World;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

mod bulk;
mod record;

use record::{Field, Record};
use std::borrow::Cow;

/// Default and maximum page size.
pub const MAX_PAGE_SIZE: usize = 5000;
const VERSIONS: [&str; 3] = ["v9.0", "v9.1", "v9.2"];

/// What the router knows about the call once the environment and caller are resolved.
struct Call<'a> {
    org: String,
    base: String,
    caller: String,
    req: &'a Request,
    endpoints: &'a Endpoints,
    annotations: Annotations,
}

/// Answers a Dataverse Web API request (`/{org}/api/data/v9.x/...`) with the envelope and headers Dataverse sends.
pub fn handle(world: &mut World, endpoints: &Endpoints, req: &Request) -> Response {
    let segs = req.segments();
    let annotations = Annotations::from_prefer(&req.prefer()).any();
    let result = route(world, endpoints, req, &segs);
    let remaining = world.limits.take_remaining();
    match result {
        Ok(r) => with_ratelimit_headers(r.with_header("OData-Version", "4.0"), remaining),
        Err(e) => error_response(world, endpoints, &segs, &e, annotations),
    }
}

fn route(
    world: &mut World,
    endpoints: &Endpoints,
    req: &Request,
    segs: &[String],
) -> SimResult<Response> {
    let [org, api, data, version, rest @ ..] = segs else {
        return Err(not_found_segment(segs.last().map_or("", String::as_str)));
    };
    if api != "api" || data != "data" || !VERSIONS.contains(&version.as_str()) {
        return Err(not_found_segment(version));
    }
    let call = authorize(world, endpoints, req, org, version)?;
    let method = req.method.as_str();
    match rest {
        [] => match method {
            "GET" => Ok(service_document(world, &call)),
            _ => Err(method_not_allowed(method, "the service document")),
        },
        [m] if m == "$metadata" => Ok(Response::text(
            200,
            "application/xml",
            crate::dataverse_metadata::csdl(&world.catalogue),
        )),
        [b] if b == "$batch" => {
            crate::dataverse_batch::handle(world, endpoints, req, &call.org, version)
        }
        // Functions answer GET only; another verb finds no HTTP resource.
        [f] if is_function(f) && method != "GET" => Err(SimError::new(
            ErrorKind::NotFound,
            "",
            format!(
                "No HTTP resource was found that matches the request URI '{}/{f}'.",
                call.base
            ),
        )),
        [f] if f == "WhoAmI" || f == "WhoAmI()" => who_am_i(world, &call),
        [f] if f.starts_with("RetrieveFinanceAndOperationsIntegrationDetails") => {
            integration_details(world, &call)
        }
        [seg, more @ ..] if is_metadata_set(seg) => {
            let metadata = MetadataCall {
                catalogue: &world.catalogue,
                base: &call.base,
                method,
                params: req.params(),
            };
            if seg.starts_with("EntityDefinitions") {
                entity_definitions(&metadata, seg, more)
            } else {
                global_option_sets(&metadata, seg, more)
            }
        }
        [seg, more @ ..] => route_table(world, &call, seg, more),
    }
}

/// `EntityDefinitions` and `GlobalOptionSetDefinitions`, with or without a key.
fn is_metadata_set(segment: &str) -> bool {
    let name = segment.split('(').next().unwrap_or(segment);
    name == "EntityDefinitions" || name == "GlobalOptionSetDefinitions"
}

/// Who is calling which environment: the environment must exist, the bearer token must be
/// for it, the caller must be one of its application users, and within its service
/// protection budget (per user and environment, on the virtual clock).
fn authorize<'r>(
    world: &mut World,
    endpoints: &'r Endpoints,
    req: &'r Request,
    org: &str,
    version: &str,
) -> SimResult<Call<'r>> {
    let org = org.to_ascii_lowercase();
    if !world.dataverse.contains_key(&org) {
        return Err(SimError::new(
            ErrorKind::NotFound,
            "0x80040217",
            format!("The environment '{org}' does not exist."),
        ));
    }
    let token = endpoints.authenticate(world, req, &Audience::Dataverse(org.clone()))?;
    let caller = world.dataverse[&org]
        .application_user(&token.client_id)
        .ok_or_else(|| {
            SimError::new(
                ErrorKind::Forbidden,
                "0x80072560",
                "The user is not a member of the organization.",
            )
        })?;
    let now = world.clock.now();
    world
        .limits
        .check(&world.config.service_protection, &org, &caller, now)?;
    Ok(Call {
        base: format!("{}/api/data/{version}", endpoints.dataverse(&org)),
        org,
        caller,
        req,
        endpoints,
        annotations: Annotations::from_prefer(&req.prefer()),
    })
}

/// A request under an entity set: the collection, `$count`, one row, or one row's property.
fn route_table(world: &mut World, call: &Call, seg: &str, more: &[String]) -> SimResult<Response> {
    let method = call.req.method.as_str();
    let (set, key) = odata::parse_segment(seg).map_err(query_refused)?;
    // The definitions are shared: hold the catalogue, not a copy of the table's 150-200
    // columns, while the request writes to the world.
    let catalogue = world.catalogue.clone();
    let table = catalogue
        .dv_table_by_set(&set)
        .ok_or_else(|| not_found_segment(&set))?;
    match (key, more) {
        (None, []) => match method {
            "GET" => list(world, call, table),
            "POST" => create(world, call, table),
            _ => Err(method_not_allowed(
                method,
                &format!("the collection '{set}'"),
            )),
        },
        (None, [c]) if c == "$count" && method == "GET" => count(world, call, table),
        (None, [action]) if bulk_action(action).is_some() => match method {
            "POST" => bulk::run(world, call, table, bulk_action(action).unwrap_or_default()),
            _ => Err(method_not_allowed(
                method,
                &format!("the action '{action}'"),
            )),
        },
        (Some(key), []) => match method {
            "GET" => retrieve(world, call, table, &key),
            "PATCH" => upsert(world, call, table, &key),
            "DELETE" => delete(world, call, table, &key),
            _ => Err(method_not_allowed(
                method,
                &format!("a '{}' record", table.logical_name),
            )),
        },
        (Some(key), [prop]) => property(world, call, table, &key, prop),
        _ => Err(not_found_segment(more.last().map_or(seg, String::as_str))),
    }
}

/// `CreateMultiple` for `Microsoft.Dynamics.CRM.CreateMultiple`, and the other bulk actions.
fn bulk_action(segment: &str) -> Option<&'static str> {
    let name = segment.strip_prefix("Microsoft.Dynamics.CRM.")?;
    bulk::ACTIONS.into_iter().find(|a| *a == name)
}

/// `/$count`: the rows the `$filter` keeps (all without one), capped at 5,000, as plain text.
fn count(world: &World, call: &Call, table: &DvTable) -> SimResult<Response> {
    let o = options(call)?;
    let store = &world.dataverse[&call.org].store;
    let n = match &o.filter {
        None => store.count(&table.logical_name),
        Some(f) => {
            check_filter_properties(table, f)?;
            let pins = pins(f);
            let rows = store.candidates(&table.logical_name, &pins).map(|(_, r)| r);
            odata::filter_and_sort(rows, &o, Dialect::Dataverse)
                .map_err(query_refused)?
                .len()
        }
    };
    Ok(Response::text(
        200,
        "text/plain",
        n.min(MAX_PAGE_SIZE).to_string(),
    ))
}

/// A `$filter` may only name the table's properties.
fn check_filter_properties(table: &DvTable, filter: &odata::filter::Expr) -> SimResult<()> {
    for p in odata::filter::properties(filter) {
        if table.column_by_attribute(&p).is_none() {
            return Err(invalid_property(table, &p));
        }
    }
    Ok(())
}

/// The debug headers Dataverse sends with the budget left in the caller's window; the
/// time is in whole milliseconds (the docs name the headers but not their format).
fn with_ratelimit_headers(
    r: Response,
    remaining: Option<dwsim_model::limits::Remaining>,
) -> Response {
    match remaining {
        Some(left) => r
            .with_header(
                "x-ms-ratelimit-burst-remaining-xrm-requests",
                &left.requests.to_string(),
            )
            .with_header(
                "x-ms-ratelimit-time-remaining-xrm-requests",
                &left.execution_ms.to_string(),
            ),
        None => r,
    }
}

fn is_function(segment: &str) -> bool {
    let name = segment.split('(').next().unwrap_or(segment);
    name == "WhoAmI" || name == "RetrieveFinanceAndOperationsIntegrationDetails"
}

/// An unreadable key, literal or query option, as Dataverse refuses it: errors in the path
/// carry no code, errors in a system query option carry 0x80060888.
fn query_refused(e: odata::QueryError) -> SimError {
    let code = if e.in_path() { "" } else { "0x80060888" };
    SimError::new(ErrorKind::BadRequest, code, e.to_string())
}

fn not_found_segment(seg: &str) -> SimError {
    SimError::new(
        ErrorKind::NotFound,
        "0x8006088a",
        format!("Resource not found for the segment '{seg}'."),
    )
}

fn method_not_allowed(method: &str, what: &str) -> SimError {
    SimError::new(
        ErrorKind::MethodNotAllowed,
        "0x80060888",
        format!("The HTTP method '{method}' is not supported on {what}."),
    )
}

fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::BadRequest | ErrorKind::Conflict => 400,
        ErrorKind::Unauthorized => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::MethodNotAllowed => 405,
        ErrorKind::PreconditionFailed | ErrorKind::Duplicate => 412,
        ErrorKind::Throttled(_) => 429,
        ErrorKind::WriteFailed => 500,
        ErrorKind::NotImplemented => 501,
        ErrorKind::Transport(status) => status,
    }
}

/// `{"error":{"code","message"}}`, plus the documented annotations when asked for, and the
/// Bearer challenge on a 401.
pub fn error_response(
    world: &World,
    endpoints: &Endpoints,
    segs: &[String],
    e: &SimError,
    annotations: bool,
) -> Response {
    let status = status_of(e.kind);
    let mut error = Map::new();
    error.insert("code".into(), json!(e.code));
    error.insert("message".into(), json!(e.message));
    if annotations {
        let hex = e.code.trim_start_matches("0x");
        error.insert(
            "@Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus".into(),
            json!("0"),
        );
        error.insert(
            "@Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode".into(),
            json!(i64::from_str_radix(hex, 16)
                .map(|v| v as i32)
                .unwrap_or(0)
                .to_string()),
        );
        error.insert(
            "@Microsoft.PowerApps.CDS.HelpLink".into(),
            json!(format!("http://go.microsoft.com/fwlink/?LinkID=398563&error=Microsoft.Crm.CrmException%3a{hex}&client=platform")),
        );
        error.insert("@Microsoft.PowerApps.CDS.TraceText".into(), json!(""));
        error.insert(
            "@Microsoft.PowerApps.CDS.InnerError.Message".into(),
            json!(e.message),
        );
    }
    let mut r =
        Response::json(status, &json!({ "error": error })).with_header("OData-Version", "4.0");
    if status == 401 {
        let org = segs
            .first()
            .map(|o| o.to_ascii_lowercase())
            .unwrap_or_default();
        let resource = endpoints
            .known(&crate::Server::Dataverse(org))
            .unwrap_or_default();
        r = r.with_header(
            "WWW-Authenticate",
            &format!(
                "Bearer authorization_uri={}/{}/oauth2/authorize, resource_id={resource}/",
                endpoints.entra, world.tenant.id
            ),
        );
    }
    if let ErrorKind::Throttled(seconds) = e.kind {
        r = r.with_header("Retry-After", &seconds.to_string());
    }
    r
}

fn service_document(world: &World, call: &Call) -> Response {
    let value: Vec<Value> = world
        .catalogue
        .dv_tables
        .values()
        .map(|t| json!({"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}))
        .collect();
    Response::json(
        200,
        &json!({"@odata.context": format!("{}/$metadata", call.base), "value": value}),
    )
}

fn who_am_i(world: &World, call: &Call) -> SimResult<Response> {
    let dv = &world.dataverse[&call.org];
    let bu = dv
        .get("systemuser", &call.caller)
        .and_then(|r| r.get("_businessunitid_value").cloned())
        .unwrap_or(Value::Null);
    Ok(Response::json(
        200,
        &json!({
            "@odata.context": format!("{}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse", call.base),
            "BusinessUnitId": bu,
            "UserId": call.caller,
            "OrganizationId": dv.organization_id,
        }),
    ))
}

fn integration_details(world: &World, call: &Call) -> SimResult<Response> {
    let dv = &world.dataverse[&call.org];
    let fno = dv.fno_integration.clone().ok_or_else(|| {
        SimError::new(
            ErrorKind::BadRequest,
            "0x80048d0b",
            "Dataverse instance isn't integrated with finance and operations.",
        )
    })?;
    let lcs_id = world
        .lcs
        .environment_by_fno(&fno)
        .map(|e| e.id.clone())
        .unwrap_or_default();
    Ok(Response::json(
        200,
        &json!({
            "@odata.context": format!("{}/$metadata#Microsoft.Dynamics.CRM.RetrieveFinanceAndOperationsIntegrationDetailsResponse", call.base),
            "Url": call.endpoints.fno(&fno),
            "TenantId": world.tenant.id,
            "Id": lcs_id,
        }),
    ))
}

fn etag(row: &Row) -> String {
    format!(
        "W/\"{}\"",
        row.get("versionnumber")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    )
}

fn invalid_property(table: &DvTable, name: &str) -> SimError {
    SimError::new(
        ErrorKind::BadRequest,
        "0x0",
        format!(
            "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{}'.",
            table.logical_name
        ),
    )
}

/// Attributes a row shows: every column, or the `$select` list, each with the annotations
/// the caller asked for, in name order, the values borrowed from the row.
fn render<'a>(
    world: &'a World,
    call: &Call,
    table: &'a DvTable,
    row: &'a Row,
    select: Option<&[String]>,
) -> SimResult<Record<'a>> {
    static NULL: Value = Value::Null;
    let value = |name: &str| Field::Value(Cow::Borrowed(row.get(name).unwrap_or(&NULL)));
    let etag = (
        Cow::Borrowed("@odata.etag"),
        Field::Value(Cow::Owned(json!(etag(row)))),
    );
    let order = table.in_attribute_order();
    if let (Cow::Borrowed(order), None, false) = (&order, select, call.annotations.any()) {
        // Every column, in the order the table keeps for it (each name once): no sorting
        // per record, which measured about 8% of a GET's CPU. The etag's `@` sorts before
        // any attribute name (Dataverse names start with a letter, lookups with `_`).
        let mut fields = Vec::with_capacity(order.len() + 2);
        fields.push(etag);
        fields.extend(
            order
                .iter()
                .map(|(name, _)| (Cow::Borrowed(name.as_str()), value(name))),
        );
        let mut record = Record::from_sorted(fields);
        if table.column_by_attribute(&table.primary_id).is_none() {
            record.insert(table.primary_id.as_str(), value(&table.primary_id));
        }
        return Ok(record);
    }
    // Gathered in any order and sorted once. A later entry for the same name wins, as a
    // later insert would.
    let mut fields: Vec<(Cow<'a, str>, Field<'a>)> = Vec::with_capacity(order.len() + 2);
    fields.push(etag);
    let annotator = Annotator {
        world,
        dv: &world.dataverse[&call.org],
        table,
        row,
        asked: &call.annotations,
    };
    let mut annotations = Vec::new();
    let mut show = |col: &DvColumn, name: Cow<'a, str>| {
        let stored: &'a Value = row.get(&name).unwrap_or(&NULL);
        if call.annotations.any() {
            annotator.annotate(col, &name, stored, &mut annotations);
            fields.extend(
                annotations
                    .drain(..)
                    .map(|(n, v)| (Cow::Owned(n), Field::Value(Cow::Owned(v)))),
            );
        }
        fields.push((name, Field::Value(Cow::Borrowed(stored))));
    };
    match select {
        Some(names) => {
            let cols = names
                .iter()
                .map(|n| {
                    table
                        .column_by_attribute(n)
                        .ok_or_else(|| invalid_property(table, n))
                })
                .collect::<SimResult<Vec<_>>>()?;
            for (col, n) in cols.into_iter().zip(names) {
                show(col, Cow::Owned(n.clone()));
            }
        }
        None => {
            for (name, i) in order.iter() {
                show(&table.columns[*i], Cow::Owned(name.clone()));
            }
        }
    }
    fields.push((
        Cow::Borrowed(table.primary_id.as_str()),
        value(&table.primary_id),
    ));
    Ok(Record::from_fields(fields))
}

fn options(call: &Call) -> SimResult<QueryOptions> {
    let params = call.req.params();
    let o = odata::parse_options(&params, Dialect::Dataverse).map_err(query_refused)?;
    if o.skip.is_some() {
        return Err(SimError::new(
            ErrorKind::BadRequest,
            "0x80060888",
            "The query parameter $skip is not supported",
        ));
    }
    // The SQL query parameter some clients send is not answered by dwsim: say so rather
    // than answer every row.
    if call.req.param("sql").is_some() {
        return Err(SimError::new(
            ErrorKind::BadRequest,
            "0x80060888",
            "The query parameter sql is not supported by dwsim; use $select, $filter and $top.",
        ));
    }
    if let Some(u) = o.unknown.first() {
        return Err(SimError::new(
            ErrorKind::BadRequest,
            "0x80060888",
            format!("The query parameter {u} is not supported"),
        ));
    }
    Ok(o)
}

/// `name($select=a,b)` items of `$expand`, for single-valued lookups.
fn expand(
    world: &World,
    call: &Call,
    table: &DvTable,
    items: &[String],
    row: &Row,
    out: &mut Record,
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
        let (rel, col) = table
            .navigation(nav)
            .ok_or_else(|| invalid_property(table, nav))?;
        let dv = &world.dataverse[&call.org];
        // A customer lookup has one navigation property per table; the owner one for both.
        let target = row
            .get(&col.attribute())
            .and_then(Value::as_str)
            .and_then(|id| Some((id, dv.lookup_target(col, id)?)))
            .filter(|(_, t)| rel.referenced_entity == "owner" || *t == rel.referenced_entity);
        let value = match target {
            Some((id, target)) => {
                let target_table = world
                    .catalogue
                    .dv_tables
                    .get(target)
                    .ok_or_else(|| invalid_property(table, nav))?;
                match dv.get(target, id) {
                    Some(r) => Value::Object(
                        render(world, call, target_table, r, select.as_deref())?.into_map(),
                    ),
                    None => Value::Null,
                }
            }
            None => Value::Null,
        };
        out.insert_value(nav.to_string(), value);
    }
    Ok(())
}

/// A filter's pinned columns, as the store's index lookup takes them.
fn pins(filter: &odata::filter::Expr) -> Vec<(&str, Option<&Value>)> {
    odata::equality_pins(filter)
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect()
}

fn page_size(call: &Call) -> Option<usize> {
    call.req.prefer().iter().find_map(|p| {
        p.strip_prefix("odata.maxpagesize=")
            .and_then(|n| n.trim().parse::<usize>().ok())
            .map(|n| n.clamp(1, MAX_PAGE_SIZE))
    })
}

fn list(world: &World, call: &Call, table: &DvTable) -> SimResult<Response> {
    let o = options(call)?;
    if let Some(f) = &o.filter {
        check_filter_properties(table, f)?;
    }
    let pins = o.filter.as_ref().map(pins).unwrap_or_default();
    let rows = world.dataverse[&call.org]
        .store
        .candidates(&table.logical_name, &pins)
        .map(|(_, r)| r);
    // Without a count to report, reading past the page (and one row to know there is a
    // next page) cannot change the answer.
    let counted = o.count
        || call
            .annotations
            .wants("Microsoft.Dynamics.CRM.totalrecordcount");
    let cap = if counted {
        None
    } else {
        Some(Page::of(call, &o, usize::MAX)?.end.saturating_add(1))
    };
    let rows = odata::select_rows(rows, &o, Dialect::Dataverse, cap).map_err(query_refused)?;
    let total = rows.len();
    let window = Page::of(call, &o, total)?;
    let mut value = Vec::new();
    for r in rows.iter().take(window.end).skip(window.start) {
        let mut v = render(world, call, table, r, o.select.as_deref())?;
        expand(world, call, table, &o.expand, r, &mut v)?;
        value.push(v);
    }
    let context = match &o.select {
        Some(s) => format!(
            "{}/$metadata#{}({})",
            call.base,
            table.entity_set,
            s.join(",")
        ),
        None => format!("{}/$metadata#{}", call.base, table.entity_set),
    };
    let mut body = Record::default();
    body.insert_value("@odata.context", json!(context));
    if o.count {
        body.insert_value("@odata.count", json!(total.min(MAX_PAGE_SIZE)));
    }
    if call
        .annotations
        .wants("Microsoft.Dynamics.CRM.totalrecordcount")
    {
        body.insert_value(
            "@Microsoft.Dynamics.CRM.totalrecordcount",
            json!(if o.count {
                total.min(MAX_PAGE_SIZE) as i64
            } else {
                -1
            }),
        );
        body.insert_value(
            "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded",
            json!(o.count && total > MAX_PAGE_SIZE),
        );
    }
    body.insert("value", Field::Records(value));
    if window.end < window.limit {
        body.insert_value(
            "@odata.nextLink",
            json!(next_link(call, table, window.number)),
        );
    }
    let mut r = Response::json_written(200, body.to_json());
    if let Some(p) = window.max_page_size {
        r = r.with_header("Preference-Applied", &format!("odata.maxpagesize={p}"));
    }
    Ok(r)
}

/// The rows of one page: `odata.maxpagesize` (when given, `$top` is ignored) or `$top`
/// up to the 5,000 maximum, the page the `$skiptoken` names.
struct Page {
    number: usize,
    start: usize,
    end: usize,
    /// Rows the query may answer at all (`$top` without a page size caps it).
    limit: usize,
    max_page_size: Option<usize>,
}

impl Page {
    fn of(call: &Call, o: &QueryOptions, total: usize) -> SimResult<Page> {
        let max_page_size = page_size(call);
        let size = match (max_page_size, o.top) {
            (Some(p), _) => p,
            (None, Some(top)) => top.min(MAX_PAGE_SIZE),
            (None, None) => MAX_PAGE_SIZE,
        };
        let number = match &o.skiptoken {
            Some(t) => skiptoken_page(t).ok_or_else(|| {
                SimError::new(
                    ErrorKind::BadRequest,
                    "0x80060888",
                    "The $skiptoken is not valid.",
                )
            })?,
            None => 1,
        };
        let limit = if max_page_size.is_none() {
            o.top.unwrap_or(usize::MAX).min(total)
        } else {
            total
        };
        let start = (number - 1) * size;
        Ok(Page {
            number,
            start,
            end: (start + size).min(limit),
            limit,
            max_page_size,
        })
    }
}

/// The same query with the paging cookie of the page after `page`.
fn next_link(call: &Call, table: &DvTable, page: usize) -> String {
    let kept: Vec<String> = call
        .req
        .query
        .split('&')
        .filter(|p| {
            !p.is_empty() && !p.starts_with("$skiptoken=") && !p.starts_with("%24skiptoken=")
        })
        .map(str::to_string)
        .collect();
    let cookie = format!(
        "<cookie pagenumber=\"{}\" pagingcookie=\"%253ccookie%2520page%253d%2522{page}%2522%253e%253c%252fcookie%253e\" istracking=\"False\" />",
        page + 1
    );
    let token = utf8_percent_encode(&cookie, NON_ALPHANUMERIC).to_string();
    let mut q = kept.join("&");
    if !q.is_empty() {
        q.push('&');
    }
    format!("{}/{}?{q}$skiptoken={token}", call.base, table.entity_set)
}

fn skiptoken_page(token: &str) -> Option<usize> {
    let at = token.find("pagenumber=\"")? + "pagenumber=\"".len();
    let rest = &token[at..];
    let n: usize = rest[..rest.find('"')?].parse().ok()?;
    (n >= 1).then_some(n)
}

/// The record a key names: Ok(None) when the key is valid but no record matches.
fn resolve_key(
    world: &World,
    org: &str,
    table: &DvTable,
    key: &KeySpec,
) -> SimResult<Option<String>> {
    let dv = &world.dataverse[org];
    let invalid = || {
        SimError::new(
            ErrorKind::BadRequest,
            "0x80060888",
            format!(
                "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{0}'. Ensure that the names and number of key properties match the declared or alternate key properties for the resource 'Microsoft.Dynamics.CRM.{0}'.",
                table.logical_name
            ),
        )
    };
    let by_id = |v: &Value| -> SimResult<Option<String>> {
        let id = v
            .as_str()
            .filter(|s| odata::is_guid(s))
            .ok_or_else(invalid)?;
        Ok(dv.get(&table.logical_name, id).map(|_| id.to_lowercase()))
    };
    match key {
        KeySpec::Single(v) => by_id(v),
        KeySpec::Named(pairs) => {
            if let [(name, v)] = pairs.as_slice() {
                if name == &table.primary_id {
                    return by_id(v);
                }
            }
            let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            names.sort();
            let declared = table.alternate_keys.iter().any(|k| {
                let mut cols: Vec<&str> = k.columns.iter().map(String::as_str).collect();
                cols.sort();
                cols == names
            });
            if !declared {
                return Err(invalid());
            }
            Ok(dv.find_by(&table.logical_name, pairs).map(|(id, _)| id))
        }
    }
}

fn parse_body(table: &DvTable, req: &Request) -> SimResult<Map<String, Value>> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) | Err(_) => Err(SimError::new(
            ErrorKind::BadRequest,
            "0x80048d19",
            format!(
                "Error identified in Payload provided by the user for Entity :'{}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData.ODataException: The request body is not a valid JSON object.",
                table.logical_name
            ),
        )),
    }
}

/// Turns a request body into attributes: `nav@odata.bind` becomes `_<lookup>_value` (for a
/// customer lookup `parentcustomerid_account@odata.bind` sets `_parentcustomerid_value`),
/// read-only columns are dropped as the platform ignores them, and a value of the wrong
/// shape is refused with the payload error.
fn attributes(
    world: &World,
    call: &Call,
    table: &DvTable,
    body: Map<String, Value>,
) -> SimResult<Row> {
    let mut attrs = Row::new();
    for (k, v) in body {
        if let Some(nav) = k.strip_suffix("@odata.bind") {
            let (rel, col) = table.navigation(nav).ok_or_else(|| {
                SimError::new(
                    ErrorKind::BadRequest,
                    "0x80048d19",
                    format!("An undeclared property '{nav}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values."),
                )
            })?;
            let id = match &v {
                Value::Null => Value::Null,
                Value::String(s) => {
                    let (target, id) = bind_target(world, call, s)?;
                    let allowed = if rel.referenced_entity == "owner" {
                        col.targets().contains(&target.as_str())
                    } else {
                        target == rel.referenced_entity
                    };
                    if !allowed {
                        return Err(SimError::new(
                            ErrorKind::BadRequest,
                            "0x80048d19",
                            format!(
                                "Error identified in Payload provided by the user for Entity :'{}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData.ODataException: The reference '{s}' is a '{target}' record, and the navigation property '{nav}' takes a '{}'.",
                                table.logical_name,
                                rel.referenced_entity
                            ),
                        ));
                    }
                    Value::from(id)
                }
                _ => {
                    return Err(SimError::bad_request(format!(
                        "The value of '{k}' must be a URI string."
                    )))
                }
            };
            attrs.insert(col.attribute().into(), id);
        } else if k.contains('@') {
            continue;
        } else if k.starts_with('_') && k.ends_with("_value") {
            return Err(payload_error(table, &format!("The property '{k}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.", table.logical_name)));
        } else if v.is_object() || v.is_array() {
            // Only a navigation property takes a record or a collection (deep insert).
            let message = match table.column(&k) {
                Some(_) => format!("Cannot convert a primitive value to the expected type for the property '{k}': a JSON {} was given.", if v.is_object() { "object" } else { "array" }),
                None => format!("The property '{k}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.", table.logical_name),
            };
            return Err(payload_error(table, &message));
        } else if table
            .column(&k)
            .is_some_and(|c| c.read_only && c.name != table.primary_id)
        {
            continue;
        } else {
            attrs.insert(k.into(), v);
        }
    }
    Ok(attrs)
}

/// `0x80048d19`, the payload error, around the OData library's message.
fn payload_error(table: &DvTable, message: &str) -> SimError {
    SimError::new(
        ErrorKind::BadRequest,
        "0x80048d19",
        format!(
            "Error identified in Payload provided by the user for Entity :'{}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData.ODataException: {message}",
            table.logical_name
        ),
    )
}

/// `/accounts(guid)`, `accounts(key='v')` or a full URL, to (table, id). The record must exist.
fn bind_target(world: &World, call: &Call, uri: &str) -> SimResult<(String, String)> {
    let path = match uri.find("/api/data/") {
        Some(i) => uri[i + "/api/data/".len()..]
            .split_once('/')
            .map_or("", |(_, p)| p),
        None => uri.trim_start_matches('/'),
    };
    let (set, key) = odata::parse_segment(path).map_err(query_refused)?;
    let table = world
        .catalogue
        .dv_table_by_set(&set)
        .ok_or_else(|| not_found_segment(&set))?;
    let key =
        key.ok_or_else(|| SimError::bad_request(format!("The reference '{uri}' has no key.")))?;
    let id = resolve_key(world, &call.org, table, &key)?.ok_or_else(|| {
        let shown = match &key {
            KeySpec::Single(v) => v.as_str().unwrap_or_default().to_string(),
            KeySpec::Named(p) => p
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        };
        dwsim_model::dataverse::does_not_exist(&table.logical_name, &shown)
    })?;
    Ok((table.logical_name.clone(), id))
}

fn wants_representation(req: &Request) -> bool {
    req.prefer().iter().any(|p| p == "return=representation")
}

fn written(
    world: &World,
    call: &Call,
    table: &DvTable,
    id: &str,
    created: bool,
) -> SimResult<Response> {
    let entity_id = format!("{}/{}({id})", call.base, table.entity_set);
    let row = world.dataverse[&call.org]
        .get(&table.logical_name, id)
        .cloned()
        .unwrap_or_default();
    if wants_representation(call.req) {
        let o = options(call)?;
        let mut body = render(world, call, table, &row, o.select.as_deref())?;
        body.insert_value(
            "@odata.context",
            json!(format!(
                "{}/$metadata#{}/$entity",
                call.base, table.entity_set
            )),
        );
        return Ok(
            Response::json_written(if created { 201 } else { 200 }, body.to_json())
                .with_header("Preference-Applied", "return=representation")
                .with_header("ETag", &etag(&row)),
        );
    }
    Ok(Response::new(204).with_header("OData-EntityId", &entity_id))
}

fn create(world: &mut World, call: &Call, table: &DvTable) -> SimResult<Response> {
    let body = parse_body(table, call.req)?;
    if !body.values().any(|v| v.is_object() || v.is_array()) {
        let attrs = attributes(world, call, table, body)?;
        let (id, _) = world.dv_create(&call.org, &table.logical_name, attrs, &call.caller)?;
        return written(world, call, table, &id, true);
    }
    // Deep insert: the related records and the record commit together or not at all.
    let (id, _) = world.atomically(|world| {
        let (body, children) = insert_related(world, call, table, body)?;
        let attrs = attributes(world, call, table, body)?;
        let created = world.dv_create(&call.org, &table.logical_name, attrs, &call.caller)?;
        for child in children {
            child.insert(world, call, table, &created.0)?;
        }
        Ok(created)
    })?;
    written(world, call, table, &id, true)
}

/// Records nested under a collection-valued navigation property, created after the record
/// they point back at.
struct Children {
    /// The table the nested records go in.
    table: DvTable,
    /// Their single-valued navigation property back to the new record.
    back: String,
    items: Vec<Value>,
}

impl Children {
    fn insert(self, world: &mut World, call: &Call, parent: &DvTable, id: &str) -> SimResult<()> {
        for item in self.items {
            let Value::Object(mut fields) = item else {
                return Err(payload_error(
                    &self.table,
                    "A collection-valued navigation property takes an array of records.",
                ));
            };
            if nests_records(world, &self.table, &fields) {
                return Err(deeper_insert());
            }
            fields.insert(
                format!("{}@odata.bind", self.back),
                Value::from(format!("/{}({id})", parent.entity_set)),
            );
            let attrs = attributes(world, call, &self.table, fields)?;
            world.dv_create(&call.org, &self.table.logical_name, attrs, &call.caller)?;
        }
        Ok(())
    }
}

/// Creates the records nested under single-valued navigation properties (one level deep),
/// replacing each with an `@odata.bind` to it, and sets aside those nested under
/// collection-valued ones for after the record exists. Anything else stays for
/// [`attributes`] to accept or refuse.
fn insert_related(
    world: &mut World,
    call: &Call,
    table: &DvTable,
    body: Map<String, Value>,
) -> SimResult<(Map<String, Value>, Vec<Children>)> {
    let (mut out, mut children) = (Map::new(), Vec::new());
    for (k, v) in body {
        let single = table
            .navigation(&k)
            .filter(|(r, _)| r.referenced_entity != "owner")
            .map(|(r, _)| r.referenced_entity.clone());
        match (v, single) {
            (Value::Object(nested), Some(target)) => {
                let target_table = world
                    .catalogue
                    .dv_tables
                    .get(&target)
                    .cloned()
                    .ok_or_else(|| invalid_property(table, &k))?;
                if nests_records(world, &target_table, &nested) {
                    return Err(deeper_insert());
                }
                let attrs = attributes(world, call, &target_table, nested)?;
                let (id, _) = world.dv_create(&call.org, &target, attrs, &call.caller)?;
                out.insert(
                    format!("{k}@odata.bind"),
                    Value::from(format!("/{}({id})", target_table.entity_set)),
                );
            }
            (Value::Array(items), _) => match collection_navigation(world, table, &k) {
                Some((child, back)) => children.push(Children {
                    table: child,
                    back,
                    items,
                }),
                None => {
                    out.insert(k, Value::Array(items));
                }
            },
            (other, _) => {
                out.insert(k, other);
            }
        }
    }
    Ok((out, children))
}

/// Whether a nested record itself nests records: an object under one of its
/// single-valued navigation properties or an array under a collection-valued one. Any
/// other object or array is a wrong value for a column, which [`attributes`] refuses with
/// the product's 400.
fn nests_records(world: &World, table: &DvTable, fields: &Map<String, Value>) -> bool {
    fields.iter().any(|(k, v)| match v {
        Value::Object(_) => table.navigation(k).is_some(),
        Value::Array(_) => collection_navigation(world, table, k).is_some(),
        _ => false,
    })
}

/// What a deep insert more than one level deep gets: dwsim does not build it.
fn deeper_insert() -> SimError {
    SimError::new(
        ErrorKind::NotImplemented,
        "0x80060888",
        "dwsim supports deep insert one level deep.",
    )
}

/// The table and back-pointing navigation property of a collection-valued navigation
/// property of `table` (`contact_customer_accounts` on account: contacts, by
/// `parentcustomerid_account`).
fn collection_navigation(world: &World, table: &DvTable, nav: &str) -> Option<(DvTable, String)> {
    world.catalogue.dv_tables.values().find_map(|t| {
        t.many_to_one
            .iter()
            .find(|r| r.referenced_entity == table.logical_name && r.referenced_nav == nav)
            .map(|r| (t.clone(), r.referencing_nav.clone()))
    })
}

fn retrieve(world: &World, call: &Call, table: &DvTable, key: &KeySpec) -> SimResult<Response> {
    let id = resolve_key(world, &call.org, table, key)?.ok_or_else(|| missing(table, key))?;
    let o = options(call)?;
    let none = Row::default();
    let row = world.dataverse[&call.org]
        .get(&table.logical_name, &id)
        .unwrap_or(&none);
    let conditional = call.req.header("if-none-match").filter(|v| *v != "null");
    if conditional == Some(etag(row).as_str()) && o.expand.is_empty() && !call.annotations.any() {
        return Ok(Response::new(304).with_header("ETag", &etag(row)));
    }
    let mut body = render(world, call, table, row, o.select.as_deref())?;
    expand(world, call, table, &o.expand, row, &mut body)?;
    let context = match &o.select {
        Some(s) => format!(
            "{}/$metadata#{}({})/$entity",
            call.base,
            table.entity_set,
            s.join(",")
        ),
        None => format!("{}/$metadata#{}/$entity", call.base, table.entity_set),
    };
    body.insert_value("@odata.context", json!(context));
    Ok(Response::json_written(200, body.to_json()).with_header("ETag", &etag(row)))
}

fn missing(table: &DvTable, key: &KeySpec) -> SimError {
    let shown = match key {
        KeySpec::Single(v) => v.as_str().unwrap_or_default().to_string(),
        KeySpec::Named(p) => p
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    };
    dwsim_model::dataverse::does_not_exist(&table.logical_name, &shown)
}

fn check_if_match(req: &Request, row: &Row) -> SimResult<()> {
    if let Some(want) = req.header("if-match").filter(|v| *v != "*") {
        if want != etag(row) {
            return Err(SimError::new(
                ErrorKind::PreconditionFailed,
                "0x80060882",
                "The version of the existing record doesn't match the RowVersion property provided.",
            ));
        }
    }
    Ok(())
}

/// PATCH: update, or create when nothing matches (upsert), as `If-Match`/`If-None-Match` allow.
fn upsert(world: &mut World, call: &Call, table: &DvTable, key: &KeySpec) -> SimResult<Response> {
    let existing = resolve_key(world, &call.org, table, key)?;
    let body = parse_body(table, call.req)?;
    let mut attrs = attributes(world, call, table, body)?;
    let if_match = call.req.header("if-match");
    let if_none_match = call.req.header("if-none-match").filter(|v| *v != "null");
    match existing {
        Some(id) => {
            if if_none_match == Some("*") {
                return Err(SimError::new(
                    ErrorKind::PreconditionFailed,
                    "",
                    "A record with matching key values already exists.",
                ));
            }
            let row = world.dataverse[&call.org]
                .get(&table.logical_name, &id)
                .cloned()
                .unwrap_or_default();
            check_if_match(call.req, &row)?;
            if let KeySpec::Named(pairs) = key {
                for (k, _) in pairs {
                    attrs.remove(k);
                }
            }
            world.dv_update(&call.org, &table.logical_name, &id, attrs, &call.caller)?;
            written(world, call, table, &id, false)
        }
        None => {
            if if_match.is_some() {
                return Err(missing(table, key));
            }
            match key {
                KeySpec::Single(v) => {
                    attrs.insert(table.primary_id.as_str().into(), v.clone());
                }
                KeySpec::Named(pairs) => {
                    for (k, v) in pairs {
                        attrs.insert(k.as_str().into(), v.clone());
                    }
                }
            }
            let (id, _) = world.dv_create(&call.org, &table.logical_name, attrs, &call.caller)?;
            written(world, call, table, &id, true)
        }
    }
}

fn delete(world: &mut World, call: &Call, table: &DvTable, key: &KeySpec) -> SimResult<Response> {
    let id = resolve_key(world, &call.org, table, key)?.ok_or_else(|| missing(table, key))?;
    let row = world.dataverse[&call.org]
        .get(&table.logical_name, &id)
        .cloned()
        .unwrap_or_default();
    check_if_match(call.req, &row)?;
    // Users are disabled, never deleted: a caller cannot remove the application user it
    // (or dual-write) signs in as.
    if table.logical_name == "systemuser" {
        return Err(SimError::new(
            ErrorKind::BadRequest,
            "0x80040227",
            "The 'Delete' method does not support entities of type 'systemuser'. Disable the user instead.",
        ));
    }
    world.dv_delete(&call.org, &table.logical_name, &id)?;
    Ok(Response::new(204))
}

/// `GET|PUT|DELETE /set(key)/property`.
fn property(
    world: &mut World,
    call: &Call,
    table: &DvTable,
    key: &KeySpec,
    prop: &str,
) -> SimResult<Response> {
    let id = resolve_key(world, &call.org, table, key)?.ok_or_else(|| missing(table, key))?;
    let col = table.column_by_attribute(prop).cloned();
    if col.is_none() {
        return Err(invalid_property(table, prop));
    }
    match call.req.method.as_str() {
        "GET" => {
            let row = world.dataverse[&call.org]
                .get(&table.logical_name, &id)
                .cloned()
                .unwrap_or_default();
            let v = row.get(prop).cloned().unwrap_or(Value::Null);
            Ok(Response::json(
                200,
                &json!({"@odata.context": format!("{}/$metadata#{}({id})/{prop}", call.base, table.entity_set), "value": v}),
            ))
        }
        "PUT" | "DELETE" => {
            let col = col
                .filter(|c| !c.read_only && !c.kind.is_lookup())
                .ok_or_else(|| {
                    SimError::new(
                        ErrorKind::BadRequest,
                        "0x80060888",
                        format!("The property '{prop}' can't be set this way."),
                    )
                })?;
            let value = if call.req.method == "PUT" {
                match serde_json::from_slice::<Value>(&call.req.body) {
                    Ok(Value::Object(mut m)) if m.contains_key("value") => {
                        m.remove("value").unwrap_or(Value::Null)
                    }
                    _ => {
                        return Err(SimError::new(
                            ErrorKind::BadRequest,
                            "0x80048d19",
                            "The request body must be an object with a 'value' property.",
                        ))
                    }
                }
            } else {
                Value::Null
            };
            let mut attrs = Row::new();
            attrs.insert(col.attribute().into(), value);
            world.dv_update(&call.org, &table.logical_name, &id, attrs, &call.caller)?;
            Ok(Response::new(204))
        }
        m => Err(method_not_allowed(m, &format!("the property '{prop}'"))),
    }
}
