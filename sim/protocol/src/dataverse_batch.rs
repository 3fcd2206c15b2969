//! Dataverse `$batch` (`POST {org}/api/data/v9.2/$batch`): each inner request goes through
//! the same router as a plain request, with the caller's token; change sets run inside one
//! World savepoint and roll back as a whole.
//!
//! Choices where the docs are silent:
//! - Without `Prefer: odata.continue-on-error`, processing stops at the first failure and the
//!   body holds only the failing part ("the body holds one part with the inner error"); the
//!   outer status is that part's status. Earlier parts outside change sets stay committed.
//! - A failed change set answers as one `application/http` part with the failing response
//!   (OData v4 §11.7.4), carrying the failing request's `Content-ID`.
//! - `$n` references are scoped to their change set, and resolve to the created entity's URL.
//! - A POST answered 204 gets `Location` next to `OData-EntityId`, as the docs' examples show.

use crate::batch::{self, BatchPart, BatchResponsePart, ContentIds, RequestPart, ResponsePart};
use crate::dataverse;
use crate::odata;
use crate::request::{Request, Response};
use crate::Endpoints;
use dwsim_model::error::{ErrorKind, SimError, SimResult};
use dwsim_model::World;

/// Requests per batch, counting those inside change sets.
pub const MAX_REQUESTS: usize = 1000;

/// A batch body that can't be read, or breaks a batch-wide rule: ODataClientPayloadError
/// (`0x80048d19`), the documented code for a payload the service's OData reader rejects.
const PAYLOAD_ERROR: &str = "0x80048d19";
/// One request in the batch that can't be dispatched (a GET in a change set, an unknown
/// `$n`, a nested batch): `0x80060888`, the code the router gives OData request errors.
const REQUEST_ERROR: &str = "0x80060888";

/// What every inner request shares with the outer one.
struct Batch<'a> {
    endpoints: &'a Endpoints,
    org: &'a str,
    version: &'a str,
    /// `{dataverse}/{org}/api/data/{version}`, which relative URLs resolve against.
    base: String,
    authorization: Option<&'a str>,
}

/// Runs a batch. `org` and `version` come from the batch URL, already authenticated.
pub fn handle(
    world: &mut World,
    endpoints: &Endpoints,
    req: &Request,
    org: &str,
    version: &str,
) -> SimResult<Response> {
    if req.method != "POST" {
        return Err(SimError::new(
            ErrorKind::MethodNotAllowed,
            REQUEST_ERROR,
            format!(
                "The HTTP method '{}' is not supported on $batch; use POST.",
                req.method
            ),
        ));
    }
    let content_type = req.header("content-type").unwrap_or_default();
    let parts = batch::parse_request(content_type, &req.body)
        .map_err(|e| SimError::new(ErrorKind::BadRequest, PAYLOAD_ERROR, e.to_string()))?;
    let count = batch::request_count(&parts);
    if count > MAX_REQUESTS {
        return Err(SimError::new(
            ErrorKind::BadRequest,
            PAYLOAD_ERROR,
            format!("The batch holds {count} requests; a batch can hold at most {MAX_REQUESTS}."),
        ));
    }
    let b = Batch {
        endpoints,
        org,
        version,
        base: format!("{}/api/data/{version}", endpoints.dataverse(org)),
        authorization: req.header("authorization"),
    };
    let continue_on_error = req
        .prefer()
        .iter()
        .any(|p| p == "odata.continue-on-error" || p == "odata.continue-on-error=true");
    let mut out = Vec::new();
    let mut failed = None;
    for part in &parts {
        let result = match part {
            BatchPart::Request(r) => {
                let (resp, _) = run_one(world, &b, r, &ContentIds::new(), false);
                if resp.status >= 400 {
                    Err(resp)
                } else {
                    Ok(BatchResponsePart::Response(resp))
                }
            }
            BatchPart::ChangeSet(reqs) => run_changeset(world, &b, reqs),
        };
        match result {
            Ok(p) => out.push(p),
            Err(resp) if continue_on_error => out.push(BatchResponsePart::Response(resp)),
            Err(resp) => {
                failed = Some(resp);
                break;
            }
        }
    }
    let (status, parts) = match failed {
        Some(resp) => (resp.status, vec![BatchResponsePart::Response(resp)]),
        None => (200, out),
    };
    let boundary = format!("batchresponse_{}", world.ids.guid());
    let mut resp = Response::new(status)
        .with_header(
            "Content-Type",
            &format!("multipart/mixed; boundary={boundary}"),
        )
        .with_body(batch::write_response(&boundary, &parts));
    if continue_on_error {
        resp = resp.with_header("Preference-Applied", "odata.continue-on-error");
    }
    Ok(resp)
}

/// A change set through the Dataverse router; `$n` stands for the created record's URL.
fn run_changeset(
    world: &mut World,
    b: &Batch,
    reqs: &[RequestPart],
) -> Result<BatchResponsePart, ResponsePart> {
    batch::run_changeset(world, reqs, |world, r, ids| {
        let (resp, path) = run_one(world, b, r, ids, true);
        let url = entity_url(world, b, &path, &resp);
        (resp, url)
    })
}

/// One inner request through the Dataverse router; also the path it was sent to.
fn run_one(
    world: &mut World,
    b: &Batch,
    part: &RequestPart,
    ids: &ContentIds,
    in_changeset: bool,
) -> (ResponsePart, String) {
    let annotations = part.headers.iter().any(|(k, v)| {
        k == "prefer"
            && crate::request::split_outside_quotes(v, ',')
                .iter()
                .any(|p| p.trim().starts_with("odata.include-annotations"))
    });
    let fail = |world: &World, message: String| {
        let e = SimError::new(ErrorKind::BadRequest, REQUEST_ERROR, message);
        let segs = [b.org.to_string()];
        let resp = dataverse::error_response(world, b.endpoints, &segs, &e, annotations);
        (part_of(part, &part.method, resp), String::new())
    };
    if in_changeset && !batch::allowed_in_changeset(&part.method) {
        return fail(world, batch::changeset_method_message(&part.method));
    }
    let target = match batch::resolve_url(&part.target, ids) {
        Ok(t) => t,
        Err(r) => return fail(world, r.to_string()),
    };
    if batch::targets_batch(&target) {
        return fail(
            world,
            "A batch can't contain another $batch request.".into(),
        );
    }
    let body = match batch::resolve_body(&part.body, ids) {
        Ok(resolved) => resolved.unwrap_or_else(|| part.body.clone()),
        Err(r) => return fail(world, r.to_string()),
    };
    let path = batch::inner_path(&target, b.org, &format!("api/data/{}", b.version));
    let mut inner = Request::new(&part.method, &path).with_body(body);
    for (k, v) in &part.headers {
        inner = inner.with_header(k, v);
    }
    if inner.header("authorization").is_none() {
        if let Some(auth) = b.authorization {
            inner = inner.with_header("authorization", auth);
        }
    }
    let resp = dataverse::handle(world, b.endpoints, &inner);
    (part_of(part, &inner.method, resp), inner.path)
}

fn part_of(part: &RequestPart, method: &str, resp: Response) -> ResponsePart {
    let mut headers = resp.headers;
    let entity_id = batch::header(&headers, "odata-entityid").map(str::to_string);
    if let Some(url) = entity_id.filter(|_| method == "POST" && resp.status == 204) {
        if batch::header(&headers, "location").is_none() {
            headers.push(("Location".into(), url));
        }
    }
    ResponsePart {
        content_id: part.content_id.clone(),
        status: resp.status,
        headers,
        body: resp.body,
    }
}

/// The URL `$n` stands for: the `OData-EntityId` of the create, or — under
/// `return=representation`, which sends none — the set URL with the new primary key.
fn entity_url(world: &World, b: &Batch, path: &str, resp: &ResponsePart) -> Option<String> {
    if let Some(url) = resp
        .header("odata-entityid")
        .or_else(|| resp.header("location"))
    {
        return Some(url.to_string());
    }
    if resp.status != 201 {
        return None;
    }
    let segs = Request::new("GET", path).segments();
    let (set, _) = odata::parse_segment(segs.last()?).ok()?;
    let table = world.catalogue.dv_table_by_set(&set)?;
    let body: serde_json::Value = serde_json::from_slice(&resp.body).ok()?;
    let id = body.get(&table.primary_id)?.as_str()?;
    Some(format!("{}/{set}({id})", b.base))
}
