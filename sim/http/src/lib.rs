//! The HTTP shell: the only crate that knows wiremock and TLS. Every server — Entra, LCS,
//! and each F&O and Dataverse environment — gets an origin of its own: a public listener
//! with a front (TLS or plain, see `front.rs`) that hands each request to a `MockServer` with one
//! catch-all responder at the lowest priority. The responder converts the request, hands
//! it to the shared [`Sim`], and converts the answer back. Because the catch-all sits at the
//! lowest priority, a test or a partner can mount ordinary wiremock mocks on an origin's
//! server to override any endpoint (fault injection, call verification).
//!
//! An environment that comes into being while serving (an LCS deployment, a Power Platform
//! provisioning) gets its origin then: the listener is bound at once, so the answer that
//! names it already carries a URL that connects.

mod front;
pub mod tls;

pub use front::Limits;
pub use tls::Authority;

use dwsim_protocol::{Endpoints, Request, Server, Sim, WeakSim};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::watch;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

/// How long [`Servers::start`] waits for the first servers to be mounted.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Where and how the servers listen.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The first port: Entra on it, LCS on the next, then one per environment in the order
    /// the environments come into being (a taken port is skipped). 0 picks free ports.
    pub port_base: u16,
    /// HTTPS with a leaf certificate of this CA; plain HTTP when `None`.
    pub tls: Option<Arc<Authority>>,
    /// What each origin takes from a client.
    pub limits: Limits,
}

impl Options {
    /// Plain HTTP on free ports.
    pub fn plain() -> Options {
        Options::default()
    }

    /// HTTPS on free ports, with a new in-memory CA.
    pub fn https() -> Result<Options, tls::TlsError> {
        Ok(Options {
            port_base: 0,
            tls: Some(Arc::new(Authority::generate()?)),
            limits: Limits::default(),
        })
    }
}

/// One origin: its URL, and its MockServer once mounted.
struct Site {
    origin: String,
    mock: Option<Arc<MockServer>>,
}

type Sites = Mutex<BTreeMap<Server, Site>>;

/// Every running server over one simulated world. Dropping it stops them all.
pub struct Servers {
    /// The world they serve.
    pub sim: Sim,
    sites: Arc<Sites>,
    tls: Option<Arc<Authority>>,
    _shutdown: watch::Sender<()>,
}

/// Converts a wiremock request to the protocol layer's and back.
struct CatchAll {
    sim: Sim,
    server: Server,
}

impl Respond for CatchAll {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let mut req = Request::new(request.method.as_str(), request.url.path());
        req.query = request.url.query().unwrap_or_default().to_string();
        req.headers.reserve(request.headers.len());
        for (name, value) in request.headers.iter() {
            // Header names are lowercase already; most values are visible ASCII.
            let value = match value.to_str() {
                Ok(text) => text.to_string(),
                Err(_) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
            };
            req.headers.push((name.as_str().to_string(), value));
        }
        req.body = request.body.clone();
        let resp = self.sim.handle(&self.server, req);
        let mut template = ResponseTemplate::new(resp.status).set_body_bytes(resp.body);
        for (name, value) in resp.headers {
            template = template.insert_header(name.as_str(), value.as_str());
        }
        template
    }
}

/// What opening an origin needs; the environments' opener holds a copy. It refers to the
/// simulator and the sites weakly: they hold the opener, and must not keep themselves alive.
#[derive(Clone)]
struct Shell {
    sim: WeakSim,
    sites: Weak<Sites>,
    /// The next port to try; `None` picks free ports.
    next_port: Arc<Mutex<Option<u32>>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: Limits,
    scheme: &'static str,
    runtime: Handle,
    shutdown: watch::Receiver<()>,
}

impl Shell {
    fn bind(&self) -> std::io::Result<TcpListener> {
        let mut next = self.next_port.lock().unwrap_or_else(|p| p.into_inner());
        let Some(from) = *next else {
            return TcpListener::bind(("127.0.0.1", 0));
        };
        let mut last = None;
        for port in from..=u32::from(u16::MAX) {
            match TcpListener::bind(("127.0.0.1", port as u16)) {
                Ok(listener) => {
                    *next = Some(port + 1);
                    return Ok(listener);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no port left")))
    }

    /// Binds the next port for `server` and records its origin; [`Shell::launch`] serves it.
    fn reserve(&self, server: &Server) -> std::io::Result<(String, TcpListener)> {
        let listener = self.bind()?;
        listener.set_nonblocking(true)?;
        let origin = format!("{}://{}", self.scheme, listener.local_addr()?);
        if let Some(sites) = self.sites.upgrade() {
            sites.lock().unwrap_or_else(|p| p.into_inner()).insert(
                server.clone(),
                Site {
                    origin: origin.clone(),
                    mock: None,
                },
            );
        }
        Ok((origin, listener))
    }

    /// Mounts `server`'s MockServer and starts its front on `listener`.
    fn launch(&self, server: Server, listener: TcpListener) {
        let Some(sim) = self.sim.upgrade() else {
            return;
        };
        let (sites, tls, shutdown) = (self.sites.clone(), self.tls.clone(), self.shutdown.clone());
        let limits = self.limits;
        self.runtime.spawn(async move {
            let mock = MockServer::builder()
                .disable_request_recording()
                .start()
                .await;
            Mock::given(any())
                .respond_with(CatchAll {
                    sim: sim.clone(),
                    server: server.clone(),
                })
                .with_priority(u8::MAX)
                .named(format!("dwsim {}", server.label()))
                .mount(&mock)
                .await;
            let mock = Arc::new(mock);
            match sites.upgrade() {
                Some(sites) => {
                    let mut sites = sites.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(site) = sites.get_mut(&server) {
                        site.mock = Some(mock.clone());
                    }
                }
                None => return,
            }
            let front = Arc::new(front::Front {
                server,
                sim,
                limits,
                mock,
            });
            front::serve(listener, front, tls, shutdown).await;
        });
    }

    /// An environment's origin, bound now and served as soon as its MockServer is mounted.
    fn open(&self, server: &Server) -> String {
        match self.reserve(server) {
            Ok((origin, listener)) => {
                self.launch(server.clone(), listener);
                origin
            }
            Err(e) => {
                eprintln!("dwsim: no listener for {}: {e}", server.label());
                format!("{}://127.0.0.1:0", self.scheme)
            }
        }
    }
}

impl Servers {
    /// Starts Entra, LCS and a server per environment of the world, as `options` say, on
    /// the current tokio runtime (environments that come later are served on it too).
    /// Answers once every one of them is mounted and answering.
    pub async fn start(sim: Sim, options: Options) -> std::io::Result<Servers> {
        let (shutdown_tx, shutdown) = watch::channel(());
        let sites: Arc<Sites> = Arc::new(Mutex::new(BTreeMap::new()));
        let shell = Shell {
            sim: sim.downgrade(),
            sites: Arc::downgrade(&sites),
            next_port: Arc::new(Mutex::new(
                (options.port_base != 0).then_some(u32::from(options.port_base)),
            )),
            tls: options.tls.as_ref().map(|a| a.acceptor()),
            limits: options.limits,
            scheme: if options.tls.is_some() {
                "https"
            } else {
                "http"
            },
            runtime: Handle::current(),
            shutdown,
        };
        let (entra, entra_listener) = shell.reserve(&Server::Entra)?;
        let (lcs, lcs_listener) = shell.reserve(&Server::Lcs)?;
        let opener = shell.clone();
        // The endpoints are set before anything is served, so no answer names a placeholder.
        sim.set_endpoints(Endpoints::new(entra, lcs, move |server| {
            opener.open(server)
        }));
        shell.launch(Server::Entra, entra_listener);
        shell.launch(Server::Lcs, lcs_listener);
        {
            let world = sim.world();
            sim.endpoints().open_world(&world);
        }
        let servers = Servers {
            sim,
            sites,
            tls: options.tls,
            _shutdown: shutdown_tx,
        };
        servers.mounted(START_TIMEOUT).await?;
        Ok(servers)
    }

    /// Waits until every origin opened so far has its MockServer mounted.
    pub async fn mounted(&self, timeout: Duration) -> std::io::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let pending = self
                .sites
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .any(|s| s.mock.is_none());
            if !pending {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the servers did not start in time",
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The origins answers quote in their links.
    pub fn endpoints(&self) -> Endpoints {
        self.sim.endpoints()
    }

    /// Every server with its origin: Entra, LCS, then the environments.
    pub fn origins(&self) -> Vec<(Server, String)> {
        self.sites
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(s, site)| (s.clone(), site.origin.clone()))
            .collect()
    }

    /// The MockServer behind one origin, to mount mocks on (`None` until it is mounted).
    /// Paths are as the origin receives them: `/api/data/v9.2/…`, `/data/…`.
    pub fn mock_server(&self, server: &Server) -> Option<Arc<MockServer>> {
        self.sites
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(server)
            .and_then(|s| s.mock.clone())
    }

    /// The certificate authority clients must trust, when serving HTTPS.
    pub fn authority(&self) -> Option<&Authority> {
        self.tls.as_deref()
    }
}
