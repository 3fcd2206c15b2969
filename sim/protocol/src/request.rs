//! Plain request and response values: what both transports (real HTTP through the wiremock
//! shell, and in-process calls) hand to the routers. No HTTP library types here; a request
//! body is `bytes::Bytes`, so the shell's buffer is shared rather than copied.

use bytes::Bytes;
use percent_encoding::percent_decode_str;

/// A request as the routers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The method, upper case.
    pub method: String,
    /// The path as sent (still percent-encoded), starting with `/`.
    pub path: String,
    /// The query string as sent, without `?`.
    pub query: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, shared with the HTTP shell's copy of the request rather than copied from it.
    pub body: Bytes,
}

/// A response as the routers build it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// Headers, in the order written.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Decodes a URL component; `+` is a space in query strings, as ASP.NET reads them.
pub fn decode(s: &str, plus_is_space: bool) -> String {
    if plus_is_space && s.contains('+') {
        return percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
    }
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl Request {
    /// A request with no headers or body; `path_and_query` is split at the first `?`.
    pub fn new(method: &str, path_and_query: &str) -> Request {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Request {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header (the name lower-cased).
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Bytes::from(body.into());
        self
    }

    /// A header by name, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The bearer token of the Authorization header, if any.
    pub fn bearer(&self) -> Option<&str> {
        let h = self.header("authorization")?;
        let (scheme, token) = h.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// Decoded query parameters in order.
    pub fn params(&self) -> Vec<(String, String)> {
        url_encoded_pairs(&self.query)
    }

    /// Decoded fields of an `application/x-www-form-urlencoded` body, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        url_encoded_pairs(&self.body_text())
    }

    /// A query parameter by name, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Decoded path segments (a `/` inside parentheses, as in a key value, stays put).
    pub fn segments(&self) -> Vec<String> {
        split_path(&self.path)
            .into_iter()
            .map(|s| decode(s, false))
            .collect()
    }

    /// Prefer header values, split on commas outside quotes.
    pub fn prefer(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "prefer")
            .flat_map(|(_, v)| split_outside_quotes(v, ','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The path's segments, undecoded: split at `/` outside parentheses and quotes.
fn split_path(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut start = 0;
    for (i, b) in path.bytes().enumerate() {
        match b {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            b'/' if depth <= 0 && !quoted => {
                if i > start {
                    out.push(&path[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if path.len() > start {
        out.push(&path[start..]);
    }
    out
}

/// `a=1&b=two%20words` as decoded (name, value) pairs, `+` read as a space.
fn url_encoded_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// Splits at `sep` outside single- and double-quoted runs.
pub fn split_outside_quotes(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut single, mut double) = (false, false);
    for c in s.chars() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            _ => {}
        }
        if c == sep && !single && !double {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

impl Response {
    /// An empty response.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON response, as OData sends it (`odata.metadata=minimal`).
    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        Response::json_written(status, serde_json::to_vec(value).unwrap_or_default())
    }

    /// A JSON answer whose body is already written.
    pub fn json_written(status: u16, body: Vec<u8>) -> Response {
        Response::new(status)
            .with_header("content-type", "application/json; odata.metadata=minimal")
            .with_body(body)
    }

    /// A response with a body of the given content type.
    pub fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status)
            .with_header("content-type", content_type)
            .with_body(body)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    /// A header by name, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` when it is not JSON).
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_slashes_and_parentheses_inside_keys() {
        let r = Request::new(
            "GET",
            "/org/api/data/v9.2/accounts(accountnumber='A%2F1')/name",
        );
        assert_eq!(
            r.segments(),
            vec![
                "org",
                "api",
                "data",
                "v9.2",
                "accounts(accountnumber='A/1')",
                "name"
            ]
        );
    }

    #[test]
    fn params_decode_plus_and_percent() {
        let r = Request::new("GET", "/x?$filter=name+eq+%27a%27&$top=2");
        assert_eq!(r.param("$filter").as_deref(), Some("name eq 'a'"));
        assert_eq!(r.param("$top").as_deref(), Some("2"));
    }
}
