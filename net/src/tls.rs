//! TLS on the link between a client and the relay.
//!
//! This protects the hop, not the session: host and viewer still seal
//! everything end to end inside (see `PROTOCOL.md`), so a relay operator
//! reads nothing either way. What TLS adds is that the client knows it talks
//! to the relay it meant (so an on-path attacker cannot pose as the relay and
//! learn who connects to which number) and that the relay hop looks like any
//! HTTPS connection to firewalls and proxies.
//!
//! A relay either has a certificate from a public CA (checked against the
//! system's roots) or makes its own on first start and prints its
//! fingerprint, which clients pin.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use thiserror::Error;

/// SHA-256 of a certificate (DER), the thing a client pins.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert: &[u8]) -> Self {
        Fingerprint(Sha256::digest(cert).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("a certificate fingerprint is 64 hex digits, optionally after 'sha256:' (colons allowed)")]
pub struct FingerprintError;

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Self, FingerprintError> {
        let s = s.trim();
        let s = s.strip_prefix("sha256:").unwrap_or(s);
        let digits: String = s.chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(digits).map_err(|_| FingerprintError)?;
        Ok(Fingerprint(bytes.try_into().map_err(|_| FingerprintError)?))
    }
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read or write {path}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what}")]
    Pem { path: String, what: &'static str },
    #[error("cannot make a certificate")]
    Generate(#[from] rcgen::Error),
    #[error("invalid TLS configuration")]
    Config(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The relay's certificate and key.
pub struct RelayIdentity {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

const CERT_FILE: &str = "relay-cert.pem";
const KEY_FILE: &str = "relay-key.pem";

impl RelayIdentity {
    /// The self-made certificate in `dir`, made on first use for `names`
    /// (DNS names or addresses the relay is reached by; the fingerprint is
    /// what clients check, so the names are only informative).
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Self, TlsError> {
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if !cert_path.exists() || !key_path.exists() {
            let mut names = names.to_vec();
            if names.is_empty() {
                names.push("fernsicht-relay".into());
            }
            let made = rcgen::generate_simple_self_signed(names)?;
            write_private(&key_path, made.signing_key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, made.cert.pem()).map_err(|source| TlsError::File {
                path: cert_path.display().to_string(),
                source,
            })?;
        }
        Self::from_pem_files(&cert_path, &key_path)
    }

    /// A certificate chain and key from PEM files (e.g. from a public CA).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|_| TlsError::Pem {
                path: cert.display().to_string(),
                what: "certificate",
            })?
            .collect::<Result<_, _>>()
            .map_err(|_| TlsError::Pem {
                path: cert.display().to_string(),
                what: "certificate",
            })?;
        if certs.is_empty() {
            return Err(TlsError::Pem {
                path: cert.display().to_string(),
                what: "certificate",
            });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|_| TlsError::Pem {
            path: key.display().to_string(),
            what: "private key",
        })?;
        Ok(RelayIdentity { certs, key })
    }

    /// What clients pin: the SHA-256 of the leaf certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.certs[0])
    }

    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.certs.clone(), self.key.clone_key())?;
        Ok(Arc::new(config))
    }
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let err = |source| TlsError::File {
        path: path.display().to_string(),
        source,
    };
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(err)?;
        f.write_all(bytes).map_err(err)
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, bytes).map_err(err)
    }
}

/// How a client decides that it reached the right relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayTrust {
    /// A certificate for the relay's name from a CA the system trusts.
    System,
    /// Exactly this certificate (a self-hosted relay's printed fingerprint).
    Pinned(Fingerprint),
    /// Any certificate: the caller records the fingerprint it saw and pins
    /// it next time (trust on first use). The session itself is still
    /// end-to-end protected; this only gives up knowing which relay carries
    /// it, e.g. an embedded relay on the local network.
    FirstUse,
}

/// The TLS client configuration for `trust`.
pub fn client_config(trust: &RelayTrust) -> Result<Arc<ClientConfig>, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let config = match trust {
        RelayTrust::System => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // A broken system certificate is skipped, not fatal.
                let _ = roots.add(cert);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        RelayTrust::Pinned(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier::new(Some(*pin))))
            .with_no_client_auth(),
        RelayTrust::FirstUse => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier::new(None)))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name to send in the TLS handshake for `host`.
pub fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_owned())
        .unwrap_or_else(|_| ServerName::try_from("fernsicht-relay").expect("a valid DNS name"))
}

/// The pinned certificate does not match.
#[derive(Debug, Error)]
#[error(
    "the relay's certificate {got} does not match the pinned {want}: not the relay you configured (or it was re-installed)"
)]
pub struct PinMismatch {
    pub want: Fingerprint,
    pub got: Fingerprint,
}

/// The error a [`PinVerifier`] reports for a certificate that is not the
/// pinned one (`want`, `got`), so that callers can say whose it was.
pub(crate) type Mismatch = fn(Fingerprint, Fingerprint) -> Arc<dyn std::error::Error + Send + Sync>;

fn relay_mismatch(want: Fingerprint, got: Fingerprint) -> Arc<dyn std::error::Error + Send + Sync> {
    Arc::new(PinMismatch { want, got })
}

/// Accepts exactly the pinned certificate (or, without a pin, any); the
/// handshake signatures are still checked, so the other end must hold the
/// key. Used for the relay link and for punched QUIC paths.
#[derive(Debug)]
pub(crate) struct PinVerifier {
    pin: Option<Fingerprint>,
    mismatch: Mismatch,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    fn new(pin: Option<Fingerprint>) -> Self {
        Self::with_mismatch(pin, relay_mismatch)
    }

    /// A verifier whose refusal is `mismatch(want, got)`.
    pub(crate) fn with_mismatch(pin: Option<Fingerprint>, mismatch: Mismatch) -> Self {
        PinVerifier {
            pin,
            mismatch,
            algorithms: provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        match self.pin {
            Some(want) if want != got => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError((self.mismatch)(want, got))),
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_forms_people_paste() {
        let fp = Fingerprint([0xab; 32]);
        let s = fp.to_string();
        assert!(s.starts_with("sha256:abab"));
        assert_eq!(s.parse::<Fingerprint>().unwrap(), fp);
        let colons = hex::encode([0xab; 32])
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<Fingerprint>().unwrap(), fp);
        assert!("sha256:abcd".parse::<Fingerprint>().is_err());
    }

    #[test]
    fn a_relay_keeps_its_certificate_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = RelayIdentity::load_or_create(dir.path(), &[]).unwrap();
        let b = RelayIdentity::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        a.server_config().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private key readable by others");
        }
    }
}
