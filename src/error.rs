//! The crate's error type.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::config::MIN_LINE_LENGTH;
use crate::server::ReceiveMode;

/// Everything that can fail in indy-smtp: starting a server, or a session's I/O.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `start()` was called without the receive event that `receive_mode` needs
    /// (Indy 9 raised `EIdTCPServerError` only after sending 354; we refuse before listening).
    NoReceiveHandler(ReceiveMode),
    /// `auth_mode` is on but nothing can check a login (`check_user`, `credentials`,
    /// `on_command_auth`, or an AUTH handler put in `command_handlers` in place of the
    /// built-in one): Indy 9 would then accept every login, an open relay by accident.
    NoCredentialCheck,
    /// An implicit-TLS binding or `require_tls` was configured without a TLS configuration.
    NoTlsConfig,
    /// `limits.max_line_length` is under the 512 octets RFC 5321 §4.5.3.1.4 requires a
    /// server to accept (the value configured).
    LineLimitTooSmall(usize),
    /// A verb in `command_handlers` can never be named by a command line (it is not an
    /// RFC 5321 §4.1.1 keyword, see [`is_verb`](crate::command::is_verb)); the verb.
    BadVerb(String),
    /// `proxy_protocol` is set with an empty `trusted` list: no connection could be served.
    NoTrustedProxy,
    /// A listening socket could not be opened (address in use, permission, ...).
    Bind {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
    /// Reading or writing a connection failed.
    Io(io::Error),
    /// The client sent nothing for longer than the configured timeout (RFC 5321 §4.5.3.2).
    Timeout,
    /// The client closed the connection.
    ConnectionClosed,
    /// TLS configuration or handshake failed.
    Tls(String),
    /// A line read by [`Context::read_line`](crate::Context::read_line) was longer than
    /// `limits.max_line_length`; the rest of it has been skipped. Returned from a handler, the
    /// client gets `500 5.5.6` and the session goes on (RFC 5321 §4.5.3.1.4).
    LineTooLong,
    /// [`ServerHandle::stop_for_restart`](crate::ServerHandle::stop_for_restart) found the
    /// server's state still in use after all its threads had ended; the server is stopped.
    ServerInUse,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoReceiveHandler(mode) => {
                let event = mode.event_name();
                write!(f, "receive_mode is {mode:?}, which needs {event} set")
            }
            Error::NoCredentialCheck => f.write_str(
                "auth_mode is on but neither check_user, credentials nor on_command_auth is set",
            ),
            Error::NoTlsConfig => f.write_str("TLS is required but no TLS configuration is set"),
            Error::LineLimitTooSmall(n) => write!(
                f,
                "limits.max_line_length is {n}; RFC 5321 requires at least {MIN_LINE_LENGTH}"
            ),
            Error::BadVerb(verb) => write!(
                f,
                "command_handlers has {verb:?}, which no command line can name (letters, digits and '-' only)"
            ),
            Error::NoTrustedProxy => {
                f.write_str("proxy_protocol is set but its trusted list is empty")
            }
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Timeout => f.write_str("timed out waiting for the client"),
            Error::ConnectionClosed => f.write_str("connection closed by the client"),
            Error::Tls(e) => write!(f, "TLS error: {e}"),
            Error::LineTooLong => f.write_str("line longer than the limit"),
            Error::ServerInUse => {
                f.write_str("the stopped server's state is still in use; it cannot be restarted")
            }
        }
    }
}

/// The message of an underlying error is part of the `Display` text, so `{}` alone tells the
/// whole story; the error itself is in the variant, for matching. `source()` does not repeat
/// it: reporters that walk the chain (anyhow, eyre) would print it twice.
impl std::error::Error for Error {}

impl Error {
    /// The same failure once more, for a reader that reports it on every later call
    /// (`io::Error` is not `Clone`: an I/O error keeps its kind and text).
    pub(crate) fn again(&self) -> Error {
        match self {
            Error::Timeout => Error::Timeout,
            Error::ConnectionClosed => Error::ConnectionClosed,
            Error::LineTooLong => Error::LineTooLong,
            other => Error::Io(io::Error::new(io_kind(other), other.to_string())),
        }
    }
}

fn io_kind(e: &Error) -> io::ErrorKind {
    match e {
        Error::Io(e) | Error::Bind { source: e, .. } => e.kind(),
        _ => io::ErrorKind::Other,
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => Error::ConnectionClosed,
            _ => Error::Io(e),
        }
    }
}

/// A TLS configuration that could not be built, so that `?` works on
/// [`server_config_from_pem_files`](crate::tls::server_config_from_pem_files) in a function
/// returning [`Result`].
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
impl From<crate::tls::TlsError> for Error {
    fn from(e: crate::tls::TlsError) -> Self {
        Error::Tls(e.to_string())
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A reporter walking the chain names the cause once.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut next = e.source();
        while let Some(e) = next {
            text = format!("{text}: {e}");
            next = e.source();
        }
        text
    }

    #[test]
    fn the_cause_is_told_once() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 25));
        let source = io::Error::new(io::ErrorKind::AddrInUse, "address in use");
        let text = chain(&Error::Bind { addr, source });
        assert_eq!(text, "cannot listen on 127.0.0.1:25: address in use");
        let io = Error::Io(io::Error::other("disk on fire"));
        assert_eq!(chain(&io), "I/O error: disk on fire");
    }
}
