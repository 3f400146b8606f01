//! How an application tests its WinRM code without Windows: record once against a real server,
//! replay in CI with `testing::FixtureServer`. This example is shaped like a test so it can be
//! copied into `tests/`; here it runs as `cargo run --example replay_in_tests`.
//!
//! Recording, once, against a real server (the files land in fixtures/fs01):
//!     winrm-sessions smb-sessions fs01.corp.example --record fixtures/fs01 \
//!         --record-replace fs01.corp.example=fs01.example.test --record-replace 'CORP\alice=CORP\user1'
//!
//! In your tests (with `winrm-sessions = { features = ["testing"] }` in dev-dependencies):
//!     #[tokio::test]
//!     async fn counts_open_files() { ... the body of `check` below ... }

use futures_util::TryStreamExt;
use winrm_sessions::classes::SmbSession;
use winrm_sessions::testing::FixtureServer;
use winrm_sessions::{Client, Credentials};

/// The application code under test: how many files are open, per user.
async fn open_files_per_user(client: &Client) -> winrm_sessions::Result<Vec<(String, u64)>> {
    let sessions: Vec<SmbSession> = client.enumerate().try_collect().await?;
    let mut per_user: Vec<(String, u64)> = Vec::new();
    for s in sessions {
        let user = s.client_user_name.unwrap_or_default();
        let opens = s.num_opens.unwrap_or(0);
        match per_user.iter_mut().find(|(u, _)| *u == user) {
            Some((_, total)) => *total = total.saturating_add(opens),
            None => per_user.push((user, opens)),
        }
    }
    Ok(per_user)
}

async fn check() -> Result<(), Box<dyn std::error::Error>> {
    // The recorded conversation; the server speaks Negotiate with encryption like Windows.
    let server =
        FixtureServer::start(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo")).await?;
    let client = Client::builder(server.url())
        .credentials(Credentials::new("demo", "demo"))
        .build()?;
    let per_user = open_files_per_user(&client).await?;
    assert_eq!(per_user.len(), 7);
    assert!(per_user.contains(&(r"CONTOSO\Administrator".to_owned(), 12)));
    assert_eq!(
        server.stats().unmatched,
        0,
        "the code asked only what was recorded"
    );
    println!("ok: {per_user:?}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    check().await
}
