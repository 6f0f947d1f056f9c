//! The registrar (RFC 3261 §10): REGISTER with digest authentication,
//! bindings with expiry in the location store, and a limit on failed
//! authentications per source address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rsipstack::sip::prelude::*;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::transaction::Transaction;

use crate::digest::DigestError;
use crate::location::{now, Binding};
use crate::server::SipShared;

/// The shortest registration accepted (RFC 3261 §10.2.8: 423 below it).
pub const MIN_EXPIRES: u32 = 60;

/// Counts failed authentications per source address over a minute; past
/// the limit, the source is refused until its minute is over. Also per
/// account: past its own limit (guesses from many addresses at one
/// account), the account is refused to every address that has not
/// authenticated as it within the last day, so its own phones go on.
#[derive(Debug, Default)]
pub struct AuthFailures {
    by_source: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    by_account: Mutex<HashMap<String, (Instant, u32)>>,
    /// When each address last authenticated as each account.
    trusted: Mutex<HashMap<(String, IpAddr), Instant>>,
    /// Failures since pbxd started (the metrics).
    total: std::sync::atomic::AtomicU64,
}

/// Counts in windows of a minute: whether `key` is at `limit`.
fn over<K: std::hash::Hash + Eq>(counts: &Mutex<HashMap<K, (Instant, u32)>>, key: &K, limit: u32) -> bool {
    let Ok(mut counts) = counts.lock() else {
        return false;
    };
    match counts.get(key) {
        Some((since, _)) if since.elapsed() >= AuthFailures::WINDOW => {
            counts.remove(key);
            false
        }
        Some((_, count)) => *count >= limit,
        None => false,
    }
}

/// Counts one more for `key` in its minute.
fn count<K: std::hash::Hash + Eq>(counts: &Mutex<HashMap<K, (Instant, u32)>>, key: K) {
    let Ok(mut counts) = counts.lock() else {
        return;
    };
    // Forget stale entries now and then, so a scan of addresses or names
    // cannot grow the map without end.
    if counts.len() > 10_000 {
        counts.retain(|_, (since, _)| since.elapsed() < AuthFailures::WINDOW);
    }
    let entry = counts.entry(key).or_insert((Instant::now(), 0));
    if entry.0.elapsed() >= AuthFailures::WINDOW {
        *entry = (Instant::now(), 0);
    }
    entry.1 += 1;
}

impl AuthFailures {
    const WINDOW: Duration = Duration::from_secs(60);
    /// How long an address that authenticated as an account stays
    /// trusted for it while the account is under attack.
    const TRUST: Duration = Duration::from_secs(24 * 3600);

    /// Whether `source` has failed too often lately.
    pub fn blocked(&self, source: IpAddr, limit: u32) -> bool {
        over(&self.by_source, &source, limit)
    }

    /// Whether `account` (`name@domain`) has had `limit` failures this
    /// minute and `source` is not one that authenticated as it lately.
    pub fn account_blocked(&self, account: &str, source: IpAddr, limit: u32) -> bool {
        if !over(&self.by_account, &account.to_string(), limit) {
            return false;
        }
        let Ok(trusted) = self.trusted.lock() else {
            return true;
        };
        trusted
            .get(&(account.to_string(), source))
            .is_none_or(|when| when.elapsed() >= Self::TRUST)
    }

    /// Failures counted since pbxd started, from every source.
    pub fn total(&self) -> u64 {
        self.total.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts a failure of `source`.
    pub fn failed(&self, source: IpAddr) {
        self.total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        count(&self.by_source, source);
    }

    /// Counts a failure of `source` at the existing account `account`.
    pub fn failed_as(&self, source: IpAddr, account: &str) {
        self.failed(source);
        count(&self.by_account, account.to_string());
    }

    /// `source` authenticated as `account`: trusted for it a day.
    pub fn succeeded(&self, source: IpAddr, account: &str) {
        let Ok(mut trusted) = self.trusted.lock() else {
            return;
        };
        if trusted.len() > 100_000 {
            trusted.retain(|_, when| when.elapsed() < Self::TRUST);
        }
        trusted.insert((account.to_string(), source), Instant::now());
    }
}

/// Where a request came from.
pub fn source_of(tx: &Transaction) -> Option<(SocketAddr, String)> {
    let connection = tx.connection.as_ref()?;
    let remote = connection.get_remote_addr()?.get_socketaddr().ok()?;
    let transport = connection.transport().to_string().to_ascii_lowercase();
    Some((remote, transport))
}

/// Answers a REGISTER.
pub async fn register(shared: &SipShared, mut tx: Transaction) {
    let reply = handle(shared, &tx);
    let (code, headers) = match reply {
        Ok(headers) => (StatusCode::OK, headers),
        Err((code, headers)) => (code, headers),
    };
    if let Err(error) = tx.reply_with(code, headers, None).await {
        tracing::debug!(%error, "REGISTER reply not sent");
    }
}

type Refusal = (StatusCode, Vec<Header>);

fn refuse(code: StatusCode) -> Refusal {
    (code, Vec::new())
}

fn handle(shared: &SipShared, tx: &Transaction) -> Result<Vec<Header>, Refusal> {
    let request = &tx.original;
    let Some((source, transport)) = source_of(tx) else {
        return Err(refuse(StatusCode::BadRequest));
    };
    let limit = shared.config.sip.auth_failures_per_minute;
    if shared.auth_failures.blocked(source.ip(), limit) {
        shared.lockouts.note(Some(source), "REGISTER");
        return Err(refuse(StatusCode::Forbidden));
    }
    let to = request
        .to_header()
        .and_then(|to| to.uri())
        .map_err(|_| refuse(StatusCode::BadRequest))?;
    let user = to.user().map(crate::percent_decode).unwrap_or_default();
    let domain = shared
        .domain_for(&to.host().to_string())
        .ok_or_else(|| refuse(StatusCode::NotFound))?;
    // Authentication: the account's password, in the domain's realm. A
    // name that is no account is challenged as well, and then refused: the
    // answers do not tell which accounts exist (RFC 3261 §10.3 authenticates
    // before it looks at the address of record).
    let digest = shared.digest(&domain);
    // Credentials in a scheme other than Digest are as none (RFC 4475
    // §3.3.7): the answer is a challenge in ours.
    let authorization = request
        .authorization_header()
        .map(|header| header.value().to_string())
        .filter(|value| crate::digest::is_digest(value));
    let Some(authorization) = authorization else {
        return Err((StatusCode::Unauthorized, challenge(&digest.challenges(false))));
    };
    let Some(account) = shared.directory.find(&user, &domain) else {
        shared.auth_failures.failed(source.ip());
        tracing::info!(%domain, "REGISTER refused: no such account");
        return Err(refuse(StatusCode::Forbidden));
    };
    let per_account = shared.config.sip.auth_failures_per_account_per_minute;
    if shared
        .auth_failures
        .account_blocked(&account.address(), source.ip(), per_account)
    {
        shared.lockouts.note(Some(source), "REGISTER");
        tracing::info!(account = %account.address(), %source, "REGISTER refused: too many failed logins at this account from elsewhere");
        return Err(refuse(StatusCode::Forbidden));
    }
    let password_of = |given: &str| {
        let name = given.split('@').next().unwrap_or(given);
        shared
            .directory
            .find(name, &account.domain)
            .filter(|found| found.name == account.name)
            .and_then(|found| found.password.clone())
    };
    match digest.verify("REGISTER", &authorization, password_of) {
        Ok(_) => shared.auth_failures.succeeded(source.ip(), &account.address()),
        Err(DigestError::Stale) => {
            return Err((StatusCode::Unauthorized, challenge(&digest.challenges(true))));
        }
        Err(error) => {
            shared.auth_failures.failed_as(source.ip(), &account.address());
            tracing::info!(account = %account.address(), %source, "REGISTER refused: {error}");
            return Err(refuse(StatusCode::Forbidden));
        }
    }
    let aor = account.address();
    let mut bindings = shared
        .location
        .lookup(&aor)
        .map_err(|_| refuse(StatusCode::ServerInternalError))?;
    let call_id = request
        .call_id_header()
        .map(|header| header.value().to_string())
        .unwrap_or_default();
    let cseq = request.cseq_header().and_then(|header| header.seq()).unwrap_or(0);
    let default_expires = request
        .expires_header()
        .and_then(|header| header.value().trim().parse::<u32>().ok())
        .unwrap_or(shared.config.sip.max_expires_seconds);
    let user_agent = request
        .user_agent_header()
        .map(|header| header.value().to_string())
        .unwrap_or_default();
    let contacts = request
        .typed_contact_headers()
        .map_err(|_| refuse(StatusCode::BadRequest))?;
    // A device that asked for symmetric responses (rport, RFC 3581) is
    // reached where its REGISTER came from (it may be behind NAT); one that
    // did not, at its Contact.
    let symmetric = request
        .via_header()
        .map(|via| via.value().to_ascii_lowercase().contains("rport"))
        .unwrap_or(false);
    let now = now();
    for contact in contacts {
        let text = contact.uri.to_string();
        if text == "*" {
            // Remove every binding: only with Expires: 0 (§10.3 step 6).
            if default_expires != 0 {
                return Err(refuse(StatusCode::BadRequest));
            }
            bindings.clear();
            continue;
        }
        let expires = contact.expires().unwrap_or(default_expires);
        if expires != 0 && expires < MIN_EXPIRES {
            return Err((
                StatusCode::IntervalTooBrief,
                vec![Header::MinExpires(MIN_EXPIRES.to_string().into())],
            ));
        }
        let expires = expires.min(shared.config.sip.max_expires_seconds);
        let existing = bindings.iter().position(|binding| binding.contact == text);
        if let Some(index) = existing {
            // A retransmitted or reordered REGISTER must not undo a newer one.
            let known = &bindings[index];
            if known.call_id == call_id && known.cseq > cseq {
                return Err(refuse(StatusCode::BadRequest));
            }
            bindings.remove(index);
        }
        if expires > 0 {
            let reach = if symmetric {
                source
            } else {
                contact_address(&contact.uri).unwrap_or(source)
            };
            bindings.push(Binding {
                contact: text,
                source: reach,
                transport: transport.clone(),
                expires_at: now + u64::from(expires),
                call_id: call_id.clone(),
                cseq,
                user_agent: user_agent.clone(),
            });
        }
    }
    shared
        .location
        .store(&aor, &bindings)
        .map_err(|_| refuse(StatusCode::ServerInternalError))?;
    tracing::info!(account = %aor, %source, bindings = bindings.len(), "registered");
    Ok(bindings
        .iter()
        .map(|binding| {
            Header::Contact(format!("<{}>;expires={}", binding.contact, binding.remaining(now)).into())
        })
        .collect())
}

/// The address of a Contact URI given as an IP literal (default port 5060).
fn contact_address(uri: &rsipstack::sip::Uri) -> Option<SocketAddr> {
    let host = uri.host().to_string();
    let ip: IpAddr = host.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    let port = uri
        .host_with_port
        .port
        .as_ref()
        .map(|port| u16::from(*port))
        .unwrap_or(5060);
    Some(SocketAddr::new(ip, port))
}

/// WWW-Authenticate headers for a 401.
pub fn challenge(values: &[String]) -> Vec<Header> {
    values
        .iter()
        .map(|value| Header::WwwAuthenticate(value.clone().into()))
        .collect()
}
