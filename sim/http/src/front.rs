//! The front of one origin: it owns the public listener, terminates TLS when asked, reads
//! each request as HTTP/1.1 and hands it to the origin's MockServer, in process.
//!
//! Reading the request here is what keeps a long-running `serve` standing whatever clients
//! send: the limits below are enforced before a body is read whole, in the product's own
//! error envelope (413, 414, 431, 408, 400); slow or idle clients are timed out; and a request
//! target wiremock cannot take never reaches it. The request the front has read is answered
//! by the MockServer's own mocks through `MockServer::handle_request` (the same matching as
//! its listener, without writing the request again over a loopback connection). Owning the
//! listener also lets the shell bind it the moment an environment comes into being (its URL
//! is valid at once; connections wait in the backlog until the MockServer is mounted) and
//! keep accepting through errors such as a full file table.

use dwsim_protocol::{Server, Sim};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1 as server;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use wiremock::MockServer;

/// How long a client may take over the TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause after a failed accept (the pause doubles from 5 ms up to this).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// What every origin takes from a client, and how long it waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body (413 beyond it): 32 MiB.
    pub max_body_bytes: usize,
    /// The longest request target, path and query (414 beyond it): Dataverse's documented
    /// 32,768 characters for a GET URL.
    pub max_url_bytes: usize,
    /// The most header bytes, names and values (431 beyond them): 32 KiB.
    pub max_header_bytes: usize,
    /// How long a client may take to send a request's headers, and how long a connection may
    /// stay idle between requests, before it is closed: 30 s.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body (408 beyond it): 60 s.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 32 * 1024 * 1024,
            max_url_bytes: 32_768,
            max_header_bytes: 32 * 1024,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// One origin's front: what it serves and the MockServer that answers.
pub(crate) struct Front {
    /// The simulated server behind it, for the envelopes of refused requests.
    pub(crate) server: Server,
    pub(crate) sim: Sim,
    pub(crate) limits: Limits,
    pub(crate) mock: Arc<MockServer>,
}

/// Accepts on `listener` until `shutdown` is dropped, serving every connection through `front`.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    front: Arc<Front>,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("dwsim: cannot serve on a listener: {e}");
            return;
        }
    };
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(5);
                tokio::spawn(connection(stream, front.clone(), tls.clone()));
            }
            // EMFILE, ECONNABORTED and the like: the listener itself is fine, so wait and
            // go on rather than end the accept loop.
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
            }
        }
    }
}

async fn connection(client: TcpStream, front: Arc<Front>, tls: Option<TlsAcceptor>) {
    let _ = client.set_nodelay(true);
    match tls {
        Some(_) if !starts_tls(&client).await => refuse_plain_http(client).await,
        Some(acceptor) => {
            if let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client)).await
            {
                serve_http(stream, front).await;
            }
        }
        None => serve_http(client, front).await,
    }
}

/// Serves HTTP/1.1 requests on one client connection until it closes, idles out or breaks.
async fn serve_http<S>(stream: S, front: Arc<Front>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = front.limits;
    let service = hyper::service::service_fn(move |req| {
        let front = front.clone();
        async move { Ok::<_, Infallible>(front.answer(req).await) }
    });
    // The read buffer holds a request line and headers; beyond it hyper answers 414/431
    // itself, without an envelope. Below it, `answer` does, with one.
    let head = (limits.max_url_bytes + limits.max_header_bytes + 16 * 1024).max(8192);
    let _ = server::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(head)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

impl Front {
    /// The answer to one request: refused here when it breaks a limit or cannot be read,
    /// otherwise the MockServer's.
    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        // The method and target are only written out when the request is refused.
        let refuse = |req: &hyper::http::request::Parts, status: u16, message: &str| {
            let target = req.uri.path_and_query().map_or("", |pq| pq.as_str());
            self.refusal(req.method.as_str(), target, status, message)
        };
        let (mut parts, body) = req.into_parts();
        let target = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
        let target_len = target.len();
        // Origin form only: a bare word or an authority is no path below this origin.
        if !target.starts_with('/') {
            return refuse(
                &parts,
                400,
                "The request target must be a path below this origin, such as /api/data/v9.2/accounts.",
            );
        }
        if target_len > self.limits.max_url_bytes {
            return refuse(
                &parts,
                414,
                &format!(
                    "The request URL is {} characters long; this server takes at most {}.",
                    target_len, self.limits.max_url_bytes
                ),
            );
        }
        let header_bytes: usize = parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > self.limits.max_header_bytes {
            return refuse(
                &parts,
                431,
                &format!(
                    "The request headers are {header_bytes} bytes; this server takes at most {}.",
                    self.limits.max_header_bytes
                ),
            );
        }
        let too_large = || {
            format!(
                "The request body is larger than this server takes ({} bytes).",
                self.limits.max_body_bytes
            )
        };
        let declared = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limits.max_body_bytes as u64) {
            return refuse(&parts, 413, &too_large());
        }
        let read = tokio::time::timeout(
            self.limits.body_timeout,
            read_body(
                Limited::new(body, self.limits.max_body_bytes),
                declared.unwrap_or(0) as usize,
            ),
        )
        .await;
        let body = match read {
            Ok(Ok(read)) => Bytes::from(read),
            Ok(Err(e))
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return refuse(&parts, 413, &too_large())
            }
            Ok(Err(_)) => return refuse(&parts, 400, "The request body could not be read."),
            Err(_) => return refuse(&parts, 408, "The request body did not arrive in time."),
        };
        // The request as the MockServer's listener would have read it from a loopback
        // connection: the client's end-to-end headers, and the body's length when it has
        // one. The head is the one hyper read, changed in place.
        if parts.uri.scheme().is_some() {
            // An absolute-form target: the MockServer sees its path and query alone.
            match parts.uri.path_and_query().map(|pq| pq.as_str().parse()) {
                Some(Ok(below)) => parts.uri = below,
                _ => return refuse(&parts, 400, "The request could not be read."),
            }
        }
        let (method, uri) = (parts.method.clone(), parts.uri.clone());
        drop_hop_by_hop(&mut parts.headers);
        if !body.is_empty() {
            parts
                .headers
                .insert(hyper::header::CONTENT_LENGTH, body.len().into());
        }
        let inner = Request::from_parts(parts, Full::new(body));
        match self.mock.handle_request(inner).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                drop_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body)
            }
            Err(e) => {
                let target = uri.path_and_query().map_or("", |pq| pq.as_str());
                self.refusal(
                    method.as_str(),
                    target,
                    500,
                    &format!("The server had an internal error: {e}"),
                )
            }
        }
    }

    /// The product's envelope for a request refused here.
    fn refusal(
        &self,
        method: &str,
        path: &str,
        status: u16,
        message: &str,
    ) -> Response<Full<Bytes>> {
        let resp = self
            .sim
            .refusal(&self.server, method, path, status, message);
        let mut out = Response::builder().status(resp.status);
        for (name, value) in &resp.headers {
            if let (Ok(name), Ok(value)) = (
                hyper::header::HeaderName::from_bytes(name.as_bytes()),
                hyper::header::HeaderValue::from_str(value),
            ) {
                out = out.header(name, value);
            }
        }
        // The request's body may be left unread, so the connection cannot carry another
        // request: say so, or a client reuses it from its pool and meets a closed socket.
        out = out.header(hyper::header::CONNECTION, "close");
        out.body(Full::new(Bytes::from(resp.body)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

/// A request body in one buffer, sized by its declared length (already checked against the
/// limit): frames are copied in as they arrive and freed, so a large body is held once,
/// where collecting the frames and joining them held it twice.
async fn read_body<B>(mut body: B, declared: usize) -> Result<Vec<u8>, B::Error>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut out = Vec::with_capacity(declared);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if out.is_empty() && data.len() >= declared {
                // One frame holds it all: keep its buffer where nothing else shares it.
                out = Vec::from(data);
            } else {
                out.extend_from_slice(&data);
            }
        }
    }
    Ok(out)
}

/// Headers about one connection or one message's framing, which the front sets itself
/// on each side.
const HOP_BY_HOP: [hyper::header::HeaderName; 7] = [
    hyper::header::CONNECTION,
    hyper::header::HeaderName::from_static("keep-alive"),
    hyper::header::TRANSFER_ENCODING,
    hyper::header::TE,
    hyper::header::TRAILER,
    hyper::header::UPGRADE,
    hyper::header::CONTENT_LENGTH,
];

/// Removes the [`HOP_BY_HOP`] headers (every value of each).
fn drop_hop_by_hop(headers: &mut hyper::HeaderMap) {
    for name in &HOP_BY_HOP {
        if headers.contains_key(name) {
            headers.remove(name);
        }
    }
}

/// Whether the client's first byte opens a TLS handshake record (content type 22); a plain
/// HTTP request starts with a method's letters instead.
async fn starts_tls(client: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, client.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == 0x16,
        // Nothing to read (closed or too slow): let the handshake fail as it will.
        _ => true,
    }
}

/// Answers a plain HTTP request sent to an HTTPS origin with a 400 that says so, as web
/// servers do, instead of dropping the connection.
async fn refuse_plain_http(mut client: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = r#"{"error":{"code":"","message":"The plain HTTP request was sent to an HTTPS port: this dwsim origin speaks HTTPS. Use https:// and trust the CA dwsim serve printed."}}"#;
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(answer.as_bytes()).await;
    let _ = client.shutdown().await;
}
