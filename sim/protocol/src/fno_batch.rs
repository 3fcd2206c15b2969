//! F&O `$batch` (`POST {env}/data/$batch`): the inner requests go through the same OData
//! router as plain requests. A change set is one F&O transaction: its writes, and the
//! records dual-write sends to Dataverse for them, commit together or roll back together,
//! and the transaction may send at most the per-transaction record limit.
//!
//! Choices where the docs are silent:
//! - The outer status is 200 even when inner requests fail (as observed on F&O); a failed
//!   change set answers as one part holding the failing response.
//! - Processing stops after the first failure unless `Prefer: odata.continue-on-error`.
//! - At most 5000 operations per batch ("A batch can contain up to 5000 operations").

use crate::batch::{self, BatchPart, BatchResponsePart, ContentIds, RequestPart, ResponsePart};
use crate::fno;
use crate::request::{Request, Response};
use crate::Endpoints;
use dwsim_model::error::{ErrorKind, SimError, SimResult};
use dwsim_model::World;

/// Operations per batch, counting those inside change sets.
pub const MAX_OPERATIONS: usize = 5000;

/// Answers an F&O `$batch`: requests in order, each change set atomic.
pub fn handle(
    world: &mut World,
    endpoints: &Endpoints,
    req: &Request,
    env: &str,
) -> SimResult<Response> {
    if req.method != "POST" {
        return Err(SimError::new(
            ErrorKind::MethodNotAllowed,
            "",
            format!(
                "The HTTP method '{}' is not supported on $batch; use POST.",
                req.method
            ),
        ));
    }
    let content_type = req.header("content-type").unwrap_or_default();
    let parts = batch::parse_request(content_type, &req.body)
        .map_err(|e| SimError::bad_request(e.to_string()))?;
    let count = batch::request_count(&parts);
    if count > MAX_OPERATIONS {
        return Err(SimError::bad_request(format!(
            "The batch holds {count} operations; a batch can hold at most {MAX_OPERATIONS}."
        )));
    }
    let continue_on_error = req
        .prefer()
        .iter()
        .any(|p| p.starts_with("odata.continue-on-error"));
    let ctx = Ctx {
        endpoints,
        env,
        authorization: req.header("authorization"),
    };
    let mut out = Vec::new();
    for part in &parts {
        let (answer, failed) = match part {
            BatchPart::Request(r) => {
                let resp = run_one(world, &ctx, r, &ContentIds::new(), false);
                let failed = resp.status >= 400;
                (BatchResponsePart::Response(resp), failed)
            }
            BatchPart::ChangeSet(reqs) => match run_changeset(world, &ctx, reqs) {
                Ok(p) => (p, false),
                Err(resp) => (BatchResponsePart::Response(resp), true),
            },
        };
        out.push(answer);
        if failed && !continue_on_error {
            break;
        }
    }
    let boundary = format!("batchresponse_{}", world.ids.guid());
    Ok(Response::new(200)
        .with_header(
            "Content-Type",
            &format!("multipart/mixed; boundary={boundary}"),
        )
        .with_body(batch::write_response(&boundary, &out)))
}

struct Ctx<'a> {
    endpoints: &'a Endpoints,
    env: &'a str,
    authorization: Option<&'a str>,
}

/// One F&O transaction: all its writes and their dual-writes, or none, within the
/// per-transaction record limit.
fn run_changeset(
    world: &mut World,
    ctx: &Ctx,
    reqs: &[RequestPart],
) -> Result<BatchResponsePart, ResponsePart> {
    world.fno_change_set(|world| {
        batch::run_changeset(world, reqs, |world, r, ids| {
            let resp = run_one(world, ctx, r, ids, true);
            let url = resp.header("location").map(str::to_string);
            (resp, url)
        })
    })
}

fn run_one(
    world: &mut World,
    ctx: &Ctx,
    part: &RequestPart,
    ids: &ContentIds,
    in_changeset: bool,
) -> ResponsePart {
    let fail = |message: String| {
        let resp = fno::odata_error(&SimError::bad_request(message));
        ResponsePart {
            content_id: part.content_id.clone(),
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        }
    };
    if in_changeset && !batch::allowed_in_changeset(&part.method) {
        return fail(batch::changeset_method_message(&part.method));
    }
    let target = match batch::resolve_url(&part.target, ids) {
        Ok(t) => t,
        Err(r) => return fail(r.to_string()),
    };
    if batch::targets_batch(&target) {
        return fail("A batch can't contain another $batch request.".into());
    }
    let body = match batch::resolve_body(&part.body, ids) {
        Ok(resolved) => resolved.unwrap_or_else(|| part.body.clone()),
        Err(r) => return fail(r.to_string()),
    };
    let path = batch::inner_path(&target, ctx.env, "data");
    let mut inner = Request::new(&part.method, &path).with_body(body);
    for (k, v) in &part.headers {
        inner = inner.with_header(k, v);
    }
    if inner.header("authorization").is_none() {
        if let Some(auth) = ctx.authorization {
            inner = inner.with_header("authorization", auth);
        }
    }
    let resp = fno::handle(world, ctx.endpoints, &inner);
    ResponsePart {
        content_id: part.content_id.clone(),
        status: resp.status,
        headers: resp.headers,
        body: resp.body,
    }
}
