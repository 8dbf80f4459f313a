//! `SmtpServer`: Indy's `TIdSMTPServer` properties and events, and `start()`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::command::{CommandHandler, CommandHandlers};
pub use crate::config::{BareNewlinePolicy, Extensions, Limits, RawStreamType, ReceiveMode};
use crate::error::{Error, Result};
use crate::events::*;
use crate::listener::{self, ServerHandle};
use crate::messages::SmtpMessages;
use crate::proxy::ProxyProtocol;

/// An SMTP server (Indy's `TIdSMTPServer`): set the properties and assign the events, then
/// [`start`](SmtpServer::start) it. Field names follow Indy's properties in snake case.
///
/// ```no_run
/// use indy_smtp::{SmtpServer, RcptAction};
/// use std::io::Read;
///
/// let mut server = SmtpServer::new();
/// server.bindings = vec!["127.0.0.1:2525".parse().unwrap()];
/// server.on_command_rcpt = Some(Box::new(|_thread, rcpt| {
///     if rcpt.address.ends_with("@example.com") { RcptAction::Accept } else { RcptAction::Reject }
/// }));
/// server.on_receive_raw = Some(Box::new(|thread, stream| {
///     let mut data = Vec::new();
///     stream.read_to_end(&mut data).map_err(|_| indy_smtp::Reply::new(451, "read error"))?;
///     println!("{} bytes for {:?}", data.len(), thread.rcpt_addresses());
///     Ok(())
/// }));
/// let handle = server.start().expect("listen");
/// handle.stop();
/// ```
#[non_exhaustive]
pub struct SmtpServer {
    /// Port for the default binding when `bindings` and `tls_bindings` are both empty (Indy's
    /// `DefaultPort`). 25.
    pub default_port: u16,
    /// Addresses to listen on (Indy's `Bindings`); when both this and `tls_bindings` are
    /// empty, `0.0.0.0:default_port`.
    pub bindings: Vec<SocketAddr>,
    /// Addresses that speak TLS from the first byte (RFC 8314 §3, port 465).
    pub tls_bindings: Vec<SocketAddr>,
    /// The name the server gives itself in the greeting and EHLO (RFC 5321 §4.1.1.1);
    /// default: the machine's host name.
    pub hostname: String,
    /// Answer EHLO (Indy's `AllowEHLO`). True: Indy 9's False was only Delphi's zero value,
    /// and without EHLO no extension can work.
    pub allow_ehlo: bool,
    /// MAIL is refused (530 5.7.0) until the client has logged in (Indy's `AuthMode`). On a
    /// server with TLS, PLAIN and LOGIN are offered only after STARTTLS (see
    /// `allow_insecure_auth`), and a cleartext client that has no mechanism yet is told to
    /// start TLS first; `require_tls` makes that rule for every client.
    pub auth_mode: bool,
    /// MessageParsed: keep header values as received, no RFC 2047 or MIME decoding.
    pub no_decode: bool,
    /// MessageParsed: carried on the `Message` for re-sending, as Indy does.
    pub no_encode: bool,
    /// Where `ReceiveMode::Raw` keeps the data (Indy's `RawStreamType`). `File`.
    pub raw_stream_type: RawStreamType,
    /// How DATA reaches the application (Indy's `ReceiveMode`). `Raw`.
    pub receive_mode: ReceiveMode,
    /// Every reply text (Indy's `Messages`).
    pub messages: SmtpMessages,
    /// The verb table (Indy's `CommandHandlers`).
    pub command_handlers: CommandHandlers,
    /// When false every verb goes to `on_no_command_handler` (Indy's `CommandHandlersEnabled`).
    pub command_handlers_enabled: bool,
    /// Simultaneous sessions; the next connection gets `421` and is closed; 0 = unlimited
    /// (Indy's `MaxConnections`).
    pub max_connections: usize,
    /// The ESMTP extensions to offer.
    pub extensions: Extensions,
    /// Limits and timeouts.
    pub limits: Limits,
    /// What to do with a bare CR or LF in DATA (RFC 5321 §2.3.8). `Normalize`.
    pub bare_newline_policy: BareNewlinePolicy,
    /// Stack size of each session thread. 128 KiB: the deepest built-in path (a TLS handshake,
    /// MessageParsed on hostile MIME nesting) fits with room to spare, and only touched pages
    /// cost memory. Raise it if your own handlers need deep stacks.
    pub thread_stack_size: usize,
    /// Finished session threads kept parked for the next connection (Indy's
    /// `TIdThreadMgrPool.PoolSize`), so a connection does not pay for a thread start; 0 = a new
    /// thread for every connection. 32.
    pub thread_pool_size: usize,
    /// Idle sessions give their thread back while they wait for the client (Linux, plain
    /// TCP): the socket waits in an epoll set and one thread serves whichever session is
    /// ready, so an idle connection costs no thread and a busy server no wake-up per command.
    /// Handlers still run on pool threads and may block: a session that blocks gets a thread of
    /// its own again. Off = Indy's model, one thread per connection for its whole life. `true`.
    pub park_idle_sessions: bool,
    /// The listen(2) backlog, so a burst of connects is not dropped (the kernel caps it at
    /// `net.core.somaxconn`). 4096.
    pub listen_backlog: i32,
    /// How long `stop()` lets transactions in flight finish before closing their connections.
    /// 30 s. A handler still running then is waited for (see
    /// [`ServerHandle::stop`](crate::ServerHandle::stop)).
    pub stop_timeout: Duration,
    /// TLS settings for STARTTLS and `tls_bindings`. An idle TLS session is parked like a
    /// plain one; the handshake holds a thread (at most `limits.tls_handshake_timeout`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// MAIL and AUTH need STARTTLS first (RFC 3207 §4: 530 5.7.0).
    pub require_tls: bool,
    /// Offer and accept PLAIN and LOGIN on unencrypted connections even when TLS is
    /// configured (RFC 4954 §4 advises against it).
    pub allow_insecure_auth: bool,
    /// Every connection comes through a proxy that starts it with a PROXY protocol header
    /// (HAProxy's v1 or v2), which gives the client's real address: see [`crate::proxy`].
    /// On every binding; `None`.
    pub proxy_protocol: Option<ProxyProtocol>,

    /// Checks a login (Indy's `CheckUser`).
    pub check_user: Option<CheckUserHandler>,
    /// Looks up a user's secret, for CRAM-MD5 (and PLAIN/LOGIN without `check_user`).
    pub credentials: Option<CredentialsHandler>,
    /// Replaces the built-in AUTH exchange (Indy's `OnCommandAUTH`): the closure conducts it
    /// with [`Context::read_line`](crate::Context::read_line) and sets `ctx.thread.logged_in`
    /// and `username` itself. As in Indy 9 it is called only after EHLO; AUTH before EHLO,
    /// after a successful login or inside a transaction is answered `503 5.5.1` first
    /// (RFC 4954 §4). A `535` it sends counts towards `limits.max_auth_failures`. EHLO
    /// advertises the `AUTH ...` line the application puts in `extensions.extra`, or else
    /// `AUTH LOGIN` as Indy 9 did (hidden on cleartext, like the built-in LOGIN, when TLS is
    /// configured and `allow_insecure_auth` is off). A reply without an enhanced code gets
    /// RFC 4954 §6's for its code (`235 2.7.0`, `535 5.7.8`), or its class's.
    pub on_command_auth: Option<CommandHandler>,
    /// EXPN (Indy's `OnCommandEXPN`); unassigned: `502 5.5.1`.
    pub on_command_expn: Option<CommandHandler>,
    /// HELP (Indy's `OnCommandHELP`); unassigned: `502 5.5.1`.
    pub on_command_help: Option<CommandHandler>,
    /// MAIL's sender check (Indy's `OnCommandMAIL`); unassigned: accepted.
    pub on_command_mail: Option<MailHandler>,
    /// RCPT's recipient check (Indy's `OnCommandRCPT`); unassigned: accepted.
    pub on_command_rcpt: Option<RcptHandler>,
    /// SAML (Indy's `OnCommandSAML`); unassigned: `502 5.5.1`.
    pub on_command_saml: Option<CommandHandler>,
    /// SEND (Indy's `OnCommandSEND`); unassigned: `502 5.5.1`.
    pub on_command_send: Option<CommandHandler>,
    /// SOML (Indy's `OnCommandSOML`); unassigned: `502 5.5.1`.
    pub on_command_soml: Option<CommandHandler>,
    /// TURN (Indy's `OnCommandTURN`), only for logged-in clients; unassigned: `502 5.5.1`.
    pub on_command_turn: Option<CommandHandler>,
    /// VRFY (Indy's `OnCommandVRFY`); unassigned: `252 2.5.0`.
    pub on_command_vrfy: Option<CommandHandler>,
    /// The message in `ReceiveMode::Raw` (Indy's `OnReceiveRaw`).
    pub on_receive_raw: Option<ReceiveRawHandler>,
    /// The message in `ReceiveMode::Message` (Indy's `OnReceiveMessage`).
    pub on_receive_message: Option<ReceiveMessageHandler>,
    /// The message in `ReceiveMode::MessageParsed` (Indy's `OnReceiveMessageParsed`). A message
    /// that cannot be parsed at all arrives unparsed (`Message::is_parsed()` is false), never
    /// refused: its raw bytes are always there.
    pub on_receive_message_parsed: Option<ReceiveMessageHandler>,
    /// A client connected (Indy's `OnConnect`), before the greeting.
    pub on_connect: Option<ConnectHandler>,
    /// A session ended (Indy's `OnDisconnect`).
    pub on_disconnect: Option<DisconnectHandler>,
    /// A handler panicked or a command handler returned an error of its own (Indy's
    /// `OnException`); see [`ExceptionHandler`](crate::ExceptionHandler).
    pub on_exception: Option<ExceptionHandler>,
    /// A verb with no handler (Indy's `OnNoCommandHandler`); unassigned: `500 5.5.2`.
    pub on_no_command_handler: Option<CommandHandler>,
    /// Every command line, before its handler (Indy's `OnBeforeCommandHandler`).
    pub on_before_command_handler: Option<BeforeCommandHandler>,
    /// After every command line's handler (Indy's `OnAfterCommandHandler`).
    pub on_after_command_handler: Option<AfterCommandHandler>,
}

impl Default for SmtpServer {
    fn default() -> Self {
        SmtpServer::new()
    }
}

/// The settings, and which events are assigned (closures have no `Debug` of their own).
impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let events: Vec<&str> = [
            ("check_user", self.check_user.is_some()),
            ("credentials", self.credentials.is_some()),
            ("on_command_auth", self.on_command_auth.is_some()),
            ("on_command_expn", self.on_command_expn.is_some()),
            ("on_command_help", self.on_command_help.is_some()),
            ("on_command_mail", self.on_command_mail.is_some()),
            ("on_command_rcpt", self.on_command_rcpt.is_some()),
            ("on_command_saml", self.on_command_saml.is_some()),
            ("on_command_send", self.on_command_send.is_some()),
            ("on_command_soml", self.on_command_soml.is_some()),
            ("on_command_turn", self.on_command_turn.is_some()),
            ("on_command_vrfy", self.on_command_vrfy.is_some()),
            ("on_receive_raw", self.on_receive_raw.is_some()),
            ("on_receive_message", self.on_receive_message.is_some()),
            (
                "on_receive_message_parsed",
                self.on_receive_message_parsed.is_some(),
            ),
            ("on_connect", self.on_connect.is_some()),
            ("on_disconnect", self.on_disconnect.is_some()),
            ("on_exception", self.on_exception.is_some()),
            (
                "on_no_command_handler",
                self.on_no_command_handler.is_some(),
            ),
            (
                "on_before_command_handler",
                self.on_before_command_handler.is_some(),
            ),
            (
                "on_after_command_handler",
                self.on_after_command_handler.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        f.debug_struct("SmtpServer")
            .field("bindings", &self.bindings)
            .field("tls_bindings", &self.tls_bindings)
            .field("hostname", &self.hostname)
            .field("receive_mode", &self.receive_mode)
            .field("raw_stream_type", &self.raw_stream_type)
            .field("auth_mode", &self.auth_mode)
            .field("max_connections", &self.max_connections)
            .field("extensions", &self.extensions)
            .field("limits", &self.limits)
            .field("command_handlers", &self.command_handlers)
            .field("has_tls", &self.has_tls())
            .field("events", &events)
            .finish_non_exhaustive()
    }
}

impl SmtpServer {
    /// A server with Indy's defaults where they are sound and RFC 5321 defaults elsewhere.
    pub fn new() -> Self {
        SmtpServer {
            default_port: 25,
            bindings: Vec::new(),
            tls_bindings: Vec::new(),
            hostname: local_hostname(),
            allow_ehlo: true,
            auth_mode: false,
            no_decode: false,
            no_encode: false,
            raw_stream_type: RawStreamType::File,
            receive_mode: ReceiveMode::Raw,
            messages: SmtpMessages::default(),
            command_handlers: CommandHandlers::smtp(),
            command_handlers_enabled: true,
            max_connections: 0,
            extensions: Extensions::default(),
            limits: Limits::default(),
            bare_newline_policy: BareNewlinePolicy::Normalize,
            thread_stack_size: 128 * 1024,
            thread_pool_size: 32,
            park_idle_sessions: true,
            listen_backlog: 4096,
            stop_timeout: Duration::from_secs(30),
            #[cfg(feature = "tls")]
            tls: None,
            require_tls: false,
            allow_insecure_auth: false,
            proxy_protocol: None,
            check_user: None,
            credentials: None,
            on_command_auth: None,
            on_command_expn: None,
            on_command_help: None,
            on_command_mail: None,
            on_command_rcpt: None,
            on_command_saml: None,
            on_command_send: None,
            on_command_soml: None,
            on_command_turn: None,
            on_command_vrfy: None,
            on_receive_raw: None,
            on_receive_message: None,
            on_receive_message_parsed: None,
            on_connect: None,
            on_disconnect: None,
            on_exception: None,
            on_no_command_handler: None,
            on_before_command_handler: None,
            on_after_command_handler: None,
        }
    }

    /// Starts listening and serving (Indy's `Active := True`). Fails before listening when the
    /// configuration cannot work: no receive event for the mode, `auth_mode` without any way
    /// to check a login, TLS wanted but not configured, a command line limit under RFC 5321's
    /// 512 octets, a handler under a verb no command can name, `proxy_protocol` trusting no
    /// address, or an address that cannot be bound (see [`Error`]).
    pub fn start(self) -> Result<ServerHandle> {
        self.validate()?;
        self.warn_unused_receive_events();
        listener::start(self)
    }

    /// A receive event of another mode is never called: say so once, as it is an easy slip
    /// (setting `on_receive_message_parsed` and forgetting `receive_mode`).
    fn warn_unused_receive_events(&self) {
        let modes = [
            ReceiveMode::Raw,
            ReceiveMode::Message,
            ReceiveMode::MessageParsed,
        ];
        for mode in modes {
            if mode != self.receive_mode && self.has_receive_event(mode) {
                log::warn!(
                    "{} is set but receive_mode is {:?}: it will not be called",
                    mode.event_name(),
                    self.receive_mode
                );
            }
        }
    }

    /// Whether the receive event `mode` calls is set.
    fn has_receive_event(&self, mode: ReceiveMode) -> bool {
        match mode {
            ReceiveMode::Raw => self.on_receive_raw.is_some(),
            ReceiveMode::Message => self.on_receive_message.is_some(),
            ReceiveMode::MessageParsed => self.on_receive_message_parsed.is_some(),
        }
    }

    fn validate(&self) -> Result<()> {
        if !self.has_receive_event(self.receive_mode) {
            return Err(Error::NoReceiveHandler(self.receive_mode));
        }
        if self.auth_mode && !self.can_authenticate() {
            return Err(Error::NoCredentialCheck);
        }
        if (!self.tls_bindings.is_empty() || self.require_tls) && !self.has_tls() {
            return Err(Error::NoTlsConfig);
        }
        if self.limits.max_line_length < crate::config::MIN_LINE_LENGTH {
            return Err(Error::LineLimitTooSmall(self.limits.max_line_length));
        }
        if let Some(verb) = self.command_handlers.unreachable_verb() {
            return Err(Error::BadVerb(verb.to_string()));
        }
        if self
            .proxy_protocol
            .as_ref()
            .is_some_and(|p| p.trusted.is_empty())
        {
            return Err(Error::NoTrustedProxy);
        }
        Ok(())
    }

    /// Whether any way to check a login is configured.
    pub(crate) fn can_authenticate(&self) -> bool {
        // A replaced AUTH in the table does its own checking, like `on_command_auth`.
        let replaced_auth = self.command_handlers_enabled
            && self
                .command_handlers
                .lookup("AUTH")
                .is_some_and(|(_, builtin)| !builtin);
        self.check_user.is_some()
            || self.credentials.is_some()
            || self.on_command_auth.is_some()
            || replaced_auth
    }

    /// Whether TLS is configured.
    pub fn has_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        {
            self.tls.is_some()
        }
        #[cfg(not(feature = "tls"))]
        {
            false
        }
    }

    /// A text of `messages` with `%h` filled in, for a reply that has no `%s` value.
    pub(crate) fn text(&self, template: &str) -> String {
        crate::reply::fill_template(template, "", &self.hostname)
    }

    /// The addresses `start` will bind.
    pub(crate) fn plain_bindings(&self) -> Vec<SocketAddr> {
        if self.bindings.is_empty() && self.tls_bindings.is_empty() {
            vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                self.default_port,
            )]
        } else {
            self.bindings.clone()
        }
    }
}

/// The host name for the greeting: the kernel's, else `localhost`.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// What every session of a running server shares.
pub(crate) struct Shared {
    pub(crate) config: SmtpServer,
    pub(crate) runtime: listener::Runtime,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::TlsAcceptor>,
}

impl Shared {
    pub(crate) fn new(config: SmtpServer) -> Arc<Shared> {
        #[cfg(feature = "tls")]
        let tls = config.tls.clone().map(crate::tls::TlsAcceptor::new);
        let runtime = listener::Runtime::new(config.park_idle_sessions);
        Arc::new(Shared {
            config,
            runtime,
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// The configuration back, for another start; with the TLS configuration in use now
    /// (`reload_tls` may have replaced the one it started with).
    pub(crate) fn into_config(self) -> SmtpServer {
        #[allow(unused_mut)]
        let mut config = self.config;
        #[cfg(feature = "tls")]
        if let Some(acceptor) = &self.tls {
            config.tls = Some(acceptor.current());
        }
        config
    }
}
