//! The command line with Kerberos from the ticket cache `kinit` wrote: no user, no password,
//! KRB5CCNAME names the cache (against MIT's KDC and GSSAPI acceptor).

use std::process::{Command, Stdio};

use crate::support::interop::{acceptor, kdc_available, realm};

#[tokio::test]
async fn after_kinit_the_cli_needs_no_user_and_no_password() {
    if !kdc_available() {
        return;
    }
    let realm = realm();
    let realm_ccache = realm.ccache.clone().expect("kinit wrote a cache");
    let server = acceptor(&[
        ("KRB5_CONFIG", &realm.krb5_config),
        ("KRB5_KTNAME", &realm.keytab),
    ]);
    let output = Command::new(env!("CARGO_BIN_EXE_winrm-sessions"))
        .args(["smb-sessions", &server.url, "--format", "json"])
        .args(["--kdc", &realm.kdc, "--spn", "HTTP/winrm.example.test"])
        .env("KRB5CCNAME", format!("FILE:{realm_ccache}"))
        .env_remove("WINRM_USER")
        .env_remove("WINRM_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{stdout}");
}
