use indy_smtp::{RcptAction, ReceiveMode, Reply, SmtpServer};

fn main() -> Result<(), indy_smtp::Error> {
    let mut server = SmtpServer::new();
    server.bindings = vec!["127.0.0.1:2525".parse().expect("address")];
    server.receive_mode = ReceiveMode::MessageParsed;
    // Indy's OnCommandRCPT: Accept, ToForward and CustomError become one return value.
    server.on_command_rcpt = Some(Box::new(|_thread, rcpt| {
        // RFC 5321 §4.5.1: <Postmaster> must be accepted whatever the domain rules say.
        if rcpt.address.to_ascii_lowercase().ends_with("@example.com") || rcpt.is_postmaster() {
            RcptAction::Accept
        } else {
            RcptAction::Reply(Reply::new(550, "Relaying denied").with_enhanced("5.7.1"))
        }
    }));
    // Indy's OnReceiveMessageParsed: Ok(()) sends 250, Err(reply) sends that reply instead.
    server.on_receive_message_parsed = Some(Box::new(|thread, msg| {
        let from = thread.from_address().unwrap_or("");
        let to = thread.rcpt_addresses();
        println!("<{from}> -> {to:?}: {:?}", msg.subject);
        Ok(())
    }));
    let handle = server.start()?; // Indy's Active := True
    println!("listening on {}", handle.local_addr());
    loop {
        std::thread::park(); // serve until killed; handle.stop() would stop gracefully
    }
}
