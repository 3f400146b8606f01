//! Interoperability with implementations that are not ours, on loopback: NTLM with WinRM
//! message encryption against pyspnego's acceptor. Our own server talking to our own client
//! proves little; this catches a shared misreading of the specification.
//!
//! Needs python3 with pyspnego (`pip install pyspnego`); `.ci/run` installs it and sets
//! `WINRM_SESSIONS_INTEROP=required`, which turns a missing dependency into a failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use futures_util::TryStreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::{Auth, Client, Credentials};

fn available(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("WINRM_SESSIONS_INTEROP").as_deref() != Ok("required"),
            "python3 with {module} is required for the interop tests"
        );
        eprintln!("python3 with {module} not available: interop test skipped");
    }
    ok
}

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pyspnego_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("ntlm-users");
    std::fs::write(&users, "INTEROP:interop:Interop-Passw0rd!\n").unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/ntlm_acceptor.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .env("NTLM_USER_FILE", &users)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut url = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    Server {
        child,
        url: url.trim().to_owned(),
        _dir: dir,
    }
}

fn client(url: &str, password: &str) -> Client {
    Client::builder(url)
        .credentials(Credentials::new(r"INTEROP\interop", password))
        .auth(Auth::Ntlm)
        .build()
        .unwrap()
}

#[tokio::test]
async fn ntlm_with_message_encryption_against_pyspnego() {
    if !available("spnego") {
        return;
    }
    let server = pyspnego_server();
    let sessions: Vec<SmbSession> = client(&server.url, "Interop-Passw0rd!")
        .enumerate()
        .try_collect()
        .await
        .expect("pyspnego authenticates us and unseals our requests; we unseal its answers");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].session_id, u64::MAX);
    assert_eq!(
        sessions[0].client_user_name.as_deref(),
        Some(r"INTEROP\pyspnego")
    );
    assert_eq!(
        sessions[1].client_computer_name.as_deref(),
        Some("[fe80::1]")
    );
}

#[tokio::test]
async fn pyspnego_refuses_a_wrong_password_and_we_say_so_once() {
    if !available("spnego") {
        return;
    }
    let server = pyspnego_server();
    let error = client(&server.url, "wrong")
        .enumerate::<SmbSession>()
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(error.is_authentication(), "{error:?}");
    assert!(!error.is_retryable());
}
