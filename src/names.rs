//! Names as people type them, matched the way Windows compares them: one place for the rules
//! every filter of this crate and of the command line follows (`close-smb-session
//! --client-user-name`, `history --user` and `--target`, `watch::store::HistoryFilter`).
//!
//! - **Users**: `alice`, `CORP\alice` and `alice@corp.example` name the same account;
//!   case does not matter (beyond ASCII too, as Windows). A filter without a domain matches the
//!   user in any domain; with one, the domains must agree, where a DNS domain
//!   (`corp.example`) agrees with its NetBIOS name (`CORP`) by its first label.
//! - **Targets**: `fs01`, `FS01:5985` and `http://fs01:5985/wsman` name the same endpoint; a
//!   filter that is a bare host (no port, no scheme) matches that host on any port and scheme.

use crate::client::endpoint_url;

/// True when `filter` (as typed) names the user `actual` (as the server or a store wrote it).
pub fn user_matches(filter: &str, actual: &str) -> bool {
    let (want_domain, want_name) = split_user(filter);
    let (domain, name) = split_user(actual);
    if want_name != name {
        return false;
    }
    match (want_domain, domain) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a == b || first_label(&a) == first_label(&b),
    }
}

/// (domain, name), lower-cased: `DOMAIN\name`, `name@domain`, or a bare name.
fn split_user(user: &str) -> (Option<String>, String) {
    let user = user.trim();
    if let Some((domain, name)) = user.split_once('\\') {
        return (Some(domain.to_lowercase()), name.to_lowercase());
    }
    if let Some((name, domain)) = user.rsplit_once('@') {
        return (Some(domain.to_lowercase()), name.to_lowercase());
    }
    (None, user.to_lowercase())
}

fn first_label(domain: &str) -> &str {
    domain.split('.').next().unwrap_or(domain)
}

/// True when `filter` (as typed) names the same endpoint as `target` (as given to a watch or
/// a fleet).
pub fn target_matches(filter: &str, target: &str) -> bool {
    let filter = filter.trim();
    if filter.eq_ignore_ascii_case(target.trim()) {
        return true;
    }
    let (Ok(want), Ok(have)) = (endpoint_url(filter, false), endpoint_url(target, false)) else {
        return false;
    };
    // `fs01`, `[::1]` or `::1`: a host with no port and no scheme.
    let bare_host = !filter.contains("://")
        && if filter.starts_with('[') {
            !filter.contains("]:")
        } else {
            filter.matches(':').count() != 1
        };
    let same_host = want.host_str().map(str::to_ascii_lowercase)
        == have.host_str().map(str::to_ascii_lowercase);
    if bare_host {
        return same_host;
    }
    same_host
        && want.port_or_known_default() == have.port_or_known_default()
        && want.scheme() == have.scheme()
}

/// Text that every user `filter` matches contains, in ASCII lower case: for a store to narrow
/// its search in SQL before [`user_matches`] decides. `None` where SQL's ASCII-only `lower()`
/// could miss a match (a name beyond ASCII).
#[cfg(feature = "store")]
pub(crate) fn user_hint(filter: &str) -> Option<String> {
    let (_, name) = split_user(filter);
    name.is_ascii().then_some(name)
}

/// Text that every target `filter` matches contains (its host), in ASCII lower case; see
/// [`user_hint`]. `None` when the host is not plain ASCII or the filter is not a target.
#[cfg(feature = "store")]
pub(crate) fn target_hint(filter: &str) -> Option<String> {
    let url = endpoint_url(filter.trim(), false).ok()?;
    let host = url
        .host_str()?
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    (filter.is_ascii() && !host.contains("xn--")).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_with_or_without_a_domain_in_any_form() {
        for filter in [
            "alice",
            "ALICE",
            r"corp\alice",
            "alice@corp.example",
            "Alice@CORP",
        ] {
            assert!(user_matches(filter, r"CORP\Alice"), "{filter}");
        }
        assert!(user_matches("Zoë", r"CONTOSO\ZOË"), "beyond ASCII");
        assert!(user_matches(r"CORP\alice", "alice@corp.example"));
        assert!(user_matches("alice", "alice"));
        assert!(!user_matches(r"OTHER\alice", r"CORP\alice"));
        assert!(
            !user_matches(r"CORP\alice", "alice"),
            "a domain asked for, none known"
        );
        assert!(!user_matches("corp", r"CORP\alice"));
        assert!(!user_matches("alic", r"CORP\alice"));
    }

    #[cfg(feature = "store")]
    #[test]
    fn hints_are_contained_in_whatever_matches() {
        for (filter, actual) in [("ALICE", r"CORP\alice"), ("alice@corp", "CORP\\ALICE")] {
            let hint = user_hint(filter).unwrap();
            assert!(actual.to_ascii_lowercase().contains(&hint), "{filter}");
        }
        assert_eq!(user_hint("Zoë"), None, "SQL's lower() is ASCII only");
        for (filter, target) in [
            ("127.0.0.1:44443", "http://127.0.0.1:44443/wsman"),
            ("FS01", "fs01"),
            ("[::1]", "http://[::1]:5985/wsman"),
        ] {
            assert!(target_matches(filter, target));
            let hint = target_hint(filter).unwrap();
            assert!(target.to_ascii_lowercase().contains(&hint), "{filter}");
        }
    }

    #[test]
    fn a_target_however_it_was_written() {
        let url = "http://127.0.0.1:44443/wsman";
        for filter in [
            "127.0.0.1:44443",
            url,
            "HTTP://127.0.0.1:44443",
            "127.0.0.1",
        ] {
            assert!(target_matches(filter, url), "{filter}");
        }
        assert!(!target_matches("127.0.0.1:5985", url));
        assert!(!target_matches("https://127.0.0.1:44443", url));
        assert!(target_matches("FS01", "fs01"));
        assert!(!target_matches(
            "fs01",
            "https://fs01.corp.example:5986/wsman"
        ));
        assert!(
            target_matches("fs01", "https://fs01:5986/wsman"),
            "bare host, any port"
        );
        assert!(target_matches("fs01:5985", "fs01"));
        assert!(target_matches("[::1]", "http://[::1]:5985/wsman"));
        assert!(target_matches("[::1]", "http://[::1]:8080/wsman"));
        assert!(!target_matches("fs02", "fs01"));
    }
}
