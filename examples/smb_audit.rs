//! Who has SMB sessions open, with their connections to shares: the library API end to end.
//!
//! Against the bundled fixtures (no Windows needed):
//!     cargo run --example smb_audit
//! Against a server (HTTPS, Basic):
//!     WINRM_USER=auditor WINRM_PASSWORD=... cargo run --example smb_audit -- https://fs01:5986/wsman

use futures_util::TryStreamExt;
use winrm_sessions::classes::{ServerConnection, SmbSession};
use winrm_sessions::testing::FixtureServer;
use winrm_sessions::{Client, Credentials};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut _server = None;
    let client = match std::env::args().nth(1) {
        Some(target) => Client::builder(target)
            .credentials(Credentials::new(
                std::env::var("WINRM_USER")?,
                std::env::var("WINRM_PASSWORD")?,
            ))
            .build()?,
        None => {
            let server =
                FixtureServer::start(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo")).await?;
            let client = Client::builder(server.url())
                .credentials(Credentials::new("demo", "demo"))
                .danger_allow_basic_over_http(true)
                .build()?;
            _server = Some(server);
            client
        }
    };

    let sessions: Vec<SmbSession> = client.enumerate().try_collect().await?;
    let connections: Vec<ServerConnection> = client.enumerate().try_collect().await?;
    for s in &sessions {
        let user = s.client_user_name.as_deref().unwrap_or("?");
        let from = s.client_computer_name.as_deref().unwrap_or("?");
        // Win32_ServerConnection names the user without the domain and the client without brackets.
        let bare_user = user.rsplit('\\').next().unwrap_or(user);
        let bare_from = from.trim_start_matches('[').trim_end_matches(']');
        let shares: Vec<&str> = connections
            .iter()
            .filter(|c| c.user_name == bare_user && c.computer_name == bare_from)
            .map(|c| c.share_name.as_str())
            .collect();
        println!(
            "session {:>20}  {user:<32} from {from:<32} {:>3} open  shares: {}",
            s.session_id,
            s.num_opens.unwrap_or(0),
            if shares.is_empty() {
                "-".to_owned()
            } else {
                shares.join(", ")
            }
        );
    }
    Ok(())
}
