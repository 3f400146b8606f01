//! The command line against Microsoft's OMI, as the user of the issue tried it: `query` with
//! every way in, each giving as many instances as OMI's own client; the mistakes said in words.

use std::process::{Command, Output, Stdio};

use crate::support::omi::Omi;

fn query(omi: &Omi, target: &str, options: &[&str], wql: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_winrm-sessions"))
        .args(["query", target, "--format", "csv", "--user", &omi.user])
        .arg("--ca-file")
        .arg(&omi.ca)
        .args(options)
        .arg(wql)
        .env("WINRM_PASSWORD", &omi.password)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Records in a CSV answer (the header row aside).
fn records(output: &Output) -> usize {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).lines().count() - 1
}

#[test]
fn query_against_omi_gives_what_omicli_gives() {
    let omi = Omi::start();
    let expected = omi.omicli_numbers("root/cimv2", "XYZ_Number").len();
    assert_eq!(expected, 10_000);
    let all = "SELECT * FROM XYZ_Number";
    let cases: &[(&str, &[&str])] = &[
        (&omi.http, &["--auth", "basic", "--allow-plaintext"]),
        // The URL's scheme is enough: no --https needed for Basic to be allowed.
        (&omi.https, &["--auth", "basic"]),
        (&omi.https, &["--auth", "ntlm"]),
        (&omi.http, &["--auth", "ntlm", "--max-elements", "100"]),
        (&omi.http, &["--auth", "negotiate"]),
    ];
    for (target, options) in cases {
        let output = query(&omi, target, options, all);
        assert_eq!(records(&output), expected, "{target} {options:?}");
    }

    let output = query(
        &omi,
        &omi.http,
        &[
            "--auth",
            "basic",
            "--allow-plaintext",
            "--namespace",
            "root/nosuch",
        ],
        "SELECT * FROM X_SmallNumber",
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("namespace does not exist") && stderr.contains("root/nosuch"),
        "{stderr}"
    );
    assert!(output.stdout.len() < 100, "no data from another namespace");

    let output = query(&omi, &omi.http, &["--https", "--auth", "basic"], all);
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&omi.http),
        "names the target as typed: {stderr}"
    );
}
