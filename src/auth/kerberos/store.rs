//! The Kerberos state one client shares across its connections, its hosts and a fleet: where
//! the ticket-granting ticket comes from, the tickets obtained so far, and a refusal of the
//! password or key, so that a refused password is never sent again.
//!
//! Prepared once, when the client is built. A credential cache is read then and read again
//! only when its file changes (a renewal by `kinit -R` or k5start is picked up).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use super::KerberosError;
use super::ccache::{self, CredentialCache, Principal};
use super::exchange::{AsExchange, LongTermKey};
use super::messages::{Credential, KerberosTime};

/// Seconds of validity a ticket must have left to be used.
const MIN_REMAINING: i64 = 60;

/// Where the ticket-granting ticket comes from.
pub(crate) enum TgtSource {
    /// The AS exchange, with a password or a keytab key.
    Exchange(LongTermKey),
    /// A credential cache written by `kinit`.
    Cache(PathBuf),
}

/// A file's identity and version, to notice that a cache was rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A client's Kerberos identity and tickets.
pub(crate) struct KerberosCredentials {
    client: Principal,
    source: TgtSource,
    /// The KDCs of the client's realm, `host:port`.
    kdcs: Vec<String>,
    cache: Mutex<Option<(Stamp, CredentialCache)>>,
    tgt: Mutex<Option<Credential>>,
    service_tickets: Mutex<HashMap<String, Credential>>,
    refused: Mutex<Option<KerberosError>>,
}

impl std::fmt::Debug for KerberosCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosCredentials")
            .field("client", &self.client.to_string())
            .field("kdcs", &self.kdcs)
            .finish_non_exhaustive()
    }
}

impl KerberosCredentials {
    /// A client that obtains its ticket-granting ticket with the AS exchange.
    pub(crate) fn from_key(client: Principal, key: LongTermKey, kdcs: Vec<String>) -> Self {
        Self::new(client, TgtSource::Exchange(key), kdcs, None)
    }

    /// A client whose tickets come from a credential cache, read now.
    pub(crate) fn from_cache(
        path: PathBuf,
        kdcs: impl FnOnce(&str) -> Vec<String>,
    ) -> Result<Self, KerberosError> {
        let cache = ccache::read(&path).map_err(|e| KerberosError::rejected(e.to_string()))?;
        let client = cache.default_principal.clone();
        let kdcs = kdcs(&client.realm);
        let snapshot = stamp(&path).map(|s| (s, cache));
        Ok(Self::new(client, TgtSource::Cache(path), kdcs, snapshot))
    }

    fn new(
        client: Principal,
        source: TgtSource,
        kdcs: Vec<String>,
        cache: Option<(Stamp, CredentialCache)>,
    ) -> Self {
        Self {
            client,
            source,
            kdcs,
            cache: Mutex::new(cache),
            tgt: Mutex::new(None),
            service_tickets: Mutex::new(HashMap::new()),
            refused: Mutex::new(None),
        }
    }

    /// The client principal.
    pub(crate) fn client(&self) -> &Principal {
        &self.client
    }

    /// The KDCs to ask, in order.
    pub(crate) fn kdcs(&self) -> &[String] {
        &self.kdcs
    }

    /// The credential cache, read again if its file changed since.
    fn cache(&self) -> Result<Option<CredentialCache>, KerberosError> {
        let TgtSource::Cache(path) = &self.source else {
            return Ok(None);
        };
        let mut cached = lock(&self.cache);
        let now = stamp(path);
        match cached.as_ref() {
            Some((seen, cache)) if Some(*seen) == now => Ok(Some(cache.clone())),
            _ => {
                let cache =
                    ccache::read(path).map_err(|e| KerberosError::rejected(e.to_string()))?;
                *cached = now.map(|s| (s, cache.clone()));
                Ok(Some(cache))
            }
        }
    }

    /// A service ticket for `service` that is still valid: remembered, or in the cache file.
    pub(crate) fn service_ticket(
        &self,
        service: &Principal,
        now: i64,
    ) -> Result<Option<Credential>, KerberosError> {
        let key = service.to_string().to_lowercase();
        if let Some(ticket) = lock(&self.service_tickets).get(&key)
            && ticket.valid_for(now, MIN_REMAINING)
        {
            return Ok(Some(ticket.clone()));
        }
        let Some(cache) = self.cache()? else {
            return Ok(None);
        };
        let unix_now = u64::try_from(now).unwrap_or_default();
        Ok(cache.ticket_for(service, unix_now).map(Credential::from))
    }

    /// The ticket-granting ticket, if one is at hand and valid. From a cache that holds none or
    /// an expired one, an error that says to run kinit.
    pub(crate) fn tgt(&self, now: i64) -> Result<Option<Credential>, KerberosError> {
        if let Some(tgt) = lock(&self.tgt).as_ref()
            && tgt.valid_for(now, MIN_REMAINING)
        {
            return Ok(Some(tgt.clone()));
        }
        let Some(cache) = self.cache()? else {
            return Ok(None);
        };
        let TgtSource::Cache(path) = &self.source else {
            return Ok(None);
        };
        let tgt = cache.ticket_granting_ticket().ok_or_else(|| {
            KerberosError::rejected(format!(
                "{} holds no ticket-granting ticket for {}: run kinit {}",
                path.display(),
                cache.default_principal.realm,
                cache.default_principal
            ))
        })?;
        if !tgt.is_valid_at(u64::try_from(now).unwrap_or_default()) {
            return Err(KerberosError::rejected(format!(
                "the ticket-granting ticket of {} in {} has expired: run kinit again",
                cache.default_principal,
                path.display()
            )));
        }
        Ok(Some(Credential::from(tgt)))
    }

    /// Starts an AS exchange for a new ticket-granting ticket; refused when the password or key
    /// was refused before, or when tickets come from a cache.
    pub(crate) fn as_exchange(
        &self,
        now: KerberosTime,
        nonce: u32,
    ) -> Result<(AsExchange, Vec<u8>), KerberosError> {
        if let Some(refused) = lock(&self.refused).clone() {
            return Err(refused);
        }
        match &self.source {
            TgtSource::Exchange(key) => {
                AsExchange::start(self.client.clone(), key.clone(), now, nonce)
            }
            TgtSource::Cache(_) => Err(KerberosError::rejected(
                "the credential cache has no valid ticket-granting ticket: run kinit again",
            )),
        }
    }

    /// Remembers a new ticket-granting ticket.
    pub(crate) fn remember_tgt(&self, tgt: Credential) {
        *lock(&self.tgt) = Some(tgt);
    }

    /// Remembers a service ticket.
    pub(crate) fn remember_service_ticket(&self, service: &Principal, ticket: Credential) {
        lock(&self.service_tickets).insert(service.to_string().to_lowercase(), ticket);
    }

    /// Forgets a service ticket the server refused.
    pub(crate) fn forget_service_ticket(&self, service: &Principal) {
        lock(&self.service_tickets).remove(&service.to_string().to_lowercase());
    }

    /// Records that the KDC refused the password or key: it is not sent again.
    pub(crate) fn refuse(&self, error: KerberosError) {
        *lock(&self.refused) = Some(error);
    }
}
