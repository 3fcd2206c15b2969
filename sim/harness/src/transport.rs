//! How the runner reaches the servers: real HTTP on loopback (wiremock servers on a tokio
//! runtime, driven by a blocking client) or in-process (straight to the routers). Both take
//! full URLs, so the runner is the same code either way.

use anyhow::{anyhow, Context, Result};
use dwsim_http::{Options, Servers};
use dwsim_protocol::{Endpoints, Request, Sim};

/// An HTTP answer, whichever transport carried it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Response headers, as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    /// A header by name, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the harness sends a request: over real HTTP or straight into the routers.
pub trait Transport {
    /// The base URLs requests are addressed to.
    fn endpoints(&self) -> Endpoints;
    /// Sends one request to a full URL and answers the reply.
    fn send(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8])
        -> Result<Reply>;
    /// A short name for reports (`http`, `in-process`).
    fn name(&self) -> &'static str;
}

/// Calls the routers directly through [`Sim`].
pub struct InProcess {
    /// The simulator the calls go into.
    pub sim: Sim,
}

impl Transport for InProcess {
    fn endpoints(&self) -> Endpoints {
        self.sim.endpoints()
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply> {
        let endpoints = self.sim.endpoints();
        let (server, rest) = endpoints
            .route(url)
            .ok_or_else(|| anyhow!("{url} is not a dwsim endpoint"))?;
        let mut req = Request::new(method, if rest.is_empty() { "/" } else { rest });
        for (k, v) in headers {
            req = req.with_header(k, v);
        }
        req.body = body.to_vec().into();
        let resp = self.sim.handle(&server, req);
        Ok(Reply {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        })
    }

    fn name(&self) -> &'static str {
        "in-process"
    }
}

/// Real HTTP: the servers on a runtime of their own, and a blocking client that trusts
/// their CA when they speak HTTPS.
pub struct Http {
    /// The running servers (partners' mocks can be mounted on them).
    pub servers: Servers,
    agent: ureq::Agent,
    // Dropped last: the servers run on it.
    runtime: tokio::runtime::Runtime,
}

impl Http {
    /// Starts the servers over HTTPS on free ports, with a new CA the client trusts.
    pub fn https(sim: Sim) -> Result<Http> {
        Http::start(sim, Options::https().context("making the local CA")?)
    }

    /// Starts the servers over plain HTTP on free ports.
    pub fn plain(sim: Sim) -> Result<Http> {
        Http::start(sim, Options::plain())
    }

    /// Starts the servers as `options` say, on a runtime of their own.
    pub fn start(sim: Sim, options: Options) -> Result<Http> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        let servers = runtime
            .block_on(Servers::start(sim, options))
            .context("binding the servers")?;
        // Statuses are answers here, not errors; bad-input tests send odd methods.
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .max_idle_connections_per_host(8);
        if let Some(authority) = servers.authority() {
            let ca = ureq::tls::Certificate::from_pem(authority.ca_pem().as_bytes())
                .context("reading the local CA")?;
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                        ca,
                    ])))
                    .build(),
            );
        }
        Ok(Http {
            servers,
            agent: config.build().into(),
            runtime,
        })
    }

    /// The runtime the servers run on, for mounting mocks from a blocking test.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }
}

impl Transport for Http {
    fn endpoints(&self) -> Endpoints {
        self.servers.endpoints()
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(escape_url(url).as_ref());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let fail = |e: &dyn std::fmt::Display| anyhow!("{method} {url}: {e}");
        let result = if body.is_empty() && matches!(method, "GET" | "DELETE") {
            self.agent.run(req.body(()).map_err(|e| fail(&e))?)
        } else {
            self.agent.run(req.body(body).map_err(|e| fail(&e))?)
        };
        let mut resp = result.map_err(|e| fail(&e))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // State exports of large worlds exceed ureq's default 10 MB read limit.
        let body = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .with_context(|| format!("reading {url}"))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn name(&self) -> &'static str {
        "http"
    }
}

/// What a URL may not carry unescaped (RFC 3986), which callers write literally in OData
/// queries: spaces, quotes and braces. Percent signs and reserved characters stay as they
/// are, so an already-encoded URL is unchanged (as the `url` crate and browsers do).
const NOT_IN_URL: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

fn escape_url(url: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::utf8_percent_encode(url, NOT_IN_URL).into()
}
