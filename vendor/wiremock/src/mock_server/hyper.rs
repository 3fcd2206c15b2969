use crate::mock_server::bare_server::MockServerState;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::RwLock;

/// Work around a lifetime error where, for some reason,
/// `Box<dyn std::error::Error + Send + Sync + 'static>` can't be converted to a
/// `Box<dyn std::error::Error + Send + Sync>`
struct ErrorLifetimeCast(Box<dyn std::error::Error + Send + Sync + 'static>);

impl From<ErrorLifetimeCast> for Box<dyn std::error::Error + Send + Sync> {
    fn from(value: ErrorLifetimeCast) -> Self {
        value.0
    }
}

/// The answer to one request, whether it came over the listener or in process
/// (dwsim patch: factored out of `run_server` for [`crate::MockServer::handle_request`]).
pub(super) async fn answer<B: hyper::body::Body>(
    server_state: &RwLock<MockServerState>,
    request: hyper::Request<B>,
) -> Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>, crate::ErrorResponse> {
    let wiremock_request = match crate::Request::from_hyper(request).await {
        Ok(request) => request,
        Err(why) => {
            let bad_request = hyper::Response::builder()
                .status(hyper::StatusCode::BAD_REQUEST)
                .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(http_body_util::Full::new(hyper::body::Bytes::from(why)))?;
            return Ok(bad_request);
        }
    };
    // dwsim patch: the lock is held while the request is matched, not while it is answered.
    let matched = server_state
        .write()
        .await
        .match_request(&wiremock_request);
    let (response, delay) = crate::mock_set::respond(matched, &wiremock_request)?;

    // We do not wait for the delay within the handler otherwise we would be
    // holding on to the write-side of the `RwLock` on `mock_set`.
    // Holding on the lock while waiting prevents us from handling other requests until
    // we have waited the whole duration specified in the delay.
    // In particular, we cannot perform even perform read-only operation -
    // e.g. check that mock assumptions have been verified.
    // Using long delays in tests without handling the delay as we are doing here
    // caused tests to hang (see https://github.com/seanmonstar/reqwest/issues/1147)
    if let Some(delay) = delay {
        delay.await;
    }

    Ok(response)
}

/// The actual HTTP server responding to incoming requests according to the specified mocks.
pub(super) async fn run_server(
    listener: std::net::TcpListener,
    server_state: Arc<RwLock<MockServerState>>,
    mut shutdown_signal: tokio::sync::watch::Receiver<()>,
) {
    listener
        .set_nonblocking(true)
        .expect("Cannot set non-blocking mode on TcpListener");
    let listener = TcpListener::from_std(listener).expect("Cannot upgrade TcpListener");

    let request_handler = move |request: hyper::Request<hyper::body::Incoming>| {
        let server_state = server_state.clone();
        async move {
            answer(&server_state, request)
                .await
                .map_err(ErrorLifetimeCast)
        }
    };

    // dwsim patch: an accept error (EMFILE, ECONNABORTED) ended the loop for good; back off
    // and go on instead.
    let mut backoff = std::time::Duration::from_millis(5);
    loop {
        let (stream, _) = tokio::select! { biased;
            accepted = listener.accept() => {
                match accepted {
                    Ok(accepted) => {
                        backoff = std::time::Duration::from_millis(5);
                        accepted
                    }
                    Err(_) => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                        continue;
                    }
                }
            },
            _ = shutdown_signal.changed() => {
                log::info!("Mock server shutting down");
                break;
            }
        };
        let io = TokioIo::new(stream);

        let request_handler = request_handler.clone();
        let mut shutdown_signal = shutdown_signal.clone();
        tokio::task::spawn(async move {
            let http_server =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = http_server.serve_connection_with_upgrades(io, service_fn(request_handler));
            tokio::pin!(conn);

            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = shutdown_signal.changed() => conn.as_mut().graceful_shutdown(),
                }
            }
        });
    }
}
