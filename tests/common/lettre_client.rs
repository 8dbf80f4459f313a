//! lettre, the real client of the smtpd tests: a message and a transport to 127.0.0.1.

use std::time::Duration;

use lettre::transport::smtp::SmtpTransportBuilder;
use lettre::SmtpTransport;

/// A message from Ann to Bob, Cy in copy.
pub fn lettre_mail(subject: &str, body: &str) -> lettre::Message {
    lettre::Message::builder()
        .from("Ann <ann@a.example>".parse().unwrap())
        .to("bob@b.example".parse().unwrap())
        .cc("cy@c.example".parse().unwrap())
        .subject(subject)
        .body(body.to_string())
        .unwrap()
}

/// lettre's client for 127.0.0.1:`port`, with a 10 s timeout.
pub fn builder(port: u16) -> SmtpTransportBuilder {
    SmtpTransport::builder_dangerous("127.0.0.1")
        .port(port)
        .timeout(Some(Duration::from_secs(10)))
}
