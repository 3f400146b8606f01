//! Where the KDC of a realm is, from krb5.conf (`KRB5_CONFIG`, then `/etc/krb5.conf`), as MIT
//! Kerberos tools find it. Only what a client needs: `[libdefaults] default_realm` and
//! `[realms] REALM = { kdc = host[:port] }`.

use std::collections::HashMap;

/// The parts of krb5.conf this crate uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Krb5Config {
    /// `[libdefaults] default_realm`.
    pub default_realm: Option<String>,
    /// `[libdefaults] default_ccache_name`.
    pub default_ccache_name: Option<String>,
    /// `[realms]`: the KDCs of each realm, in order.
    pub kdcs: HashMap<String, Vec<String>>,
}

impl Krb5Config {
    /// Reads the files named by `KRB5_CONFIG` (colon-separated), or `/etc/krb5.conf`; missing
    /// or unreadable files give an empty configuration.
    pub fn load() -> Self {
        let paths = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".into());
        let mut config = Krb5Config::default();
        for path in paths.split(':').filter(|p| !p.is_empty()) {
            if let Ok(text) = std::fs::read_to_string(path) {
                let parsed = Self::parse(&text);
                config.default_realm = config.default_realm.or(parsed.default_realm);
                config.default_ccache_name =
                    config.default_ccache_name.or(parsed.default_ccache_name);
                for (realm, kdcs) in parsed.kdcs {
                    config.kdcs.entry(realm).or_insert(kdcs);
                }
            }
        }
        config
    }

    /// Parses the text of a krb5.conf.
    pub fn parse(text: &str) -> Self {
        let mut config = Krb5Config::default();
        let mut section = String::new();
        let mut realm: Option<String> = None;
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            if line.starts_with('[') && line.ends_with(']') {
                section = line[1..line.len() - 1].trim().to_ascii_lowercase();
                realm = None;
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                if line == "}" {
                    realm = None;
                }
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match section.as_str() {
                "libdefaults" if key == "default_realm" => {
                    config.default_realm = Some(value.to_owned())
                }
                "libdefaults" if key == "default_ccache_name" => {
                    config.default_ccache_name = Some(value.to_owned())
                }
                "realms" if value.starts_with('{') => realm = Some(key.to_owned()),
                "realms" if key == "kdc" => {
                    if let Some(realm) = &realm {
                        config
                            .kdcs
                            .entry(realm.clone())
                            .or_default()
                            .push(value.to_owned());
                    }
                }
                _ => {}
            }
        }
        config
    }

    /// The realm a user name names by itself: after `@`, or before `\\` when that is a realm
    /// (it has a dot or this configuration knows it); a NetBIOS domain (`CORP\\alice`) means
    /// the default realm. A bare name (`alice`, a local account) names none.
    pub fn explicit_realm_of(&self, user: &str) -> Option<String> {
        if user.contains('@') || user.contains('\\') {
            self.realm_of(user)
        } else {
            None
        }
    }

    /// The realm of a user: the part after `@`, or the domain before `\\` when it names a realm
    /// of this configuration, else the default realm.
    pub fn realm_of(&self, user: &str) -> Option<String> {
        if let Some((_, realm)) = user.rsplit_once('@') {
            return Some(realm.to_ascii_uppercase());
        }
        if let Some((domain, _)) = user.split_once('\\') {
            let domain = domain.to_ascii_uppercase();
            if self.kdcs.contains_key(&domain) || domain.contains('.') {
                return Some(domain);
            }
        }
        self.default_realm.clone()
    }

    /// `tcp://host:port` of every KDC of a realm, in order.
    pub fn kdc_urls(&self, realm: &str) -> Vec<String> {
        self.kdcs
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(realm))
            .map(|(_, kdcs)| kdcs.iter().map(|k| kdc_url(k)).collect())
            .unwrap_or_default()
    }
}

/// `host`, `host:port` or a URL, as a `tcp://` URL with port 88 by default.
pub fn kdc_url(kdc: &str) -> String {
    let kdc = kdc.trim();
    if kdc.contains("://") {
        return kdc.to_owned();
    }
    let has_port = match kdc.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && !host.ends_with(':') && port.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    };
    if has_port {
        format!("tcp://{kdc}")
    } else {
        format!("tcp://{kdc}:88")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "
[libdefaults]
    default_realm = CORP.EXAMPLE   # the AD domain
    dns_lookup_kdc = false

[realms]
    CORP.EXAMPLE = {
        kdc = dc01.corp.example
        kdc = dc02.corp.example:88
        admin_server = dc01.corp.example
    }
    LAB.TEST = {
        kdc = 127.0.0.1:8888
    }
";

    #[test]
    fn finds_realms_and_kdcs() {
        let c = Krb5Config::parse(CONF);
        assert_eq!(c.default_realm.as_deref(), Some("CORP.EXAMPLE"));
        assert_eq!(
            c.kdc_urls("corp.example"),
            ["tcp://dc01.corp.example:88", "tcp://dc02.corp.example:88"]
        );
        assert_eq!(c.kdc_urls("LAB.TEST"), ["tcp://127.0.0.1:8888"]);
        assert!(c.kdc_urls("OTHER").is_empty());
    }

    #[test]
    fn realm_of_each_user_form() {
        let c = Krb5Config::parse(CONF);
        assert_eq!(c.realm_of("alice@lab.test").as_deref(), Some("LAB.TEST"));
        assert_eq!(c.realm_of(r"LAB.TEST\alice").as_deref(), Some("LAB.TEST"));
        assert_eq!(
            c.realm_of(r"CORP\alice").as_deref(),
            Some("CORP.EXAMPLE"),
            "NetBIOS name: default realm"
        );
        assert_eq!(c.realm_of("alice").as_deref(), Some("CORP.EXAMPLE"));
        assert_eq!(Krb5Config::default().realm_of("alice"), None);
        assert_eq!(
            c.explicit_realm_of("alice"),
            None,
            "a bare name is a local account"
        );
        assert_eq!(
            c.explicit_realm_of(r"CORP\alice").as_deref(),
            Some("CORP.EXAMPLE")
        );
    }

    #[test]
    fn kdc_urls() {
        assert_eq!(kdc_url("dc01"), "tcp://dc01:88");
        assert_eq!(kdc_url("dc01:1088"), "tcp://dc01:1088");
        assert_eq!(kdc_url("tcp://dc01:88"), "tcp://dc01:88");
        assert_eq!(kdc_url("[::1]:88"), "tcp://[::1]:88");
    }
}
