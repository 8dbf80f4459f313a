//! A client session's state (Indy's `TIdSMTPServerThread`) and the [`Context`] that command
//! handlers get.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;

use crate::address::{MailFrom, RcptTo};
use crate::connection::{Connection, LineStatus};
use crate::error::{Error, Result};
use crate::raw::Spool;
use crate::reply::{fill_template, Reply};
use crate::server::{Shared, SmtpServer};

/// Where a session stands in the mail transaction (Indy's `TIdSMTPState`), derived from the
/// session's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpState {
    /// No HELO/EHLO yet.
    None,
    /// Greeted, no transaction open.
    Helo,
    /// MAIL accepted, no recipient yet.
    Mail,
    /// At least one recipient accepted.
    Rcpt,
}

/// What is known about an established TLS session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version, e.g. `TLSv1.3`.
    pub protocol_version: String,
    /// The negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The server name the client asked for (SNI), if any.
    pub sni: Option<String>,
}

/// One client session (Indy's `TIdSMTPServerThread`): the envelope, the greeting and login
/// state, addresses, and a slot for the application's own data. Events get it `&mut`.
pub struct SmtpServerThread {
    /// The accepted sender of the open transaction (Indy's `From`); `None` outside one.
    pub from: Option<MailFrom>,
    /// The accepted recipients of the open transaction (Indy's `RCPTList`).
    pub rcpt_list: Vec<RcptTo>,
    /// HELO or EHLO was accepted.
    pub helo: bool,
    /// EHLO was accepted (the extensions are on).
    pub ehlo: bool,
    /// The argument of the last HELO/EHLO.
    pub helo_name: String,
    /// The authenticated user name (RFC 4954 authcid); empty before a successful AUTH.
    pub username: String,
    /// A successful AUTH happened (Indy's `LoggedIn`).
    pub logged_in: bool,
    /// The client's address.
    pub peer_addr: SocketAddr,
    /// The server address the client connected to.
    pub local_addr: SocketAddr,
    /// A number unique among this server's sessions, for logs.
    pub session_id: u64,
    /// TLS details when the connection is encrypted.
    pub tls: Option<TlsInfo>,
    /// The application's own per-session data (the fields of a custom Indy `ThreadClass`);
    /// [`data_as`](Self::data_as) and [`data_as_mut`](Self::data_as_mut) read it as its type.
    pub data: Option<Box<dyn Any + Send>>,
    pub(crate) bad_commands: u32,
    pub(crate) auth_failures: u32,
    pub(crate) transactions: usize,
    /// BDAT chunks received so far in this transaction (RFC 3030).
    pub(crate) bdat: Option<BdatState>,
    /// The transaction was refused mid-BDAT; later chunks are read and dropped.
    pub(crate) bdat_failed: bool,
    /// `on_connect` answered `554` in place of the greeting: only QUIT is served now
    /// (RFC 5321 §3.1).
    pub(crate) refused: bool,
}

/// The chunks of a BDAT transaction.
pub(crate) struct BdatState {
    pub(crate) spool: Spool,
    pub(crate) size: u64,
    pub(crate) too_large: bool,
}

impl SmtpServerThread {
    pub(crate) fn new(peer_addr: SocketAddr, local_addr: SocketAddr, session_id: u64) -> Self {
        SmtpServerThread {
            from: None,
            rcpt_list: Vec::new(),
            helo: false,
            ehlo: false,
            helo_name: String::new(),
            username: String::new(),
            logged_in: false,
            peer_addr,
            local_addr,
            session_id,
            tls: None,
            data: None,
            bad_commands: 0,
            auth_failures: 0,
            transactions: 0,
            bdat: None,
            bdat_failed: false,
            refused: false,
        }
    }

    /// The transaction state, derived from `helo`, `from` and `rcpt_list`.
    pub fn state(&self) -> SmtpState {
        match (&self.from, self.rcpt_list.is_empty()) {
            (None, _) if self.helo => SmtpState::Helo,
            (None, _) => SmtpState::None,
            (Some(_), true) => SmtpState::Mail,
            (Some(_), false) => SmtpState::Rcpt,
        }
    }

    /// The sender's address of this transaction (`""` for the null reverse-path `<>`);
    /// `None` before MAIL.
    pub fn from_address(&self) -> Option<&str> {
        self.from.as_ref().map(|from| from.address.as_str())
    }

    /// The recipients' addresses, in order.
    pub fn rcpt_addresses(&self) -> Vec<&str> {
        self.rcpt_list.iter().map(|r| r.address.as_str()).collect()
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The `Received:` header field (RFC 5321 §4.4) for this transaction, received now: see
    /// [`trace::received`](crate::trace::received). `by` is the receiving host's name, `id`
    /// an optional identifier of the message.
    pub fn received_header(&self, by: &str, id: Option<&str>) -> String {
        crate::trace::received(self, by, id, std::time::SystemTime::now())
    }

    /// The application's data as a `T`; `None` when there is none or it is another type.
    ///
    /// ```
    /// # use indy_smtp::SmtpServer;
    /// struct Account { id: u32 }
    /// let mut server = SmtpServer::new();
    /// server.check_user = Some(Box::new(|thread, user, password| {
    ///     let ok = user == "alice" && password == "secret";
    ///     if ok {
    ///         thread.data = Some(Box::new(Account { id: 7 }));
    ///     }
    ///     ok
    /// }));
    /// server.on_command_mail = Some(Box::new(|thread, _from| {
    ///     let id = thread.data_as::<Account>().map(|account| account.id);
    ///     log::info!("MAIL from account {id:?}");
    ///     indy_smtp::MailAction::Accept
    /// }));
    /// ```
    pub fn data_as<T: Any>(&self) -> Option<&T> {
        self.data.as_deref()?.downcast_ref()
    }

    /// [`data_as`](Self::data_as), mutable.
    pub fn data_as_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.data.as_deref_mut()?.downcast_mut()
    }

    /// Ends the open transaction (RFC 5321 §4.1.1.5 RSET, and after every DATA, §4.1.1.4);
    /// the greeting and login stay.
    pub fn reset_transaction(&mut self) {
        self.from = None;
        self.rcpt_list.clear();
        self.bdat = None;
        self.bdat_failed = false;
    }

    /// Back to the state right after connecting (RFC 3207 §4.2 after STARTTLS).
    pub(crate) fn reset_session(&mut self) {
        self.reset_transaction();
        self.helo = false;
        self.ehlo = false;
        self.helo_name.clear();
        self.username.clear();
        self.logged_in = false;
    }
}

impl fmt::Debug for SmtpServerThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpServerThread")
            .field("session_id", &self.session_id)
            .field("peer_addr", &self.peer_addr)
            .field("state", &self.state())
            .field("helo_name", &self.helo_name)
            .field("username", &self.username)
            .field("logged_in", &self.logged_in)
            .field("from", &self.from)
            .field("rcpt_list", &self.rcpt_list)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// What a command handler works with: the session state, the server's settings, and the
/// connection (to reply and, for exchanges like AUTH, to read lines).
pub struct Context<'a> {
    /// The session (Indy's `ASender.Thread`).
    pub thread: &'a mut SmtpServerThread,
    pub(crate) shared: &'a Shared,
    pub(crate) conn: &'a mut Connection,
    pub(crate) close: bool,
    /// The session loop called the untouched built-in handler: DATA may answer 354 and leave
    /// the message for the loop to read once it arrives, so the session can be parked while
    /// the client waits for the 354 (a handler wrapping the built-in one gets it done inline).
    pub(crate) may_defer: bool,
    /// What the loop must do before reading the next command line.
    pub(crate) pending: Option<Pending>,
    /// Replies may keep UTF-8: the command runs within an SMTPUTF8 transaction (so the reply
    /// to its message too, sent once the transaction is reset), or it declared SMTPUTF8
    /// itself (RFC 6531 §3.7.4.2: VRFY and EXPN; a MAIL, accepted or not).
    pub(crate) utf8: bool,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("thread", &self.thread)
            .field("tls", &self.is_tls())
            .finish_non_exhaustive()
    }
}

/// Work a handler left for the session loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// DATA was answered 354; the message comes next (RFC 5321 §4.1.1.4).
    DataBody,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        thread: &'a mut SmtpServerThread,
        shared: &'a Shared,
        conn: &'a mut Connection,
    ) -> Self {
        let utf8 = thread.from.as_ref().is_some_and(|from| from.smtputf8);
        Context {
            thread,
            shared,
            conn,
            close: false,
            may_defer: false,
            pending: None,
            utf8,
        }
    }

    /// The server's settings and events.
    pub fn server(&self) -> &'a SmtpServer {
        &self.shared.config
    }

    /// Sends a reply (buffered; it goes out before the server next waits for input). Its text
    /// goes out as US-ASCII (RFC 5321 §4.2), other characters as `?`, except where RFC 6531
    /// lets it be UTF-8: within a transaction whose MAIL carried SMTPUTF8 (up to the reply to
    /// its message), and for a MAIL, VRFY or EXPN that carries the SMTPUTF8 parameter.
    pub fn reply(&mut self, reply: Reply) -> Result<()> {
        let utf8 = self.utf8 || self.thread.from.as_ref().is_some_and(|from| from.smtputf8);
        self.conn.reply_text(&reply, utf8)
    }

    /// Sends a reply built from a template of [`SmtpMessages`](crate::SmtpMessages): `%s` is
    /// replaced by `arg`, `%h` by the host name.
    pub fn reply_with(
        &mut self,
        code: u16,
        enhanced: &str,
        template: &str,
        arg: &str,
    ) -> Result<()> {
        let text = fill_template(template, arg, &self.server().hostname);
        self.reply(Reply::new(code, text).with_enhanced(enhanced))
    }

    /// Reads one line from the client (for exchanges such as AUTH), without its line end, under
    /// the command timeout and line limit. Pending replies are sent first. A line over the
    /// limit is [`Error::LineTooLong`]: a handler that returns it with `?` gets the client a
    /// `500 5.5.6`, and the session goes on.
    pub fn read_line(&mut self) -> Result<String> {
        let limits = &self.server().limits;
        self.conn.set_read_timeout(limits.command_timeout)?;
        let mut line = Vec::new();
        match self.conn.read_line(limits.max_line_length, &mut line)? {
            LineStatus::Line { .. } => Ok(String::from_utf8_lossy(&line).into_owned()),
            LineStatus::TooLong => Err(Error::LineTooLong),
        }
    }

    /// Closes the connection once this command's replies are sent.
    pub fn close(&mut self) {
        self.close = true;
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.thread.tls.is_some()
    }
}
