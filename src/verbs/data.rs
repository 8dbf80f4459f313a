//! Message data: DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), and the hand-over to the
//! receive event of the configured mode.

use crate::address::BodyType;
use crate::command::Command;
use crate::config::{RawStreamType, ReceiveMode};
use crate::error::{Error, Result};
use crate::message::Message;
use crate::raw::{DataDeadline, DataLimits, DataReader, DataStatus, RawStream, Spool};
use crate::reply::{fill_template, Reply};
use crate::server::SmtpServer;
use crate::thread::{BdatState, Context, Pending, SmtpServerThread};
use crate::verbs::{refuse_params, sequence_error};

/// Checks the transaction can take message data; replies and returns false when not.
fn ready_for_data(ctx: &mut Context<'_>) -> Result<bool> {
    let Some(from) = &ctx.thread.from else {
        sequence_error(ctx, "need MAIL and RCPT first")?;
        return Ok(false);
    };
    let binary = from.body == Some(BodyType::BinaryMime);
    if ctx.thread.rcpt_list.is_empty() {
        // RFC 5321 §3.3: DATA with no accepted recipient.
        let text = &ctx.server().messages.no_valid_recipients;
        ctx.reply_with(554, "5.5.1", text, "")?;
        return Ok(false);
    }
    if binary {
        // RFC 3030 §3: BODY=BINARYMIME data can only come in BDAT chunks.
        sequence_error(ctx, "BINARYMIME needs BDAT")?;
        return Ok(false);
    }
    Ok(true)
}

/// DATA: 354, then the message up to CRLF.CRLF, then one reply. The transaction ends
/// whatever the outcome (RFC 5321 §4.1.1.4; Indy 9 kept the envelope).
pub(crate) fn data(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    if refuse_params(ctx, command)? {
        return Ok(());
    }
    if ctx.thread.bdat.is_some() {
        // RFC 3030 §2: DATA cannot follow BDAT in one transaction.
        return sequence_error(ctx, "DATA after BDAT");
    }
    if !ready_for_data(ctx)? {
        return Ok(());
    }
    let server = ctx.server();
    ctx.reply_with(354, "", &server.messages.data_replies.start_data, "")?;
    // RFC 2920 §3.2: the reply to DATA is not held back, even if message data came with it.
    ctx.conn.flush()?;
    if ctx.may_defer {
        // The client sends nothing until it has the 354: let the session wait for the message
        // parked, without holding a thread (issue 5), then call `data_body`.
        ctx.pending = Some(Pending::DataBody);
        return Ok(());
    }
    data_body(ctx)
}

/// The rest of DATA after the 354: the message, its verdict, the one final reply.
pub(crate) fn data_body(ctx: &mut Context<'_>) -> Result<()> {
    let server = ctx.server();
    let limits = data_limits(server);
    let reply = if server.receive_mode == ReceiveMode::Raw
        && server.raw_stream_type == RawStreamType::Direct
    {
        receive_direct(ctx, limits)?
    } else {
        receive_spooled(ctx, limits)?
    };
    log_outcome(ctx.thread, &reply);
    ctx.thread.reset_transaction();
    ctx.reply(reply)
}

fn data_limits(server: &SmtpServer) -> DataLimits {
    DataLimits {
        policy: server.bare_newline_policy,
        max_size: server.limits.max_message_size,
        max_line: server.limits.max_data_line_length,
        block_timeout: server.limits.data_timeout,
        min_rate: server.limits.min_data_rate,
    }
}

/// `RawStreamType::Direct`: the handler reads from the connection; what it leaves unread
/// is drained before answering.
fn receive_direct(ctx: &mut Context<'_>, limits: DataLimits) -> Result<Reply> {
    let server = ctx.server();
    let Some(handler) = &server.on_receive_raw else {
        return Err(Error::NoReceiveHandler(ReceiveMode::Raw));
    };
    // The 354 must be on the wire before the handler runs: the client sends no data until it
    // sees it (RFC 5321 §4.1.1.4), and a handler that blocks before its first read (or never
    // reads) would otherwise leave both sides waiting (RFC 2920 §3.1: flush before blocking).
    ctx.conn.flush()?;
    let mut stream = RawStream::Direct(DataReader::new(ctx.conn, limits));
    let verdict = handler(ctx.thread, &mut stream);
    let reader = match stream {
        RawStream::Direct(reader) => reader,
        swapped => {
            // The rest of the message went with the reader the handler replaced: the client
            // cannot be kept in step, so the session ends, with the 421 RFC 5321 §3.8 asks.
            drop(swapped);
            log::error!(
                "session {}: on_receive_raw replaced the Direct stream; closing",
                ctx.thread.session_id
            );
            ctx.close();
            let text = server.text(&server.messages.local_error);
            return Ok(Reply::new(421, text).with_enhanced("4.3.0"));
        }
    };
    let status = reader.finish()?;
    Ok(match status {
        DataStatus::Complete => verdict_reply(server, verdict),
        refused => refusal(server, refused),
    })
}

/// Memory, File and the message modes: the whole message is read first.
fn receive_spooled(ctx: &mut Context<'_>, limits: DataLimits) -> Result<Reply> {
    let server = ctx.server();
    let to_file =
        server.receive_mode == ReceiveMode::Raw && server.raw_stream_type == RawStreamType::File;
    let mut spool = match Spool::new(to_file) {
        Ok(spool) => spool,
        Err(e) => {
            log::error!("session {}: cannot spool: {e}", ctx.thread.session_id);
            DataReader::new(ctx.conn, limits).finish()?;
            return Ok(local_error(server));
        }
    };
    let status = match DataReader::new(ctx.conn, limits).copy_to(spool.writer()) {
        Ok(status) => status,
        Err(Error::Io(e)) => {
            log::error!("session {}: {e}", ctx.thread.session_id);
            return Ok(local_error(server));
        }
        Err(e) => return Err(e),
    };
    if status != DataStatus::Complete {
        return Ok(refusal(server, status));
    }
    Ok(deliver(server, ctx.thread, spool))
}

/// Hands a complete message to the receive event of the mode and turns its verdict into the
/// final reply.
pub(crate) fn deliver(server: &SmtpServer, thread: &mut SmtpServerThread, spool: Spool) -> Reply {
    let verdict = match server.receive_mode {
        ReceiveMode::Raw => match (&server.on_receive_raw, spool.into_stream()) {
            (Some(handler), Ok(mut stream)) => handler(thread, &mut stream),
            (None, _) => Err(local_error(server)),
            (_, Err(e)) => {
                log::error!("session {}: {e}", thread.session_id);
                Err(local_error(server))
            }
        },
        ReceiveMode::Message | ReceiveMode::MessageParsed => deliver_message(server, thread, spool),
    };
    verdict_reply(server, verdict)
}

fn deliver_message(
    server: &SmtpServer,
    thread: &mut SmtpServerThread,
    spool: Spool,
) -> Result<(), Reply> {
    let bytes = spool.into_bytes().map_err(|_| local_error(server))?;
    let (handler, message) = if server.receive_mode == ReceiveMode::Message {
        (&server.on_receive_message, Ok(Message::unparsed(bytes)))
    } else {
        let rcpts = thread.rcpt_addresses();
        let parsed = Message::parse(bytes, &rcpts, server.no_decode, server.no_encode);
        (&server.on_receive_message_parsed, parsed)
    };
    // Mail that mailparse cannot parse is still mail: the handler gets it unparsed
    // (`is_parsed() == false`) rather than the client a refusal.
    let mut message = message.unwrap_or_else(|e| {
        log::warn!(
            "session {}: message not parsable, handed over unparsed: {e}",
            thread.session_id
        );
        Message::unparsed(e.into_raw())
    });
    if !server.messages.x_server.is_empty() {
        message.x_server = Some(server.messages.x_server.clone());
    }
    match handler {
        Some(handler) => handler(thread, &mut message),
        None => Err(local_error(server)),
    }
}

fn verdict_reply(server: &SmtpServer, verdict: Result<(), Reply>) -> Reply {
    match verdict {
        Ok(()) => {
            let text = server.text(&server.messages.data_replies.end_data);
            Reply::new(250, text).with_enhanced("2.0.0")
        }
        Err(reply) => reply.into_final(),
    }
}

fn refusal(server: &SmtpServer, status: DataStatus) -> Reply {
    let m = &server.messages;
    match status {
        // RFC 1870 §6.2: over the limit → read to the end, then one 552.
        DataStatus::TooLarge => {
            Reply::new(552, server.text(&m.message_too_large)).with_enhanced("5.3.4")
        }
        DataStatus::BareNewline => {
            Reply::new(550, server.text(&m.bare_newline)).with_enhanced("5.6.11")
        }
        // RFC 5321 §4.5.3.1.6: a text line over the limit. 550 5.6.0 (RFC 3463 §3.7, a content
        // problem) rather than 500, which RFC 5321 §4.3.2 does not list after DATA and which
        // would count as a bad command.
        DataStatus::LineTooLong => {
            Reply::new(550, server.text(&m.line_too_long)).with_enhanced("5.6.0")
        }
        DataStatus::Complete => verdict_reply(server, Ok(())),
    }
}

/// `451 4.3.0` with `messages.local_error` (RFC 5321 §4.2.2: local error in processing).
pub(crate) fn local_error(server: &SmtpServer) -> Reply {
    Reply::new(451, server.text(&server.messages.local_error)).with_enhanced("4.3.0")
}

fn log_outcome(thread: &SmtpServerThread, reply: &Reply) {
    let from = thread
        .from
        .as_ref()
        .map(|f| f.address.as_str())
        .unwrap_or("");
    log::info!(
        "session {}: message from <{}> to {} recipient(s): {}",
        thread.session_id,
        from,
        thread.rcpt_list.len(),
        reply
    );
}

/// `BDAT size [LAST]` (RFC 3030 §2): the chunk's octets are always read, even when the command
/// is refused, so the client's next command is found where it really starts.
pub(crate) fn bdat(ctx: &mut Context<'_>, command: &Command) -> Result<()> {
    let server = ctx.server();
    if !server.extensions.chunking {
        let text = &server.messages.reply_unknown_command;
        return ctx.reply_with(500, "5.5.2", text, &command.verb);
    }
    let Some((size, last)) = parse_bdat(&command.params) else {
        if let Some(size) = chunk_size(&command.params) {
            // The size is readable: the chunk is skipped and the session stays in step.
            skip_chunk(ctx, size, &mut std::io::sink())?;
            ctx.thread.reset_transaction();
            let text = "Syntax: BDAT size [LAST]; the chunk was discarded";
            return ctx.reply(Reply::new(501, text).with_enhanced("5.5.4"));
        }
        // Without a size the chunk cannot be skipped: the rest of the stream is unreadable,
        // so the session ends, and RFC 5321 §3.8 lets a server close only after a 421.
        let text = fill_template(
            "%h Syntax: BDAT size [LAST]; closing, as the chunk cannot be skipped",
            "",
            &server.hostname,
        );
        ctx.reply(Reply::new(421, text).with_enhanced("4.5.4"))?;
        ctx.close();
        return Ok(());
    };
    if !ctx.thread.ehlo {
        // RFC 3030 §2: CHUNKING is offered in the EHLO reply only; after HELO it is refused
        // like the ESMTP parameters are, its chunk still consumed so it never runs as commands.
        skip_chunk(ctx, size, &mut std::io::sink())?;
        return sequence_error(ctx, "BDAT needs EHLO (CHUNKING is an ESMTP extension)");
    }
    let valid = ctx.thread.from.is_some() && !ctx.thread.rcpt_list.is_empty();
    if !valid {
        skip_chunk(ctx, size, &mut std::io::sink())?;
        return if ctx.thread.from.is_some() {
            ready_for_data(ctx).map(|_| ())
        } else {
            sequence_error(ctx, "need MAIL and RCPT first")
        };
    }
    // Chunks may come minutes apart, so they are never collected in memory when the
    // application did not ask for that: Direct, which keeps no copy of DATA's message, gets
    // a BDAT message from a temporary file.
    let to_file = server.receive_mode == ReceiveMode::Raw
        && matches!(
            server.raw_stream_type,
            RawStreamType::File | RawStreamType::Direct
        );
    if ctx.thread.bdat.is_none() {
        let spool = match Spool::new(to_file) {
            Ok(spool) => spool,
            Err(e) => {
                log::error!("session {}: cannot spool: {e}", ctx.thread.session_id);
                skip_chunk(ctx, size, &mut std::io::sink())?;
                ctx.thread.reset_transaction();
                return ctx.reply(local_error(server));
            }
        };
        ctx.thread.bdat = Some(BdatState {
            spool,
            size: 0,
            too_large: false,
        });
    }
    let max = server.limits.max_message_size;
    let Some(mut state) = ctx.thread.bdat.take() else {
        return Ok(());
    };
    state.size = state.size.saturating_add(size);
    state.too_large |= max > 0 && state.size > max;
    let stored = if state.too_large {
        skip_chunk(ctx, size, &mut std::io::sink())?
    } else {
        skip_chunk(ctx, size, state.spool.writer())?
    };
    if state.too_large {
        ctx.thread.reset_transaction();
        return ctx.reply(refusal(server, DataStatus::TooLarge));
    }
    if !stored {
        // Never deliver a message with a hole in it.
        ctx.thread.reset_transaction();
        return ctx.reply(local_error(server));
    }
    if !last {
        ctx.thread.bdat = Some(state);
        return ctx.reply_with(250, "2.0.0", "%s octets received", &size.to_string());
    }
    let reply = deliver(server, ctx.thread, state.spool);
    log_outcome(ctx.thread, &reply);
    ctx.thread.reset_transaction();
    ctx.reply(reply)
}

/// `BDAT <1*DIGIT> [SP "LAST"]` (RFC 3030 §2 grammar).
fn parse_bdat(params: &[String]) -> Option<(u64, bool)> {
    let size = chunk_size(params)?;
    match params.get(1) {
        None => Some((size, false)),
        Some(last) if last.eq_ignore_ascii_case("LAST") && params.len() == 2 => Some((size, true)),
        Some(_) => None,
    }
}

/// The chunk size of a BDAT command (RFC 3030 §2: `1*DIGIT`), whatever follows it.
fn chunk_size(params: &[String]) -> Option<u64> {
    let size = params.first()?;
    if size.is_empty() || size.len() > 20 || !size.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    size.parse().ok()
}

/// Reads exactly `size` octets of chunk data into `sink`; `Ok(false)` when the sink failed
/// (the octets are still consumed, so the session stays in step with the client).
fn skip_chunk(ctx: &mut Context<'_>, size: u64, sink: &mut dyn std::io::Write) -> Result<bool> {
    let limits = &ctx.server().limits;
    let rate = (limits.data_timeout, limits.min_data_rate);
    let mut deadline = DataDeadline::new(limits.data_timeout, std::time::Instant::now());
    ctx.conn.use_data_buffer();
    ctx.conn.in_data = true;
    let mut left = size;
    let mut sink_ok = true;
    while left > 0 {
        if ctx.conn.buffered().is_empty() {
            // The same minimum rate as DATA, or a huge chunk trickled a byte per
            // `data_timeout` would hold the session forever.
            let timeout = deadline
                .next_wait(rate, size - left, std::time::Instant::now())
                .map_err(|e| ctx.conn.fail(e))?;
            ctx.conn.set_data_read_timeout(timeout)?;
            ctx.conn.fill()?;
        }
        let avail = ctx.conn.buffered();
        let n = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if sink_ok {
            if let Err(e) = sink.write_all(&avail[..n]) {
                log::error!(
                    "session {}: spooling BDAT data failed: {e}",
                    ctx.thread.session_id
                );
                sink_ok = false;
            }
        }
        ctx.conn.consume(n);
        left -= n as u64;
    }
    ctx.conn.in_data = false;
    ctx.conn.use_command_buffer();
    Ok(sink_ok)
}

#[cfg(test)]
mod tests {
    use super::parse_bdat;

    #[test]
    fn bdat_arguments() {
        let p = |s: &str| parse_bdat(&s.split_whitespace().map(String::from).collect::<Vec<_>>());
        assert_eq!(p("100"), Some((100, false)));
        assert_eq!(p("0 LAST"), Some((0, true)));
        assert_eq!(p("7 last"), Some((7, true)));
        assert_eq!(p(""), None);
        assert_eq!(p("-1"), None);
        assert_eq!(p("1x"), None);
        assert_eq!(p("5 LAST x"), None);
        assert_eq!(p("5 FIRST"), None);
        assert_eq!(p("99999999999999999999999"), None);
    }
}
