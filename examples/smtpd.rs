//! `smtpd`: an SMTP server that stores every accepted message in a Maildir.
//!
//! ```text
//! cargo run --example smtpd -- --listen 127.0.0.1:2525 --maildir ./maildir
//! ```
//!
//! Each message is one file, written in `DIR/tmp` and moved into `DIR/new` before the `250`
//! goes out, holding `X-Peer:`, `X-MailFrom:` and `X-RcptTo:` lines followed by the data as
//! received (dot-unstuffed; a bare LF is stored as CRLF, the default `BareNewlinePolicy`). SIGTERM or SIGINT stops it gracefully (exit 0). Logs go to stderr
//! (`RUST_LOG`, default `info`). `--help` lists the flags; a bad command line exits with 2.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indy_smtp::maildir::{maildir_handler, maildir_message_handler, Maildir};
use indy_smtp::{
    RawStreamType, ReceiveMessageHandler, ReceiveMode, ReceiveRawHandler, Reply, SmtpServer,
};

/// Unnamed files kept ready in the Maildir's `tmp/` ([`Maildir::with_spare_files`]).
const SPARE_FILES: usize = 32;

pub const USAGE: &str = "\
usage: smtpd [FLAGS]

  --listen ADDR            listen on ADDR (repeatable; default 127.0.0.1:2525)
  --maildir DIR            store mail in the Maildir DIR (default ./maildir; tmp/ new/ cur/
                           are created)
  --hostname NAME          the name the server gives itself and uses in Maildir file names
                           (default: the machine's)
  --auth USER:PASS         accept this login for AUTH (repeatable)
  --require-auth           refuse MAIL until the client has logged in (needs --auth)
  --max-connections N      simultaneous sessions, 0 = unlimited (default 0)
  --receive-mode MODE      raw (default: streamed from the socket), message or parsed
  --max-message-size N     largest message in octets, 0 = unlimited (default 10485760)
  --max-recipients N       recipients per message, 0 = unlimited (default 100)
  --timeout SECS           idle time allowed between commands (default 300)
  --tls-cert PEM           certificate chain, with --tls-key: enables STARTTLS; AUTH is then
  --tls-key PEM              only offered after STARTTLS
  --tls-listen ADDR        listen on ADDR with implicit TLS (repeatable; needs the cert and key)
  --discard                accept every message and drop it, storing nothing (for benchmarks)
  --fsync                  flush each message and new/ to disk before the 250 (off by default;
                           with it on, the disk's flush latency bounds messages per second)
  --help                   show this help

Flags taking a value also accept --flag=VALUE. The default --listen applies unless --listen
is given (--tls-listen adds to it). A bad command line (unreadable TLS files included)
exits with status 2, a failure to start (address in use, unwritable Maildir) with 1. SIGTERM or SIGINT stops
gracefully and exits with 0. Logging: RUST_LOG (default info), to stderr.
";

/// The command line, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub listen: Vec<SocketAddr>,
    pub maildir: PathBuf,
    pub hostname: Option<String>,
    pub auth: Vec<(String, String)>,
    pub require_auth: bool,
    pub max_connections: Option<usize>,
    pub receive_mode: ReceiveMode,
    pub max_message_size: Option<u64>,
    pub max_recipients: Option<usize>,
    pub timeout: Option<Duration>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_listen: Vec<SocketAddr>,
    pub discard: bool,
    pub fsync: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            maildir: PathBuf::from("./maildir"),
            hostname: None,
            auth: Vec::new(),
            require_auth: false,
            max_connections: None,
            receive_mode: ReceiveMode::Raw,
            max_message_size: None,
            max_recipients: None,
            timeout: None,
            tls_cert: None,
            tls_key: None,
            tls_listen: Vec::new(),
            discard: false,
            fsync: false,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Box<Options>),
    Help,
}

/// A reason not to run: the message for stderr and the exit status.
#[derive(Debug)]
pub struct Fatal {
    pub status: u8,
    pub message: String,
}

fn usage_error(message: impl Into<String>) -> Fatal {
    Fatal {
        status: 2,
        message: message.into(),
    }
}

/// Parses the arguments after the program name.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Fatal> {
    let mut o = Options::default();
    let mut listen = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(usage_error(format!(
                "not a flag: {}",
                arg.to_string_lossy()
            )));
        };
        let (flag, inline) = match text.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(OsString::from(v))),
            _ => (text.to_string(), None),
        };
        let takes_value = !matches!(
            flag.as_str(),
            "--require-auth" | "--discard" | "--fsync" | "--help"
        );
        if !takes_value && inline.is_some() {
            return Err(usage_error(format!("{flag} takes no value")));
        }
        let repeatable = matches!(flag.as_str(), "--listen" | "--auth" | "--tls-listen");
        if !repeatable {
            if seen.contains(&flag) {
                return Err(usage_error(format!("{flag} given twice")));
            }
            seen.push(flag.clone());
        }
        let mut value = || -> Result<OsString, Fatal> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| usage_error(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--require-auth" => o.require_auth = true,
            "--discard" => o.discard = true,
            "--fsync" => o.fsync = true,
            "--listen" => listen.extend(parse_addr(&flag, &text_value(&flag, value()?)?)?),
            "--tls-listen" => o
                .tls_listen
                .extend(parse_addr(&flag, &text_value(&flag, value()?)?)?),
            "--maildir" => o.maildir = path_value(&flag, value()?)?,
            "--tls-cert" => o.tls_cert = Some(path_value(&flag, value()?)?),
            "--tls-key" => o.tls_key = Some(path_value(&flag, value()?)?),
            "--hostname" => {
                let name = text_value(&flag, value()?)?;
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(usage_error(format!(
                        "--hostname: not a host name: {name:?}"
                    )));
                }
                o.hostname = Some(name);
            }
            "--auth" => {
                let pair = text_value(&flag, value()?)?;
                match pair.split_once(':') {
                    Some((user, pass)) if !user.is_empty() => {
                        o.auth.push((user.to_string(), pass.to_string()))
                    }
                    _ => return Err(usage_error("--auth needs USER:PASS with a non-empty USER")),
                }
            }
            "--receive-mode" => {
                o.receive_mode = match text_value(&flag, value()?)?.as_str() {
                    "raw" => ReceiveMode::Raw,
                    "message" => ReceiveMode::Message,
                    "parsed" => ReceiveMode::MessageParsed,
                    other => {
                        return Err(usage_error(format!(
                            "--receive-mode: {other:?} is not raw, message or parsed"
                        )))
                    }
                }
            }
            "--max-connections" => o.max_connections = Some(number(&flag, value()?)?),
            "--max-message-size" => o.max_message_size = Some(number(&flag, value()?)?),
            "--max-recipients" => o.max_recipients = Some(number(&flag, value()?)?),
            "--timeout" => {
                let secs: u64 = number(&flag, value()?)?;
                if secs == 0 {
                    return Err(usage_error("--timeout must be at least 1 second"));
                }
                o.timeout = Some(Duration::from_secs(secs));
            }
            _ => return Err(usage_error(format!("unknown flag: {flag} (see --help)"))),
        }
    }
    if !listen.is_empty() {
        o.listen = listen;
    }
    if o.tls_cert.is_some() != o.tls_key.is_some() {
        return Err(usage_error("--tls-cert and --tls-key go together"));
    }
    if !o.tls_listen.is_empty() && o.tls_cert.is_none() {
        return Err(usage_error("--tls-listen needs --tls-cert and --tls-key"));
    }
    if o.require_auth && o.auth.is_empty() {
        return Err(usage_error(
            "--require-auth needs at least one --auth USER:PASS",
        ));
    }
    Ok(Command::Run(Box::new(o)))
}

fn text_value(flag: &str, value: OsString) -> Result<String, Fatal> {
    value
        .into_string()
        .map_err(|v| usage_error(format!("{flag}: not valid UTF-8: {}", v.to_string_lossy())))
}

fn path_value(flag: &str, value: OsString) -> Result<PathBuf, Fatal> {
    if value.is_empty() {
        return Err(usage_error(format!("{flag} needs a non-empty path")));
    }
    Ok(PathBuf::from(value))
}

fn number<T: std::str::FromStr>(flag: &str, value: OsString) -> Result<T, Fatal> {
    let text = text_value(flag, value)?;
    text.parse()
        .map_err(|_| usage_error(format!("{flag}: not a non-negative integer: {text:?}")))
}

/// `IP:PORT`, `[IPv6]:PORT`, or `name:PORT` resolved to every address it has.
fn parse_addr(flag: &str, text: &str) -> Result<Vec<SocketAddr>, Fatal> {
    if let Ok(addr) = text.parse() {
        return Ok(vec![addr]);
    }
    match text.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.is_empty() {
                Err(usage_error(format!(
                    "{flag}: {text:?} resolves to no address"
                )))
            } else {
                Ok(addrs)
            }
        }
        Err(_) => Err(usage_error(format!(
            "{flag}: not an address like 127.0.0.1:2525: {text:?}"
        ))),
    }
}

/// Builds the server the options describe, creating the Maildir and loading TLS. Shared with
/// `tests/smtpd.rs`, which runs exactly this configuration.
pub fn build_server(o: &Options) -> Result<SmtpServer, Fatal> {
    let mut server = SmtpServer::new();
    server.bindings = o.listen.clone();
    server.tls_bindings = o.tls_listen.clone();
    if let Some(name) = &o.hostname {
        server.hostname = name.clone();
    }
    if let Some(n) = o.max_connections {
        server.max_connections = n;
    }
    if let Some(n) = o.max_message_size {
        server.limits.max_message_size = n;
    }
    if let Some(n) = o.max_recipients {
        server.limits.max_recipients = n;
    }
    if let Some(t) = o.timeout {
        server.limits.command_timeout = t;
    }
    if !o.auth.is_empty() {
        let users: HashMap<String, String> = o.auth.iter().cloned().collect();
        server.check_user = Some(Box::new(move |_thread, user, pass| {
            users
                .get(user)
                .is_some_and(|p| same_secret(p.as_bytes(), pass.as_bytes()))
        }));
    }
    server.auth_mode = o.require_auth;
    if let (Some(cert), Some(key)) = (&o.tls_cert, &o.tls_key) {
        server.tls = Some(Arc::new(load_tls(cert, key)?));
    }
    server.receive_mode = o.receive_mode;
    // Raw mode streams from the socket into the file: no copy of the message in memory.
    server.raw_stream_type = RawStreamType::Direct;
    if o.discard {
        let raw: ReceiveRawHandler = Box::new(|_thread, stream| {
            stream.discard().map(drop).map_err(|_| {
                Reply::new(451, "Requested action aborted: read error").with_enhanced("4.3.0")
            })
        });
        set_receive_event(&mut server, raw, Box::new(|_thread, _message| Ok(())));
    } else {
        let mut maildir = Maildir::create(&o.maildir)
            .map_err(|e| Fatal {
                status: 1,
                message: format!("cannot create the Maildir {}: {e}", o.maildir.display()),
            })?
            // Files made ahead by a thread of their own: the session thread only writes and
            // links (issue 5, b with the Maildir; BENCHMARKS.md, session 11).
            .with_spare_files(SPARE_FILES);
        if let Some(name) = &o.hostname {
            // The host part of the Maildir file names: the name the server goes by.
            maildir = maildir.with_hostname(name);
        }
        let maildir = Arc::new(maildir);
        let raw = maildir_handler(Arc::clone(&maildir), o.fsync);
        set_receive_event(&mut server, raw, maildir_message_handler(maildir, o.fsync));
    }
    Ok(server)
}

/// Sets only the receive event of the server's mode: the others would never be called.
fn set_receive_event(
    server: &mut SmtpServer,
    raw: ReceiveRawHandler,
    message: ReceiveMessageHandler,
) {
    match server.receive_mode {
        ReceiveMode::Raw => server.on_receive_raw = Some(raw),
        ReceiveMode::Message => server.on_receive_message = Some(message),
        ReceiveMode::MessageParsed => server.on_receive_message_parsed = Some(message),
    }
}

#[cfg(feature = "tls")]
fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<rustls::ServerConfig, Fatal> {
    indy_smtp::tls::server_config_from_pem_files(cert, key)
        .map_err(|e| usage_error(format!("--tls-cert/--tls-key: {e}")))
}

#[cfg(not(feature = "tls"))]
fn load_tls(
    _cert: &std::path::Path,
    _key: &std::path::Path,
) -> Result<std::convert::Infallible, Fatal> {
    Err(usage_error(
        "--tls-cert: smtpd was built without the `tls` feature",
    ))
}

/// The directories that creating the Maildir is about to add: its missing `tmp/`, `new/` and
/// `cur/`, then the Maildir and its missing ancestors, deepest first. Directories that already
/// existed are never in it.
struct NewDirs(Vec<PathBuf>);

impl NewDirs {
    fn missing_for(maildir: &Path) -> NewDirs {
        let mut missing: Vec<PathBuf> = ["tmp", "new", "cur"]
            .iter()
            .map(|sub| maildir.join(sub))
            .filter(|sub| !sub.exists())
            .collect();
        let mut dir = Some(maildir);
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            missing.push(d.to_path_buf());
            dir = d.parent();
        }
        NewDirs(missing)
    }

    /// Removes them again. `remove_dir` takes only empty directories, so nothing anyone put
    /// there meanwhile is lost.
    fn remove(self) {
        for dir in &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SIGTERM and SIGINT, caught from the moment this exists (so one sent during start-up is
/// not lost).
#[cfg(unix)]
struct StopSignals(signal_hook::iterator::Signals);

#[cfg(unix)]
impl StopSignals {
    fn install() -> std::io::Result<StopSignals> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map(StopSignals)
    }

    /// Blocks until a signal arrives; a second one while stopping exits at once.
    fn wait(mut self) {
        let signal = self.0.forever().next().unwrap_or(0);
        log::info!("signal {signal}: stopping (send it again to exit at once)");
        std::thread::spawn(move || {
            if self.0.forever().next().is_some() {
                log::warn!("second signal: exiting without waiting for sessions");
                std::process::exit(1);
            }
        });
    }
}

#[cfg(not(unix))]
struct StopSignals(Arc<std::sync::atomic::AtomicBool>);

#[cfg(not(unix))]
impl StopSignals {
    fn install() -> std::io::Result<StopSignals> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&stop))?;
        }
        Ok(StopSignals(stop))
    }

    fn wait(self) {
        while !self.0.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        log::info!("signal: stopping");
    }
}

fn run() -> Result<(), Fatal> {
    let options = match parse_args(std::env::args_os().skip(1))? {
        Command::Help => {
            print!("{USAGE}");
            return Ok(());
        }
        Command::Run(options) => options,
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let signals = StopSignals::install().map_err(|e| Fatal {
        status: 1,
        message: format!("cannot install signal handlers: {e}"),
    })?;
    let created = (!options.discard).then(|| NewDirs::missing_for(&options.maildir));
    let server = build_server(&options)?;
    let handle = server.start().map_err(|e| {
        // A failed start (an address in use) leaves no empty Maildir behind.
        if let Some(created) = created {
            created.remove();
        }
        Fatal {
            status: 1,
            message: e.to_string(),
        }
    })?;
    if options.discard {
        log::info!("discarding every message (--discard)");
    } else {
        log::info!("storing mail in {}", options.maildir.display());
    }
    signals.wait();
    handle.stop();
    log::info!("exiting");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => {
            eprintln!("smtpd: {}", fatal.message);
            ExitCode::from(fatal.status)
        }
    }
}
