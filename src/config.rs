//! Settings beside Indy's properties: ESMTP extensions, limits and timeouts, and the enums of
//! the receive path.

use std::time::{Duration, Instant};

/// RFC 5321 §4.5.3.1.4: a command line of 512 octets (CRLF included) must be accepted.
pub(crate) const MIN_LINE_LENGTH: usize = 512;

/// The longest wait a deadline is set for. A longer timeout (`Duration::MAX` for "never", say)
/// waits this long instead of overflowing `Instant`, which would panic.
const LONGEST_WAIT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `start + wait`, with waits over ten years cut to ten years.
pub(crate) fn deadline(start: Instant, wait: Duration) -> Instant {
    start + wait.min(LONGEST_WAIT)
}

pub use crate::data::BareNewlinePolicy;

/// How DATA reaches the application (Indy's `TIdSMTPReceiveMode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReceiveMode {
    /// `on_receive_raw` gets the message bytes as a stream (Indy's `rmRaw`, its default).
    #[default]
    Raw,
    /// `on_receive_message` gets a [`Message`](crate::Message) split into headers and body,
    /// not parsed (Indy's `rmMessage`).
    Message,
    /// `on_receive_message_parsed` gets a [`Message`](crate::Message) parsed with mailparse,
    /// with the BCC list reconciled from the envelope (Indy's `rmMessageParsed`).
    MessageParsed,
}

impl ReceiveMode {
    /// The receive event this mode calls.
    pub(crate) fn event_name(self) -> &'static str {
        match self {
            ReceiveMode::Raw => "on_receive_raw",
            ReceiveMode::Message => "on_receive_message",
            ReceiveMode::MessageParsed => "on_receive_message_parsed",
        }
    }
}

/// Where `ReceiveMode::Raw` keeps the data before the handler sees it (Indy's `TIdStreamType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RawStreamType {
    /// Spooled to an anonymous temporary file, then handed over rewound (Indy's `stFileStream`,
    /// its default): memory stays flat whatever the message size.
    #[default]
    File,
    /// Collected in memory, then handed over rewound (Indy's `stMemoryStream`).
    Memory,
    /// Not stored at all: the handler reads the data from the connection as it arrives,
    /// dot-unstuffed, ending at CRLF.CRLF. The fastest; the 250 still goes out only after the
    /// handler returned `Ok` and the whole message was read without error. A message sent in
    /// BDAT chunks (RFC 3030) is collected first, in a temporary file, and reaches the handler
    /// as [`RawStream::File`](crate::RawStream::File), so a handler must accept both. The
    /// handler must not replace the stream: the rest of the message would go with it, and
    /// the session ends with `421`.
    Direct,
}

/// The ESMTP extensions advertised in the EHLO reply (RFC 5321 §4.1.1.1, RFC 1869); each is
/// advertised and accepted only when on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Extensions {
    /// PIPELINING (RFC 2920). On.
    pub pipelining: bool,
    /// SIZE (RFC 1870), announcing `Limits::max_message_size`. On.
    pub size: bool,
    /// 8BITMIME (RFC 6152). On.
    pub eight_bit_mime: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034, RFC 3463). On.
    pub enhanced_status_codes: bool,
    /// SMTPUTF8 (RFC 6531), needs `eight_bit_mime` (RFC 6531 §3.1: a server offering it MUST
    /// announce 8BITMIME). On.
    pub smtputf8: bool,
    /// CHUNKING, the BDAT verb (RFC 3030). On.
    pub chunking: bool,
    /// BINARYMIME (RFC 3030 §3), needs `chunking`. On.
    pub binary_mime: bool,
    /// DSN (RFC 3461): RET, ENVID, NOTIFY and ORCPT are accepted and handed to the events. On.
    pub dsn: bool,
    /// LIMITS (RFC 9422) announcing `RCPTMAX` and `MAILMAX`. Off.
    pub limits: bool,
    /// Extra EHLO keyword lines for verbs the application added (e.g. `"XCLIENT ADDR NAME"`).
    pub extra: Vec<String>,
}

impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            pipelining: true,
            size: true,
            eight_bit_mime: true,
            enhanced_status_codes: true,
            smtputf8: true,
            chunking: true,
            binary_mime: true,
            dsn: true,
            limits: false,
            extra: Vec::new(),
        }
    }
}

/// Limits and timeouts (RFC 5321 §4.5.3). Each applies per session unless said otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest command line including CRLF (RFC 5321 §4.5.3.1.4 allows no less than 512, and
    /// `start()` refuses less; extensions' parameters need more). Longer lines get
    /// `500 5.5.6` at once. Default 2048.
    pub max_line_length: usize,
    /// Largest message in octets after dot-unstuffing (RFC 1870); 0 = unlimited. Default 10 MiB.
    pub max_message_size: u64,
    /// Recipients per transaction (RFC 5321 §4.5.3.1.8 asks for at least 100); past it
    /// `452 4.5.3`; 0 = unlimited. Default 100.
    pub max_recipients: usize,
    /// Transactions (MAIL commands accepted) per session, RFC 9422 MAILMAX; the next MAIL
    /// gets `452 4.5.3`; 0 = unlimited. Default 0.
    pub max_transactions: usize,
    /// Longest text line in DATA including CRLF (RFC 5321 §4.5.3.1.6: 1000); `None` = no
    /// limit (the default: real mail often breaks it). A longer line refuses the whole message
    /// with `550 5.6.0`, after it has been read to its end.
    pub max_data_line_length: Option<usize>,
    /// Bad commands (syntax errors, over-long lines, unknown or unassigned verbs: 500, 501,
    /// 502, 504, 555) before `421 4.7.0` and close; 0 = unlimited. Default 10. Sequence errors (503) do not count:
    /// with PIPELINING (RFC 2920 §3.1) one refused MAIL turns the rest of its group into 503s.
    pub max_bad_commands: u32,
    /// Failed AUTH attempts before `421 4.7.0` and close; 0 = unlimited. Default 3.
    pub max_auth_failures: u32,
    /// Simultaneous connections from one IP address; 0 = unlimited. Default 0. Behind a
    /// proxy ([`SmtpServer::proxy_protocol`](crate::SmtpServer::proxy_protocol)) the address
    /// is the client's, from the PROXY header, not the proxy's.
    pub max_connections_per_ip: usize,
    /// Waiting for a command (RFC 5321 §4.5.3.2.7: at least 5 minutes). Default 300 s.
    pub command_timeout: Duration,
    /// Waiting for each block of DATA (RFC 5321 §4.5.3.2.5: 3 minutes). Default 180 s.
    pub data_timeout: Duration,
    /// Minimum rate of DATA and of each BDAT chunk in bytes per second, against trickling
    /// clients (Postfix's `smtpd_min_data_rate`): the data's deadline starts `data_timeout`
    /// away, moves a second later per `min_data_rate` octets received, and is never more than
    /// `data_timeout` away, so a fast start cannot buy a long trickle; 0 = off (each read may
    /// wait `data_timeout`). Default 500.
    pub min_data_rate: u64,
    /// How long a STARTTLS or implicit-TLS handshake may take. Default 30 s.
    pub tls_handshake_timeout: Duration,
    /// Wait this long before the greeting and refuse clients that talk first (like Postfix's
    /// pre-greet test; RFC 5321 §4.3.1 says the client waits for the 220): such a client gets
    /// `554` (no enhanced code: there was no EHLO) and is closed. Default: no wait.
    pub greeting_delay: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_length: 2048,
            max_message_size: 10 * 1024 * 1024,
            max_recipients: 100,
            max_transactions: 0,
            max_data_line_length: None,
            max_bad_commands: 10,
            max_auth_failures: 3,
            max_connections_per_ip: 0,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            min_data_rate: 500,
            tls_handshake_timeout: Duration::from_secs(30),
            greeting_delay: None,
        }
    }
}
