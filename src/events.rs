//! The event closures (Indy's `OnCommandX` properties) and what they return.
//!
//! Indy's `var` out-parameters (`Accept`, `ToForward`, `CustomError`) become return values.
//! Every closure is `Send + Sync + 'static`: it runs on many connection threads at once.
//!
//! Assigned inline, `Some(Box::new(|thread, rcpt| ...))`, a closure's parameter types are
//! inferred. One kept in a `let` first needs them written out, or the compiler reports
//! "implementation of `Fn` is not general enough":
//!
//! ```
//! use indy_smtp::{address::RcptTo, RcptAction, SmtpServer, SmtpServerThread};
//! let rcpt = |_: &mut SmtpServerThread, _: &mut RcptTo| RcptAction::Accept;
//! let mut server = SmtpServer::new();
//! server.on_command_rcpt = Some(Box::new(rcpt));
//! ```

use crate::address::{MailFrom, RcptTo};
use crate::message::Message;
use crate::raw::RawStream;
use crate::reply::Reply;
use crate::thread::SmtpServerThread;

/// The answer of `on_command_mail` (Indy's `THasAddress2` with `Accept`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailAction {
    /// `250 2.1.0`: the sender is accepted and stored in `SmtpServerThread::from`.
    Accept,
    /// `550 5.7.1` with `messages.rcpt_replies.address_error`.
    Reject,
    /// This reply instead; the sender is accepted only if it is positive (2xx).
    Reply(Reply),
}

/// The answer of `on_command_rcpt` (Indy's `THasAddress`: `Accept`, `ToForward`, `CustomError`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RcptAction {
    /// `250 2.1.5`: the recipient is added to `rcpt_list`.
    Accept,
    /// `251 2.1.5` "will forward" (RFC 5321 §3.4): added to `rcpt_list`.
    Forward,
    /// `550 5.1.1` with `messages.rcpt_replies.address_error`; not added.
    Reject,
    /// This reply instead (Indy's `CustomError`); the recipient is added only if it is
    /// positive (2xx).
    Reply(Reply),
}

/// `check_user` (Indy's `TUserHandler`): `(thread, username, password)` → accepted. The
/// thread is mutable, as Indy's was, so the check can keep what it looked up about the user
/// in `thread.data`.
pub type CheckUserHandler = Box<dyn Fn(&mut SmtpServerThread, &str, &str) -> bool + Send + Sync>;

/// `credentials`: the secret of a user, for CRAM-MD5 (RFC 2195), which needs the password
/// itself; also used to check PLAIN and LOGIN when `check_user` is not set.
pub type CredentialsHandler = Box<dyn Fn(&SmtpServerThread, &str) -> Option<String> + Send + Sync>;

/// `on_command_mail`: may read and claim parameters (`MailFrom::claim`) or rewrite the address.
pub type MailHandler =
    Box<dyn Fn(&mut SmtpServerThread, &mut MailFrom) -> MailAction + Send + Sync>;

/// `on_command_rcpt`: called once per recipient.
pub type RcptHandler = Box<dyn Fn(&mut SmtpServerThread, &mut RcptTo) -> RcptAction + Send + Sync>;

/// `on_receive_raw`: the message as a stream (rewound, or live from the connection with
/// `RawStreamType::Direct`); the envelope is on the thread. `Err(reply)` refuses the message
/// with that reply (Indy's `CustomError`).
pub type ReceiveRawHandler =
    Box<dyn Fn(&mut SmtpServerThread, &mut RawStream<'_>) -> Result<(), Reply> + Send + Sync>;

/// `on_receive_message` and `on_receive_message_parsed`.
pub type ReceiveMessageHandler =
    Box<dyn Fn(&mut SmtpServerThread, &mut Message) -> Result<(), Reply> + Send + Sync>;

/// `on_connect`: called before the greeting; `Err(reply)` sends that reply instead of the
/// greeting. A `5xx` such as `554` (RFC 5321 §3.1, a blocked address) keeps the connection
/// open until the client's QUIT, answering anything else `503`, as §3.1 requires; a client
/// that sends `limits.max_bad_commands` commands instead is closed with `421`. A `421` (a
/// temporary refusal, §3.8) or a `521` (RFC 7504: does not accept mail) closes at once; a
/// 2xx or 3xx, which refuses nothing, is sent as `421`. Behind a
/// proxy ([`SmtpServer::proxy_protocol`](crate::SmtpServer::proxy_protocol)) it runs after
/// the PROXY header, so `thread.peer_addr` is the client's.
pub type ConnectHandler = Box<dyn Fn(&mut SmtpServerThread) -> Result<(), Reply> + Send + Sync>;

/// `on_before_command_handler` (Indy's `OnBeforeCommandHandler`): a command line was read and
/// its handler is about to run; the line as received, without its line end (unknown and
/// malformed commands too, not lines read by a handler such as AUTH's responses, nor lines
/// refused before any handler: over the line limit, or ending in a bare LF under
/// `BareNewlinePolicy::Reject`), except that an AUTH initial response (credentials) is
/// replaced by `*`. For logging and auditing
/// every command in one place.
pub type BeforeCommandHandler = Box<dyn Fn(&SmtpServerThread, &str) + Send + Sync>;

/// `on_after_command_handler` (Indy's `OnAfterCommandHandler`): the handler of the command line
/// has run, whatever its outcome. For DATA that is after the `354`: the message and its reply
/// come later and reach the receive events.
pub type AfterCommandHandler = Box<dyn Fn(&SmtpServerThread) + Send + Sync>;

/// `on_disconnect`: called once when a session ends, whatever the reason.
pub type DisconnectHandler = Box<dyn Fn(&SmtpServerThread) + Send + Sync>;

/// `on_exception`: a handler panicked (`"handler panicked: "` and the panic message) or a
/// command handler returned an error of its own, not the connection's (`"handler for VERB
/// failed: "` and the error, e.g. a file it could not read); the session answered
/// `451 4.3.0` (inside message data: `421 4.3.0` and closed), and the server goes on. The
/// failed command is undone (recipients it added are dropped, a MAIL opens no transaction)
/// and the transaction before it goes on, unless the handler had already answered it with a
/// `2xx`: what the client was told it accepted stands. A message's failed DATA or BDAT ends
/// its transaction, as any reply to the message does.
///
/// An `Err(reply)` from a receive event is a reply, not an exception, and does not come here,
/// even when it was made by `?` from an `io::Error` (`451 4.3.0`, logged at error level): an
/// application that wants to be told of storage failures reports them in the event itself.
pub type ExceptionHandler = Box<dyn Fn(&SmtpServerThread, &str) + Send + Sync>;
