//! Indy 9's own "SMTPServer" demo (Andrew Neillans, 2002, `Main.pas` / `Main.dfm`), ported.
//!
//! The Delphi demo is a form with two buttons ("Server on" / "Server off"), three labels (To,
//! From, Subject) and a memo for the body, plus one empty-or-trivial handler per event. Here the
//! buttons become `start()` and Ctrl-C, and the labels and the memo become stdout. PORTING.md
//! shows the Delphi and this file side by side.
//!
//! ```text
//! cargo run --example indy_port [-- --listen 127.0.0.1:2525]
//! ```
//!
//! Then send it mail with any SMTP client; every message is printed as it arrives.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use indy_smtp::message::EmailAddress;
use indy_smtp::{MailAction, RcptAction, ReceiveMode, SmtpServer};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() {
    env_logger::init();
    let listen = match parse_args() {
        Ok(listen) => listen,
        Err(e) => {
            eprintln!("{e}\nusage: indy_port [--listen ADDR]   (default 127.0.0.1:2525)");
            std::process::exit(2);
        }
    };

    // object IdSMTPServer: TIdSMTPServer (Main.dfm).
    let mut server = SmtpServer::new();
    server.bindings = vec![listen];
    // Main.dfm leaves ReceiveMode = rmRaw with an empty OnReceiveRaw and a label saying
    // "Remember to set the SMTPServer property ReceiveMode to the appropriate type": the two
    // message events are the ones that show the mail, so the port picks rmMessageParsed.
    server.receive_mode = ReceiveMode::MessageParsed;
    // Clients or tests that expect Indy 9's reply texts ("Welcome to the INDY SMTP Server",
    // "Hello %s", ...) can have them back; the default texts are RFC 5321's style:
    // server.messages = indy_smtp::SmtpMessages::indy9();

    // IdSMTPServerCommandMAIL: "Set Accept := True if its allowed" -- Accept := True.
    server.on_command_mail = Some(Box::new(|_thread, _mail| MailAction::Accept));

    // IdSMTPServerCommandRCPT: Accept := True (ToForward and CustomError left alone).
    server.on_command_rcpt = Some(Box::new(|_thread, _rcpt| RcptAction::Accept));

    // IdSMTPServer1CommandCheckUser: Accepted := False -- every login is refused.
    // (This handler and the AUTH one below have pre-9.0 signatures and are not connected in
    // Main.dfm; the port wires them as their code intends. As in Indy, an assigned
    // on_command_auth replaces the built-in AUTH, so check_user is only consulted if
    // on_command_auth below is removed.)
    server.check_user = Some(Box::new(|_thread, _username, _password| false));

    // IdSMTPServer1CommandAUTH: "for now, we send a error" -- Writeln(Messages.ErrorReply).
    // Indy wrote the text with no code; here it goes out as 502 5.5.1 "not implemented"
    // (RFC 5321 §4.2.4). Its %s gets the verb, never the parameters: AUTH PLAIN carries the
    // password in them.
    server.on_command_auth = Some(Arc::new(|ctx, command| {
        let text = ctx.server().messages.error_reply.clone();
        ctx.reply_with(502, "5.5.1", &text, &command.verb)
    }));

    // IdSMTPServerReceiveMessageParsed: ToLabel, FromLabel, SubjectLabel and Memo1 get
    // Recipients.EMailAddresses, From.Text, Subject and Body. Ok(()) is Indy's empty
    // CustomError: the client gets 250.
    server.on_receive_message_parsed = Some(Box::new(|thread, msg| {
        let body = if msg.text_bodies.is_empty() {
            String::from_utf8_lossy(msg.body()).into_owned()
        } else {
            let parts: Vec<&str> = msg.text_bodies.iter().map(|p| p.text.as_str()).collect();
            parts.join("\n")
        };
        let report = format!(
            "--- message from {} (session {})\nTo:      {}\nFrom:    {}\nSubject: {}\n{}\n",
            thread.peer_addr,
            thread.session_id,
            one_line(&addresses(&msg.to)),
            one_line(&addresses(&msg.from)),
            one_line(msg.subject.as_deref().unwrap_or("")),
            printable(body.trim_end()),
        );
        // One write per message, so messages from concurrent sessions never interleave.
        let _ = std::io::stdout().lock().write_all(report.as_bytes());
        Ok(())
    }));

    // IdSMTPServerCommandHELP / SAML / SEND / SOML / TURN / VRFY are empty procedures in the
    // demo. In Indy 9 an assigned handler that writes nothing leaves the client waiting for a
    // reply forever, so they are NOT ported: left unassigned, indy-smtp answers each verb with
    // its RFC 5321 default -- HELP, SAML, SEND, SOML and TURN get "502 5.5.1 Command not
    // implemented" (§4.2.4; SAML/SEND/SOML were removed in Appendix F.6, TURN is deprecated),
    // VRFY gets "252 2.5.0 Cannot VRFY user" (§3.5.3). (An assigned handler that writes nothing
    // would get 451 4.3.0 from indy-smtp, never silence.)
    //
    // IdSMTPServer1CommandQUIT / CommandX / ADDRESSError belong to a pre-9.0 API and are not
    // wired to the component in Main.dfm; the built-in QUIT and address checks do their work.

    // Button1Click: IdSMTPServer.Active := True.
    let signals = Signals::new([SIGINT, SIGTERM]);
    let handle = match server.start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("cannot start: {e}");
            std::process::exit(1);
        }
    };
    println!("listening on {} (Ctrl-C stops)", handle.local_addr());

    // Button2Click: IdSMTPServer.Active := False, on Ctrl-C or SIGTERM. stop() lets messages in
    // flight finish, answers idle clients 421 and joins every session thread.
    match signals {
        Ok(mut signals) => {
            signals.forever().next();
        }
        Err(e) => {
            eprintln!("cannot install the signal handler ({e}); stop with kill -9");
            loop {
                std::thread::park();
            }
        }
    }
    println!("stopping");
    handle.stop();
}

/// `--listen ADDR`, default 127.0.0.1:2525.
fn parse_args() -> Result<SocketAddr, String> {
    let mut listen: SocketAddr = "127.0.0.1:2525".parse().expect("default address");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args.next().ok_or("--listen needs an address")?;
                listen = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(listen)
}

/// Like Indy's `EMailAddresses`: the mailboxes as header text, comma-separated.
fn addresses(list: &[EmailAddress]) -> String {
    let texts: Vec<String> = list.iter().map(EmailAddress::text).collect();
    texts.join(", ")
}

/// Mail is hostile input: no escape sequence or control character reaches the terminal.
fn printable(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// A header value on one line.
fn one_line(text: &str) -> String {
    printable(text).replace(['\n', '\t'], " ")
}
