//! TLS for STARTTLS (RFC 3207) and implicit TLS submission (RFC 8314 §3.3)
//! through rustls with the ring provider.
//!
//! [`server_config_from_pem_files`] builds a [`rustls::ServerConfig`];
//! [`TlsAcceptor`] holds the current one for every session and runs server
//! handshakes; [`TlsAcceptor::reload`] swaps in a new certificate without a
//! restart.
//!
//! A server only needs the configuration: STARTTLS is offered once it is set,
//! and `tls_bindings` speak TLS from the first byte.
//!
//! ```no_run
//! use std::sync::Arc;
//! use indy_smtp::{tls::server_config_from_pem_files, SmtpServer};
//!
//! # fn main() -> Result<(), indy_smtp::Error> {
//! let mut server = SmtpServer::new();
//! server.tls = Some(Arc::new(server_config_from_pem_files("cert.pem", "key.pem")?));
//! server.tls_bindings = vec!["127.0.0.1:465".parse().expect("address")];
//! # server.on_receive_raw = Some(Box::new(|_, _| Ok(())));
//! let handle = server.start()?;
//! # handle.stop();
//! # Ok(())
//! # }
//! ```
//!
//! [`TlsAcceptor`] runs a handshake on a socket of your own:
//!
//! ```no_run
//! use std::sync::Arc;
//! use indy_smtp::tls::{server_config_from_pem_files, tls_info, TlsAcceptor};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = server_config_from_pem_files("cert.pem", "key.pem")?;
//! let acceptor = TlsAcceptor::new(Arc::new(config));
//! let listener = std::net::TcpListener::bind("127.0.0.1:465")?;
//! let (tcp, _) = listener.accept()?;
//! // RFC 8314 §3.3: on the implicit-TLS port the handshake comes first.
//! let stream = acceptor.accept(tcp)?;
//! println!("{:?}", tls_info(&stream.conn));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::io;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::ServerConnection;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[cfg(test)]
mod tests;

/// Why a TLS configuration could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read; the message names it.
    Io(io::Error),
    /// The certificate PEM holds no `CERTIFICATE` section.
    NoCertificates,
    /// The key PEM holds no PKCS#8, PKCS#1 or SEC1 private key section.
    NoPrivateKey,
    /// rustls refused the certificate/key pair (for instance, the key does
    /// not match the certificate, or the key type is unsupported).
    Rustls(rustls::Error),
    /// A PEM section was syntactically broken (bad base64, missing END line).
    Pem(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io(e) => write!(f, "reading TLS file: {e}"),
            TlsError::NoCertificates => f.write_str("no certificate found in PEM data"),
            TlsError::NoPrivateKey => f.write_str("no private key found in PEM data"),
            TlsError::Rustls(e) => write!(f, "TLS configuration rejected: {e}"),
            TlsError::Pem(e) => write!(f, "invalid PEM data: {e}"),
        }
    }
}

/// As with [`Error`](crate::Error), the underlying error's message is in the `Display` text
/// and the error itself in the variant; `source()` does not repeat it.
impl std::error::Error for TlsError {}

impl From<io::Error> for TlsError {
    fn from(e: io::Error) -> Self {
        TlsError::Io(e)
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Rustls(e)
    }
}

impl From<pem::Error> for TlsError {
    fn from(e: pem::Error) -> Self {
        TlsError::Pem(e.to_string())
    }
}

/// Builds a server configuration from PEM text.
///
/// `cert_chain_pem` holds the end-entity certificate first, then any
/// intermediates; sections of other types (such as a key bundled in the same
/// file) are skipped. `key_pem` holds the private key as PKCS#8
/// (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`);
/// the first key found is used.
///
/// The configuration uses the ring provider with rustls' safe defaults:
/// TLS 1.2 and 1.3 only (RFC 8996 §4-§5 forbid TLS 1.0 and 1.1; RFC 8314
/// §4.1 already deprecated them for mail), no client certificates (clients
/// authenticate with SMTP AUTH, RFC 4954).
///
/// ```
/// # fn demo(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), indy_smtp::tls::TlsError> {
/// let config = indy_smtp::tls::server_config_from_pem(cert_pem, key_pem)?;
/// let acceptor = indy_smtp::tls::TlsAcceptor::new(std::sync::Arc::new(config));
/// # Ok(())
/// # }
/// ```
pub fn server_config_from_pem(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::ServerConfig, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| match e {
            pem::Error::NoItemsFound => TlsError::NoCertificates,
            other => TlsError::from(other),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        other => TlsError::from(other),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        // Also checks that the key belongs to the end-entity certificate.
        .with_single_cert(certs, key)?;
    Ok(config)
}

/// Reads the two PEM files and calls [`server_config_from_pem`]. The paths
/// may name the same file when it bundles the chain and the key.
///
/// ```no_run
/// let config = indy_smtp::tls::server_config_from_pem_files(
///     "/etc/ssl/mail.pem",
///     "/etc/ssl/private/mail.key",
/// );
/// ```
pub fn server_config_from_pem_files(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<rustls::ServerConfig, TlsError> {
    let cert_pem = read_named(cert.as_ref())?;
    let key_pem = read_named(key.as_ref())?;
    server_config_from_pem(&cert_pem, &key_pem)
}

/// `std::fs::read` whose error says which file failed, since an operator
/// configuring two paths otherwise cannot tell them apart.
fn read_named(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path)
        .map_err(|e| TlsError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display()))))
}

/// An established server-side TLS stream over a TCP connection (or any other byte stream).
pub type TlsStream<S = TcpStream> = rustls::StreamOwned<ServerConnection, S>;

/// The current server configuration, shared by all sessions.
///
/// Each handshake snapshots the configuration it starts with, so
/// [`reload`](TlsAcceptor::reload) affects only later handshakes; sessions
/// already running keep their keys and certificate until they end.
#[derive(Debug)]
pub struct TlsAcceptor {
    config: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsAcceptor {
    /// Wraps an initial configuration.
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        TlsAcceptor {
            config: RwLock::new(config),
        }
    }

    /// The configuration new handshakes use right now.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        Arc::clone(&self.config.read())
    }

    /// Replaces the configuration for all later handshakes (for example after
    /// a certificate renewal). Running sessions are unaffected.
    pub fn reload(&self, config: Arc<rustls::ServerConfig>) {
        *self.config.write() = config;
        log::info!("TLS configuration reloaded");
    }

    /// Runs the server handshake on `tcp` until it completes.
    ///
    /// Blocking; the socket's read and write timeouts bound each wait, and a
    /// timeout fails the handshake with [`io::ErrorKind::TimedOut`]. Any
    /// failure (timeout, peer closed, protocol error as
    /// [`io::ErrorKind::InvalidData`]) returns `Err`, after rustls has tried
    /// to send an alert; the caller then closes the connection.
    ///
    /// For STARTTLS the caller must first drop any plaintext it has buffered
    /// after the STARTTLS command line: RFC 3207 §4.2 requires discarding all
    /// knowledge obtained from the client before TLS, and executing such
    /// buffered commands is the CVE-2011-0411 injection.
    ///
    /// ```no_run
    /// # fn demo(acceptor: &indy_smtp::tls::TlsAcceptor, tcp: std::net::TcpStream) -> std::io::Result<()> {
    /// use std::io::Write;
    /// tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    /// let mut tls = acceptor.accept(tcp)?;
    /// tls.write_all(b"220 ready\r\n")?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn accept<S: Read + Write>(&self, mut tcp: S) -> io::Result<TlsStream<S>> {
        let mut conn = ServerConnection::new(self.current()).map_err(io::Error::other)?;
        // complete_io() keeps going until the handshake is done, the peer is
        // gone, or a socket timeout interrupts a read/write after progress,
        // in which case it returns Ok while still handshaking.
        match conn.complete_io(&mut tcp) {
            Ok(_) if !conn.is_handshaking() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake incomplete: timed out or connection closed",
                ));
            }
            Err(e) => {
                return Err(failed_handshake(e));
            }
        }
        Ok(rustls::StreamOwned::new(conn, tcp))
    }
}

impl TlsAcceptor {
    /// [`accept`](Self::accept) on a session's socket, given up at `deadline` however the
    /// client paces its bytes: each read and write may wait only for the time that is left
    /// (a per-read timeout alone would let a client that sends a byte now and then hold the
    /// thread for ever).
    pub(crate) fn accept_until(
        &self,
        tcp: crate::connection::SharedTcp,
        deadline: std::time::Instant,
    ) -> io::Result<TlsStream<crate::connection::SharedTcp>> {
        let mut conn = ServerConnection::new(self.current()).map_err(io::Error::other)?;
        let mut bounded = Deadlined {
            tcp: &tcp.0,
            deadline,
        };
        while conn.is_handshaking() {
            match conn.complete_io(&mut bounded) {
                Ok((0, 0)) if conn.is_handshaking() => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during the TLS handshake",
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(failed_handshake(e)),
            }
        }
        Ok(rustls::StreamOwned::new(conn, tcp))
    }
}

/// The error of a handshake that failed, logged. Unix reports SO_RCVTIMEO expiry as EAGAIN:
/// it is reported as a timeout, so callers need not know the platform.
fn failed_handshake(e: io::Error) -> io::Error {
    log::debug!("TLS handshake failed: {e}");
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, e)
    } else {
        e
    }
}

/// A socket whose every read and write waits at most until `deadline`.
struct Deadlined<'a> {
    tcp: &'a TcpStream,
    deadline: std::time::Instant,
}

impl Deadlined<'_> {
    fn left(&self) -> io::Result<std::time::Duration> {
        self.deadline
            .checked_duration_since(std::time::Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))
    }
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.left()?))?;
        (&*self.tcp).read(buf)
    }
}

impl Write for Deadlined<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.left()?))?;
        (&*self.tcp).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub use crate::thread::TlsInfo;

/// Describes an established connection.
///
/// ```
/// # fn demo(stream: &indy_smtp::tls::TlsStream) {
/// let info = indy_smtp::tls::tls_info(&stream.conn);
/// println!("TLS {} {}", info.protocol_version, info.cipher_suite);
/// # }
/// ```
pub fn tls_info(conn: &ServerConnection) -> TlsInfo {
    TlsInfo {
        protocol_version: conn
            .protocol_version()
            .map(version_name)
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        sni: conn.server_name().map(str::to_owned),
    }
}

/// The name logs and `Received:` comments use (`TLSv1.3`, as OpenSSL and Postfix write it),
/// not rustls's identifier (`TLSv1_3`).
fn version_name(version: rustls::ProtocolVersion) -> String {
    match version {
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        other => format!("{other:?}"),
    }
}
