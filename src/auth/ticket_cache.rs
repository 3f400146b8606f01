//! Finding the Kerberos tickets of the user running the tool, as MIT tools find them.

use std::path::PathBuf;

use super::kerberos::ccache;
use super::krb5_conf::Krb5Config;
use crate::error::{Error, Result};

/// Where the current user's credential cache is: `KRB5CCNAME` (a `FILE:` or `DIR:` cache),
/// else krb5.conf's `default_ccache_name`, else `/tmp/krb5cc_<uid>`. Kernel keyring and KCM
/// caches cannot be read and are an error that says so.
pub fn default_ticket_cache() -> Result<PathBuf> {
    let config = Krb5Config::load();
    ccache::default_location(config.default_ccache_name.as_deref())
        .map_err(|e| Error::config(e.to_string()))
}

/// The current user's credential cache when there is one that can be read (`kinit` was run),
/// for a tool that uses tickets when no password is given.
pub fn usable_ticket_cache() -> Option<PathBuf> {
    let path = default_ticket_cache().ok()?;
    ccache::read(&path).is_ok().then_some(path)
}
