//! TLS for pbxd's clients: `https://` URLs (`HTTPCall`, web-URL numbers,
//! the answer and hangup URLs, the call records' webhook) and STARTTLS to
//! the mail relay. rustls with the ring provider (the one pbx-http serves
//! HTTPS with), trusting the system's certificate authorities and those
//! of a PEM file the configuration names (`http.ca_file`, `smtp.ca_file`:
//! a company's own authority, or a test's).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The certificates of a PEM file; an error names the file.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| format!("{}: {error}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certificates)
}

/// A server's configuration (SIP over TLS, HTTPS) from its certificate
/// chain and key files, `keys` naming their configuration keys (`sip` or
/// `http`: `sip.tls_cert`, `sip.tls_key`) in errors. ring, as the clients:
/// it builds with the C compiler alone; its lack of post-quantum key
/// exchange is what rustls warns of.
pub fn server_config(cert: &Path, key: &Path, keys: &str) -> Result<rustls::ServerConfig, String> {
    let chain = certificates(cert).map_err(|error| format!("{keys}.tls_cert {error}"))?;
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key)
        .map_err(|error| format!("{keys}.tls_key {}: {error}", key.display()))?;
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| format!("{keys}.tls_cert and {keys}.tls_key: {error}"))
}

/// The client configuration: the system's authorities, and `ca_file`'s.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 && ca_file.is_none() {
        tracing::warn!("no certificate authority found on this system: https:// URLs will fail");
    }
    if let Some(path) = ca_file {
        for certificate in certificates(path)? {
            roots
                .add(certificate)
                .map_err(|error| format!("{}: {error}", path.display()))?;
        }
    }
    // ring, as pbx-http's HTTPS (aws-lc needs cmake to build); its lack
    // of post-quantum key exchange is what rustls warns of.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}
