//! Who has SMB sessions open, with their connections to shares: the library API end to end.
//!
//! Against the bundled fixtures (no Windows needed):
//!     cargo run --example smb_audit
//! Against a server (Negotiate: Kerberos or NTLM, messages sealed, as PowerShell does; port
//! 5985, or an https:// URL):
//!     WINRM_USER='CORP\auditor' WINRM_PASSWORD=... cargo run --example smb_audit -- fs01.corp.example

use futures_util::TryStreamExt;
use winrm_sessions::classes::{ServerConnection, SmbSession};
use winrm_sessions::testing::FixtureServer;
use winrm_sessions::{Client, Credentials};

/// A variable the example needs, or a message that says which.
fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name} (WINRM_USER and WINRM_PASSWORD)"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match audit().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smb_audit: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn audit() -> Result<(), Box<dyn std::error::Error>> {
    let mut _server = None;
    let client = match std::env::args().nth(1) {
        Some(target) => Client::builder(target)
            .credentials(Credentials::new(var("WINRM_USER")?, var("WINRM_PASSWORD")?))
            .build()?,
        None => {
            let server =
                FixtureServer::start(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo")).await?;
            // The default authentication, Negotiate: NTLM here, with message encryption.
            let client = Client::builder(server.url())
                .credentials(Credentials::new("demo", "demo"))
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
