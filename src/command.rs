//! A command line and the verb → handler table (Indy's `TIdCommand` and `CommandHandlers`).

use std::fmt;
use std::sync::Arc;

use crate::error::Result;
use crate::thread::Context;

/// One command line from the client (Indy's `TIdCommand`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The verb, upper-cased (`MAIL`).
    pub verb: String,
    /// Everything after the verb and its separating space, trailing white space removed
    /// (`FROM:<a@b> SIZE=10`; further leading blanks are kept: `NOOP  x` gives `" x"`).
    /// Indy 9 did not trim; trailing blanks are a common client slip.
    pub unparsed_params: String,
    /// `unparsed_params` split on white space.
    pub params: Vec<String>,
    /// The line as received, without its line end.
    pub raw_line: String,
}

/// Why a line is not a command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// Nothing but white space.
    Empty,
    /// A NUL byte (RFC 5321 §2.3.8 forbids it in commands).
    Nul,
    /// Not UTF-8 (commands are ASCII, or UTF-8 with SMTPUTF8, RFC 6531 §3.3).
    NotUtf8,
    /// The verb is not a run of letters, digits or `-` (RFC 5321 §4.1.1 `Keyword`).
    BadVerb,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommandError::Empty => "empty command",
            CommandError::Nul => "NUL byte in command",
            CommandError::NotUtf8 => "command is not valid UTF-8",
            CommandError::BadVerb => "malformed command verb",
        })
    }
}

impl std::error::Error for CommandError {}

/// Splits a command line (without its CRLF) into verb and parameters.
///
/// ```
/// use indy_smtp::command::parse_command_line;
/// let c = parse_command_line(b"mail FROM:<a@b>  SIZE=10 ").unwrap();
/// assert_eq!(c.verb, "MAIL");
/// assert_eq!(c.unparsed_params, "FROM:<a@b>  SIZE=10");
/// assert_eq!(c.params, ["FROM:<a@b>", "SIZE=10"]);
/// ```
pub fn parse_command_line(line: &[u8]) -> Result<Command, CommandError> {
    if line.contains(&0) {
        return Err(CommandError::Nul);
    }
    let text = std::str::from_utf8(line).map_err(|_| CommandError::NotUtf8)?;
    let trimmed = text.trim_end_matches([' ', '\t']);
    if trimmed.trim_start().is_empty() {
        return Err(CommandError::Empty);
    }
    let (verb, rest) = match trimmed.find([' ', '\t']) {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (trimmed, ""),
    };
    if !is_verb(verb) {
        return Err(CommandError::BadVerb);
    }
    Ok(Command {
        verb: verb.to_ascii_uppercase(),
        unparsed_params: rest.to_string(),
        params: rest.split_whitespace().map(str::to_string).collect(),
        raw_line: text.to_string(),
    })
}

/// Whether `verb` can name a command: RFC 5321 §4.1.1 makes a verb a keyword, and extension
/// verbs (`X-...`) may carry digits and `-`; at most 32 characters. A line whose first word
/// is anything else is answered `500` before any handler is looked up, so a handler
/// registered under it could never run.
///
/// ```
/// use indy_smtp::command::is_verb;
/// assert!(is_verb("XCLIENT") && is_verb("x-ping2"));
/// assert!(!is_verb("MAIL FROM") && !is_verb("") && !is_verb("RCPT:"));
/// ```
pub fn is_verb(verb: &str) -> bool {
    !verb.is_empty()
        && verb.len() <= 32
        && verb.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A verb's handler: it gets the session [`Context`] (state, replies, reading lines) and the
/// command, and writes its replies through the context. An `Err` from the context's own calls
/// (the connection broke or timed out) ends the session; any other `Err` (`?` on a file) is
/// reported to `on_exception` and answered `451 4.3.0` unless the handler had already sent
/// its final reply. Closures run on many connection threads at once.
pub type CommandHandler = Arc<dyn Fn(&mut Context<'_>, &Command) -> Result<()> + Send + Sync>;

/// The verb → handler table (Indy's `CommandHandlers`): the SMTP verbs by default; add,
/// replace or remove any.
///
/// ```
/// use indy_smtp::{CommandHandlers, Reply};
/// let mut h = CommandHandlers::smtp();
/// h.add("XCLIENT", |ctx, _cmd| ctx.reply(Reply::new(250, "Ok")));
/// h.remove("EXPN");
/// assert!(h.contains("xclient") && !h.contains("EXPN"));
/// ```
#[derive(Clone)]
pub struct CommandHandlers {
    /// Verb, handler, and whether the handler is the built-in one put there by `smtp()`
    /// (the session loop lets only that one leave DATA's message for later, see `Context`).
    table: Vec<(String, CommandHandler, bool)>,
}

impl CommandHandlers {
    /// An empty table: every verb is then unknown.
    pub fn empty() -> Self {
        CommandHandlers { table: Vec::new() }
    }

    /// The built-in SMTP verbs: the 15 of Indy 9 (HELP, SOML, SEND, SAML, VRFY, EXPN, TURN,
    /// RSET, DATA, HELO, EHLO, MAIL, NOOP, QUIT, RCPT), AUTH, and the extension verbs BDAT
    /// (RFC 3030) and STARTTLS (RFC 3207), which answer only when enabled.
    pub fn smtp() -> Self {
        let mut h = CommandHandlers::empty();
        for verb in crate::verbs::BUILTIN_VERBS {
            if let Some(handler) = Self::builtin(verb) {
                h.table.push((verb.to_string(), handler, true));
            }
        }
        h
    }

    /// The built-in handler of a verb, to call from a replacement that wraps it.
    pub fn builtin(verb: &str) -> Option<CommandHandler> {
        crate::verbs::builtin(verb)
    }

    /// Adds a verb, or replaces its handler if it is already there. A verb that cannot name a
    /// command ([`is_verb`]: `"MAIL FROM"`, `"X_Y"`) makes
    /// [`SmtpServer::start`](crate::SmtpServer::start) fail with
    /// [`Error::BadVerb`](crate::Error::BadVerb), as its handler could never be called.
    pub fn add<F>(&mut self, verb: &str, handler: F)
    where
        F: Fn(&mut Context<'_>, &Command) -> Result<()> + Send + Sync + 'static,
    {
        self.add_arc(verb, Arc::new(handler));
    }

    /// [`add`](Self::add) for a handler that is already shared.
    pub fn add_arc(&mut self, verb: &str, handler: CommandHandler) {
        let verb = verb.to_ascii_uppercase();
        match self.table.iter_mut().find(|(v, _, _)| *v == verb) {
            Some(entry) => {
                entry.1 = handler;
                entry.2 = false;
            }
            None => self.table.push((verb, handler, false)),
        }
    }

    /// Removes a verb; it is then answered as unknown. Returns whether it was there.
    pub fn remove(&mut self, verb: &str) -> bool {
        let before = self.table.len();
        self.table.retain(|(v, _, _)| !v.eq_ignore_ascii_case(verb));
        self.table.len() != before
    }

    /// Whether a verb has a handler.
    pub fn contains(&self, verb: &str) -> bool {
        self.get(verb).is_some()
    }

    /// The handler of a verb (case-insensitive).
    pub fn get(&self, verb: &str) -> Option<&CommandHandler> {
        self.lookup(verb).map(|(h, _)| h)
    }

    /// The handler of a verb and whether it is the untouched built-in one.
    pub(crate) fn lookup(&self, verb: &str) -> Option<(&CommandHandler, bool)> {
        self.table
            .iter()
            .find(|(v, _, _)| v.eq_ignore_ascii_case(verb))
            .map(|(_, h, builtin)| (h, *builtin))
    }

    /// The first verb that no command line can name (see [`is_verb`]).
    pub(crate) fn unreachable_verb(&self) -> Option<&str> {
        self.verbs().find(|verb| !is_verb(verb))
    }

    /// The verbs, in registration order.
    pub fn verbs(&self) -> impl Iterator<Item = &str> {
        self.table.iter().map(|(v, _, _)| v.as_str())
    }
}

impl Default for CommandHandlers {
    fn default() -> Self {
        CommandHandlers::smtp()
    }
}

impl fmt::Debug for CommandHandlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.verbs()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let ok: &[(&[u8], &str, &str, &[&str])] = &[
            (b"QUIT", "QUIT", "", &[]),
            (b"noop", "NOOP", "", &[]),
            (b"NOOP  x y ", "NOOP", " x y", &["x", "y"]),
            (b"MAIL FROM:<a@b>", "MAIL", "FROM:<a@b>", &["FROM:<a@b>"]),
            (b"MAIL\tFROM:<a@b>", "MAIL", "FROM:<a@b>", &["FROM:<a@b>"]),
            (b"X-FOO bar", "X-FOO", "bar", &["bar"]),
            (
                b"EHLO \xc3\xa9.example",
                "EHLO",
                "\u{e9}.example",
                &["\u{e9}.example"],
            ),
        ];
        for (line, verb, unparsed, params) in ok {
            let c = parse_command_line(line).unwrap();
            assert_eq!(c.verb, *verb);
            assert_eq!(c.unparsed_params, *unparsed);
            assert_eq!(c.params, *params);
        }
    }

    #[test]
    fn bad_command_lines() {
        let bad: &[(&[u8], CommandError)] = &[
            (b"", CommandError::Empty),
            (b"   ", CommandError::Empty),
            (b"NO\0OP", CommandError::Nul),
            (b"HELO \xff", CommandError::NotUtf8),
            (b" HELO x", CommandError::BadVerb),
            (b"HE:LO x", CommandError::BadVerb),
            (b"GET/ x", CommandError::BadVerb),
        ];
        for (line, want) in bad {
            assert_eq!(parse_command_line(line).unwrap_err(), *want, "{line:?}");
        }
        let long = vec![b'A'; 33];
        assert_eq!(
            parse_command_line(&long).unwrap_err(),
            CommandError::BadVerb
        );
    }

    #[test]
    fn command_errors_say_what_is_wrong() {
        let texts: Vec<String> = [
            CommandError::Empty,
            CommandError::Nul,
            CommandError::NotUtf8,
            CommandError::BadVerb,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        for (text, word) in texts.iter().zip(["empty", "NUL", "UTF-8", "verb"]) {
            assert!(text.contains(word), "{text:?} should name {word}");
        }
    }

    fn noop_handler() -> CommandHandler {
        Arc::new(|_ctx: &mut Context<'_>, _cmd: &Command| Ok(()))
    }

    #[test]
    fn smtp_table_holds_the_builtin_verbs() {
        assert_eq!(CommandHandlers::empty().verbs().count(), 0);
        assert!(!CommandHandlers::empty().contains("MAIL"));
        let h = CommandHandlers::smtp();
        let verbs: Vec<&str> = h.verbs().collect();
        // Indy 9's 15, AUTH (RFC 4954), BDAT (RFC 3030) and STARTTLS (RFC 3207).
        assert_eq!(verbs, crate::verbs::BUILTIN_VERBS);
        for verb in verbs {
            assert!(h.contains(verb) && h.contains(&verb.to_ascii_lowercase()));
            let (_, builtin) = h.lookup(verb).unwrap();
            assert!(builtin, "{verb} is the built-in handler");
            assert!(CommandHandlers::builtin(verb).is_some(), "{verb}");
        }
        assert!(CommandHandlers::builtin("XYZZY").is_none());
        assert!(h.get("XYZZY").is_none() && h.lookup("XYZZY").is_none());
        assert_eq!(h.unreachable_verb(), None);
        assert_eq!(
            format!("{:?}", CommandHandlers::default()),
            format!("{h:?}")
        );
        assert!(format!("{h:?}").contains("\"STARTTLS\""));
    }

    #[test]
    fn add_replace_and_remove() {
        let mut h = CommandHandlers::smtp();
        let mine = noop_handler();
        h.add_arc("xclient", mine.clone());
        assert!(h.contains("XCLIENT"));
        assert!(Arc::ptr_eq(h.get("XClient").unwrap(), &mine));
        assert_eq!(h.verbs().last(), Some("XCLIENT"), "upper-cased, appended");
        let n = h.verbs().count();

        // Replacing keeps one entry and makes it no longer the built-in one.
        let other = noop_handler();
        h.add_arc("mail", other.clone());
        assert_eq!(h.verbs().count(), n);
        let (got, builtin) = h.lookup("MAIL").unwrap();
        assert!(Arc::ptr_eq(got, &other) && !builtin);
        assert!(Arc::ptr_eq(h.get("XCLIENT").unwrap(), &mine));
        h.add("XCLIENT", |_ctx, _cmd| Ok(()));
        assert!(!Arc::ptr_eq(h.get("XCLIENT").unwrap(), &mine));
        assert_eq!(h.verbs().count(), n);

        assert!(h.remove("expn"));
        assert!(!h.contains("EXPN") && h.contains("VRFY"));
        assert!(!h.remove("EXPN"), "already gone");
        assert_eq!(h.verbs().count(), n - 1);
    }

    #[test]
    fn a_verb_no_line_can_name_is_reported() {
        let mut h = CommandHandlers::smtp();
        h.add("X-OK", |_ctx, _cmd| Ok(()));
        assert_eq!(h.unreachable_verb(), None);
        h.add("MAIL FROM", |_ctx, _cmd| Ok(()));
        h.add("X_Y", |_ctx, _cmd| Ok(()));
        assert_eq!(h.unreachable_verb(), Some("MAIL FROM"));
        assert!(format!("{h:?}").contains("\"MAIL FROM\""));
    }
}
