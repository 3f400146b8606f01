//! Where the password comes from: WINRM_PASSWORD, a file, or a prompt. Never an argument, so
//! it does not land in shell history or the process list.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use winrm_sessions::{Credentials, Password};

use crate::args::{AuthArg, ConnectionArgs};

/// A usage problem: exit status 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// The Kerberos credential cache to authenticate with, if any: the one `--ccache` names, or,
/// when Negotiate or Kerberos is asked for with no user and no password, the user's default
/// cache if `kinit` left one (as Windows clients use the logged-on user's tickets).
pub fn ticket_cache(args: &ConnectionArgs) -> Result<Option<PathBuf>, UsageError> {
    if let Some(path) = &args.ccache {
        if !matches!(args.auth, AuthArg::Negotiate | AuthArg::Kerberos) {
            return Err(UsageError(
                "--ccache needs --auth kerberos (or the default, negotiate)".into(),
            ));
        }
        return Ok(Some(path.clone()));
    }
    let no_user = args.user.as_deref().is_none_or(str::is_empty);
    let no_password = args.password_file.is_none() && std::env::var_os("WINRM_PASSWORD").is_none();
    if !(no_user
        && no_password
        && args.keytab.is_none()
        && matches!(args.auth, AuthArg::Negotiate | AuthArg::Kerberos))
    {
        return Ok(None);
    }
    Ok(winrm_sessions::auth::usable_ticket_cache())
}

pub fn resolve(args: &ConnectionArgs) -> Result<Credentials, UsageError> {
    let user = args.user.clone().filter(|u| !u.is_empty()).ok_or_else(|| {
        UsageError(
            "no user: pass --user or set WINRM_USER (or run kinit first to use your Kerberos \
             tickets)"
                .into(),
        )
    })?;
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
