//! # indy-smtp
//!
//! A blocking, thread-per-connection SMTP server library modelled on Delphi Indy 9's
//! `TIdSMTPServer`: one [`SmtpServer`] with Indy's properties and events (as closures), one
//! [`SmtpServerThread`] per client, a [`CommandHandlers`] table of verbs, and replaceable
//! reply texts in [`SmtpMessages`]. Handlers run on blocking threads; on Linux an idle session
//! waits in epoll without one (`park_idle_sessions`). It follows RFC 5321 and its extensions
//! (the few leniencies, such as a bare LF ending a command line, are documented where they
//! are), and is hardened against hostile clients (SMTP smuggling, over-long lines,
//! trickling, STARTTLS injection).
//!
//! ```no_run
//! use indy_smtp::{SmtpServer, ReceiveMode};
//!
//! let mut server = SmtpServer::new();
//! server.bindings = vec!["127.0.0.1:2525".parse().unwrap()];
//! server.receive_mode = ReceiveMode::MessageParsed;
//! server.on_receive_message_parsed = Some(Box::new(|thread, msg| {
//!     log::info!("{:?} from {:?}: {:?}", thread.rcpt_addresses(), msg.from, msg.subject);
//!     Ok(())
//! }));
//! let handle = server.start().expect("listen"); // serves on its own threads from here
//! // ... the program's own work; the server answers meanwhile (log lines need a logger,
//! // env_logger for one) ...
//! handle.stop(); // or drop the handle: either waits for transactions in flight
//! ```
#![deny(missing_docs)]
// docs.rs (which passes `--cfg docsrs` and builds on nightly) marks the `tls` items.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod address;
pub mod auth;
mod buffers;
pub mod command;
mod config;
mod connection;
pub mod data;
mod error;
mod events;
mod listener;
pub mod maildir;
pub mod message;
mod messages;
mod parking;
pub mod proxy;
mod raw;
pub mod reply;
mod server;
mod session;
mod thread;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
pub mod trace;
mod verbs;

pub use address::{EsmtpParam, MailFrom, RcptTo};
pub use command::{Command, CommandHandler, CommandHandlers};
pub use config::{BareNewlinePolicy, Extensions, Limits, RawStreamType, ReceiveMode};
pub use error::{Error, Result};
pub use events::*;
pub use listener::ServerHandle;
pub use message::Message;
pub use messages::{DataReplies, Greeting, RcptReplies, SmtpMessages};
pub use raw::{DataReader, RawStream};
pub use reply::Reply;
pub use server::SmtpServer;
pub use thread::{Context, SmtpServerThread, SmtpState, TlsInfo};
