//! TLS for every connection postdesk opens: IMAP, SMTP and a mailbox's OAuth endpoints.
//!
//! Contract:
//! - Certificates are always verified, against the web roots (unless `web_roots = false`)
//!   and the CAs in `ca_file`. There is no setting that turns verification off.
//! - The name checked is `tls_server_name`, or else `host` (an IP address works when the
//!   certificate names that address).
//! - A failure says which server, what is wrong in words, and which setting changes it
//!   ([`explain`]): "not signed by a CA postdesk trusts … set ca_file in [[mailbox]] …".
//! - TLS 1.2 and 1.3 only, on the ring provider (the one tokio-rustls, lettre and reqwest
//!   are built with here).

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::config::Tls;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read ca_file {path}: {reason} ({setting})")]
    CaFile {
        path: String,
        reason: String,
        setting: String,
    },
    #[error("{name:?} is not a host name TLS can check; set tls_server_name in {setting}")]
    Name { name: String, setting: String },
    #[error("TLS with {server} failed: {reason}")]
    Handshake { server: String, reason: String },
}

/// Where a connection's settings live, for messages: `[[mailbox]] "support"` or `[smtp]`.
#[derive(Debug, Clone)]
pub struct Setting(pub String);

impl Setting {
    pub fn mailbox(name: &str) -> Setting {
        Setting(format!("[[mailbox]] {name:?}"))
    }
    pub fn smtp() -> Setting {
        Setting("[smtp]".to_owned())
    }
}

/// A verified-TLS client for one server.
#[derive(Clone)]
pub struct Connector {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    server: String,
    setting: Setting,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The CA certificates of `tls.ca_file`, as DER (empty without one).
pub fn extra_roots(tls: &Tls, setting: &Setting) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let Some(path) = &tls.ca_file else {
        return Ok(Vec::new());
    };
    let fail = |reason: String| TlsError::CaFile {
        path: path.display().to_string(),
        reason,
        setting: setting.0.clone(),
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(fail("no CERTIFICATE block in it".to_owned()));
    }
    Ok(certs)
}

/// The PEM text of `tls.ca_file` (for lettre's and reqwest's own TLS set-up).
pub fn ca_pem(tls: &Tls, setting: &Setting) -> Result<Option<Vec<u8>>, TlsError> {
    extra_roots(tls, setting)?;
    match &tls.ca_file {
        Some(path) => std::fs::read(path).map(Some).map_err(|e| TlsError::CaFile {
            path: path.display().to_string(),
            reason: e.to_string(),
            setting: setting.0.clone(),
        }),
        None => Ok(None),
    }
}

impl Connector {
    pub fn new(tls: &Tls, host: &str, port: u16, setting: Setting) -> Result<Connector, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        if tls.web_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for cert in extra_roots(tls, &setting)? {
            roots.add(cert).map_err(|e| TlsError::CaFile {
                path: tls
                    .ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                reason: format!("a certificate in it cannot be a trust anchor: {e}"),
                setting: setting.0.clone(),
            })?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Handshake {
                server: format!("{host}:{port}"),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name_text = tls.server_name.clone().unwrap_or_else(|| host.to_owned());
        let name = ServerName::try_from(name_text.clone()).map_err(|_| TlsError::Name {
            name: name_text,
            setting: setting.0.clone(),
        })?;
        Ok(Connector {
            config: Arc::new(config),
            name,
            server: format!("{host}:{port}"),
            setting,
        })
    }

    /// The TLS handshake over `tcp` (already connected, `TCP_NODELAY` already set).
    pub async fn connect(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TlsError> {
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| TlsError::Handshake {
                server: self.server.clone(),
                reason: explain_io(&e, &self.name_text(), &self.setting),
            })
    }

    fn name_text(&self) -> String {
        match &self.name {
            ServerName::DnsName(d) => d.as_ref().to_owned(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            other => format!("{other:?}"),
        }
    }
}

fn explain_io(e: &std::io::Error, name: &str, setting: &Setting) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(c)) => explain(&format!("{c:?}"), name, setting),
        Some(other) => explain(&other.to_string(), name, setting),
        None => explain(&e.to_string(), name, setting),
    }
}

/// Turns a TLS library's error text into what a sysadmin can act on.
pub fn explain(text: &str, name: &str, setting: &Setting) -> String {
    let s = &setting.0;
    if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
        format!(
            "the server's certificate is not signed by a CA postdesk trusts (UnknownIssuer); \
             set ca_file in {s} to the PEM file of the CA that signed it"
        )
    } else if text.contains("NotValidForName") {
        format!(
            "the server's certificate is not valid for {name:?} (NotValidForName); connect by \
             the name on the certificate, or set tls_server_name in {s}"
        )
    } else if text.contains("Expired") {
        format!("the server's certificate has expired ({text}); the server's certificate must be renewed")
    } else if text.contains("NotValidYet") {
        format!("the server's certificate is not valid yet ({text}); check this machine's clock")
    } else if text.contains("Revoked") {
        format!("the server's certificate is revoked ({text})")
    } else if text.contains("CorruptMessage")
        || text.contains("InvalidContentType")
        || text.contains("received corrupt message")
    {
        format!(
            "the server did not answer with TLS ({text}); check security and port in {s} \
             (\"tls\" is implicit TLS, usually 993/465; \"starttls\" is 143/587)"
        )
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_issuer_names_the_setting_to_change() {
        let why = explain(
            "invalid peer certificate: UnknownIssuer",
            "127.0.0.1",
            &Setting::mailbox("support"),
        );
        assert!(why.contains("not signed by a CA postdesk trusts"), "{why}");
        assert!(
            why.contains("set ca_file in [[mailbox]] \"support\""),
            "{why}"
        );
    }

    #[test]
    fn a_wrong_name_points_at_tls_server_name() {
        let why = explain(
            "NotValidForNameContext { .. }",
            "imap.example.org",
            &Setting::smtp(),
        );
        assert!(why.contains("\"imap.example.org\""), "{why}");
        assert!(why.contains("tls_server_name in [smtp]"), "{why}");
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let tls = Tls {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Tls::default()
        };
        let err = Connector::new(&tls, "127.0.0.1", 993, Setting::smtp()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/nonexistent/ca.pem") && text.contains("[smtp]"),
            "{text}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let tls = Tls {
            ca_file: Some(path),
            ..Tls::default()
        };
        let err = Connector::new(&tls, "127.0.0.1", 993, Setting::mailbox("m")).unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE block"), "{err}");
    }
}
