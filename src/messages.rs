//! Reply texts: Indy's `TIdSMTPMessages`, every text replaceable.
//!
//! Codes are fixed by the RFCs and set by the verbs (Indy 9 also hard-coded them); only the texts
//! live here. They cover what Indy's `TIdSMTPMessages` covered and the common refusals; the
//! replies that explain a precise fault (a path's syntax error, an AUTH exchange's error, the
//! BDAT count, the session limits) keep fixed texts. To change one of those, replace the verb
//! in [`CommandHandlers`](crate::CommandHandlers) or refuse earlier in an event. In a text, `%s` stands for the value named in the field's doc (sanitised, at most
//! 256 bytes) and `%h` for the server's host name.

/// Texts for the greeting and the HELO/EHLO/AUTH exchange (Indy's `TIdSMTPGreeting`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Greeting {
    /// The 220 banner sent on connect (Indy's `TIdTCPServer.Greeting`); RFC 5321 §4.3.1
    /// wants the server's domain first, hence `%h`.
    pub welcome: String,
    /// HELO's 250 text; `%s` = the client's HELO argument.
    pub hello_reply: String,
    /// MAIL before HELO/EHLO (503 5.5.1, RFC 5321 §4.1.4).
    pub no_hello: String,
    /// A failed AUTH (535 5.7.8, RFC 4954 §6).
    pub auth_failed: String,
    /// EHLO when `allow_ehlo` is off (500, RFC 5321 §4.1.1.1 fallback to HELO).
    pub ehlo_not_supported: String,
    /// The first line of the EHLO reply; `%s` = the client's EHLO argument. The extension
    /// keywords follow, generated from what is really enabled (Indy 9 advertised a fixed list).
    pub ehlo_reply: String,
}

/// Texts for RCPT and MAIL answers (Indy's `TIdSMTPRcptReplies`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RcptReplies {
    /// An accepted sender or recipient (250); `%s` = the address.
    pub address_ok: String,
    /// A refused sender or recipient (550); `%s` = the address.
    pub address_error: String,
    /// A recipient accepted for forwarding (251, RFC 5321 §3.4); `%s` = the address.
    pub address_will_forward: String,
}

/// Texts for DATA (Indy's `TIdSMTPDataReplies`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataReplies {
    /// The 354 intermediate reply (RFC 5321 §4.1.1.4).
    pub start_data: String,
    /// The 250 after a message was accepted.
    pub end_data: String,
}

/// Every reply text the server sends (Indy's `TIdSMTPMessages`, plus the texts of the
/// extensions and limits Indy 9 did not have).
///
/// ```
/// use indy_smtp::SmtpMessages;
/// let mut m = SmtpMessages::default();
/// m.noop_reply = "Still here".into();
/// assert_eq!(SmtpMessages::indy9().greeting.welcome, "Welcome to the INDY SMTP Server");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpMessages {
    /// Greeting, HELO, EHLO and AUTH texts.
    pub greeting: Greeting,
    /// MAIL and RCPT texts.
    pub rcpt_replies: RcptReplies,
    /// DATA texts.
    pub data_replies: DataReplies,
    /// An unassigned HELP/SOML/SEND/SAML/EXPN/TURN, or AUTH/STARTTLS with nothing to offer
    /// (502 5.5.1); `%s` = the parameters (empty for AUTH, whose may be credentials).
    pub error_reply: String,
    /// A command out of order (503 5.5.1, RFC 5321 §4.1.4). Indy 9 sent this empty.
    pub sequence_error: String,
    /// MAIL with `auth_mode` on before a login (530 5.7.0, RFC 4954 §6). Indy 9 sent this empty.
    pub not_logged_in: String,
    /// NOOP's 250.
    pub noop_reply: String,
    /// RSET's 250 (Indy 9 sent the NOOP text instead).
    pub rset_reply: String,
    /// QUIT's 221.
    pub quit_reply: String,
    /// The value of Indy's `X-Server` header, put on `Message::x_server` in the message modes.
    pub x_server: String,
    /// An unknown verb (500 5.5.2, Indy's `ReplyUnknownCommand`).
    pub reply_unknown_command: String,
    /// Connection refused because `max_connections` (or the per-address limit) is reached:
    /// 421 in place of the greeting (RFC 5321 §3.1), so with no enhanced code (RFC 2034 §3:
    /// none before EHLO). Indy's `MaxConnectionReply`.
    pub max_connection_reply: String,
    /// VRFY without a handler (252 2.5.0, RFC 5321 §3.5.3).
    pub cannot_vrfy: String,
    /// A command line longer than the limit (500 5.5.6, RFC 5321 §4.5.3.1.4).
    pub line_too_long: String,
    /// Bad syntax in arguments (501 5.5.4); `%s` = a description of the problem.
    pub syntax_error: String,
    /// Too many recipients (452 4.5.3, RFC 5321 §4.5.3.1.10).
    pub too_many_recipients: String,
    /// Message larger than `max_message_size` (552 5.3.4, RFC 1870 §6).
    pub message_too_large: String,
    /// Bare CR or LF refused under `BareNewlinePolicy::Reject` (550 5.6.11).
    pub bare_newline: String,
    /// An unknown MAIL/RCPT parameter (555 5.5.4, RFC 5321 §4.1.1.11); `%s` = the keyword.
    pub unknown_parameter: String,
    /// DATA without any accepted recipient (554 5.5.1, RFC 5321 §3.3).
    pub no_valid_recipients: String,
    /// A handler failed or panicked (451 4.3.0).
    pub local_error: String,
    /// Closing: idle timeout (421 4.4.2, RFC 5321 §4.5.3.2).
    pub timeout: String,
    /// Closing: too many bad commands (421 4.7.0).
    pub too_many_errors: String,
    /// Closing: the server is stopping (421 4.3.2).
    pub shutting_down: String,
    /// STARTTLS accepted (220 2.0.0, RFC 3207 §4).
    pub ready_to_start_tls: String,
    /// MAIL/AUTH before STARTTLS under `require_tls` (530 5.7.0, RFC 3207 §4).
    pub must_start_tls: String,
    /// A plaintext AUTH mechanism on a cleartext connection (538 5.7.11, RFC 4954 §6).
    pub encryption_required: String,
    /// A successful AUTH (235 2.7.0, RFC 4954 §6).
    pub auth_succeeded: String,
}

impl Default for SmtpMessages {
    /// Modern texts in the style of RFC 5321's examples.
    fn default() -> Self {
        SmtpMessages {
            greeting: Greeting {
                welcome: "%h ESMTP indy-smtp ready".into(),
                hello_reply: "%h Hello %s".into(),
                no_hello: "Send HELO or EHLO first".into(),
                auth_failed: "Authentication credentials invalid".into(),
                ehlo_not_supported: "Command not recognized".into(),
                ehlo_reply: "%h Hello %s".into(),
            },
            rcpt_replies: RcptReplies {
                address_ok: "<%s> Ok".into(),
                address_error: "<%s> Address rejected".into(),
                address_will_forward: "User not local; will forward to <%s>".into(),
            },
            data_replies: DataReplies {
                start_data: "Start mail input; end with <CRLF>.<CRLF>".into(),
                end_data: "Ok: queued".into(),
            },
            error_reply: "Command not implemented".into(),
            sequence_error: "Bad sequence of commands".into(),
            not_logged_in: "Authentication required".into(),
            noop_reply: "Ok".into(),
            rset_reply: "Ok".into(),
            quit_reply: "%h closing connection".into(),
            x_server: "indy-smtp".into(),
            reply_unknown_command: "Command unrecognized".into(),
            max_connection_reply: "%h Too many connections, try again later".into(),
            cannot_vrfy: "Cannot VRFY user, but will accept message and attempt delivery".into(),
            line_too_long: "Line too long".into(),
            syntax_error: "Syntax error: %s".into(),
            too_many_recipients: "Too many recipients".into(),
            message_too_large: "Message size exceeds fixed maximum message size".into(),
            bare_newline: "Bare CR or LF in message data is not allowed".into(),
            unknown_parameter: "Unsupported parameter %s".into(),
            no_valid_recipients: "No valid recipients".into(),
            local_error: "Local error in processing".into(),
            timeout: "%h Timeout, closing connection".into(),
            too_many_errors: "%h Too many errors, closing connection".into(),
            shutting_down: "%h Service shutting down, closing connection".into(),
            ready_to_start_tls: "Ready to start TLS".into(),
            must_start_tls: "Must issue a STARTTLS command first".into(),
            encryption_required: "Encryption required for requested authentication mechanism"
                .into(),
            auth_succeeded: "Authentication successful".into(),
        }
    }
}

impl SmtpMessages {
    /// Indy 9's texts (`IdResourceStrings.pas`), for ported programs whose clients or tests
    /// expect them. Only the texts: codes, and texts Indy 9 left empty, follow the RFC.
    ///
    /// The texts come with Indy's warts, which the default texts do not have: the null
    /// sender's `250 2.1.0  Address Okay` has two spaces (`%s Address Okay` with an empty
    /// path), the `251` does not name the forward-path RFC 5321 §3.4 shows, and `error_reply`
    /// ("Syntax Error - Command not understood: %s") goes out with `502` and, for AUTH, an
    /// empty `%s` (AUTH's parameters may be credentials). Override those fields to keep the
    /// rest.
    pub fn indy9() -> Self {
        let d = SmtpMessages::default();
        SmtpMessages {
            greeting: Greeting {
                welcome: "Welcome to the INDY SMTP Server".into(),
                hello_reply: "Hello %s".into(),
                no_hello: "Polite people say HELO".into(),
                auth_failed: "Authentication Failed".into(),
                ehlo_not_supported: "Command Not Recognised".into(),
                ehlo_reply: "%h".into(),
            },
            rcpt_replies: RcptReplies {
                address_ok: "%s Address Okay".into(),
                address_error: "%s Address Error".into(),
                address_will_forward: "User not local, Will forward".into(),
            },
            data_replies: DataReplies {
                start_data: "Start mail input; end with <CRLF>.<CRLF>".into(),
                end_data: "Ok".into(),
            },
            error_reply: "Syntax Error - Command not understood: %s".into(),
            noop_reply: "Ok".into(),
            rset_reply: "Ok".into(),
            quit_reply: "Signing Off".into(),
            x_server: "Indy SMTP Server".into(),
            reply_unknown_command: "Syntax Error".into(),
            ..d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indy9_keeps_indy_texts_and_fills_its_empty_ones() {
        let m = SmtpMessages::indy9();
        assert_eq!(m.quit_reply, "Signing Off");
        assert_eq!(m.greeting.hello_reply, "Hello %s");
        assert!(!m.sequence_error.is_empty());
        assert!(!m.not_logged_in.is_empty());
        assert_ne!(m, SmtpMessages::default());
    }
}
