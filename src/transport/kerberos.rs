//! Getting the service ticket a Kerberos connection presents: the sans-IO exchanges of
//! [`crate::auth::kerberos`] driven over the async KDC transport, within the caller's deadline.
//! One AS exchange at a time per client (and fleet): concurrent connections wait for the first
//! one's ticket-granting ticket instead of each asking the KDC, and a refused password is never
//! sent again.

use std::time::Duration;

use tokio::sync::Mutex;

use super::kdc;
use crate::auth::KerberosAuth;
use crate::auth::kerberos::KerberosError;
use crate::auth::kerberos::ccache::Principal;
use crate::auth::kerberos::exchange::Next;
use crate::auth::kerberos::messages::{self, Credential, KerberosTime};
use crate::auth::random_bytes;

fn nonce() -> Result<u32, KerberosError> {
    let bytes = random_bytes(4).map_err(KerberosError::token)?;
    Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// A ticket-granting ticket: at hand, or from one AS exchange.
async fn ticket_granting_ticket(
    auth: &KerberosAuth,
    as_lock: &Mutex<()>,
    timeout: Duration,
) -> Result<Credential, KerberosError> {
    let store = &auth.credentials;
    if let Some(tgt) = store.tgt(KerberosTime::now().seconds)? {
        return Ok(tgt);
    }
    let _one_at_a_time = as_lock.lock().await;
    if let Some(tgt) = store.tgt(KerberosTime::now().seconds)? {
        return Ok(tgt);
    }
    let (mut exchange, mut request) = store.as_exchange(KerberosTime::now(), nonce()?)?;
    let result = async {
        for _ in 0..4 {
            let reply = kdc::exchange(store.kdcs(), &request, timeout).await?;
            // The reply may call for the password's key: up to 2^24 rounds of PBKDF2 (seconds
            // of CPU) on a blocking thread, so the runtime's other hosts go on and the caller's
            // deadline can still end the wait.
            let nonce = nonce()?;
            let (handled, next) = tokio::task::spawn_blocking(move || {
                let next = exchange.handle_reply(&reply, KerberosTime::now(), nonce);
                (exchange, next)
            })
            .await
            .map_err(|e| KerberosError::token(format!("the key derivation did not finish: {e}")))?;
            exchange = handled;
            match next? {
                Next::Send(next) => request = next,
                Next::Done(tgt) => return Ok(tgt),
            }
        }
        Err(KerberosError::token("the AS exchange did not end"))
    }
    .await;
    match result {
        Ok(tgt) => {
            tracing::debug!(client = %store.client(), "Obtained a ticket-granting ticket");
            store.remember_tgt(tgt.clone());
            Ok(tgt)
        }
        Err(e) => {
            if e.credentials_rejected {
                store.refuse(e.clone());
            }
            Err(e)
        }
    }
}

/// The service ticket for `host` (or the configured SPN) and the service principal.
pub(crate) async fn service_ticket(
    auth: &KerberosAuth,
    as_lock: &Mutex<()>,
    host: &str,
    timeout: Duration,
) -> Result<(Credential, Principal), KerberosError> {
    let service = auth.service(host);
    let store = &auth.credentials;
    if let Some(ticket) = store.service_ticket(&service, KerberosTime::now().seconds)? {
        return Ok((ticket, service));
    }
    let tgt = ticket_granting_ticket(auth, as_lock, timeout).await?;
    let request = messages::tgs_request(&tgt, &service, KerberosTime::now(), nonce()?)?;
    let reply = kdc::exchange(store.kdcs(), &request.bytes, timeout).await?;
    let ticket = messages::read_tgs_reply(&request, &tgt, &reply)?;
    tracing::debug!(%service, "Obtained a service ticket");
    store.remember_service_ticket(&service, ticket.clone());
    Ok((ticket, service))
}
