//! The protocol layer of dwsim: OData v4 and each product's envelopes. A router per product
//! turns a plain [`Request`] into World operations and answers a [`Response`] in that
//! product's wire format. Both transports — the wiremock shell and in-process calls through
//! [`Sim`] — reach the same routers, so they give the same answers.

pub mod admin;
pub mod batch;
pub mod dataverse;
pub mod dataverse_batch;
mod dualwrite_services;
pub mod entra;
pub mod fno;
pub mod fno_batch;
mod fno_metadata;
pub mod lcs;
pub mod odata;
pub mod request;

pub use request::{Request, Response};

use dwsim_model::entra::Audience;
use dwsim_model::{SimResult, World, WorldSpec};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Requests the journal keeps (oldest dropped first), so a long `serve` stays bounded.
pub const JOURNAL_LIMIT: usize = 10_000;

/// The four simulated servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Product {
    /// Entra ID, the token server.
    Entra,
    /// Lifecycle Services (with the Power Platform admin API).
    Lcs,
    /// Finance and Operations.
    Fno,
    /// Dataverse.
    Dataverse,
}

impl Product {
    /// Every product, in the order the servers start.
    pub const ALL: [Product; 4] = [
        Product::Entra,
        Product::Lcs,
        Product::Fno,
        Product::Dataverse,
    ];

    /// The product's short name, in reports and transcripts.
    pub fn name(self) -> &'static str {
        match self {
            Product::Entra => "entra",
            Product::Lcs => "lcs",
            Product::Fno => "fno",
            Product::Dataverse => "dataverse",
        }
    }
}

/// Base URLs of the servers (no trailing slash). Answers quote them in links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Entra ID's base URL.
    pub entra: String,
    /// LCS's base URL.
    pub lcs: String,
    /// F&O's base URL (environments below it).
    pub fno: String,
    /// Dataverse's base URL (environments below it).
    pub dataverse: String,
}

impl Endpoints {
    /// Host names for the in-process transport; never resolved.
    pub fn in_process() -> Endpoints {
        Endpoints {
            entra: "http://entra.dwsim.invalid".into(),
            lcs: "http://lcs.dwsim.invalid".into(),
            fno: "http://fno.dwsim.invalid".into(),
            dataverse: "http://dataverse.dwsim.invalid".into(),
        }
    }

    /// The base URL of one product.
    pub fn base(&self, product: Product) -> &str {
        match product {
            Product::Entra => &self.entra,
            Product::Lcs => &self.lcs,
            Product::Fno => &self.fno,
            Product::Dataverse => &self.dataverse,
        }
    }

    /// The server a full URL points at, and the path-and-query below it.
    pub fn route<'u>(&self, url: &'u str) -> Option<(Product, &'u str)> {
        Product::ALL.into_iter().find_map(|p| {
            let base = self.base(p);
            url.strip_prefix(base)
                .filter(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
                .map(|rest| (p, rest))
        })
    }

    /// The audience a `scope` (without `/.default`) or `resource` names: a local base URL
    /// with the environment as first path segment, or the real product host names.
    pub fn audience(&self, resource: &str) -> Option<Audience> {
        let r = resource.trim_end_matches('/');
        let first_segment = |base: &str| -> Option<String> {
            let rest = r.strip_prefix(base)?.strip_prefix('/')?;
            let seg = rest.split('/').next()?;
            (!seg.is_empty()).then(|| seg.to_ascii_lowercase())
        };
        if let Some(org) = first_segment(&self.dataverse) {
            return Some(Audience::Dataverse(org));
        }
        if let Some(env) = first_segment(&self.fno) {
            return Some(Audience::Fno(env));
        }
        if r == self.lcs || r.eq_ignore_ascii_case("https://lcsapi.lcs.dynamics.com") {
            return Some(Audience::Lcs);
        }
        if r.eq_ignore_ascii_case("https://api.bap.microsoft.com")
            || r.eq_ignore_ascii_case("https://service.powerapps.com")
        {
            return Some(Audience::PowerPlatform);
        }
        let host = r.strip_prefix("https://")?.to_ascii_lowercase();
        let (name, domain) = host.split_once('.')?;
        if domain.starts_with("crm") && domain.ends_with(".dynamics.com") {
            return Some(Audience::Dataverse(name.to_string()));
        }
        if domain == "operations.dynamics.com"
            || domain == "cloudax.dynamics.com"
            || domain == "sandbox.operations.dynamics.com"
        {
            return Some(Audience::Fno(name.to_string()));
        }
        None
    }
}

/// The shared world and the endpoints it answers on: the in-process transport, and what the
/// HTTP shell wraps.
#[derive(Clone)]
pub struct Sim {
    world: Arc<Mutex<World>>,
    endpoints: Arc<Mutex<Endpoints>>,
    journal: Arc<Mutex<VecDeque<serde_json::Value>>>,
}

impl Sim {
    /// A simulator over a new world built from `spec`.
    pub fn new(spec: WorldSpec) -> SimResult<Sim> {
        Ok(Sim::from_world(World::new(spec)?))
    }

    /// A simulator over an existing world.
    pub fn from_world(world: World) -> Sim {
        Sim {
            world: Arc::new(Mutex::new(world)),
            endpoints: Arc::new(Mutex::new(Endpoints::in_process())),
            journal: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// The one lock around the World. Never held across an await.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The base URLs answers quote in their links.
    pub fn endpoints(&self) -> Endpoints {
        self.endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the base URLs, once the servers know their ports.
    pub fn set_endpoints(&self, endpoints: Endpoints) {
        *self.endpoints.lock().unwrap_or_else(|p| p.into_inner()) = endpoints;
    }

    /// Handles one request addressed to `product`, and journals it.
    pub fn handle(&self, product: Product, req: &Request) -> Response {
        let journal = || self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if req.path == "/_dwsim/journal" {
            return match req.method.as_str() {
                "GET" => Response::json(
                    200,
                    &serde_json::Value::Array(journal().iter().cloned().collect()),
                ),
                "DELETE" => {
                    journal().clear();
                    Response::new(204)
                }
                _ => Response::json(405, &serde_json::json!({"error": "use GET or DELETE"})),
            };
        }
        let endpoints = self.endpoints();
        let (resp, now) = {
            let mut world = self.world();
            let resp = handle(&mut world, product, &endpoints, req);
            (resp, world.clock.now().iso())
        };
        let mut j = journal();
        if j.len() >= JOURNAL_LIMIT {
            j.pop_front();
        }
        j.push_back(serde_json::json!({
            "at": now, "product": product.name(), "method": req.method,
            "path": req.path, "query": req.query, "status": resp.status,
        }));
        resp
    }
}

/// The entry point of every request: admin verbs first, then the product's router.
pub fn handle(
    world: &mut World,
    product: Product,
    endpoints: &Endpoints,
    req: &Request,
) -> Response {
    if req.path.starts_with("/_dwsim/") || req.path == "/_dwsim" {
        return admin::handle(world, product, endpoints, req);
    }
    match product {
        Product::Entra => entra::handle(world, endpoints, req),
        Product::Lcs => lcs::handle(world, endpoints, req),
        Product::Fno => fno::handle(world, endpoints, req),
        Product::Dataverse => dataverse::handle(world, endpoints, req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_from_local_and_real_urls() {
        let e = Endpoints::in_process();
        assert_eq!(
            e.audience("http://dataverse.dwsim.invalid/org1/"),
            Some(Audience::Dataverse("org1".into()))
        );
        assert_eq!(
            e.audience("https://contoso.crm.dynamics.com"),
            Some(Audience::Dataverse("contoso".into()))
        );
        assert_eq!(
            e.audience("http://fno.dwsim.invalid/fo1"),
            Some(Audience::Fno("fo1".into()))
        );
        assert_eq!(
            e.audience("https://lcsapi.lcs.dynamics.com"),
            Some(Audience::Lcs)
        );
        assert_eq!(e.audience("https://example.com"), None);
    }
}
