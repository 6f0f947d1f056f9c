//! Click-to-dial as pbxnsip does it (seed 002; FEATURES.md §8):
//! `GET /remote_call.htm?user=U&dest=D[&auth=NAME%3APASSWORD][&connect=true]`
//! starts `stdlib-scripts/remotecall.sppr` for account `U`: it rings U's
//! phone, asks for 1 (unless `connect=true`), then hands the call to `D`.
//!
//! Who asks proves who they are with `auth=` (pbxnsip's link form) or
//! HTTP Digest in the domain's realm (a 401 challenge otherwise), and must
//! be U or an administrator of U's domain. A destination the class of
//! service forbids gets 403 and nothing rings. Failures count against the
//! source address as SIP's do; the password is never logged.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use pbx_lang::value::Portable;
use pbx_runtime::address::{self, Destination};
use pbx_runtime::directory::Account;

use crate::Sources;

/// An answer other than 200, as a page's helpers return it.
pub(crate) type Refused = Box<Response>;

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The query's parameters, `+` and `%XX` undone; `None` when it is not
/// UTF-8 once decoded.
pub(crate) fn parameters(query: &str) -> Option<Vec<(String, String)>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(name)?, decode(value)?))
        })
        .collect()
}

/// A form or query value: `+` is a space, `%XX` a byte; `None` when the
/// result is not UTF-8.
fn decode(text: &str) -> Option<String> {
    String::from_utf8(pbx_sip::percent_decode_bytes(&text.replace('+', " "))).ok()
}

/// `name` or `name@domain`: the account, or why not.
pub(crate) fn account_named(sources: &Sources, given: &str) -> Result<Arc<Account>, Refused> {
    let directory = &sources.runtime.directory;
    let (name, domain) = match given.split_once('@') {
        Some((name, domain)) => (name.to_string(), domain.to_string()),
        None if directory.domain_count() > 1 => {
            return Err(Box::new(text(
                StatusCode::BAD_REQUEST,
                format!("`{given}`: this server has several domains; write the user as name@domain"),
            )))
        }
        None => match directory.first_domain() {
            Some(domain) => (given.to_string(), domain.name.clone()),
            None => return Err(Box::new(text(StatusCode::NOT_FOUND, "no domain is configured"))),
        },
    };
    directory.find(&name, &domain).ok_or_else(|| {
        Box::new(text(
            StatusCode::NOT_FOUND,
            format!("no account `{name}@{domain}`"),
        ))
    })
}

/// Compares two secrets without stopping at the first difference.
pub(crate) fn same(given: &str, known: &str) -> bool {
    given.len() == known.len()
        && given
            .bytes()
            .zip(known.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Who asks: from `auth=NAME:PASSWORD`, or HTTP Digest in `user`'s realm;
/// a 401 challenge when neither is given.
pub(crate) fn authenticate(
    sources: &Sources,
    source: SocketAddr,
    headers: &HeaderMap,
    auth: Option<&str>,
    user: &Account,
    secure: bool,
) -> Result<Arc<Account>, Refused> {
    authenticate_request(sources, source, headers, auth, user, secure, "GET")
}

/// As `authenticate`, for a request with `method` (Digest hashes it).
pub(crate) fn authenticate_request(
    sources: &Sources,
    source: SocketAddr,
    headers: &HeaderMap,
    auth: Option<&str>,
    user: &Account,
    secure: bool,
    method: &str,
) -> Result<Arc<Account>, Refused> {
    // Over HTTPS, Basic credentials are as good as `auth=` (over plain
    // HTTP they would cross the network readable: Digest only).
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .filter(|_| secure)
        .and_then(|value| {
            value
                .strip_prefix("Basic ")
                .or_else(|| value.strip_prefix("basic "))
        })
        .and_then(|encoded| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let auth = auth.or(basic.as_deref());
    let failures = sources.sip.auth_failures();
    let limit = sources.runtime.config.sip.auth_failures_per_minute;
    if failures.blocked(source.ip(), limit) {
        tracing::info!(%source, "HTTP request refused: too many failed logins from there");
        return Err(Box::new(text(
            StatusCode::FORBIDDEN,
            "too many failed logins; try again later",
        )));
    }
    let refused = |name: &str| {
        failures.failed(source.ip());
        // The name, never the password.
        tracing::info!(%source, name, "HTTP request refused: wrong name or password");
        Box::new(text(StatusCode::FORBIDDEN, "wrong name or password"))
    };
    if let Some(auth) = auth {
        let (name, password) = auth.split_once(':').unwrap_or((auth, ""));
        let account = account_named(sources, name).map_err(|_| refused(name))?;
        return match &account.password {
            Some(known) if same(password, known) => Ok(account),
            _ => Err(refused(name)),
        };
    }
    let digest = sources.sip.digest(&user.domain);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .filter(|value| pbx_sip::digest::is_digest(value));
    let challenge = |stale: bool| {
        let mut response = text(
            StatusCode::UNAUTHORIZED,
            "log in with the account's name and password",
        );
        for value in digest.challenges(stale) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(header::WWW_AUTHENTICATE, value);
            }
        }
        Box::new(response)
    };
    let Some(authorization) = authorization else {
        return Err(challenge(false));
    };
    let mut named = None;
    let verified = digest.verify(method, authorization, |given| {
        let account = account_named(sources, given).ok()?;
        let password = account.password.clone();
        named = Some(account);
        password
    });
    match (verified, named) {
        (Ok(_), Some(account)) => Ok(account),
        (Err(pbx_sip::digest::DigestError::Stale), _) => Err(challenge(true)),
        _ => Err(refused("(digest)")),
    }
}

/// `GET /remote_call.htm`.
pub async fn remote_call(
    State(sources): State<Arc<Sources>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    secure: Option<axum::Extension<crate::Secure>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(parameters) = parameters(query.as_deref().unwrap_or_default()) else {
        return text(StatusCode::BAD_REQUEST, "the query is not UTF-8");
    };
    let get = |name: &str| {
        parameters
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
    };
    let (Some(user), Some(dest)) = (get("user"), get("dest")) else {
        return text(StatusCode::BAD_REQUEST, "`user` and `dest` are both needed");
    };
    if user.is_empty() || dest.is_empty() {
        return text(StatusCode::BAD_REQUEST, "`user` and `dest` may not be empty");
    }
    let connect = match get("connect") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => return text(StatusCode::BAD_REQUEST, format!("connect={other}: true or false")),
    };
    let account = match account_named(&sources, user) {
        Ok(account) => account,
        Err(response) => return *response,
    };
    let asker = match authenticate(
        &sources,
        source,
        &headers,
        get("auth"),
        &account,
        secure.is_some(),
    ) {
        Ok(asker) => asker,
        Err(response) => return *response,
    };
    if !asker.may_act_for(&account) {
        return text(
            StatusCode::FORBIDDEN,
            format!("{} may not dial for {}", asker.address(), account.address()),
        );
    }
    match dial_for(&sources, account, dest, connect).await {
        Ok(task) => text(StatusCode::OK, task),
        Err((status, why)) => text(status, why),
    }
}

/// Starts click-to-dial for `account` to `dest`: the class of service
/// checked, then `remotecall`; its task ID, or the status and why not.
pub(crate) async fn dial_for(
    sources: &Sources,
    account: Arc<Account>,
    dest: &str,
    connect: bool,
) -> Result<String, (StatusCode, String)> {
    match address::resolve(
        &sources.runtime.directory,
        dest,
        Some(&account.domain),
        Some(&account),
    ) {
        Ok(Destination::Outside(number)) if !account.class_of_service.allows(&number) => {
            return Err((
                StatusCode::FORBIDDEN,
                format!(
                    "{number} is not allowed by {}'s class of service",
                    account.address()
                ),
            ))
        }
        Ok(_) => {}
        Err(error) => return Err((StatusCode::NOT_FOUND, format!("{dest}: {error}"))),
    }
    match start(sources, account.clone(), dest, connect).await {
        Some(task) => {
            tracing::info!(account = %account.address(), dest, %task, "click-to-dial started");
            Ok(task)
        }
        None => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "pbxd is stopping, or remotecall could not start".to_string(),
        )),
    }
}

/// Starts `remotecall` for `account` on a shard; its task ID.
async fn start(sources: &Sources, account: Arc<Account>, dest: &str, connect: bool) -> Option<String> {
    let (sender, started) = tokio::sync::oneshot::channel();
    let runtime = sources.runtime.clone();
    let parameters = vec![Portable::Str(dest.into()), Portable::Num(i64::from(connect))];
    let shard = sources.next_shard();
    sources.spawner.run_on(shard, move || {
        let started = runtime.start_app("remotecall", account, None, parameters);
        let _ = sender.send(started.map(|task| task.0.to_string()));
    });
    match started.await {
        Ok(Ok(task)) => Some(task),
        Ok(Err(error)) => {
            tracing::warn!(%error, "remotecall did not start");
            None
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded_and_bad_utf8_refused() {
        let parsed = parameters("user=ivanov%40example.com&dest=202&auth=a%3Ab+c&connect").unwrap();
        assert_eq!(
            parsed,
            [
                ("user".to_string(), "ivanov@example.com".to_string()),
                ("dest".to_string(), "202".to_string()),
                ("auth".to_string(), "a:b c".to_string()),
                ("connect".to_string(), String::new()),
            ]
        );
        assert_eq!(parameters("user=%ff"), None);
        assert_eq!(decode("100%"), Some("100%".to_string()));
        assert!(same("secret", "secret") && !same("secret", "secreT") && !same("s", "secret"));
    }
}
