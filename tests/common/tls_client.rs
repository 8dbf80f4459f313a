//! TLS for the socket tests: a self-signed certificate made at test time, the server
//! configuration for it, and a raw SMTP client inside TLS (rustls, byte-exact).

use std::io::{self, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::{read_reply_from, Client};

/// A self-signed certificate for "localhost".
pub struct Cert {
    pub pem: String,
    pub key: String,
    pub der: CertificateDer<'static>,
}

pub fn cert() -> Cert {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Cert {
        pem: cert.pem(),
        key: key_pair.serialize_pem(),
        der: cert.der().clone(),
    }
}

pub fn server_config(c: &Cert) -> Arc<rustls::ServerConfig> {
    Arc::new(indy_smtp::tls::server_config_from_pem(c.pem.as_bytes(), c.key.as_bytes()).unwrap())
}

/// A client connection to "localhost" trusting `roots`.
pub fn client_connection(roots: &[&Cert]) -> io::Result<ClientConnection> {
    let mut store = RootCertStore::empty();
    for c in roots {
        store.add(c.der.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)
}

/// A raw SMTP client inside TLS.
pub struct TlsClient {
    pub io: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsClient {
    /// Runs the client handshake on `tcp`, trusting `roots`.
    pub fn handshake(tcp: TcpStream, roots: &[&Cert]) -> io::Result<TlsClient> {
        TlsClient::handshake_after(tcp, b"", roots)
    }

    /// [`handshake`](Self::handshake) whose last flight (the client's Finished) goes out in
    /// one write with `command`, as a client that talks at once does: the server's
    /// handshake may read the command with its Finished. `command` may be any length (a
    /// long pipelined burst): the client's buffer is not limited.
    pub fn handshake_then(
        mut tcp: TcpStream,
        command: &[u8],
        roots: &[&Cert],
    ) -> io::Result<TlsClient> {
        let mut conn = client_connection(roots)?;
        conn.set_buffer_limit(None);
        while conn.is_handshaking() {
            while conn.wants_write() {
                conn.write_tls(&mut tcp)?;
            }
            if conn.read_tls(&mut tcp)? == 0 {
                return Err(io::Error::other("closed during the handshake"));
            }
            conn.process_new_packets().map_err(io::Error::other)?;
        }
        conn.writer().write_all(command)?;
        let mut flight = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut flight)?;
        }
        tcp.write_all(&flight)?;
        Ok(TlsClient {
            io: BufReader::new(StreamOwned::new(conn, tcp)),
        })
    }

    /// [`handshake`](Self::handshake) with `prefix` sent in the same write as the
    /// ClientHello (a PROXY header).
    pub fn handshake_after(
        mut tcp: TcpStream,
        prefix: &[u8],
        roots: &[&Cert],
    ) -> io::Result<TlsClient> {
        let mut conn = client_connection(roots)?;
        if !prefix.is_empty() {
            let mut first = prefix.to_vec();
            conn.write_tls(&mut first)?;
            tcp.write_all(&first)?;
        }
        conn.complete_io(&mut tcp)?;
        if conn.is_handshaking() {
            return Err(io::Error::other("handshake did not complete"));
        }
        Ok(TlsClient {
            io: BufReader::new(StreamOwned::new(conn, tcp)),
        })
    }

    /// Implicit TLS: connect, handshake, read the greeting.
    pub fn connect_implicit(addr: SocketAddr, roots: &[&Cert]) -> (TlsClient, (u16, String)) {
        let mut c = TlsClient::handshake(Client::connect_silent(addr).writer, roots).unwrap();
        let greeting = c.read_reply();
        (c, greeting)
    }

    /// STARTTLS on a plain client (after its EHLO): expects the 220, then handshakes.
    pub fn starttls(mut plain: Client, roots: &[&Cert]) -> TlsClient {
        assert_eq!(
            plain.read_line_after("STARTTLS"),
            "220 2.0.0 Ready to start TLS\r\n"
        );
        assert!(plain.reader.buffer().is_empty(), "plaintext after the 220");
        TlsClient::handshake(plain.writer, roots).expect("handshake")
    }

    pub fn read_reply(&mut self) -> (u16, String) {
        read_reply_from(&mut self.io)
    }

    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        let s = self.io.get_mut();
        s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        s.flush().unwrap();
        self.read_reply()
    }

    pub fn expect(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.cmd(line);
        assert_eq!(got, code, "{line:?} answered {got} {text:?}");
        text
    }

    pub fn peer_cert(&self) -> CertificateDer<'static> {
        self.io.get_ref().conn.peer_certificates().unwrap()[0].clone()
    }
}

pub trait ClientExt {
    fn read_line_after(&mut self, line: &str) -> String;
}

impl ClientExt for Client {
    /// Sends a command and returns the first reply line byte for byte.
    fn read_line_after(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_line()
    }
}
