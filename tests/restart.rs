//! Stopping a server and starting it again (Indy's `Active := False`, then `True`, as the
//! two buttons of Indy's SMTPServer demo do), over real loopback sockets.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::tls_client::{cert, server_config, TlsClient};
use common::{start, Client};
use indy_smtp::ServerHandle;

/// Sends one message on a new connection; returns the reply to the end of data.
fn send_one(addr: std::net::SocketAddr, body: &[u8]) -> (u16, String) {
    let mut c = Client::connect(addr);
    assert_eq!(c.greeting.0, 220, "greeting {:?}", c.greeting);
    let end = c.send_mail("a@example.org", &["b@example.org"], body);
    c.cmd("QUIT");
    end
}

/// The same closures, with the state they captured, serve again after a restart on the same
/// address; the connection left open across the stop was told 421 and closed.
#[test]
fn a_stopped_server_starts_again_with_its_settings_handlers_and_state() {
    let connects = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connects);
    let first = start(move |s| {
        s.hostname = "restart.example".into();
        s.on_connect = Some(Box::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }));
    });
    let addr = first.addr;
    let inbox = Arc::clone(&first.inbox);
    assert_eq!(send_one(addr, b"Subject: one\r\n\r\nfirst\r\n").0, 250);
    let mut idle = Client::connect(addr);
    assert_eq!(idle.cmd("EHLO idle.example").0, 250);

    let mut server = first.handle.stop_for_restart().expect("server back");
    let (code, text) = idle.read_reply();
    assert_eq!(code, 421, "idle client at stop: {text}");
    assert_eq!(server.hostname, "restart.example");
    assert!(server.on_receive_raw.is_some() && server.on_connect.is_some());
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening after stop_for_restart"
    );

    server.bindings = vec![addr];
    let second: ServerHandle = server.start().expect("second start on the same address");
    assert_eq!(second.local_addr(), addr);
    let (code, text) = send_one(addr, b"Subject: two\r\n\r\nsecond\r\n");
    assert_eq!(code, 250, "{text}");

    let got = inbox.lock().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].data.ends_with(b"first\r\n"), "{:?}", got[0]);
    assert!(got[1].data.ends_with(b"second\r\n"), "{:?}", got[1]);
    // Three connections before the stop would be two; the closure kept counting across it.
    assert_eq!(connects.load(Ordering::SeqCst), 3);
    second.stop();
}

/// A certificate swapped in while running is the one the restarted server offers.
#[test]
fn a_restart_keeps_the_certificate_reload_tls_put_in() {
    let (old, new) = (cert(), cert());
    let new_config = server_config(&new);
    let running = start(|s| s.tls = Some(server_config(&old)));
    running
        .handle
        .reload_tls(Arc::clone(&new_config))
        .expect("TLS is configured");
    let mut server = running.handle.stop_for_restart().expect("server back");
    let kept = server.tls.clone().expect("TLS still configured");
    assert!(
        Arc::ptr_eq(&kept, &new_config),
        "the original config came back"
    );

    server.bindings = vec![running.addr];
    let handle = server.start().expect("restart");
    let mut c = Client::connect(running.addr);
    assert_eq!(c.cmd("EHLO client.example").0, 250);
    assert_eq!(c.cmd("STARTTLS").0, 220);
    let mut tls = TlsClient::handshake(c.writer, &[&new]).expect("handshake trusting the new cert");
    assert_eq!(tls.cmd("NOOP").0, 250);
    handle.stop();
}
