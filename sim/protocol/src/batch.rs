//! OData v4 `$batch` bodies in the multipart format (OData Part 1 §11.7, RFC 2046): reading a
//! request into parts and change sets, writing the response, and `Content-ID` references.
//! Product-neutral, so the Dataverse and F&O routers can share it; neither product's error
//! envelope appears here — callers wrap a [`BatchError`] in their own.

use crate::request::split_outside_quotes;
use serde_json::Value;
use std::collections::BTreeMap;

/// A batch body that cannot be read, saying what failed; its text is what the caller puts
/// in its envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The request's content type is not `multipart/mixed`.
    #[error("The content type '{0}' is not valid for a batch payload; a batch must be sent as 'multipart/mixed' with a 'boundary' parameter.")]
    NotMultipart(String),
    /// The content type has no boundary, or more than one.
    #[error("The content type '{0}' specifies a batch payload; however, the payload either does not include a batch boundary or includes more than one boundary. In OData, batch payload content types must specify exactly one batch boundary in the 'boundary' parameter of the content type.")]
    BoundaryCount(String),
    /// The body never has the boundary's delimiter.
    #[error("The batch payload has no delimiter '--{0}'.")]
    NoDelimiter(String),
    /// The body has no closing delimiter.
    #[error("The batch payload ends without the closing delimiter '--{0}--'.")]
    NotClosed(String),
    /// A part's header line has no colon.
    #[error("The header line '{0}' is not valid.")]
    HeaderLine(String),
    /// A part has no request line.
    #[error("A batch part holds no HTTP message: the request line is missing.")]
    NoRequestLine,
    #[error(
        "A batch part must have Content-Type 'application/http' or 'multipart/mixed', not '{0}'."
    )]
    /// A part's content type is neither `application/http` nor `multipart/mixed`.
    PartContentType(String),
    #[error(
        "The request line '{0}' in a batch part is not valid; it must be 'METHOD URL HTTP/1.1'."
    )]
    /// A request line is not `METHOD URL HTTP/1.1`.
    RequestLine(String),
    /// A change set inside a change set.
    #[error("A change set can't contain another change set or batch.")]
    NestedChangeSet,
    /// A response status line that cannot be read.
    #[error("The status line '{0}' is not valid.")]
    StatusLine(String),
}

/// Header names in lower case, values trimmed.
pub type Headers = Vec<(String, String)>;

/// A header by name, ignoring case.
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One MIME part: its headers and its raw content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimePart {
    /// The part's headers.
    pub headers: Headers,
    /// The part's content, after the blank line.
    pub content: Vec<u8>,
}

/// One request of a batch, as the `application/http` part carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPart {
    /// The part's `Content-ID`, which later requests of a change set reference as `$id`.
    pub content_id: Option<String>,
    /// The HTTP method, upper case.
    pub method: String,
    /// The request target as written: absolute URL, absolute path, relative, or `$n…`.
    pub target: String,
    /// The request's headers.
    pub headers: Headers,
    /// The request's body.
    pub body: Vec<u8>,
}

/// A top-level part of a batch: a request on its own, or an atomic change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchPart {
    /// A request that succeeds or fails on its own.
    Request(RequestPart),
    /// Requests that succeed or fail together.
    ChangeSet(Vec<RequestPart>),
}

/// One response of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsePart {
    /// The `Content-ID` of the request answered.
    pub content_id: Option<String>,
    /// The HTTP status.
    pub status: u16,
    /// The response's headers.
    pub headers: Headers,
    /// The response's body.
    pub body: Vec<u8>,
}

impl ResponsePart {
    /// A header by name, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A top-level part of a batch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchResponsePart {
    /// The answer to a request on its own.
    Response(ResponsePart),
    /// The answers to a change set, in a multipart of their own.
    ChangeSet {
        /// The inner multipart's boundary.
        boundary: String,
        /// One answer per request, or one error for a change set that failed.
        responses: Vec<ResponsePart>,
    },
}

/// Requests in a batch, counting those inside change sets (the per-batch limit counts them).
pub fn request_count(parts: &[BatchPart]) -> usize {
    parts
        .iter()
        .map(|p| match p {
            BatchPart::Request(_) => 1,
            BatchPart::ChangeSet(reqs) => reqs.len(),
        })
        .sum()
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a content type is `multipart/mixed` (parameters ignored).
pub fn is_multipart(content_type: &str) -> bool {
    media_type(content_type) == "multipart/mixed"
}

/// The `boundary` parameter of a `multipart/mixed` content type, quoted or not.
pub fn boundary(content_type: &str) -> Result<String, BatchError> {
    if !is_multipart(content_type) {
        return Err(BatchError::NotMultipart(content_type.to_string()));
    }
    let found: Vec<String> = split_outside_quotes(content_type, ';')
        .into_iter()
        .skip(1)
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(v);
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| v.to_string())
        })
        .collect();
    match found.as_slice() {
        [b] if !b.is_empty() => Ok(b.clone()),
        // Microsoft.OData.Core's MediaTypeUtils_BoundaryMustBeSpecifiedForBatchPayloads.
        _ => Err(BatchError::BoundaryCount(content_type.to_string())),
    }
}

fn find(hay: &[u8], needle: u8, from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|i| i + from)
}

/// Splits a multipart body on `--boundary` lines, up to the closing `--boundary--`. Accepts
/// LF as well as CRLF line ends; the line break before a delimiter belongs to it (RFC 2046).
pub fn split(body: &[u8], boundary: &str) -> Result<Vec<MimePart>, BatchError> {
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut closed = false;
    let mut line_start = 0;
    while line_start < body.len() {
        let line_end = find(body, b'\n', line_start).unwrap_or(body.len());
        let line = &body[line_start..line_end];
        if let Some(rest) = line.strip_prefix(delim.as_slice()) {
            let close = rest
                .strip_prefix(b"--")
                .is_some_and(|r| r.iter().all(u8::is_ascii_whitespace));
            let open = rest.iter().all(u8::is_ascii_whitespace);
            if close || open {
                if let Some(s) = start {
                    let mut end = line_start.saturating_sub(1).max(s);
                    if end > s && body.get(end - 1) == Some(&b'\r') {
                        end -= 1;
                    }
                    parts.push(mime_part(&body[s..end])?);
                }
                if close {
                    closed = true;
                    break;
                }
                start = Some((line_end + 1).min(body.len()));
            }
        }
        line_start = line_end + 1;
    }
    if start.is_none() && !closed {
        return Err(BatchError::NoDelimiter(boundary.to_string()));
    }
    if !closed {
        return Err(BatchError::NotClosed(boundary.to_string()));
    }
    Ok(parts)
}

/// Lines (without line ends) up to the first blank one, and the bytes after it.
fn head_and_body(bytes: &[u8]) -> (Vec<String>, &[u8]) {
    let mut lines = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let end = find(bytes, b'\n', at).unwrap_or(bytes.len());
        let line = String::from_utf8_lossy(&bytes[at..end])
            .trim_end_matches('\r')
            .to_string();
        at = (end + 1).min(bytes.len());
        if line.is_empty() {
            return (lines, &bytes[at..]);
        }
        lines.push(line);
    }
    (lines, &[])
}

fn parse_headers(lines: &[String]) -> Result<Headers, BatchError> {
    let mut headers: Headers = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
        }
        let (k, v) = line
            .split_once(':')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| BatchError::HeaderLine(line.to_string()))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(headers)
}

fn mime_part(bytes: &[u8]) -> Result<MimePart, BatchError> {
    let (lines, content) = head_and_body(bytes);
    Ok(MimePart {
        headers: parse_headers(&lines)?,
        content: content.to_vec(),
    })
}

/// An embedded HTTP message: start line, headers, body. Blank lines before the start line
/// are skipped, and trailing line breaks of the body dropped (the docs' examples leave blank
/// lines before the next delimiter; JSON bodies don't care).
fn http_message(content: &[u8]) -> Result<(String, Headers, Vec<u8>), BatchError> {
    let mut from = 0;
    while content
        .get(from)
        .is_some_and(|b| *b == b'\r' || *b == b'\n')
    {
        from += 1;
    }
    let (lines, body) = head_and_body(&content[from..]);
    let Some((start, header_lines)) = lines.split_first() else {
        return Err(BatchError::NoRequestLine);
    };
    let mut end = body.len();
    while end > 0 && (body[end - 1] == b'\n' || body[end - 1] == b'\r') {
        end -= 1;
    }
    Ok((
        start.clone(),
        parse_headers(header_lines)?,
        body[..end].to_vec(),
    ))
}

fn check_application_http(part: &MimePart) -> Result<(), BatchError> {
    let ct = header(&part.headers, "content-type").unwrap_or_default();
    if media_type(ct) != "application/http" {
        return Err(BatchError::PartContentType(ct.to_string()));
    }
    Ok(())
}

fn request_part(part: MimePart) -> Result<RequestPart, BatchError> {
    check_application_http(&part)?;
    let (line, headers, body) = http_message(&part.content)?;
    // As ODataLib reads it: the method up to the first space, the version after the last,
    // and everything between is the URL, unencoded spaces included.
    let trimmed = line.trim();
    let (Some((method, rest)), Some((_, version))) =
        (trimmed.split_once(' '), trimmed.rsplit_once(' '))
    else {
        return Err(bad_request_line(&line));
    };
    let target = rest
        .rsplit_once(' ')
        .map_or("", |(target, _)| target)
        .trim();
    if target.is_empty()
        || !method.bytes().all(|b| b.is_ascii_alphabetic())
        || !version.starts_with("HTTP/")
    {
        return Err(bad_request_line(&line));
    }
    // Content-ID is a MIME header of the part; some clients put it among the inner headers.
    let content_id = header(&part.headers, "content-id")
        .or_else(|| header(&headers, "content-id"))
        .map(str::to_string);
    Ok(RequestPart {
        content_id,
        method: method.to_ascii_uppercase(),
        target: target.to_string(),
        headers,
        body,
    })
}

fn bad_request_line(line: &str) -> BatchError {
    BatchError::RequestLine(line.to_string())
}

/// Reads a batch request body sent with `content_type`.
pub fn parse_request(content_type: &str, body: &[u8]) -> Result<Vec<BatchPart>, BatchError> {
    let outer = boundary(content_type)?;
    split(body, &outer)?
        .into_iter()
        .map(|part| {
            let ct = header(&part.headers, "content-type").unwrap_or_default();
            if !is_multipart(ct) {
                return request_part(part).map(BatchPart::Request);
            }
            let inner = boundary(ct)?;
            split(&part.content, &inner)?
                .into_iter()
                .map(|p| {
                    if is_multipart(header(&p.headers, "content-type").unwrap_or_default()) {
                        return Err(BatchError::NestedChangeSet);
                    }
                    request_part(p)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(BatchPart::ChangeSet)
        })
        .collect()
}

fn response_part(part: MimePart) -> Result<ResponsePart, BatchError> {
    check_application_http(&part)?;
    let (line, headers, body) = http_message(&part.content)?;
    let mut words = line.split_whitespace();
    let status = words
        .next()
        .filter(|v| v.starts_with("HTTP/"))
        .and(words.next())
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| BatchError::StatusLine(line.to_string()))?;
    Ok(ResponsePart {
        content_id: header(&part.headers, "content-id").map(str::to_string),
        status,
        headers,
        body,
    })
}

/// Reads a batch response (for clients and tests).
pub fn parse_response(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<BatchResponsePart>, BatchError> {
    let outer = boundary(content_type)?;
    split(body, &outer)?
        .into_iter()
        .map(|part| {
            let ct = header(&part.headers, "content-type").unwrap_or_default();
            if !is_multipart(ct) {
                return response_part(part).map(BatchResponsePart::Response);
            }
            let inner = boundary(ct)?;
            let responses = split(&part.content, &inner)?
                .into_iter()
                .map(response_part)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(BatchResponsePart::ChangeSet {
                boundary: inner,
                responses,
            })
        })
        .collect()
}

/// The reason phrase of a status line inside a batch response.
pub fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

fn write_http_part(out: &mut Vec<u8>, r: &ResponsePart) {
    out.extend_from_slice(
        b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n",
    );
    if let Some(id) = &r.content_id {
        out.extend_from_slice(format!("Content-ID: {id}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("\r\nHTTP/1.1 {} {}\r\n", r.status, reason(r.status)).as_bytes());
    for (k, v) in &r.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    out.extend_from_slice(b"\r\n");
}

/// The multipart body of a batch response delimited by `boundary`.
pub fn write_response(boundary: &str, parts: &[BatchResponsePart]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            BatchResponsePart::Response(r) => write_http_part(&mut out, r),
            BatchResponsePart::ChangeSet {
                boundary: cs,
                responses,
            } => {
                out.extend_from_slice(
                    format!("Content-Type: multipart/mixed; boundary={cs}\r\n\r\n").as_bytes(),
                );
                for r in responses {
                    out.extend_from_slice(format!("--{cs}\r\n").as_bytes());
                    write_http_part(&mut out, r);
                }
                out.extend_from_slice(format!("--{cs}--\r\n").as_bytes());
            }
        }
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// The only methods a change set may hold (Microsoft.OData.Core's rule).
pub fn allowed_in_changeset(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE" | "MERGE")
}

/// Microsoft.OData.Core's ODataBatch_InvalidHttpMethodForChangeSetRequest.
pub fn changeset_method_message(method: &str) -> String {
    format!("An invalid HTTP method '{method}' was detected for a request in a change set. Requests in change sets only support the HTTP methods 'POST', 'PUT', 'DELETE', and 'PATCH'.")
}

/// `Content-ID` value → the URL of the entity its request created (within one change set).
pub type ContentIds = BTreeMap<String, String>;

/// Names `$` can start that are OData system resources, not Content-ID references.
const SYSTEM_RESOURCES: [&str; 5] = ["metadata", "batch", "entity", "all", "crossjoin"];

/// A `$n` reference at the start of `s`: (`$n`, the rest after it).
pub fn reference(s: &str) -> Option<(&str, &str)> {
    let after = s.strip_prefix('$')?;
    let len = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(after.len());
    let name = &after[..len];
    (!name.is_empty() && !SYSTEM_RESOURCES.contains(&name)).then(|| (&s[..len + 1], &after[len..]))
}

/// A `$name` reference to a Content-ID no earlier part of the change set declared; its text
/// is the one Dataverse documents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Content-ID Reference: '{0}' does not exist in the batch context.")]
pub struct UnknownReference(pub String);

/// Replaces a leading `$n` by its entity URL.
pub fn resolve_url(target: &str, ids: &ContentIds) -> Result<String, UnknownReference> {
    match reference(target) {
        None => Ok(target.to_string()),
        Some((r, rest)) => ids
            .get(&r[1..])
            .map(|url| format!("{url}{rest}"))
            .ok_or_else(|| UnknownReference(r.to_string())),
    }
}

/// Resolves `$n` in `…@odata.bind` and `@odata.id` values of a JSON body, at any depth (deep
/// inserts). `Ok(None)` when nothing changed or the body is not JSON.
pub fn resolve_body(body: &[u8], ids: &ContentIds) -> Result<Option<Vec<u8>>, UnknownReference> {
    let Ok(mut json) = serde_json::from_slice::<Value>(body) else {
        return Ok(None);
    };
    let mut changed = false;
    resolve_value(&mut json, ids, &mut changed)?;
    Ok(changed.then(|| serde_json::to_vec(&json).unwrap_or_else(|_| body.to_vec())))
}

fn resolve_value(
    v: &mut Value,
    ids: &ContentIds,
    changed: &mut bool,
) -> Result<(), UnknownReference> {
    let link = |s: &mut String, changed: &mut bool| -> Result<(), UnknownReference> {
        if reference(s).is_some() {
            *s = resolve_url(s, ids)?;
            *changed = true;
        }
        Ok(())
    };
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if k.ends_with("@odata.bind") || k.ends_with("@odata.id") {
                    match val {
                        Value::String(s) => link(s, changed)?,
                        Value::Array(items) => {
                            for item in items {
                                if let Value::String(s) = item {
                                    link(s, changed)?;
                                }
                            }
                        }
                        _ => {}
                    }
                } else {
                    resolve_value(val, ids, changed)?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                resolve_value(item, ids, changed)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether a request target addresses `$batch` itself (batches don't nest).
pub fn targets_batch(target: &str) -> bool {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .is_some_and(|last| last == "$batch")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/mixed; boundary=\"batch_AAA\"";

    #[test]
    fn boundary_quoted_or_not() {
        assert_eq!(boundary(CT), Ok("batch_AAA".into()));
        assert_eq!(
            boundary("Multipart/Mixed;boundary=b1; charset=utf-8"),
            Ok("b1".into())
        );
        assert!(boundary("multipart/mixed").is_err());
        assert!(boundary("application/json; boundary=x").is_err());
    }

    #[test]
    fn parses_changesets_and_requests_with_lf_or_crlf() {
        let body = "--batch_AAA\nContent-Type: multipart/mixed; boundary=changeset_B\n\n--changeset_B\nContent-Type: application/http\nContent-Transfer-Encoding: binary\nContent-ID: 1\n\nPOST /api/data/v9.2/tasks HTTP/1.1\nContent-Type: application/json\n\n{\"subject\":\"t\"}\n--changeset_B--\n\n--batch_AAA\nContent-Type: application/http\n\nGET accounts HTTP/1.1\n\n\n--batch_AAA--\n";
        for text in [body.to_string(), body.replace('\n', "\r\n")] {
            let parts = parse_request(CT, text.as_bytes()).expect("parses");
            assert_eq!(request_count(&parts), 2);
            let BatchPart::ChangeSet(cs) = &parts[0] else {
                panic!("changeset first")
            };
            assert_eq!(cs[0].content_id.as_deref(), Some("1"));
            assert_eq!(cs[0].method, "POST");
            assert_eq!(cs[0].body, b"{\"subject\":\"t\"}");
            let BatchPart::Request(get) = &parts[1] else {
                panic!("request second")
            };
            assert_eq!(
                (get.method.as_str(), get.target.as_str()),
                ("GET", "accounts")
            );
            assert!(get.body.is_empty());
        }
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let no_close = "--batch_AAA\nContent-Type: application/http\n\nGET x HTTP/1.1\n";
        assert!(parse_request(CT, no_close.as_bytes()).is_err());
        assert!(parse_request(CT, b"no delimiters at all").is_err());
        let bad_line = "--batch_AAA\nContent-Type: application/http\n\nGET\n--batch_AAA--\n";
        assert!(parse_request(CT, bad_line.as_bytes()).is_err());
    }

    #[test]
    fn a_request_line_keeps_the_unencoded_spaces_of_its_url() {
        let body = "--batch_AAA\nContent-Type: application/http\n\nGET accounts?$filter=name eq 'A B' HTTP/1.1\n\n\n--batch_AAA--\n";
        let parts = parse_request(CT, body.as_bytes()).expect("parsed");
        let BatchPart::Request(get) = &parts[0] else {
            panic!("a request part")
        };
        assert_eq!(get.target, "accounts?$filter=name eq 'A B'");
        let two_words =
            "--batch_AAA\nContent-Type: application/http\n\nGET HTTP/1.1\n\n\n--batch_AAA--\n";
        assert!(parse_request(CT, two_words.as_bytes()).is_err());
    }

    #[test]
    fn responses_round_trip() {
        let parts = vec![
            BatchResponsePart::ChangeSet {
                boundary: "changesetresponse_1".into(),
                responses: vec![ResponsePart {
                    content_id: Some("1".into()),
                    status: 204,
                    headers: vec![("odata-entityid".into(), "http://x/a(1)".into())],
                    body: Vec::new(),
                }],
            },
            BatchResponsePart::Response(ResponsePart {
                content_id: None,
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: b"{\"a\":1}".to_vec(),
            }),
        ];
        let body = write_response("batchresponse_x", &parts);
        let back = parse_response("multipart/mixed; boundary=batchresponse_x", &body);
        assert_eq!(back, Ok(parts));
    }

    #[test]
    fn references_resolve_in_urls_and_binds() {
        let ids: ContentIds =
            [("1".to_string(), "http://h/o/api/data/v9.2/a(1)".to_string())].into();
        assert_eq!(
            resolve_url("$1/name", &ids),
            Ok("http://h/o/api/data/v9.2/a(1)/name".into())
        );
        assert_eq!(resolve_url("$2", &ids), Err(UnknownReference("$2".into())));
        assert_eq!(resolve_url("$metadata", &ids), Ok("$metadata".into()));
        let body = br#"{"x@odata.bind":"$1","n":"$1"}"#;
        let out = resolve_body(body, &ids)
            .expect("resolves")
            .expect("changed");
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["x@odata.bind"], "http://h/o/api/data/v9.2/a(1)");
        assert_eq!(v["n"], "$1");
        assert_eq!(
            resolve_body(br#"{"x@odata.bind":"$9"}"#, &ids),
            Err(UnknownReference("$9".into()))
        );
        assert!(targets_batch("/org/api/data/v9.2/$batch"));
        assert!(!targets_batch("accounts"));
    }
}

/// Runs a change set all or nothing: every request inside one savepoint on every store,
/// rolled back at the first failure (`Err` holds that response). `run` answers a request's
/// response and the URL its `Content-ID` stands for in later requests.
pub fn run_changeset(
    world: &mut dwsim_model::World,
    reqs: &[RequestPart],
    mut run: impl FnMut(
        &mut dwsim_model::World,
        &RequestPart,
        &ContentIds,
    ) -> (ResponsePart, Option<String>),
) -> Result<BatchResponsePart, ResponsePart> {
    let responses = world.atomically(|world| {
        let mut ids = ContentIds::new();
        let mut responses = Vec::new();
        for r in reqs {
            let (resp, url) = run(world, r, &ids);
            if resp.status >= 400 {
                return Err(resp);
            }
            if let (Some(id), Some(url)) = (&r.content_id, url) {
                ids.insert(id.clone(), url);
            }
            responses.push(resp);
        }
        Ok(responses)
    })?;
    Ok(BatchResponsePart::ChangeSet {
        boundary: format!("changesetresponse_{}", world.ids.guid()),
        responses,
    })
}

/// The path of an inner request below `/{env}`: `target` may be an absolute URL on any host
/// (real clients send the product's host name), an absolute path with or without the
/// environment segment, or a path relative to the service root `/{env}/{service}`.
pub fn inner_path(target: &str, env: &str, service: &str) -> String {
    let lower = target.to_ascii_lowercase();
    let path = if lower.starts_with("http://") || lower.starts_with("https://") {
        let after_scheme = target.find("://").map_or(target, |i| &target[i + 3..]);
        after_scheme
            .find('/')
            .map_or_else(|| "/".to_string(), |i| after_scheme[i..].to_string())
    } else if target.starts_with('/') {
        target.to_string()
    } else {
        format!("/{env}/{service}/{target}")
    };
    let first = service.split('/').next().unwrap_or(service);
    if path.starts_with(&format!("/{first}/")) {
        format!("/{env}{path}")
    } else {
        path
    }
}

#[cfg(test)]
mod inner_path_tests {
    use super::inner_path;

    #[test]
    fn targets_resolve_below_the_environment() {
        let dv = |t| inner_path(t, "org1", "api/data/v9.2");
        assert_eq!(dv("accounts(1)"), "/org1/api/data/v9.2/accounts(1)");
        assert_eq!(
            dv("/api/data/v9.2/accounts"),
            "/org1/api/data/v9.2/accounts"
        );
        assert_eq!(
            dv("/org1/api/data/v9.2/accounts"),
            "/org1/api/data/v9.2/accounts"
        );
        assert_eq!(
            dv("https://org1.crm.dynamics.com/api/data/v9.2/accounts"),
            "/org1/api/data/v9.2/accounts"
        );
        assert_eq!(
            inner_path("CustomerGroups", "fo", "data"),
            "/fo/data/CustomerGroups"
        );
        assert_eq!(
            inner_path("/data/CustomerGroups", "fo", "data"),
            "/fo/data/CustomerGroups"
        );
    }
}
