//! The binary under test, run as a user would: demo credentials in the environment, no
//! Kerberos tickets of the machine's user, no log filter from the shell, no terminal.

use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_winrm-sessions");

/// `winrm-sessions ARGS...`.
pub fn winrm(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("WINRM_USER", "demo")
        .env("WINRM_PASSWORD", "demo")
        .env("KRB5CCNAME", "FILE:/nonexistent")
        .env_remove("WINRM_SESSIONS_LOG")
        .stdin(Stdio::null());
    command
}

/// `smb-sessions URL` over Basic on plain HTTP, then `extra`.
pub fn smb_sessions(url: &str, extra: &[&str]) -> Command {
    let mut command = winrm(&["smb-sessions", url, "--auth", "basic", "--allow-plaintext"]);
    command.args(extra);
    command
}

/// The SessionId of each NDJSON line.
pub fn session_ids(ndjson: &[u8]) -> Vec<u64> {
    String::from_utf8_lossy(ndjson)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["SessionId"]
                .as_u64()
                .unwrap()
        })
        .collect()
}
