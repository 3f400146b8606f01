//! The implementations that are not ours, started on loopback for a test: pyspnego's WinRM
//! acceptor (NTLM, and Kerberos through MIT's GSSAPI) and a throwaway MIT krb5 realm. A missing
//! tool fails the test with what to install: this suite never skips.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// True when `what` is there; otherwise the test fails, saying what to install (the interop
/// suite never skips).
pub fn present(ok: bool, what: &str) -> bool {
    assert!(
        ok,
        "{what} is required by the interop suite: run scripts/interop-tests, which installs it \
         (Debian: krb5-kdc krb5-admin-server krb5-user libkrb5-dev, pip: pyspnego[kerberos])"
    );
    ok
}

pub fn available(module: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    present(ok, &format!("python3 with {module}"))
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn pyspnego_server() -> Server {
    acceptor(&[])
}

/// The pyspnego WinRM acceptor, with extra environment (the Kerberos realm and keytab).
pub fn acceptor(env: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("ntlm-users");
    std::fs::write(&users, "INTEROP:interop:Interop-Passw0rd!\n").unwrap();
    let script = super::repo().join("tests/interop/winrm_acceptor.py");
    let mut child = Command::new("python3")
        .arg(script)
        .env("NTLM_USER_FILE", &users)
        .envs(env.iter().copied())
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

pub fn kdc_available() -> bool {
    let kdc = Command::new("krb5kdc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || std::path::Path::new("/usr/sbin/krb5kdc").exists();
    let kinit = ["kinit", "kvno"].iter().all(|tool| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    present(kdc, "MIT krb5kdc (krb5-kdc)")
        && present(kinit, "MIT kinit and kvno (krb5-user)")
        && available("gssapi")
}

/// A throwaway MIT realm; it stops when this is dropped (its standard input closes).
pub struct Realm {
    pub child: Child,
    pub kdc: String,
    pub krb5_config: String,
    pub keytab: String,
    pub user_keytab: String,
    /// Alice's cache from MIT kinit; `None` when kinit is not installed.
    pub ccache: Option<String>,
}

impl Drop for Realm {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

pub fn realm() -> Realm {
    let script = super::repo().join("tests/interop/krb5_realm.py");
    let mut child = Command::new("python3")
        .arg(script)
        .env("KRB5_TEST_PASSWORD", "Alice-Passw0rd!")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&line).expect("the realm script reports its KDC");
    let field = |k: &str| info[k].as_str().unwrap().to_owned();
    Realm {
        kdc: field("kdc"),
        krb5_config: field("krb5_config"),
        keytab: field("keytab"),
        user_keytab: field("user_keytab"),
        ccache: info["ccache"].as_str().map(str::to_owned),
        child,
    }
}
