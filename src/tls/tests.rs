use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::*;

/// Generous bound on every socket wait so a broken test fails instead of hanging.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

type ClientStream = StreamOwned<ClientConnection, TcpStream>;

/// A self-signed certificate for "localhost" as PEM strings plus its DER.
struct TestCert {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn self_signed() -> TestCert {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    TestCert {
        cert_pem: cert.pem(),
        key_pem: key_pair.serialize_pem(),
        der: cert.der().clone(),
    }
}

fn config_for(cert: &TestCert) -> Arc<rustls::ServerConfig> {
    Arc::new(server_config_from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap())
}

fn client_config(
    trusted: &[&CertificateDer<'static>],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for der in trusted {
        roots.add((*der).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

fn timed(tcp: TcpStream) -> TcpStream {
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp
}

fn connect(addr: SocketAddr) -> TcpStream {
    timed(TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap())
}

/// Accepts one connection on a server thread while the client handshakes on
/// this one; returns both ends, or the server's error and the client's.
fn pair(
    acceptor: &Arc<TlsAcceptor>,
    listener: &TcpListener,
    client_cfg: Arc<ClientConfig>,
) -> (io::Result<TlsStream>, io::Result<ClientStream>) {
    let addr = listener.local_addr().unwrap();
    let listener = listener.try_clone().unwrap();
    let acceptor = Arc::clone(acceptor);
    let server = thread::spawn(move || {
        let (tcp, _) = listener.accept()?;
        acceptor.accept(timed(tcp))
    });
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = StreamOwned::new(
        ClientConnection::new(client_cfg, name).unwrap(),
        connect(addr),
    );
    let client_result = client.conn.complete_io(&mut client.sock).map(|_| client);
    let server_result = server.join().unwrap();
    (server_result, client_result)
}

fn established(
    acceptor: &Arc<TlsAcceptor>,
    listener: &TcpListener,
    client_cfg: Arc<ClientConfig>,
) -> (TlsStream, ClientStream) {
    let (server, client) = pair(acceptor, listener, client_cfg);
    (server.unwrap(), client.unwrap())
}

/// One request/reply round trip in each direction.
fn exchange(server: &mut TlsStream, client: &mut ClientStream, request: &[u8], reply: &[u8]) {
    client.write_all(request).unwrap();
    client.flush().unwrap();
    let mut got = vec![0; request.len()];
    server.read_exact(&mut got).unwrap();
    assert_eq!(got, request);
    server.write_all(reply).unwrap();
    server.flush().unwrap();
    let mut got = vec![0; reply.len()];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, reply);
}

fn peer_cert(client: &ClientStream) -> CertificateDer<'static> {
    let chain = client.conn.peer_certificates().unwrap();
    assert_eq!(chain.len(), 1);
    chain[0].clone()
}

static TEMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A file in the temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> TempFile {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("indy-smtp-tls-{}-{n}.pem", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn config_from_pem_key_formats() {
    let generated = self_signed();
    let bundle = format!("{}{}", generated.key_pem, generated.cert_pem);
    let cases: &[(&str, &[u8], &[u8])] = &[
        (
            "rcgen PKCS#8",
            generated.cert_pem.as_bytes(),
            generated.key_pem.as_bytes(),
        ),
        ("PKCS#1 RSA", RSA_CERT.as_bytes(), RSA_PKCS1_KEY.as_bytes()),
        ("SEC1 EC", EC_CERT.as_bytes(), EC_SEC1_KEY.as_bytes()),
        // A bundle holding key and chain can serve as both inputs.
        ("bundle", bundle.as_bytes(), bundle.as_bytes()),
    ];
    for (what, cert, key) in cases {
        let config = server_config_from_pem(cert, key);
        assert!(config.is_ok(), "{what}: {:?}", config.err());
    }
}

#[test]
fn config_from_pem_errors() {
    let good = self_signed();
    let other = self_signed();
    let cert = good.cert_pem.as_bytes();
    let key = good.key_pem.as_bytes();
    let broken_b64 = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let no_end = b"-----BEGIN CERTIFICATE-----\nAAAA\n";
    let bad_key_der = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let bad_cert_der = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    type Check = fn(&TlsError) -> bool;
    let cases: Vec<(&str, &[u8], &[u8], Check)> = vec![
        ("empty cert", b"", key, |e| {
            matches!(e, TlsError::NoCertificates)
        }),
        ("empty key", cert, b"", |e| {
            matches!(e, TlsError::NoPrivateKey)
        }),
        ("both empty", b"", b"", |e| {
            matches!(e, TlsError::NoCertificates)
        }),
        ("key as cert", key, key, |e| {
            matches!(e, TlsError::NoCertificates)
        }),
        ("cert as key", cert, cert, |e| {
            matches!(e, TlsError::NoPrivateKey)
        }),
        ("garbage cert", b"garbage\x00\xff", key, |e| {
            matches!(e, TlsError::NoCertificates)
        }),
        ("garbage key", cert, b"garbage\x00\xff", |e| {
            matches!(e, TlsError::NoPrivateKey)
        }),
        ("bad base64", broken_b64, key, |e| {
            matches!(e, TlsError::Pem(_))
        }),
        ("missing END", no_end, key, |e| {
            matches!(e, TlsError::Pem(_))
        }),
        ("bad key DER", cert, bad_key_der, |e| {
            matches!(e, TlsError::Rustls(_))
        }),
        ("bad cert DER", bad_cert_der, key, |e| {
            matches!(e, TlsError::Rustls(_))
        }),
        ("mismatched key", cert, other.key_pem.as_bytes(), |e| {
            matches!(e, TlsError::Rustls(rustls::Error::InconsistentKeys(_)))
        }),
    ];
    for (what, cert, key, check) in cases {
        match server_config_from_pem(cert, key) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => {
                assert!(check(&e), "{what}: unexpected {e:?}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn config_from_pem_files() {
    let generated = self_signed();
    let cert = TempFile::new(generated.cert_pem.as_bytes());
    let key = TempFile::new(generated.key_pem.as_bytes());
    assert!(server_config_from_pem_files(&cert.0, &key.0).is_ok());

    let missing = std::env::temp_dir().join("indy-smtp-tls-does-not-exist.pem");
    for (c, k) in [(&missing, &key.0), (&cert.0, &missing)] {
        match server_config_from_pem_files(c, k) {
            Err(TlsError::Io(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::NotFound);
                assert!(
                    e.to_string().contains("indy-smtp-tls-does-not-exist.pem"),
                    "{e}"
                );
            }
            other => panic!("expected Io error, got {other:?}"),
        }
    }
    // Reading a file succeeded but its content is wrong: not an Io error.
    let empty = TempFile::new(b"");
    assert!(matches!(
        server_config_from_pem_files(&empty.0, &key.0),
        Err(TlsError::NoCertificates)
    ));
}

#[test]
fn error_sources_and_conversions() {
    use std::error::Error as _;
    // The cause is in the text, once: not also in `source()`, or reporters print it twice.
    let io_err = TlsError::from(io::Error::new(io::ErrorKind::NotFound, "x"));
    assert!(io_err.source().is_none() && io_err.to_string().ends_with(": x"));
    let rustls_err = TlsError::from(rustls::Error::General("y".into()));
    assert!(rustls_err.source().is_none() && rustls_err.to_string().ends_with(": y"));
    let pem_err = TlsError::from(pem::Error::Base64Decode("z".into()));
    assert!(matches!(&pem_err, TlsError::Pem(s) if s.contains('z')));
    assert!(TlsError::NoCertificates.source().is_none());
    assert!(TlsError::NoPrivateKey.to_string().contains("private key"));
}

#[test]
fn handshake_tls13_and_tls12() {
    let generated = self_signed();
    let acceptor = Arc::new(TlsAcceptor::new(config_for(&generated)));
    let listener = listener();
    let cases: [(&'static rustls::SupportedProtocolVersion, &str, &str); 2] = [
        (&rustls::version::TLS13, "TLSv1.3", "TLS13_"),
        (&rustls::version::TLS12, "TLSv1.2", "TLS_ECDHE_"),
    ];
    for (version, want_version, suite_prefix) in cases {
        let cfg = client_config(&[&generated.der], &[version]);
        let (mut server, mut client) = established(&acceptor, &listener, cfg);
        let info = tls_info(&server.conn);
        assert_eq!(info.protocol_version, want_version);
        assert!(info.cipher_suite.starts_with(suite_prefix), "{info:?}");
        assert_eq!(info.sni.as_deref(), Some("localhost"));
        assert_eq!(peer_cert(&client), generated.der);
        exchange(
            &mut server,
            &mut client,
            b"EHLO client.example\r\n",
            b"250 hello\r\n",
        );
        exchange(&mut server, &mut client, b"QUIT\r\n", b"221 bye\r\n");
    }
}

#[test]
fn handshake_with_pkcs1_and_sec1_keys() {
    for (cert_pem, key_pem) in [(RSA_CERT, RSA_PKCS1_KEY), (EC_CERT, EC_SEC1_KEY)] {
        let config = server_config_from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
        let acceptor = Arc::new(TlsAcceptor::new(Arc::new(config)));
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        let cfg = client_config(&[&der], rustls::DEFAULT_VERSIONS);
        let (mut server, mut client) = established(&acceptor, &listener(), cfg);
        assert_eq!(peer_cert(&client), der);
        exchange(&mut server, &mut client, b"NOOP\r\n", b"250 ok\r\n");
    }
}

#[test]
fn handshake_without_sni() {
    let generated = self_signed();
    let acceptor = Arc::new(TlsAcceptor::new(config_for(&generated)));
    let mut cfg = (*client_config(&[&generated.der], rustls::DEFAULT_VERSIONS)).clone();
    cfg.enable_sni = false;
    let (server, _client) = established(&acceptor, &listener(), Arc::new(cfg));
    assert_eq!(tls_info(&server.conn).sni, None);
}

#[test]
fn tls_info_before_handshake_is_empty() {
    let conn = ServerConnection::new(config_for(&self_signed())).unwrap();
    let info = tls_info(&conn);
    assert_eq!(
        info,
        TlsInfo {
            protocol_version: String::new(),
            cipher_suite: String::new(),
            sni: None
        }
    );
}

#[test]
fn reload_switches_new_handshakes_only() {
    let first = self_signed();
    let second = self_signed();
    assert_ne!(first.der, second.der);
    let acceptor = Arc::new(TlsAcceptor::new(config_for(&first)));
    let listener = listener();
    let cfg = client_config(&[&first.der, &second.der], rustls::DEFAULT_VERSIONS);

    let (mut old_server, mut old_client) = established(&acceptor, &listener, Arc::clone(&cfg));
    assert_eq!(peer_cert(&old_client), first.der);

    let second_config = config_for(&second);
    acceptor.reload(Arc::clone(&second_config));
    assert!(Arc::ptr_eq(&acceptor.current(), &second_config));

    let (mut new_server, mut new_client) = established(&acceptor, &listener, cfg);
    assert_eq!(peer_cert(&new_client), second.der);

    // The session established before the reload keeps working.
    exchange(
        &mut old_server,
        &mut old_client,
        b"MAIL FROM:<a@b>\r\n",
        b"250 ok\r\n",
    );
    exchange(
        &mut new_server,
        &mut new_client,
        b"RSET\r\n",
        b"250 reset\r\n",
    );
    assert_eq!(peer_cert(&old_client), first.der);
}

#[test]
fn reload_is_safe_under_concurrency() {
    let configs = [config_for(&self_signed()), config_for(&self_signed())];
    let acceptor = Arc::new(TlsAcceptor::new(Arc::clone(&configs[0])));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let acceptor = Arc::clone(&acceptor);
            let configs = configs.clone();
            thread::spawn(move || {
                for j in 0..500 {
                    if (i + j) % 2 == 0 {
                        acceptor.reload(Arc::clone(&configs[j % 2]));
                    } else {
                        let current = acceptor.current();
                        assert!(configs.iter().any(|c| Arc::ptr_eq(c, &current)));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let current = acceptor.current();
    assert!(configs.iter().any(|c| Arc::ptr_eq(c, &current)));
}

#[test]
fn untrusted_client_aborts_handshake() {
    let served = self_signed();
    let trusted = self_signed();
    let acceptor = Arc::new(TlsAcceptor::new(config_for(&served)));
    let cfg = client_config(&[&trusted.der], rustls::DEFAULT_VERSIONS);
    let (server, client) = pair(&acceptor, &listener(), cfg);
    let client_err = client.err().unwrap();
    assert_eq!(
        client_err.kind(),
        io::ErrorKind::InvalidData,
        "{client_err}"
    );
    // The client sent an alert (or closed) instead of finishing.
    assert!(server.is_err());
}

/// Runs `accept` against a raw TCP peer driven by `peer`.
fn accept_against_raw_peer(
    read_timeout: Duration,
    peer: impl FnOnce(TcpStream) + Send + 'static,
) -> io::Result<TlsStream> {
    let acceptor = TlsAcceptor::new(config_for(&self_signed()));
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || peer(connect(addr)));
    let (tcp, _) = listener.accept().unwrap();
    let tcp = timed(tcp);
    tcp.set_read_timeout(Some(read_timeout)).unwrap();
    let result = acceptor.accept(tcp);
    client.join().unwrap();
    result
}

#[test]
fn failed_handshakes_return_errors() {
    type Peer = Box<dyn FnOnce(TcpStream) + Send>;
    let cases: Vec<(&str, Duration, Peer, io::ErrorKind)> = vec![
        (
            "plaintext SMTP instead of a ClientHello",
            IO_TIMEOUT,
            Box::new(|mut s: TcpStream| {
                let _ = s.write_all(b"EHLO attacker\r\nMAIL FROM:<a@b>\r\n");
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }),
            io::ErrorKind::InvalidData,
        ),
        (
            "peer closes immediately",
            IO_TIMEOUT,
            Box::new(drop),
            io::ErrorKind::UnexpectedEof,
        ),
        (
            "peer stays silent",
            Duration::from_millis(200),
            Box::new(|mut s: TcpStream| {
                // Wait for the server to give up and close.
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }),
            io::ErrorKind::TimedOut,
        ),
        (
            "peer sends a partial record then stalls",
            Duration::from_millis(200),
            Box::new(|mut s: TcpStream| {
                let _ = s.write_all(&[0x16, 0x03, 0x01, 0x00, 0x40, 0x01]);
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }),
            io::ErrorKind::TimedOut,
        ),
    ];
    for (what, timeout, peer, want) in cases {
        match accept_against_raw_peer(timeout, peer) {
            Ok(_) => panic!("{what}: handshake succeeded"),
            Err(e) => assert_eq!(e.kind(), want, "{what}: {e}"),
        }
    }
}

// Fixtures made with OpenSSL 3 (`genrsa -traditional`, `ecparam -genkey
// -noout`, `req -x509` with CA:FALSE and SAN DNS:localhost, valid until
// 2126): rcgen only writes PKCS#8, and these prove PKCS#1 and SEC1 keys load.
// Test-only keys; never use them anywhere else.

const RSA_PKCS1_KEY: &str = "\
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAtJKq1nAUT/M2sulcrxsztASqQI0JpWIHDSY6ru7/0RQjVAzE
SUoHz7B1JdHvoHzEorCczxm0qpzHOJT+N5S7Mt0Mi9iuTdkY8ZF899xZAsSUvXny
EserIK7BvtFOp22RZdR406+JUTmN74wvGozOAf2QwP5Ys1llqecEWAPh++uLPOjJ
zG1vh9tgAPjCAb8kux+dG7mkn+DrR28xYj7+77xqnq0y6PAGBqcrlnHVhc4Zn0Wf
Vg4XqvCQYPQ4WBSbEXz4TAkwdT1PNaDCYhpI8BmD9ussPpth/LOUeGs17h/ejD7C
Qr7+vhemdh6Ib1f+hGU+RCT/5ogsspl3OdaY4wIDAQABAoIBABhq1MsWcMi23Kio
wa20AfPPxa3g5HMGpGl0x+6rxs/g5z4QU+KNLi05cT3h+4M6G+Tb+PhQQ4vmk1Hl
Y9LkO8QO/AlVDYzdVHAl+j4R/79OEcblXISJl2xd9Tj2WKpvOIAKkSQe0nS3UagY
zq3KaHkAbriKLDhkWEj3QjEcpUxJPVpj5blIjGATyLRcz3xoFM7LRCZmh+Bw9gMl
EcOaFP6PVMYSfPFWUqLPnR8od7uKtn47XOHSqxpTZIgRNmgAz/m/lLkeRPhH1FgI
mtMM8gDEAnQ0ATbSCAjPjFS69LDyv2//ScTm66Ee6gCVYleM66hfdwC44VV+BbAD
MxPXkzECgYEA4qfvqDgXSmBf2XlV8mVBE5nS2xrqfL/0iP8aMqqdpnayx8/slFlT
r1Xdt18wzGSvm/psPs5cr4H0KqqLZtzrMDvghdUbAkC0nSSy4NFaPjAQLVKycRKp
0Dy+38JHovwTXW9WUIGoujRLr5c71Y4ziR5OATCGHBxYSXiiGdRX+g8CgYEAy/Nm
F1G23rVuNvhAxYX5CMkEkeLrg+G/etVxzGBHfRVd5A11mTFmuXPiloMCNXE9ZjfG
R3q054ZV7GawCng841Ydcc8Q5oxxruR5F/ECc9nNvMf4j2mNpu3IiHKtuu2slkt0
F7xUXDmIKX7weu0uTZzFY8fECZBQujSRTZgHV+0CgYB5EdmLUsLmIMqyQQTu4LU9
QhqGnT8J+gMmNpYI4GgrphXjc6Zcq8ZuzwAK1lcbpuDDAaZWeia6PUFulQC3pmQe
tK0+79Foh6WylwrR2iJJO6U4gIb+rUh2CiyvG3jmj53MeA90G35EUHDpT3BPp5DR
upVSP1gzpdRnEoAMKggAcwKBgDp7CIMXQ0CI9Zl9hdUdnVMPkOfkEXQ3fxhRq9fW
o6kSP2HtGhNbPwFeYVKXLkL0vY5Z39kPLmBU/L5Uk5Xs9EiboMXJgicZjl9/09kx
mmptwbin/nXg5mU/OYkmmPpIvHw8FoXX0ri/JnP/miUlbWmD0nXSCjxTzVIXULLX
LQPhAoGBAK/s9370LF2uPDVBzhaNH+Xvlp1fVuqHNDqvIXwITbnuRosNzY+phIdW
7MW6G8GzXnuxs5HXcf6L4D8QCnuR9OwQeVi2LbEYySDBNyify3eN+2oN5u0IsGwj
QtuJrb05UzIKGGS7vdAz08jlY//Hh7oBCjiKkTlEt1OSSnNVGbmR
-----END RSA PRIVATE KEY-----
";

const RSA_CERT: &str = "\
-----BEGIN CERTIFICATE-----
MIIDIjCCAgqgAwIBAgIUUeqF6RPtUBaIx57t5BmalKKlQQowDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNzA0MjIzOVoYDzIxMjYx
MTAzMDQyMjM5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQC0kqrWcBRP8zay6VyvGzO0BKpAjQmlYgcNJjqu7v/R
FCNUDMRJSgfPsHUl0e+gfMSisJzPGbSqnMc4lP43lLsy3QyL2K5N2RjxkXz33FkC
xJS9efISx6sgrsG+0U6nbZFl1HjTr4lROY3vjC8ajM4B/ZDA/lizWWWp5wRYA+H7
64s86MnMbW+H22AA+MIBvyS7H50buaSf4OtHbzFiPv7vvGqerTLo8AYGpyuWcdWF
zhmfRZ9WDheq8JBg9DhYFJsRfPhMCTB1PU81oMJiGkjwGYP26yw+m2H8s5R4azXu
H96MPsJCvv6+F6Z2HohvV/6EZT5EJP/miCyymXc51pjjAgMBAAGjajBoMAwGA1Ud
EwEB/wQCMAAwFAYDVR0RBA0wC4IJbG9jYWxob3N0MA4GA1UdDwEB/wQEAwIFoDAT
BgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUspmGUkEJvykkleKlhYnMZYsD
nEUwDQYJKoZIhvcNAQELBQADggEBAG8waCjXFyBJF8skAkDRGDOKEGwJLeYdnxPK
ZmUsV74wVkFsxdTIrG2D36Nw/pvaMTfUpK+SQdj0gvd6SfSfU9qkRvUjOchq7hb8
3mGaqImmUu4N739UIfcx73wRn1zhJBqEFlZpGTUs6Gzdyp72DDSRG4aFQN6ibJ39
P+N0oaQj20wTMb+4ztTGDW//0vXFUpVytYYIU5LD8E5poktp8BKcwY8Jnu8eNtGD
YQRBxZoWKi8Ae8FzkkTaAk2+d2XaHyL6uMoPZrxZrZ0wzlDSOi9mz4LBuIqrSk9S
jX6rlDcNepvcqjT3iL/Ns7tVFojw8R+umdqRZ/jkDgQmLyDXP3s=
-----END CERTIFICATE-----
";

const EC_SEC1_KEY: &str = "\
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIECTVjm9ORTzaGp9Pu7y0lBsQQ4u/Jib9UuDxssM+RjroAoGCCqGSM49
AwEHoUQDQgAEFct1j4dxG9aUIxxLHWKwo+V2JKl2HMPnEdd8emv/ffaa8pXgWeO/
H/fv4yXGRKCVcwBnr3q9LAdvMjrE9w2WFg==
-----END EC PRIVATE KEY-----
";

const EC_CERT: &str = "\
-----BEGIN CERTIFICATE-----
MIIBljCCATygAwIBAgIUFe6zK5sdxNqh9Op077P96rqohHwwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNzA0MjIzOVoYDzIxMjYxMTAz
MDQyMjM5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQVy3WPh3Eb1pQjHEsdYrCj5XYkqXYcw+cR13x6a/999pryleBZ478f
9+/jJcZEoJVzAGever0sB28yOsT3DZYWo2owaDAMBgNVHRMBAf8EAjAAMBQGA1Ud
EQQNMAuCCWxvY2FsaG9zdDAOBgNVHQ8BAf8EBAMCBaAwEwYDVR0lBAwwCgYIKwYB
BQUHAwEwHQYDVR0OBBYEFIvIwxn6KzRnHXaQKTWb7gNqkiLUMAoGCCqGSM49BAMC
A0gAMEUCIEWs8x2hw5tBENV2Q0psAdQtpR4C3+H3k4laJ57DnINuAiEAvk5hebnM
fYWLkfcvdh9S4N90l4vcOjcYLsWS0ie7F54=
-----END CERTIFICATE-----
";
