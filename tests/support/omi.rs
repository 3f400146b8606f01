//! Microsoft's OMI, a WS-Management server nobody here wrote, started on loopback for a group of
//! tests from the kit in `../shared/omi` (built once per run by `scripts/interop-tests`, with
//! the patch that accepts MS-WSMV's tab in encrypted bodies), and OMI's own client `omicli` to
//! compare with. A kit that is missing or does not start fails the test: nothing skips.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

/// One OMI server at a time: its groups share the build directory and its agents.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// OMI, running on two free loopback ports until dropped.
pub struct Omi {
    kit: PathBuf,
    dir: PathBuf,
    pub http: String,
    pub https: String,
    pub ca: PathBuf,
    pub user: String,
    pub password: String,
    _one: MutexGuard<'static, ()>,
}

fn required(variable: &str) -> PathBuf {
    let value = std::env::var_os(variable).unwrap_or_else(|| {
        panic!(
            "{variable} is not set: run scripts/interop-tests, which builds the OMI kit of \
             ../shared/omi and sets it (the interop suite never skips)"
        )
    });
    let path = PathBuf::from(value);
    assert!(
        path.exists(),
        "{variable}={} does not exist",
        path.display()
    );
    path
}

fn field(json: &str, name: &str) -> String {
    let key = format!("\"{name}\": ");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {json}"))
        + key.len();
    let rest = &json[start..];
    match rest.strip_prefix('"') {
        Some(quoted) => quoted[..quoted.find('"').unwrap()].to_owned(),
        None => rest[..rest.find([',', '}']).unwrap()].trim().to_owned(),
    }
}

impl Omi {
    /// Starts the kit's server on free ports (restarting it if a previous group left it
    /// running).
    pub fn start() -> Omi {
        Self::start_with(&[])
    }

    /// Like [`Omi::start`], with extra arguments to `start.sh` (`--http-port P`).
    pub fn start_with(arguments: &[&str]) -> Omi {
        let one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let kit = required("WINRM_SESSIONS_OMI_KIT");
        let dir = required("WINRM_SESSIONS_OMI_DIR");
        let stamp = dir.join(".omi-kit-built");
        assert!(
            stamp.exists(),
            "OMI is not built in {}: scripts/interop-tests builds it",
            dir.display()
        );
        let _ = Command::new("bash")
            .arg(kit.join("stop.sh"))
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let output = Command::new("bash")
            .arg(kit.join("start.sh"))
            .arg(&dir)
            .args(arguments)
            .stderr(Stdio::inherit())
            .output()
            .expect("bash runs the kit's start.sh");
        assert!(
            output.status.success(),
            "the OMI kit's start.sh failed ({}); see its messages above",
            output.status
        );
        let json = String::from_utf8(output.stdout).unwrap();
        let json = json.lines().last().unwrap_or_default().to_owned();
        Omi {
            http: field(&json, "http"),
            https: field(&json, "https"),
            ca: PathBuf::from(field(&json, "ca")),
            user: field(&json, "user"),
            password: field(&json, "password"),
            kit,
            dir,
            _one: one,
        }
    }

    /// Stops the server (its ports then refuse connections) without ending the group.
    pub fn stop(&self) {
        let status = Command::new("bash")
            .arg(self.kit.join("stop.sh"))
            .arg(&self.dir)
            .stdout(Stdio::null())
            .status()
            .expect("bash runs the kit's stop.sh");
        assert!(status.success(), "the OMI kit's stop.sh failed");
    }

    /// Starts the server again after [`Omi::stop`], on new ports: the kit refuses ports that
    /// still have connections of the old server in TIME_WAIT.
    pub fn restart(&mut self) {
        let output = Command::new("bash")
            .arg(self.kit.join("start.sh"))
            .arg(&self.dir)
            .stderr(Stdio::inherit())
            .output()
            .expect("bash runs the kit's start.sh");
        assert!(output.status.success(), "the OMI kit's start.sh failed");
        let json = String::from_utf8(output.stdout).unwrap();
        let json = json.lines().last().unwrap_or_default();
        self.http = field(json, "http");
        self.https = field(json, "https");
    }

    /// The HTTP port.
    pub fn http_port(&self) -> u16 {
        port(&self.http)
    }

    /// The `Number` of each instance of `class` that `omicli` (OMI's own client) enumerates
    /// over WS-Management with Basic on HTTP, sorted. (omicli's own WQL over WS-Management fails
    /// against this server, "Internal error parsing Wsman fault message": a filter is applied
    /// to its full enumeration instead.)
    pub fn omicli_numbers(&self, namespace: &str, class: &str) -> Vec<i64> {
        let omicli = self.dir.join("Unix/output/bin/omicli");
        let port = self.http_port().to_string();
        let output = Command::new(&omicli)
            .args([
                "ei",
                namespace,
                class,
                "--hostname",
                "127.0.0.1",
                "--port",
                &port,
            ])
            .args(["-u", &self.user, "-p", &self.password])
            .args(["--auth", "Basic", "--encryption", "none"])
            .output()
            .expect("omicli runs");
        assert!(
            output.status.success(),
            "omicli failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8_lossy(&output.stdout);
        let mut numbers: Vec<i64> = text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Number="))
            .map(|n| n.parse().expect("a number"))
            .collect();
        assert_eq!(
            numbers.len(),
            text.lines()
                .filter(|l| l.starts_with("instance of"))
                .count(),
            "every instance has a Number"
        );
        numbers.sort_unstable();
        numbers
    }
}

fn port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

impl Drop for Omi {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.kit.join("stop.sh"))
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
