//! TLS for the local server (`serve --tls`): a private CA generated at start-up and a
//! certificate it signs for the server's names, so a device (or the std client) exercises its
//! real HTTPS path, certificate verification included, against a local server. The CA
//! certificate is what the device embeds as its root.
//!
//! Keys are ECDSA P-256 and the server speaks TLS 1.3 (and 1.2), the profile a
//! microcontroller's TLS stack (embedded-tls) supports.

use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A private CA and a server configuration with a certificate it signed.
#[derive(Clone)]
pub struct LocalPki {
    /// The CA certificate (DER): the root a client must trust.
    pub ca_der: Vec<u8>,
    /// The names the server certificate holds (DNS names and IP addresses).
    pub names: Vec<String>,
    /// The server side, ready for [`ServerConfig::tls`](crate::server::ServerConfig::tls).
    pub server: Arc<rustls::ServerConfig>,
}

impl core::fmt::Debug for LocalPki {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalPki")
            .field("ca_der", &self.ca_der.len())
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// Why the certificates could not be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// Generating a key or a certificate failed (a name that is not a valid DNS name or IP).
    Certificate(String),
    /// rustls refused the configuration.
    Config(String),
}

impl core::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Certificate(e) => write!(f, "cannot make the certificates: {e}"),
            Self::Config(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl core::error::Error for TlsSetupError {}

/// A new CA (`posthog-embedded local CA`) and a server certificate for `names` (at least one),
/// both valid from 1975 to 4096 (rcgen's defaults: whatever a device's clock says, they are
/// valid).
///
/// # Errors
/// [`TlsSetupError`].
pub fn generate(names: &[String]) -> Result<LocalPki, TlsSetupError> {
    let cert_err = |e: rcgen::Error| TlsSetupError::Certificate(e.to_string());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "posthog-embedded local CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(cert_err)?)
        .map_err(cert_err)?;
    let key = KeyPair::generate().map_err(cert_err)?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(cert_err)?;
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().map_or("localhost", String::as_str),
    );
    let cert = params.signed_by(&key, &ca).map_err(cert_err)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    Ok(LocalPki {
        ca_der: ca.der().to_vec(),
        names: names.to_vec(),
        server: Arc::new(server),
    })
}
