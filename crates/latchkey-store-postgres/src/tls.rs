//! TLS to PostgreSQL, chosen by the URL's `sslmode` with libpq's names and meanings:
//!
//! - absent, `disable`, `allow`, `prefer`: plain TCP, as before TLS was supported
//!   (libpq would try TLS first for `allow`/`prefer`; we never do, so such a URL
//!   behaves as it always has here).
//! - `require`: encrypted, but the server's certificate is **not** checked, so an
//!   attacker who can intercept the connection can impersonate the server. As in
//!   libpq, a `sslrootcert` turns `require` into `verify-ca`.
//! - `verify-ca`: encrypted; the certificate must chain to a trusted root (any host name).
//! - `verify-full`: encrypted; the certificate must chain to a trusted root and name the host.
//!
//! Trusted roots are the file `sslrootcert=PATH` names (only it, as in libpq),
//! or the system's roots when it is absent or `sslrootcert=system`.

use latchkey_store::{StoreError, StoreResult};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How a connection is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsMode {
    /// Plain TCP.
    Plain,
    /// Encrypted, the server not authenticated.
    Require,
    /// Encrypted, the certificate chains to a trusted root.
    VerifyCa(Roots),
    /// Encrypted, the certificate chains to a trusted root and names the host.
    VerifyFull(Roots),
}

/// Which roots a verifying mode trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The operating system's.
    System,
    /// Only the certificates in this PEM file.
    File(PathBuf),
}

impl TlsMode {
    /// The mode `sslmode` and `sslrootcert` (libpq's parameters) ask for.
    pub(crate) fn from_params(sslmode: Option<&str>, sslrootcert: Option<&str>) -> StoreResult<TlsMode> {
        let roots = match sslrootcert {
            None | Some("system") => Roots::System,
            Some(path) => Roots::File(PathBuf::from(path)),
        };
        Ok(match sslmode {
            None | Some("disable" | "allow" | "prefer") => TlsMode::Plain,
            // libpq: "if a root CA file exists, the behavior of sslmode=require will be the same as verify-ca".
            Some("require") if sslrootcert.is_some() => TlsMode::VerifyCa(roots),
            Some("require") => TlsMode::Require,
            Some("verify-ca") => TlsMode::VerifyCa(roots),
            Some("verify-full") => TlsMode::VerifyFull(roots),
            Some(other) => {
                return Err(StoreError::Database(format!(
                    "invalid PostgreSQL URL: sslmode={other} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )))
            }
        })
    }

    /// Whether the connection is encrypted.
    pub(crate) fn encrypts(&self) -> bool {
        *self != TlsMode::Plain
    }

    /// The connector for this mode. Plain connections never use it; it is
    /// built to refuse every certificate, so it fails closed if one ever did.
    pub(crate) fn connector(&self) -> StoreResult<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Database(format!("cannot set up TLS: {e}")))?;
        let config = match self {
            TlsMode::Plain => builder.with_root_certificates(RootCertStore::empty()).with_no_client_auth(),
            TlsMode::Require => {
                builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(provider))).with_no_client_auth()
            }
            TlsMode::VerifyCa(roots) => {
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(load_roots(roots)?), provider)
                    .build()
                    .map_err(|e| StoreError::Database(format!("cannot set up TLS verification: {e}")))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyName(webpki))).with_no_client_auth()
            }
            TlsMode::VerifyFull(roots) => builder.with_root_certificates(load_roots(roots)?).with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }
}

fn load_roots(roots: &Roots) -> StoreResult<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let err = |why: String| StoreError::Database(format!("cannot read sslrootcert {}: {why}", path.display()));
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| err(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(e.to_string()))?;
            for cert in certs {
                store.add(cert).map_err(|e| err(e.to_string()))?;
            }
            if store.is_empty() {
                return Err(err("no PEM CERTIFICATE block in the file".into()));
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(StoreError::Database(format!(
                    "no system root certificates to verify PostgreSQL's certificate with ({}); name a CA file with sslrootcert=PATH",
                    if why.is_empty() { "none found".to_string() } else { why.join("; ") }
                )));
            }
        }
    }
    Ok(store)
}

/// `sslmode=require`: accepts any certificate; the handshake's signatures are still checked.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the full WebPKI check, except that the host name may be any.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Takes libpq's `sslmode` and `sslrootcert` out of a `postgres://` URL's query
/// (tokio-postgres knows neither `verify-*` nor `sslrootcert`): the URL left,
/// and the two values, percent-decoded.
pub(crate) fn split_ssl_params(url: &str) -> (String, Option<String>, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_string(), None, None) };
    let (mut mode, mut root) = (None, None);
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(percent_decode(v)),
            Some(("sslrootcert", v)) => root = Some(percent_decode(v)),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    (url, mode, root)
}

/// Decodes `%XX` escapes (and leaves anything malformed as it is).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn ssl_parameters_are_taken_out_of_the_url() {
        let (url, mode, root) = split_ssl_params(
            "postgres://u@db:5432/x?application_name=a&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem",
        );
        assert_eq!(url, "postgres://u@db:5432/x?application_name=a");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root.as_deref(), Some("/etc/ca x.pem"));
        assert_eq!(split_ssl_params("postgres://db/x?sslmode=require").0, "postgres://db/x");
        assert_eq!(split_ssl_params("postgres://db/x"), ("postgres://db/x".to_string(), None, None));
    }

    #[test]
    fn modes_follow_libpq() {
        let mode = |m: Option<&str>, r: Option<&str>| TlsMode::from_params(m, r).expect("valid");
        assert_eq!(mode(None, None), TlsMode::Plain);
        assert_eq!(mode(Some("prefer"), None), TlsMode::Plain);
        assert_eq!(mode(Some("require"), None), TlsMode::Require);
        assert_eq!(mode(Some("require"), Some("/ca.pem")), TlsMode::VerifyCa(Roots::File("/ca.pem".into())));
        assert_eq!(mode(Some("verify-full"), Some("system")), TlsMode::VerifyFull(Roots::System));
        let err = TlsMode::from_params(Some("verify"), None).expect_err("unknown mode").to_string();
        assert!(err.contains("sslmode=verify is not one of"), "{err}");
    }
}
