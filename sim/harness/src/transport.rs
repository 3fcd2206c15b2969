//! How the runner reaches the servers: real HTTP on loopback (wiremock servers on a tokio
//! runtime, driven by a blocking client) or in-process (straight to the routers). Both take
//! full URLs, so the runner is the same code either way.

use anyhow::{anyhow, Context, Result};
use dwsim_http::{Ports, Servers};
use dwsim_protocol::{Endpoints, Request, Sim};
use std::io::Read;

/// An HTTP answer, whichever transport carried it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub trait Transport {
    fn endpoints(&self) -> Endpoints;
    fn send(&self, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8])
        -> Result<Reply>;
    fn name(&self) -> &'static str;
}

/// Calls the routers directly through [`Sim`].
pub struct InProcess {
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
        let (product, rest) = endpoints
            .route(url)
            .ok_or_else(|| anyhow!("{url} is not a dwsim endpoint"))?;
        let mut req = Request::new(method, if rest.is_empty() { "/" } else { rest });
        for (k, v) in headers {
            req = req.with_header(k, v);
        }
        req.body = body.to_vec();
        let resp = self.sim.handle(product, &req);
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

/// Real HTTP: the four wiremock servers on a runtime of their own, and a blocking client.
pub struct Http {
    pub servers: Servers,
    agent: ureq::Agent,
    // Dropped last: the servers run on it.
    runtime: tokio::runtime::Runtime,
}

impl Http {
    pub fn start(sim: Sim, ports: Ports) -> Result<Http> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        let servers = runtime
            .block_on(Servers::start_on(sim, ports))
            .context("binding the servers")?;
        let agent = ureq::AgentBuilder::new()
            .max_idle_connections_per_host(8)
            .build();
        Ok(Http {
            servers,
            agent,
            runtime,
        })
    }

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
        let mut req = self.agent.request(method, url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = if body.is_empty() && matches!(method, "GET" | "DELETE") {
            req.call()
        } else {
            req.send_bytes(body)
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(anyhow!("{method} {url}: {e}")),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let mut body = Vec::new();
        resp.into_reader()
            .read_to_end(&mut body)
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
