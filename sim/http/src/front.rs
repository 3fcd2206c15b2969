//! The front of one origin: it owns the public listener, terminates TLS when asked, reads
//! each request as HTTP/1.1 and hands it to the origin's MockServer, in process.
//!
//! Reading the request here is what keeps a long-running `serve` standing whatever clients
//! send: the limits below are enforced before a body is read whole, in the product's own
//! error envelope (413, 414, 431, 408, 400); slow or idle clients are timed out; and a request
//! target wiremock cannot take never reaches it. The request the front has read is answered
//! by the MockServer's own mocks through `MockServer::handle_request` (the same matching as
//! its listener, without writing the request again over a loopback connection) — except the
//! state export and import (`GET`/`PUT /_dwsim/state`), which the front answers itself so
//! that neither holds a whole state in one buffer (see `Front::import_state`). Owning the
//! listener also lets the shell bind it the moment an environment comes into being (its URL
//! is valid at once; connections wait in the backlog until the MockServer is mounted) and
//! keep accepting through errors such as a full file table.

use dwsim_protocol::{BodyRefused, Server, Sim};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::server::conn::http1 as server;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
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
        async move {
            let answer = match front.exported_state(&req) {
                Some(exported) => exported.map(Either::Right),
                None => front.answer(req).await.map(Either::Left),
            };
            Ok::<_, Infallible>(answer)
        }
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
        let header_bytes = header_bytes(&parts.headers);
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
        let declared = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limits.max_body_bytes as u64) {
            return refuse(&parts, 413, &self.too_large());
        }
        if parts.method == hyper::Method::PUT && parts.uri.path() == "/_dwsim/state" {
            return self.import_state(parts, body).await;
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
                return refuse(&parts, 413, &self.too_large())
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

    /// `GET /_dwsim/state` (with no body, within the limits), answered here rather than by
    /// the MockServer: the export is written in pieces ([`Sim::export_state`]) and sent piece
    /// by piece, each freed once written, so it is held once and never as one buffer that
    /// doubles as it grows. `None` for every other request.
    ///
    /// [`Sim::export_state`]: dwsim_protocol::Sim::export_state
    fn exported_state(&self, req: &Request<Incoming>) -> Option<Response<Pieces>> {
        let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        let plain_get = req.method() == hyper::Method::GET
            && req.uri().path() == "/_dwsim/state"
            && hyper::body::Body::is_end_stream(req.body())
            && target_len <= self.limits.max_url_bytes
            && header_bytes(req.headers()) <= self.limits.max_header_bytes;
        if !plain_get {
            return None;
        }
        let head = head_of(req.method(), req.uri(), req.headers());
        Some(match self.sim.export_state(&self.server, &head) {
            Ok(pieces) => {
                let mut out = Response::new(Pieces(pieces.into()));
                out.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                out
            }
            Err(refused) => answer_of(refused, |body| Pieces([body].into())),
        })
    }

    /// `PUT /_dwsim/state`, the one request whose body is not read whole first: a state
    /// export can be hundreds of megabytes, so its frames go to the simulator's JSON reader
    /// (on a blocking thread) as they arrive and are freed once read ([`Sim::import_state`]:
    /// the import then costs the old and the new world, not a copy of the body besides).
    /// It is answered here, not by the MockServer: a partner's mock cannot override it, and
    /// the MockServer's recorded requests do not hold it.
    ///
    /// [`Sim::import_state`]: dwsim_protocol::Sim::import_state
    async fn import_state(
        &self,
        parts: hyper::http::request::Parts,
        body: Incoming,
    ) -> Response<Full<Bytes>> {
        let head = head_of(&parts.method, &parts.uri, &parts.headers);
        let (frames, arrived) = tokio::sync::mpsc::channel(8);
        let (sim, server) = (self.sim.clone(), self.server.clone());
        let import = tokio::task::spawn_blocking(move || {
            sim.import_state(&server, &head, FrameReader::new(arrived))
        });
        let whole = self.send_frames(body, frames).await;
        let mut answer = match import.await {
            Ok(answer) => answer_of(answer, Full::new),
            Err(e) => {
                let target = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
                let message = format!("The server had an internal error: {e}");
                return self.refusal(parts.method.as_str(), target, 500, &message);
            }
        };
        if !whole {
            // Refused before its body ended: the connection cannot carry another request.
            answer.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        answer
    }

    /// Sends `body`'s frames to `frames` until it ends (true), the reader stops taking them,
    /// or it breaks a limit — larger than the body limit, or no frame for the body timeout —
    /// when the reader gets the refusal.
    async fn send_frames(
        &self,
        body: Incoming,
        frames: tokio::sync::mpsc::Sender<Result<Bytes, BodyRefused>>,
    ) -> bool {
        let mut body = Limited::new(body, self.limits.max_body_bytes);
        let refused = |status: u16, message: String| BodyRefused { status, message };
        let refusal = loop {
            let next = tokio::select! {
                next = tokio::time::timeout(self.limits.body_timeout, body.frame()) => next,
                // Refused or misread before the body ended: stop waiting for it.
                () = frames.closed() => return false,
            };
            match next {
                Ok(None) => return true,
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if frames.send(Ok(data)).await.is_err() {
                            return false;
                        }
                    }
                }
                Ok(Some(Err(e)))
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    break refused(413, self.too_large());
                }
                Ok(Some(Err(_))) => {
                    break refused(400, "The request body could not be read.".into())
                }
                Err(_) => break refused(408, "The request body did not arrive in time.".into()),
            }
        };
        let _ = frames.send(Err(refusal)).await;
        false
    }

    /// The message of a 413.
    fn too_large(&self) -> String {
        format!(
            "The request body is larger than this server takes ({} bytes).",
            self.limits.max_body_bytes
        )
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
        let mut out = answer_of(resp, Full::new);
        // The request's body may be left unread, so the connection cannot carry another
        // request: say so, or a client reuses it from its pool and meets a closed socket.
        out.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
        out
    }
}

/// A simulator's answer as hyper sends it, its body made by `body`. As through the
/// MockServer (wiremock's `insert_header`), a header written twice keeps its last value — a
/// content type set over the default one is sent once; a header HTTP cannot carry is left out
/// (the simulator refuses to write those in the first place).
fn answer_of<B>(resp: dwsim_protocol::Response, body: impl FnOnce(Bytes) -> B) -> Response<B> {
    let mut out = Response::new(body(Bytes::from(resp.body)));
    *out.status_mut() = hyper::StatusCode::from_u16(resp.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &resp.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}

/// The bytes of a request's headers as the limit counts them: names, values, `: ` and CRLF.
fn header_bytes(headers: &hyper::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// A request's method, target and headers as the simulator reads them, without its body.
fn head_of(
    method: &hyper::Method,
    uri: &hyper::Uri,
    headers: &hyper::HeaderMap,
) -> dwsim_protocol::Request {
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut head = dwsim_protocol::Request::new(method.as_str(), target);
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        head.headers.push((name.as_str().to_string(), value));
    }
    head
}

/// A body sent piece by piece, each piece dropped once hyper has taken it.
pub(crate) struct Pieces(VecDeque<Bytes>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.get_mut()
                .0
                .pop_front()
                .map(|piece| Ok(Frame::data(piece))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        // The exact length, so the answer carries a Content-Length.
        SizeHint::with_exact(self.0.iter().map(|piece| piece.len() as u64).sum())
    }
}

/// A body's frames, sent by the front as they arrive, read as a blocking `Read` on the
/// thread that parses them; a [`BodyRefused`] in their place is the reader's error.
struct FrameReader {
    arrived: tokio::sync::mpsc::Receiver<Result<Bytes, BodyRefused>>,
    current: Bytes,
}

impl FrameReader {
    fn new(arrived: tokio::sync::mpsc::Receiver<Result<Bytes, BodyRefused>>) -> FrameReader {
        FrameReader {
            arrived,
            current: Bytes::new(),
        }
    }
}

impl std::io::Read for FrameReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.arrived.blocking_recv() {
                None => return Ok(0),
                Some(Ok(frame)) => self.current = frame,
                Some(Err(refused)) => return Err(std::io::Error::other(refused)),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
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
