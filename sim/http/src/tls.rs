//! The local certificate authority `serve` speaks HTTPS with. wiremock has no TLS, so each
//! origin's front (see `front.rs`) terminates TLS with one leaf certificate for `127.0.0.1`,
//! `::1` and `localhost`, issued by a CA that clients are told to trust. The CA can live in a
//! directory (`--ca-dir`) so a partner trusts it once; the leaf is made anew at every start.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file names in a CA directory.
pub const CA_CERT_FILE: &str = "dwsim-ca.pem";
/// The CA's private key (PKCS #8 PEM), next to [`CA_CERT_FILE`].
pub const CA_KEY_FILE: &str = "dwsim-ca-key.pem";

/// Why the certificate authority could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing the CA directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// Making or signing a certificate failed, or a stored key is not one.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the certificate chain.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A local CA and the server configuration its leaf certificate gives.
pub struct Authority {
    ca_pem: String,
    ca_path: Option<PathBuf>,
    server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

/// The CA's fixed parameters: rebuilt identically at every start, so a leaf issued with a
/// stored key verifies against the stored certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "dwsim local CA");
    name.push(DnType::OrganizationName, "dwsim");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl Authority {
    /// A new CA held in memory only.
    pub fn generate() -> Result<Authority, TlsError> {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        Authority::from_parts(cert.pem(), key, None)
    }

    /// The CA stored in `dir`, made and written there first if the directory has none.
    pub fn in_dir(dir: &Path) -> Result<Authority, TlsError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TlsError::Io { path, source }
        };
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if cert_path.exists() && key_path.exists() {
            let ca_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let key = KeyPair::from_pem(&key_pem)?;
            return Authority::from_parts(ca_pem, key, Some(cert_path));
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        std::fs::write(&key_path, key.serialize_pem()).map_err(io(&key_path))?;
        std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
        Authority::from_parts(cert.pem(), key, Some(cert_path))
    }

    fn from_parts(
        ca_pem: String,
        ca_key: KeyPair,
        ca_path: Option<PathBuf>,
    ) -> Result<Authority, TlsError> {
        let issuer = Issuer::new(ca_params(), ca_key);
        let leaf_key = KeyPair::generate()?;
        let mut leaf = CertificateParams::default();
        leaf.distinguished_name
            .push(DnType::CommonName, "dwsim on localhost");
        leaf.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        // Strict verifiers (Python 3.13's default context, OpenSSL's -x509_strict) want the
        // leaf to name its issuer's key.
        leaf.use_authority_key_identifier_extension = true;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
        let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // The MockServer behind the front speaks HTTP/1.1 on a plain byte stream.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Authority {
            ca_pem,
            ca_path,
            server_config: Arc::new(config),
        })
    }

    /// The CA certificate, PEM, for clients to trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Where the CA certificate is stored, when it is.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// Writes the CA certificate to `path` (for an in-memory CA that clients must trust).
    pub fn write_ca(&self, path: &Path) -> Result<(), TlsError> {
        std::fs::write(path, &self.ca_pem).map_err(|source| TlsError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server_config.clone())
    }
}
