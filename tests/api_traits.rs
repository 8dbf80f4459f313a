//! Compile-time checks of the public API's auto traits and common impls: every public type is
//! `Debug`, the error types are `std::error::Error + Send + Sync + 'static` (so `?` into
//! `Box<dyn Error + Send + Sync>` and anyhow works), and the server's handles and shared state
//! can cross threads. A type that loses one of these fails to compile here.
use std::fmt::Debug;

use indy_smtp::address::{BodyType, Notify, Orcpt, PathError, PathLimits, Ret};
use indy_smtp::auth::{Mechanism, PlainCredentials, SaslError};
use indy_smtp::command::CommandError;
use indy_smtp::data::DataDecoder;
use indy_smtp::maildir::Maildir;
use indy_smtp::message::{Attachment, EmailAddress, MessageError, TextPart};
use indy_smtp::proxy::{InvalidNetwork, Network, ProxyProtocol};
use indy_smtp::*;

fn debug<T: Debug + ?Sized>() {}
fn send_sync<T: Send + Sync + ?Sized>() {}
fn send<T: Send + ?Sized>() {}
fn error<T: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn public_types_are_debug() {
    debug::<SmtpServer>();
    debug::<ServerHandle>();
    debug::<SmtpServerThread>();
    debug::<Context<'_>>();
    debug::<SmtpState>();
    debug::<TlsInfo>();
    debug::<CommandHandlers>();
    debug::<Command>();
    debug::<SmtpMessages>();
    debug::<Greeting>();
    debug::<RcptReplies>();
    debug::<DataReplies>();
    debug::<Extensions>();
    debug::<Limits>();
    debug::<ReceiveMode>();
    debug::<RawStreamType>();
    debug::<BareNewlinePolicy>();
    debug::<MailAction>();
    debug::<RcptAction>();
    debug::<MailFrom>();
    debug::<RcptTo>();
    debug::<EsmtpParam>();
    debug::<Notify>();
    debug::<Orcpt>();
    debug::<BodyType>();
    debug::<Ret>();
    debug::<PathLimits>();
    debug::<Mechanism>();
    debug::<PlainCredentials>();
    debug::<DataDecoder>();
    debug::<DataReader<'_>>();
    debug::<RawStream<'_>>();
    debug::<Message>();
    debug::<EmailAddress>();
    debug::<TextPart>();
    debug::<Attachment>();
    debug::<Reply>();
    debug::<Maildir>();
    debug::<ProxyProtocol>();
    debug::<Network>();
    #[cfg(feature = "tls")]
    debug::<indy_smtp::tls::TlsAcceptor>();
}

#[test]
fn error_types_are_std_errors() {
    error::<Error>();
    error::<CommandError>();
    error::<PathError>();
    error::<SaslError>();
    error::<MessageError>();
    error::<InvalidNetwork>();
    #[cfg(feature = "tls")]
    error::<indy_smtp::tls::TlsError>();
}

#[test]
fn server_types_cross_threads() {
    // Built on one thread and started on another; the handle moved to a signal thread or
    // shared behind an Arc for local_addr/active_sessions/reload_tls.
    send::<SmtpServer>();
    send_sync::<ServerHandle>();
    send_sync::<CommandHandlers>();
    send_sync::<SmtpMessages>();
    send_sync::<Extensions>();
    send_sync::<Limits>();
    send_sync::<Maildir>();
    send_sync::<Reply>();
    send_sync::<Message>();
    send_sync::<MailFrom>();
    send_sync::<RcptTo>();
    // The per-session state holds `data: Option<Box<dyn Any + Send>>`: Send, not Sync.
    send::<SmtpServerThread>();
    #[cfg(feature = "tls")]
    send_sync::<indy_smtp::tls::TlsAcceptor>();
}
