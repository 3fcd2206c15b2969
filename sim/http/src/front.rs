//! The front of one origin: it owns the public listener, terminates TLS when asked, and
//! relays each connection's bytes to the origin's MockServer on a private loopback port.
//! Owning the listener lets the shell bind it the moment an environment comes into being
//! (its URL is valid at once; connections wait in the backlog until the MockServer is
//! mounted) and keep accepting through errors such as a full file table.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long a client may take over the TLS handshake before its connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest pause after a failed accept (the pause doubles from 5 ms up to this).
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts on `listener` until `shutdown` is dropped, relaying every connection to `inner`.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    inner: SocketAddr,
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
                tokio::spawn(relay(stream, inner, tls.clone()));
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

async fn relay(client: TcpStream, inner: SocketAddr, tls: Option<TlsAcceptor>) {
    let _ = client.set_nodelay(true);
    let Ok(mut upstream) = TcpStream::connect(inner).await else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    match tls {
        Some(_) if !starts_tls(&client).await => refuse_plain_http(client).await,
        Some(acceptor) => {
            let Ok(Ok(mut stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client)).await
            else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
        }
        None => {
            let mut client = client;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
    }
}
