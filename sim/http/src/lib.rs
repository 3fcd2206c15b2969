//! The HTTP shell: the only crate that knows wiremock. Each product gets its own
//! `MockServer` with one catch-all responder at the lowest priority, which converts the
//! request, hands it to the shared [`Sim`], and converts the answer back. Because the
//! catch-all sits at the lowest priority, a test or a partner can mount ordinary wiremock
//! mocks on the same server to override any endpoint (fault injection, call verification).

use dwsim_protocol::{Endpoints, Product, Request, Sim};
use std::net::TcpListener;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

/// Fixed ports to listen on; 0 picks a free one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ports {
    /// The Entra token server's port.
    pub entra: u16,
    /// The LCS server's port.
    pub lcs: u16,
    /// The F&O server's port.
    pub fno: u16,
    /// The Dataverse server's port.
    pub dataverse: u16,
}

impl Ports {
    /// Four consecutive ports from `base`: Entra, LCS, F&O, Dataverse.
    pub fn from_base(base: u16) -> Ports {
        Ports {
            entra: base,
            lcs: base.saturating_add(1),
            fno: base.saturating_add(2),
            dataverse: base.saturating_add(3),
        }
    }
}

/// The four running servers over one simulated world.
pub struct Servers {
    /// The world all four serve.
    pub sim: Sim,
    /// Entra ID (tokens).
    pub entra: MockServer,
    /// Lifecycle Services and the Power Platform admin API.
    pub lcs: MockServer,
    /// Finance and Operations (`/data`, services).
    pub fno: MockServer,
    /// Dataverse (`/api/data/v9.2`).
    pub dataverse: MockServer,
}

/// Converts a wiremock request to the protocol layer's and back.
struct CatchAll {
    sim: Sim,
    product: Product,
}

impl Respond for CatchAll {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let mut req = Request::new(request.method.as_str(), request.url.path());
        req.query = request.url.query().unwrap_or_default().to_string();
        for (name, value) in request.headers.iter() {
            req.headers.push((
                name.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
        req.body = request.body.clone();
        let resp = self.sim.handle(self.product, &req);
        let mut template = ResponseTemplate::new(resp.status).set_body_bytes(resp.body);
        for (name, value) in resp.headers {
            template = template.insert_header(name.as_str(), value.as_str());
        }
        template
    }
}

async fn start_one(sim: &Sim, product: Product, port: u16) -> std::io::Result<MockServer> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let server = MockServer::builder()
        .listener(listener)
        .disable_request_recording()
        .start()
        .await;
    Mock::given(any())
        .respond_with(CatchAll {
            sim: sim.clone(),
            product,
        })
        .with_priority(u8::MAX)
        .named(format!("dwsim {}", product.name()))
        .mount(&server)
        .await;
    Ok(server)
}

impl Servers {
    /// Starts the four servers on free loopback ports.
    pub async fn start(sim: Sim) -> std::io::Result<Servers> {
        Servers::start_on(sim, Ports::default()).await
    }

    /// Starts the four servers on fixed ports (0 picks a free one).
    pub async fn start_on(sim: Sim, ports: Ports) -> std::io::Result<Servers> {
        let entra = start_one(&sim, Product::Entra, ports.entra).await?;
        let lcs = start_one(&sim, Product::Lcs, ports.lcs).await?;
        let fno = start_one(&sim, Product::Fno, ports.fno).await?;
        let dataverse = start_one(&sim, Product::Dataverse, ports.dataverse).await?;
        let servers = Servers {
            sim,
            entra,
            lcs,
            fno,
            dataverse,
        };
        servers.sim.set_endpoints(servers.endpoints());
        Ok(servers)
    }

    /// The base URLs the servers answer on.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            entra: self.entra.uri(),
            lcs: self.lcs.uri(),
            fno: self.fno.uri(),
            dataverse: self.dataverse.uri(),
        }
    }

    /// The server of one product, to mount mocks on.
    pub fn server(&self, product: Product) -> &MockServer {
        match product {
            Product::Entra => &self.entra,
            Product::Lcs => &self.lcs,
            Product::Fno => &self.fno,
            Product::Dataverse => &self.dataverse,
        }
    }
}
