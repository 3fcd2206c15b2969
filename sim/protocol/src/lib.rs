//! The protocol layer of dwsim: OData v4 and each product's envelopes. A router per product
//! turns a plain [`Request`] into World operations and answers a [`Response`] in that
//! product's wire format. Both transports — the wiremock shell and in-process calls through
//! [`Sim`] — reach the same routers, so they give the same answers.

pub mod admin;
pub mod admin_guard;
pub mod batch;
pub mod dataverse;
pub mod dataverse_annotations;
pub mod dataverse_batch;
mod dataverse_metadata;
mod dualwrite_services;
pub mod endpoints;
pub mod entra;
pub mod fno;
pub mod fno_batch;
mod fno_metadata;
pub mod journal;
pub mod lcs;
pub mod odata;
pub mod refusal;
pub mod request;
mod xml;

pub use endpoints::{Endpoints, Server};
pub use journal::{JOURNAL_BYTES, JOURNAL_LIMIT};
pub use request::{Request, Response};

use bytes::Bytes;
use dwsim_model::{SimResult, World, WorldSpec};
use journal::{Entry, Journal};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

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

/// The shared world and the endpoints it answers on: the in-process transport, and what the
/// HTTP shell wraps.
#[derive(Clone)]
pub struct Sim {
    world: Arc<Mutex<World>>,
    endpoints: Arc<Mutex<Endpoints>>,
    journal: Arc<Mutex<Journal>>,
    admin_key: Arc<Mutex<Option<String>>>,
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
            journal: Arc::new(Mutex::new(Journal::default())),
            admin_key: Arc::new(Mutex::new(None)),
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

    /// A handle that does not keep the simulator alive (for openers that live inside it).
    pub fn downgrade(&self) -> WeakSim {
        WeakSim {
            world: Arc::downgrade(&self.world),
            endpoints: Arc::downgrade(&self.endpoints),
            journal: Arc::downgrade(&self.journal),
            admin_key: Arc::downgrade(&self.admin_key),
        }
    }

    /// Requires `Authorization: Bearer <key>` (or a harness app token) on the admin verbs
    /// under `/_dwsim/`; `None` leaves them open (tests, `dwsim run`). See [`admin_guard`].
    pub fn set_admin_key(&self, key: Option<String>) {
        *self.admin_key.lock().unwrap_or_else(|p| p.into_inner()) = key;
    }

    /// Handles one request that reached `server`, and journals it. An environment's server
    /// answers at the root of its origin, so the routers see its path below `/{env}`; every
    /// environment of the world has an origin before and after the request.
    pub fn handle(&self, server: &Server, mut req: Request) -> Response {
        if req.method == "PUT" && req.path == "/_dwsim/state" {
            return self.import_state_with(server, &req, || serde_json::from_slice(&req.body));
        }
        let journal = || self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let admin = req.path == "/_dwsim" || req.path.starts_with("/_dwsim/");
        if admin {
            let endpoints = self.endpoints();
            let refused = self.admin_refusal(&self.world(), &endpoints, &req);
            if let Some(refused) = refused {
                return refused;
            }
        }
        if req.path == "/_dwsim/journal" {
            return match req.method.as_str() {
                "GET" => Response::json(
                    200,
                    &serde_json::json!(journal().entries().collect::<Vec<_>>()),
                ),
                "DELETE" => {
                    journal().clear();
                    Response::new(204)
                }
                _ => Response::json(405, &serde_json::json!({"error": "use GET or DELETE"})),
            };
        }
        let endpoints = self.endpoints();
        // The journal shows the path as the client sent it.
        let path = req.path.clone();
        if let Some(routed) = below_environment(server, &req) {
            req.path = routed;
        }
        let (resp, now) = {
            let mut world = self.world();
            endpoints.open_world(&world);
            // One transaction per request: an answer HTTP cannot carry, or a handler that
            // panics, leaves nothing written and gets the product's envelope.
            let outcome = world.contained(|world| {
                let resp = handle(world, server.product(), &endpoints, &req);
                match unsendable_header(&resp) {
                    Some(name) => Err(format!(
                        "The answer would carry a '{name}' header value that HTTP cannot carry (a control character, such as one in a key); nothing was written."
                    )),
                    None => Ok(resp),
                }
            });
            let resp = match outcome {
                Ok(Ok(resp)) => resp,
                Ok(Err(refused)) => refusal::refusal(&mut world, &endpoints, server, 400, &refused),
                Err(panic) => refusal::refusal(
                    &mut world,
                    &endpoints,
                    server,
                    500,
                    &format!("The server had an internal error: {panic}"),
                ),
            };
            endpoints.open_world(&world);
            (resp, world.clock.now().iso())
        };
        self.journal(server, now, req.method, path, req.query, resp.status);
        resp
    }
}

impl Sim {
    /// `PUT /_dwsim/state` with a body read as it arrives (the HTTP shell's front): the
    /// admin checks, then the new world is read from `body` — outside the world's lock, so
    /// other requests go on against the old world meanwhile — and replaces the old one only
    /// once all of it has read. Nothing holds the whole body: an import costs the two worlds.
    /// A reader error carrying a [`BodyRefused`] (too large, too slow) gets that refusal.
    pub fn import_state(
        &self,
        server: &Server,
        head: &Request,
        body: impl std::io::Read,
    ) -> Response {
        self.import_state_with(server, head, || {
            serde_json::from_reader(std::io::BufReader::with_capacity(64 * 1024, body))
        })
    }

    /// `GET /_dwsim/state` for a transport that sends a body in pieces (the HTTP shell's
    /// front): the export written in pieces of [`STATE_PIECE`] bytes, or the refusal. Written
    /// whole under the world's lock (a client reading slowly must not hold it), but into
    /// pieces rather than one vector that doubles as it grows: the export costs its bytes
    /// once, and each piece can be freed once sent.
    pub fn export_state(&self, server: &Server, head: &Request) -> Result<Vec<Bytes>, Response> {
        let endpoints = self.endpoints();
        let mut world = self.world();
        let written = match self.admin_refusal(&world, &endpoints, head) {
            Some(refused) => Err(refused),
            None => {
                let mut pieces = PieceWriter::default();
                admin::write_state(&mut world, head, &mut pieces).map(|()| pieces.finish())
            }
        };
        let now = world.clock.now().iso();
        drop(world);
        let status = written.as_ref().map_or_else(|r| r.status, |_| 200);
        let (method, path, query) = (head.method.clone(), head.path.clone(), head.query.clone());
        self.journal(server, now, method, path, query, status);
        written
    }

    /// The admin guard's refusal of `head`, if any (see [`admin_guard`]).
    fn admin_refusal(
        &self,
        world: &World,
        endpoints: &Endpoints,
        head: &Request,
    ) -> Option<Response> {
        let key = self
            .admin_key
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        admin_guard::check(world, endpoints, key.as_deref(), head)
    }

    /// [`Sim::import_state`] with the world read by `read`; journals the answer.
    fn import_state_with(
        &self,
        server: &Server,
        head: &Request,
        read: impl FnOnce() -> serde_json::Result<World>,
    ) -> Response {
        let endpoints = self.endpoints();
        let refused = self.admin_refusal(&self.world(), &endpoints, head);
        let resp = match refused {
            Some(refused) => refused,
            None => match read() {
                Ok(imported) => {
                    let mut world = self.world();
                    let resp = admin::install_state(&mut world, imported);
                    endpoints.open_world(&world);
                    resp
                }
                // serde_json hands back the reader's own error.
                Err(e) if e.is_io() => match std::io::Error::from(e).downcast::<BodyRefused>() {
                    Ok(r) => {
                        let mut world = self.world();
                        refusal::refusal(&mut world, &endpoints, server, r.status, &r.message)
                    }
                    Err(other) => admin::not_a_state(&other),
                },
                Err(e) => admin::not_a_state(&e),
            },
        };
        let now = self.world().clock.now().iso();
        let (method, path, query) = (head.method.clone(), head.path.clone(), head.query.clone());
        self.journal(server, now, method, path, query, resp.status);
        resp
    }

    /// Answers a request `server` refused before reading it, in the product's envelope
    /// (see [`refusal`]), and journals it.
    pub fn refusal(
        &self,
        server: &Server,
        method: &str,
        path: &str,
        status: u16,
        message: &str,
    ) -> Response {
        let endpoints = self.endpoints();
        let (resp, now) = {
            let mut world = self.world();
            let resp = refusal::refusal(&mut world, &endpoints, server, status, message);
            (resp, world.clock.now().iso())
        };
        let (method, path) = (method.to_string(), path.to_string());
        self.journal(server, now, method, path, String::new(), resp.status);
        resp
    }

    /// Journals the answer `status` that `server` gave to `method path?query`, at the
    /// world's time `at`.
    fn journal(
        &self,
        server: &Server,
        at: String,
        method: String,
        path: String,
        query: String,
        status: u16,
    ) {
        let entry = Entry {
            at,
            product: server.product().name(),
            environment: server.environment().map(str::to_string),
            method,
            path,
            query,
            status,
        };
        self.journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
    }
}

/// The size of a piece of [`Sim::export_state`]'s body.
pub const STATE_PIECE: usize = 1 << 20;

/// A writer that fills pieces of [`STATE_PIECE`] bytes, each allocated once at its size.
#[derive(Default)]
struct PieceWriter {
    done: Vec<Bytes>,
    filling: Vec<u8>,
}

impl PieceWriter {
    fn finish(mut self) -> Vec<Bytes> {
        if !self.filling.is_empty() {
            self.done.push(Bytes::from(self.filling));
        }
        self.done
    }
}

impl std::io::Write for PieceWriter {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            if self.filling.capacity() == 0 {
                self.filling = Vec::with_capacity(STATE_PIECE);
            }
            let take = buf.len().min(STATE_PIECE - self.filling.len());
            self.filling.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.filling.len() == STATE_PIECE {
                let full = std::mem::take(&mut self.filling);
                self.done.push(Bytes::from(full));
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a transport stopped reading a request's body part way (too large, too slow, broken),
/// carried as the body reader's `io::Error` to the code reading it: the answer is the
/// product's refusal with this status, not a complaint about a truncated body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyRefused {
    /// The HTTP status: 413, 408 or 400.
    pub status: u16,
    /// The refusal's message.
    pub message: String,
}

impl std::fmt::Display for BodyRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for BodyRefused {}

/// The first header of `resp` whose name or value HTTP cannot carry.
fn unsendable_header(resp: &Response) -> Option<&str> {
    resp.headers
        .iter()
        .find(|(name, value)| {
            http::HeaderName::from_bytes(name.as_bytes()).is_err()
                || http::HeaderValue::from_str(value).is_err()
        })
        .map(|(name, _)| name.as_str())
}

/// The path the routers see: below `/{env}` when the request reached an environment's own
/// origin (the admin verbs under `/_dwsim` stay where they are).
fn below_environment(server: &Server, req: &Request) -> Option<String> {
    let env = server.environment()?;
    if req.path == "/_dwsim" || req.path.starts_with("/_dwsim/") {
        return None;
    }
    Some(format!(
        "/{env}{}",
        if req.path == "/" { "" } else { &req.path }
    ))
}

/// A [`Sim`] that does not keep it alive; [`WeakSim::upgrade`] gives it back while it lives.
#[derive(Clone)]
pub struct WeakSim {
    world: Weak<Mutex<World>>,
    endpoints: Weak<Mutex<Endpoints>>,
    journal: Weak<Mutex<Journal>>,
    admin_key: Weak<Mutex<Option<String>>>,
}

impl WeakSim {
    /// The simulator, unless it has been dropped.
    pub fn upgrade(&self) -> Option<Sim> {
        Some(Sim {
            world: self.world.upgrade()?,
            endpoints: self.endpoints.upgrade()?,
            journal: self.journal.upgrade()?,
            admin_key: self.admin_key.upgrade()?,
        })
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
    use super::{PieceWriter, STATE_PIECE};
    use std::io::Write;

    #[test]
    fn pieces_hold_what_was_written_in_whole_pieces_but_the_last() {
        let text: Vec<u8> = (0..STATE_PIECE * 5 / 2).map(|i| (i % 251) as u8).collect();
        let mut pieces = PieceWriter::default();
        // Writes of odd sizes, some across a piece's end.
        for part in text.chunks(STATE_PIECE / 3 + 7) {
            pieces.write_all(part).unwrap();
        }
        let pieces = pieces.finish();
        let sizes: Vec<usize> = pieces.iter().map(|p| p.len()).collect();
        assert_eq!(sizes, [STATE_PIECE, STATE_PIECE, STATE_PIECE / 2]);
        assert_eq!(pieces.concat(), text);
        assert!(PieceWriter::default().finish().is_empty());
    }
}
