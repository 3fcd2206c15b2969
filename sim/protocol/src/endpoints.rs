//! Where each simulated server answers. Entra and LCS have one origin each; every F&O and
//! every Dataverse environment answers at the root of an origin of its own, as on its own
//! host in the real products. An environment's origin is opened the first time it is needed
//! — when the environment exists at the start of a request, comes into being during one, or
//! an answer names it — by the transport's opener: the HTTP shell binds a listener, the
//! in-process transport names a host that is never resolved.

use crate::Product;
use dwsim_model::entra::Audience;
use dwsim_model::World;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One simulated server: Entra, LCS, or one F&O or Dataverse environment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Server {
    /// The Entra ID token server.
    Entra,
    /// Lifecycle Services (with the Power Platform admin API).
    Lcs,
    /// One F&O environment, by its (lower-case) name.
    Fno(String),
    /// One Dataverse environment, by its (lower-case) organization name.
    Dataverse(String),
}

impl Server {
    /// The product the server simulates.
    pub fn product(&self) -> Product {
        match self {
            Server::Entra => Product::Entra,
            Server::Lcs => Product::Lcs,
            Server::Fno(_) => Product::Fno,
            Server::Dataverse(_) => Product::Dataverse,
        }
    }

    /// The environment an F&O or Dataverse server serves.
    pub fn environment(&self) -> Option<&str> {
        match self {
            Server::Fno(env) | Server::Dataverse(env) => Some(env),
            Server::Entra | Server::Lcs => None,
        }
    }

    /// A short name for logs and the journal: `entra`, `lcs`, `fno:<env>`, `dataverse:<org>`.
    pub fn label(&self) -> String {
        match self.environment() {
            Some(env) => format!("{}:{env}", self.product().name()),
            None => self.product().name().to_string(),
        }
    }
}

/// Opens an environment's origin and answers it (scheme, host and port; no trailing slash).
pub type Opener = dyn Fn(&Server) -> String + Send + Sync;

/// The origins of every server, shared by the transport and the routers (clones share one
/// registry, so an origin opened by one is seen by all).
#[derive(Clone)]
pub struct Endpoints {
    /// Entra ID's origin.
    pub entra: String,
    /// LCS's origin (the Power Platform admin API is below it too).
    pub lcs: String,
    registry: Arc<Registry>,
}

struct Registry {
    /// Environment servers by the order they were opened in (the ports follow it).
    opened: Mutex<BTreeMap<Server, String>>,
    open: Box<Opener>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("entra", &self.entra)
            .field("lcs", &self.lcs)
            .field("environments", &self.environments())
            .finish()
    }
}

impl Endpoints {
    /// Endpoints at `entra` and `lcs`, whose environments `open` gives an origin to.
    pub fn new(
        entra: impl Into<String>,
        lcs: impl Into<String>,
        open: impl Fn(&Server) -> String + Send + Sync + 'static,
    ) -> Endpoints {
        Endpoints {
            entra: entra.into(),
            lcs: lcs.into(),
            registry: Arc::new(Registry {
                opened: Mutex::new(BTreeMap::new()),
                open: Box::new(open),
            }),
        }
    }

    /// Host names for the in-process transport, shaped like the real products' and never
    /// resolved: `https://<env>.operations.dwsim.invalid`, `https://<org>.crm.dwsim.invalid`.
    pub fn in_process() -> Endpoints {
        Endpoints::new(
            "https://login.dwsim.invalid",
            "https://lcs.dwsim.invalid",
            |server| match server {
                Server::Fno(env) => format!("https://{env}.operations.dwsim.invalid"),
                Server::Dataverse(org) => format!("https://{org}.crm.dwsim.invalid"),
                Server::Entra => "https://login.dwsim.invalid".into(),
                Server::Lcs => "https://lcs.dwsim.invalid".into(),
            },
        )
    }

    fn opened(&self) -> std::sync::MutexGuard<'_, BTreeMap<Server, String>> {
        self.registry
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The origin of `server`, opening it if this is the first time it is needed.
    pub fn origin(&self, server: &Server) -> String {
        match server {
            Server::Entra => self.entra.clone(),
            Server::Lcs => self.lcs.clone(),
            Server::Fno(_) | Server::Dataverse(_) => {
                let mut opened = self.opened();
                if let Some(origin) = opened.get(server) {
                    return origin.clone();
                }
                let origin = (self.registry.open)(server);
                opened.insert(server.clone(), origin.clone());
                origin
            }
        }
    }

    /// The origin of `server` if it is open already; never opens one.
    pub fn known(&self, server: &Server) -> Option<String> {
        match server {
            Server::Entra => Some(self.entra.clone()),
            Server::Lcs => Some(self.lcs.clone()),
            _ => self.opened().get(server).cloned(),
        }
    }

    /// An F&O environment's origin (below it: `/data`, `/api/services`, `/Metadata`).
    pub fn fno(&self, env: &str) -> String {
        self.origin(&Server::Fno(env.to_ascii_lowercase()))
    }

    /// A Dataverse environment's origin (below it: `/api/data/v9.2`).
    pub fn dataverse(&self, org: &str) -> String {
        self.origin(&Server::Dataverse(org.to_ascii_lowercase()))
    }

    /// Opens every environment of `world` that has no origin yet: F&O ones first, then
    /// Dataverse, each in name order, so the same world gets the same ports.
    pub fn open_world(&self, world: &World) {
        let missing: Vec<Server> = {
            let opened = self.opened();
            // Every request asks, and the answer is nearly always yes: a world has a few
            // environments, so look for each without building a server name.
            let is_open = |fno: bool, name: &str| {
                opened.keys().any(|s| match s {
                    Server::Fno(e) => fno && e == name,
                    Server::Dataverse(o) => !fno && o == name,
                    _ => false,
                })
            };
            if world.fno.keys().all(|e| is_open(true, e))
                && world.dataverse.keys().all(|o| is_open(false, o))
            {
                return;
            }
            world
                .fno
                .keys()
                .map(|env| Server::Fno(env.clone()))
                .chain(world.dataverse.keys().map(|o| Server::Dataverse(o.clone())))
                .filter(|s| !opened.contains_key(s))
                .collect()
        };
        for server in missing {
            self.origin(&server);
        }
    }

    /// Every open environment server with its origin.
    pub fn environments(&self) -> Vec<(Server, String)> {
        self.opened()
            .iter()
            .map(|(s, o)| (s.clone(), o.clone()))
            .collect()
    }

    /// The server a full URL points at, and the path-and-query below its origin.
    pub fn route<'u>(&self, url: &'u str) -> Option<(Server, &'u str)> {
        let below = |origin: &str| {
            url.strip_prefix(origin)
                .filter(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
        };
        if let Some(rest) = below(&self.entra) {
            return Some((Server::Entra, rest));
        }
        if let Some(rest) = below(&self.lcs) {
            return Some((Server::Lcs, rest));
        }
        self.opened()
            .iter()
            .find_map(|(server, origin)| below(origin).map(|rest| (server.clone(), rest)))
    }

    /// The token a request carries, accepted for `expected`: signed by the world's tenant, not
    /// expired on its clock, and whose audience (an origin or a real host name) is `expected`.
    pub fn authenticate(
        &self,
        world: &World,
        req: &crate::Request,
        expected: &Audience,
    ) -> dwsim_model::SimResult<dwsim_model::entra::Token> {
        world.tenant.validate(
            req.bearer(),
            world.clock.now(),
            |aud| self.audience(aud),
            expected,
        )
    }

    /// The audience a `scope` (without `/.default`) or `resource` names: an environment's
    /// origin, LCS's, or the real products' host names.
    pub fn audience(&self, resource: &str) -> Option<Audience> {
        let r = resource.trim_end_matches('/');
        let local = self.opened().iter().find_map(|(server, origin)| {
            if !r.eq_ignore_ascii_case(origin) {
                return None;
            }
            match server {
                Server::Fno(env) => Some(Audience::Fno(env.clone())),
                Server::Dataverse(org) => Some(Audience::Dataverse(org.clone())),
                Server::Entra | Server::Lcs => None,
            }
        });
        if local.is_some() {
            return local;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_from_local_and_real_urls() {
        let e = Endpoints::in_process();
        let org = e.dataverse("Org1");
        assert_eq!(org, "https://org1.crm.dwsim.invalid");
        assert_eq!(
            e.audience(&format!("{org}/")),
            Some(Audience::Dataverse("org1".into()))
        );
        assert_eq!(
            e.audience("https://contoso.crm.dynamics.com"),
            Some(Audience::Dataverse("contoso".into()))
        );
        let fo = e.fno("fo1");
        assert_eq!(e.audience(&fo), Some(Audience::Fno("fo1".into())));
        assert_eq!(
            e.audience("https://lcsapi.lcs.dynamics.com"),
            Some(Audience::Lcs)
        );
        assert_eq!(e.audience("https://example.com"), None);
        assert_eq!(e.audience("https://other.crm.dwsim.invalid"), None);
    }

    #[test]
    fn urls_route_to_the_server_below_them() {
        let e = Endpoints::in_process();
        let org = e.dataverse("org1");
        assert_eq!(
            e.route(&format!("{org}/api/data/v9.2/accounts")),
            Some((Server::Dataverse("org1".into()), "/api/data/v9.2/accounts"))
        );
        assert_eq!(
            e.route("https://lcs.dwsim.invalid?x=1"),
            Some((Server::Lcs, "?x=1"))
        );
        assert_eq!(e.route("https://org1.crm.dwsim.invalidx/"), None);
    }
}
