//! Shared helpers: the bundled fixture server and a client for it.

use std::path::{Path, PathBuf};

use winrm_sessions::testing::FixtureServer;
use winrm_sessions::{Client, Credentials};

pub fn demo_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo")
}

pub async fn demo_server() -> FixtureServer {
    FixtureServer::start(demo_fixtures())
        .await
        .expect("bundled fixtures load")
}

pub fn client_for(url: &str) -> Client {
    Client::builder(url)
        .credentials(Credentials::new("demo", "demo"))
        .danger_allow_basic_over_http(true)
        .build()
        .expect("client builds")
}
