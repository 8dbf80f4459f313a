//! The smallest useful server: prints the envelope and size of every message.
use std::io::Read;

fn main() {
    env_logger::init();
    let mut server = indy_smtp::SmtpServer::new();
    server.bindings = vec!["127.0.0.1:2525".parse().expect("address")];
    server.on_receive_raw = Some(Box::new(|thread, stream| {
        let mut data = Vec::new();
        stream
            .read_to_end(&mut data)
            .map_err(|_| indy_smtp::Reply::new(451, "read error"))?;
        eprintln!(
            "{:?} -> {:?}: {} bytes",
            thread.from,
            thread.rcpt_addresses(),
            data.len()
        );
        Ok(())
    }));
    let handle = server.start().expect("start");
    eprintln!("listening on {}", handle.local_addr());
    std::thread::park();
}
