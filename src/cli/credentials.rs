//! Where the password comes from: WINRM_PASSWORD, a file, or a prompt. Never an argument, so
//! it does not land in shell history or the process list.

use std::io::IsTerminal;
use std::path::Path;

use winrm_sessions::{Credentials, Password};

use super::args::ConnectionArgs;

/// A usage problem: exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

pub fn resolve(args: &ConnectionArgs) -> Result<Credentials, UsageError> {
    let user = args
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| UsageError("no user: pass --user or set WINRM_USER".into()))?;
    let password = if let Some(path) = &args.password_file {
        read_password_file(path)?
    } else if let Some(p) = std::env::var_os("WINRM_PASSWORD") {
        Password::new(
            p.into_string()
                .map_err(|_| UsageError("WINRM_PASSWORD is not UTF-8".into()))?,
        )
    } else if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(format!("Password for {user}: "))
            .map_err(|e| UsageError(format!("cannot read the password: {e}")))?;
        Password::new(p)
    } else {
        return Err(UsageError(
            "no password: set WINRM_PASSWORD, pass --password-file, or run on a terminal to be asked".into(),
        ));
    };
    Ok(Credentials::new(user, password))
}

fn read_password_file(path: &Path) -> Result<Password, UsageError> {
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            UsageError(format!("cannot read password file {}: {e}", path.display()))
        })?);
    let first = text.lines().next().unwrap_or_default();
    Ok(Password::new(first))
}
