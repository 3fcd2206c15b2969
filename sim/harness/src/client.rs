//! The harness's client of the simulated products: it signs in at the Entra server like any
//! integration would, and speaks each product's protocol. Scenario steps and invariant
//! checks are written against it, never against the World.

use crate::transport::{Reply, Transport};
use anyhow::{anyhow, bail, Result};
use dwsim_protocol::Endpoints;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The LCS API version the client sends.
pub const LCS_VERSION: &str = "2017-09-15";
/// The Power Platform admin (BAP) API version the client sends.
pub const BAP_API_VERSION: &str = "2023-06-01";
/// How many polls a long-running operation may take before the runner gives up.
pub const MAX_POLLS: usize = 200;

/// A user of the four products, over any transport: signs in per audience (tokens cached),
/// calls, polls long-running operations, and reads the admin API.
pub struct Client<'t> {
    /// How requests travel.
    pub transport: &'t dyn Transport,
    /// The servers' base URLs.
    pub endpoints: Endpoints,
    /// `GET /_dwsim/harness`: the tenant, clients and secrets the harness signs in with.
    pub harness: Value,
    tokens: RefCell<BTreeMap<String, String>>,
}

/// Encodes a form or query value.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl<'t> Client<'t> {
    /// Connects and reads the harness credentials from the admin endpoint.
    pub fn connect(transport: &'t dyn Transport) -> Result<Client<'t>> {
        let endpoints = transport.endpoints();
        let reply = transport.send(
            "GET",
            &format!("{}/_dwsim/harness", endpoints.lcs),
            &[],
            &[],
        )?;
        if reply.status != 200 {
            bail!("reading harness credentials: HTTP {}", reply.status);
        }
        Ok(Client {
            transport,
            endpoints,
            harness: reply.json(),
            tokens: RefCell::new(BTreeMap::new()),
        })
    }

    fn h(&self, k: &str) -> String {
        self.harness[k]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| self.harness[k].to_string())
    }

    /// A token for `resource`: client credentials (v2), or the password grant (v1) for LCS.
    pub fn token(&self, resource: &str) -> Result<String> {
        if let Some(t) = self.tokens.borrow().get(resource) {
            return Ok(t.clone());
        }
        let tenant = self.h("tenant_id");
        let (url, form) = if resource == self.endpoints.lcs {
            (
                format!("{}/{tenant}/oauth2/token", self.endpoints.entra),
                format!(
                    "grant_type=password&client_id={}&username={}&password={}&resource={}",
                    enc(&self.h("client_id")),
                    enc(&self.h("username")),
                    enc(&self.h("password")),
                    enc(resource)
                ),
            )
        } else {
            (
                format!("{}/{tenant}/oauth2/v2.0/token", self.endpoints.entra),
                format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
                    enc(&self.h("client_id")),
                    enc(&self.h("client_secret")),
                    enc(&format!("{resource}/.default"))
                ),
            )
        };
        let reply = self.transport.send(
            "POST",
            &url,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )?;
        let token = reply.json()["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                anyhow!(
                    "token for {resource}: HTTP {} {}",
                    reply.status,
                    reply.text()
                )
            })?;
        self.tokens
            .borrow_mut()
            .insert(resource.to_string(), token.clone());
        Ok(token)
    }

    /// Forgets every cached token, so the next call signs in again.
    pub fn forget_tokens(&self) {
        self.tokens.borrow_mut().clear();
    }

    /// Sends with a bearer token for `resource`; on a 401 (a token outlived by the virtual
    /// clock) signs in again once and retries, as a real client library would.
    pub fn send_as(
        &self,
        resource: &str,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply> {
        for attempt in 0..2 {
            let auth = format!("Bearer {}", self.token(resource)?);
            let mut all: Vec<(&str, &str)> = vec![("Authorization", &auth)];
            all.extend_from_slice(headers);
            let reply = self.transport.send(method, url, &all, body)?;
            if reply.status == 401 && attempt == 0 {
                self.tokens.borrow_mut().remove(resource);
                continue;
            }
            return Ok(reply);
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// The origin of a Dataverse environment (below it: `api/data/v9.2`).
    pub fn dataverse_base(&self, org: &str) -> String {
        self.endpoints.dataverse(org)
    }

    /// The origin of an F&O environment (below it: `data`).
    pub fn fno_base(&self, env: &str) -> String {
        self.endpoints.fno(env)
    }

    /// A Web API call below `{org}/api/data/v9.2/`.
    pub fn dv(&self, method: &str, org: &str, path: &str, body: Option<&Value>) -> Result<Reply> {
        let url = format!("{}/api/data/v9.2/{path}", self.dataverse_base(org));
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send_as(
            &self.dataverse_base(org),
            method,
            &url,
            &[
                ("Accept", "application/json"),
                ("OData-MaxVersion", "4.0"),
                ("OData-Version", "4.0"),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    }

    /// A Web API call with a raw body (for sending what is not JSON).
    pub fn dv_raw(&self, method: &str, org: &str, path: &str, body: &str) -> Reply {
        let url = format!("{}/api/data/v9.2/{path}", self.dataverse_base(org));
        self.send_as(
            &self.dataverse_base(org),
            method,
            &url,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or(Reply {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// An F&O OData call with a raw body.
    pub fn fno_raw(&self, method: &str, env: &str, path: &str, body: &str) -> Reply {
        let url = format!("{}/data/{path}", self.fno_base(env));
        self.send_as(
            &self.fno_base(env),
            method,
            &url,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or(Reply {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// All rows of a Dataverse query, following nextLinks.
    pub fn dv_all(&self, org: &str, path: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut reply = self.dv("GET", org, path, None)?;
        loop {
            if reply.status != 200 {
                bail!("GET {path}: HTTP {} {}", reply.status, reply.text());
            }
            let body = reply.json();
            out.extend(body["value"].as_array().cloned().unwrap_or_default());
            let Some(next) = body["@odata.nextLink"].as_str() else {
                break;
            };
            reply = self.send_as(
                &self.dataverse_base(org),
                "GET",
                next,
                &[("Accept", "application/json")],
                &[],
            )?;
        }
        Ok(out)
    }

    /// An OData call below `{env}/data/`.
    pub fn fno(&self, method: &str, env: &str, path: &str, body: Option<&Value>) -> Result<Reply> {
        let url = format!("{}/data/{path}", self.fno_base(env));
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send_as(
            &self.fno_base(env),
            method,
            &url,
            &[
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    }

    /// A dual-write administration service operation.
    pub fn dual_write(
        &self,
        env: &str,
        service: &str,
        operation: &str,
        args: Value,
    ) -> Result<Value> {
        let url = format!(
            "{}/api/services/DualWriteServices/{service}/{operation}",
            self.fno_base(env)
        );
        let reply = self.send_as(
            &self.fno_base(env),
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            args.to_string().as_bytes(),
        )?;
        if reply.status != 200 {
            bail!(
                "{service}/{operation}: HTTP {}: {}",
                reply.status,
                reply.json()["Message"].as_str().unwrap_or(&reply.text())
            );
        }
        Ok(reply.json())
    }

    /// An LCS call; fails with the envelope's ErrorMessage when IsSuccess is false.
    pub fn lcs(&self, method: &str, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.endpoints.lcs);
        let reply = self.send_as(
            &self.endpoints.lcs,
            method,
            &url,
            &[("x-ms-version", LCS_VERSION)],
            &[],
        )?;
        let body = reply.json();
        if reply.status != 200 || body["IsSuccess"] != json!(true) {
            bail!(
                "LCS {method} {path}: HTTP {}: {}",
                reply.status,
                body["ErrorMessage"].as_str().unwrap_or(&reply.text())
            );
        }
        Ok(body)
    }

    /// The LCS project id the harness works in.
    pub fn project(&self) -> String {
        self.h("lcs_project_id")
    }

    /// Polls fetchstatus until the operation ends; fails unless it Completed.
    pub fn lcs_wait(&self, environment: &str, activity: &str) -> Result<Value> {
        let path = format!("/environment/v2/fetchstatus/project/{}/environment/{environment}/operationactivity/{activity}", self.project());
        for _ in 0..MAX_POLLS {
            let status = self.lcs("GET", &path)?;
            match status["OperationStatus"].as_str() {
                Some("InProgress") | Some("NotStarted") => continue,
                Some("Completed") => return Ok(status),
                other => bail!(
                    "LCS operation {activity} ended {:?}: {}",
                    other,
                    status["OperationErrorMessage"].as_str().unwrap_or("")
                ),
            }
        }
        bail!("LCS operation {activity} did not finish within {MAX_POLLS} polls")
    }

    /// Creates an environment through the Power Platform admin API and waits for it.
    pub fn bap_create(&self, body: &Value) -> Result<Value> {
        let bap = "https://api.bap.microsoft.com";
        let url = format!(
            "{}/providers/Microsoft.BusinessAppPlatform/environments?api-version={BAP_API_VERSION}",
            self.endpoints.lcs
        );
        let reply = self.send_as(
            bap,
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )?;
        if reply.status != 202 {
            bail!(
                "creating the environment: HTTP {} {}",
                reply.status,
                reply.text()
            );
        }
        let location = reply
            .header("Location")
            .ok_or_else(|| anyhow!("202 without a Location header"))?
            .to_string();
        for _ in 0..MAX_POLLS {
            let poll = self.send_as(bap, "GET", &location, &[], &[])?;
            let body = poll.json();
            match body["state"]["id"].as_str() {
                Some("Succeeded") => return Ok(body),
                Some("Running") | Some("NotStarted") => continue,
                other => bail!("environment creation ended {other:?}: {}", poll.text()),
            }
        }
        bail!("environment creation did not finish within {MAX_POLLS} polls")
    }

    /// The world as the admin endpoint exports it.
    pub fn export(&self) -> Result<dwsim_model::World> {
        let reply = self.transport.send(
            "GET",
            &format!("{}/_dwsim/state?secrets=true", self.endpoints.lcs),
            &[],
            &[],
        )?;
        let mut world: dwsim_model::World = serde_json::from_slice(&reply.body)?;
        world.apply_custom_maps();
        Ok(world)
    }

    /// The end state (`GET /_dwsim/endstate`) that scenario snapshots record.
    pub fn end_state(&self) -> Result<Value> {
        let reply = self.transport.send(
            "GET",
            &format!("{}/_dwsim/endstate", self.endpoints.lcs),
            &[],
            &[],
        )?;
        Ok(reply.json())
    }
}
