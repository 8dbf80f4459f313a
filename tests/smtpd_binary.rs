//! The real `examples/smtpd` binary: start, store, SIGTERM → graceful stop, exit status 0;
//! the exit status of bad command lines; a failed start leaves no Maildir behind.
mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::lettre_client::{builder, lettre_mail};
use lettre::Transport;

// ---- The real binary: start, store, SIGTERM → graceful stop, exit 0 -----------------------

/// Builds `examples/smtpd` once (cargo picks the profile and target dir) and returns its path.
fn smtpd_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut child = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--quiet",
                "--example",
                "smtpd",
                "--message-format=json-render-diagnostics",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run cargo");
        let mut out = child.stdout.take().unwrap();
        let reader = thread::spawn(move || {
            let mut s = String::new();
            out.read_to_string(&mut s).map(|_| s)
        });
        let status =
            wait_bounded(&mut child, Duration::from_secs(900)).expect("cargo build timed out");
        assert!(status.success(), "cargo build --example smtpd failed");
        let json = reader.join().unwrap().unwrap();
        let line = json
            .lines()
            .find(|l| {
                l.contains("\"reason\":\"compiler-artifact\"")
                    && l.contains("\"name\":\"smtpd\"")
                    && l.contains("\"example\"")
            })
            .expect("artifact message for smtpd");
        let start = line.find("\"executable\":\"").expect("executable") + "\"executable\":\"".len();
        let end = start + line[start..].find('"').unwrap();
        PathBuf::from(&line[start..end])
    })
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the child if the test fails before it exits.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn binary_stores_mail_and_stops_on_sigterm() {
    let bin = smtpd_binary();
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("md");
    let child = Command::new(bin)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--hostname",
            "smtpd.test",
            "--maildir",
        ])
        .arg(&maildir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(Some(child));
    let stderr = running.0.as_mut().unwrap().stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let addr: SocketAddr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("smtpd logs its address");
        log.push(line.clone());
        if let Some(at) = line.find("listening on ") {
            break line[at + 13..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    let mailer = builder(addr.port()).build();
    let mail = lettre_mail("from the binary", "hello\r\n");
    let response = mailer.send(&mail).unwrap();
    assert_eq!(response.code().to_string(), "250");
    let new: Vec<_> = fs::read_dir(maildir.join("new"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(new.len(), 1);
    let name = new[0].file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.ends_with(".smtpd.test")
            && name.contains(&format!("P{}Q", running.0.as_ref().unwrap().id())),
        "{name}"
    );
    let stored = fs::read(&new[0]).unwrap();
    assert!(stored.starts_with(b"X-Peer: 127.0.0.1\r\nX-MailFrom: ann@a.example\r\nX-RcptTo: bob@b.example, cy@c.example\r\n"));
    assert_eq!(fs::read_dir(maildir.join("tmp")).unwrap().count(), 0);

    let pid = running.0.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = wait_bounded(running.0.as_mut().unwrap(), Duration::from_secs(30))
        .expect("smtpd did not stop");
    running.0 = None;
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
    log.extend(rx.try_iter());
    let log = log.join("\n");
    assert!(log.contains(&format!("stored new/{name}")), "{log}");
    assert!(log.contains("connect from 127.0.0.1"), "{log}");
    // The port is free again: the server really stopped listening.
    TcpListener::bind(addr).unwrap();
}

#[test]
fn binary_exit_status_for_help_and_bad_flags() {
    let bin = smtpd_binary();
    let run = |args: &[&str]| {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_bounded(&mut child, Duration::from_secs(30)).expect("smtpd exits");
        let out = child.wait_with_output().unwrap();
        (
            status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    for flag in [
        "--listen",
        "--maildir",
        "--tls-listen",
        "--discard",
        "--fsync",
        "--receive-mode",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
    let (code, _, err) = run(&["--no-such-flag"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--no-such-flag"), "{err}");
    assert_eq!(run(&["--max-recipients", "many"]).0, Some(2));
}

#[test]
fn binary_start_failure_leaves_no_maildir_behind() {
    let bin = smtpd_binary();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    // smtpd on the taken address: its exit status and what it wrote to stderr.
    let start_on_taken_port = |maildir: &Path| {
        let mut child = Command::new(bin)
            .args([
                "--listen",
                &taken.local_addr().unwrap().to_string(),
                "--maildir",
            ])
            .arg(maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_bounded(&mut child, Duration::from_secs(30)).expect("smtpd exits");
        let err = child.wait_with_output().unwrap().stderr;
        (status.code(), String::from_utf8_lossy(&err).into_owned())
    };
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = start_on_taken_port(&dir.path().join("new-parent").join("md"));
    assert_eq!(code, Some(1), "{err}");
    // Neither the Maildir nor the parent it had to create is left; the existing one is.
    assert!(!dir.path().join("new-parent").exists());
    assert!(dir.path().exists());

    // A Maildir that existed is kept as it was, mail and all.
    let kept = dir.path().join("kept");
    fs::create_dir_all(kept.join("new")).unwrap();
    fs::write(kept.join("new").join("1.mail"), b"x").unwrap();
    let (code, err) = start_on_taken_port(&kept);
    assert_eq!(code, Some(1), "{err}");
    assert!(kept.join("new").join("1.mail").exists());
    assert!(!kept.join("tmp").exists() && !kept.join("cur").exists());

    // An empty directory given as the Maildir stays, and stays empty.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let (code, err) = start_on_taken_port(&empty);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        fs::read_dir(&empty).unwrap().count(),
        0,
        "left in {empty:?}"
    );
}
