//! SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 2617).
//!
//! The server side challenges REGISTER and INVITE and checks the answers;
//! the client side answers a trunk's challenge. MD5 and SHA-256 are
//! supported with `qop=auth`, and the RFC 2069 form without qop that old
//! phones still send.
//!
//! Nonces are stateless: each carries its issue time and an HMAC-SHA-256 of
//! that time and the realm under a random per-process secret, so the server
//! keeps no table and still recognises a forged or expired nonce. The price
//! is that nonce counts are not tracked, so a captured request can be
//! replayed while its nonce lives; the nonce lifetime bounds that window.
//!
//! Nothing here logs a password, an HA1 or a whole Authorization header.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// The longest Authorization or WWW-Authenticate value parsed. Real ones are
/// under 1 KiB; this bounds the work a hostile header can cause.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// The most parameters accepted in one header, for the same reason.
const MAX_PARAMETERS: usize = 32;

/// Bytes of HMAC kept in a nonce: 128 bits cannot be guessed, and shorter
/// nonces keep SIP messages small.
const NONCE_MAC_BYTES: usize = 16;

/// Hex length of a nonce: issue time (8 bytes), salt (8 bytes), MAC.
const NONCE_HEX_LENGTH: usize = 2 * (8 + 8 + NONCE_MAC_BYTES);

/// Why an Authorization header was not accepted, or a challenge could not be
/// answered.
///
/// A registrar usually answers `Missing`, `Malformed`, `Unsupported`,
/// `WrongRealm` and `Stale` with a fresh challenge (`Stale` with
/// `stale=true`), and `UnknownUser` and `Wrong` with 403 or a fresh
/// challenge; telling those two apart to the client would reveal which
/// accounts exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The header is empty.
    #[error("no credentials")]
    Missing,
    /// The header is not a well-formed Digest credential or challenge.
    #[error("malformed digest header: {reason}")]
    Malformed {
        /// What is wrong, in words safe to log.
        reason: &'static str,
    },
    /// The header asks for something this module does not do: an algorithm
    /// other than MD5 and SHA-256 (and their -sess forms on the client side),
    /// qop=auth-int only, or userhash.
    #[error("unsupported digest feature: {reason}")]
    Unsupported {
        /// What is unsupported, in words safe to log.
        reason: &'static str,
    },
    /// `password_of` knows no such user.
    #[error("unknown user")]
    UnknownUser,
    /// The credentials are for another realm.
    #[error("credentials for another realm")]
    WrongRealm,
    /// The response is right but the nonce expired or was not issued by this
    /// process: the client knows the password and should simply retry with a
    /// new nonce, so answer with a challenge carrying `stale=true`.
    #[error("stale nonce")]
    Stale,
    /// The response does not match: wrong password, or a tampered header.
    #[error("wrong credentials")]
    Wrong,
}

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5, the only one most SIP phones know (RFC 2617).
    Md5,
    /// SHA-256 (RFC 7616), preferred where the client has it.
    Sha256,
}

impl Algorithm {
    /// The algorithm's name in the `algorithm=` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lowercase hex of the hash of `text`, the `H()` and `KD()` building
    /// block of RFC 7616 §3.4.
    fn hex_hash(self, text: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(text.as_bytes())),
            Algorithm::Sha256 => hex(&Sha256::digest(text.as_bytes())),
        }
    }

    /// Reads an `algorithm=` token; the bool says whether it is a `-sess`
    /// variant. None for an algorithm not supported at all.
    /// `MD5` or `SHA-256` (any case), as written in the configuration.
    pub fn parse(name: &str) -> Option<Algorithm> {
        match Algorithm::from_token(name.trim()) {
            Some((algorithm, false)) => Some(algorithm),
            _ => None,
        }
    }

    fn from_token(token: &str) -> Option<(Algorithm, bool)> {
        let (base, session) = match token
            .len()
            .checked_sub(5)
            .and_then(|cut| token.split_at_checked(cut))
        {
            Some((base, suffix)) if suffix.eq_ignore_ascii_case("-sess") => (base, true),
            _ => (token, false),
        };
        let algorithm = if base.eq_ignore_ascii_case("MD5") {
            Algorithm::Md5
        } else if base.eq_ignore_ascii_case("SHA-256") {
            Algorithm::Sha256
        } else {
            return None;
        };
        Some((algorithm, session))
    }
}

/// The inputs of one digest response computation.
struct ResponseInputs<'a> {
    algorithm: Algorithm,
    /// Whether the algorithm is a `-sess` variant (client side only).
    session: bool,
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    method: &'a str,
    uri: &'a str,
    nonce: &'a str,
    /// `(nc, cnonce)` when qop=auth is used; None for the RFC 2069 form.
    quality_of_protection: Option<(&'a str, &'a str)>,
}

impl ResponseInputs<'_> {
    /// The `response=` value of RFC 7616 §3.4.1 (RFC 2617 §3.2.2.1 without qop).
    fn response(&self) -> String {
        let hash = |text: &str| self.algorithm.hex_hash(text);
        let mut user_secret = hash(&format!("{}:{}:{}", self.username, self.realm, self.password));
        if self.session {
            let cnonce = self.quality_of_protection.map_or("", |(_, cnonce)| cnonce);
            user_secret = hash(&format!("{user_secret}:{}:{cnonce}", self.nonce));
        }
        let request_hash = hash(&format!("{}:{}", self.method, self.uri));
        match self.quality_of_protection {
            Some((nonce_count, cnonce)) => hash(&format!(
                "{user_secret}:{}:{nonce_count}:{cnonce}:auth:{request_hash}",
                self.nonce
            )),
            None => hash(&format!("{user_secret}:{}:{request_hash}", self.nonce)),
        }
    }
}

/// The server side: issues challenges and checks Authorization headers for
/// one realm.
pub struct DigestServer {
    realm: String,
    nonce_lifetime: Duration,
    /// The algorithms challenged with, in this order; no other is accepted.
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for DigestServer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .finish()
    }
}

impl DigestServer {
    /// A server for `realm` (the domain) whose nonces live `nonce_lifetime`
    /// (five minutes is usual). Nonces are keyed by a secret drawn once per
    /// process, so every `DigestServer` of a realm accepts the others' nonces
    /// and none survives a restart: phones then get `Stale` and retry.
    pub fn new(realm: &str, nonce_lifetime: Duration) -> DigestServer {
        DigestServer::with_algorithms(realm, nonce_lifetime, &[Algorithm::Sha256, Algorithm::Md5])
    }

    /// Like `new`, challenging with `algorithms` in that order (a client
    /// takes the first it supports; many phones and test tools know only
    /// MD5 and give up when SHA-256 comes first). An empty list means both.
    pub fn with_algorithms(realm: &str, nonce_lifetime: Duration, algorithms: &[Algorithm]) -> DigestServer {
        let algorithms = if algorithms.is_empty() {
            vec![Algorithm::Sha256, Algorithm::Md5]
        } else {
            algorithms.to_vec()
        };
        DigestServer {
            algorithms,
            realm: realm.to_owned(),
            nonce_lifetime,
        }
    }

    /// The realm this server challenges for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The WWW-Authenticate (401) or Proxy-Authenticate (407) values to send:
    /// one per algorithm, in the server's order (by default SHA-256 first,
    /// then MD5, as RFC 8760 §2.4 orders them). All share one nonce.
    /// `stale` adds `stale=true`, for answering [`DigestError::Stale`].
    pub fn challenges(&self, stale: bool) -> Vec<String> {
        self.challenges_at(unix_seconds_now(), stale)
    }

    fn challenges_at(&self, now: u64, stale: bool) -> Vec<String> {
        let nonce = self.make_nonce(now);
        let realm = escape_quoted(&self.realm);
        let stale_parameter = if stale { ", stale=true" } else { "" };
        self.algorithms
            .iter()
            .map(|algorithm| {
                format!(
                    "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale_parameter}",
                    algorithm.name()
                )
            })
            .collect()
    }

    /// Checks an Authorization (or Proxy-Authorization) value for a request
    /// with `method` (REGISTER, INVITE...). `password_of(username)` gives the
    /// account's password, None for an unknown user; it is called at most
    /// once, after the header has been parsed and its realm checked. Returns
    /// the username as the client gave it (`ivanov` or `ivanov@example.com`).
    ///
    /// The response is checked before the nonce, so `Stale` is only given to
    /// a client that proved it knows the password. The `uri` parameter is
    /// hashed as given; comparing it with the Request-URI is the caller's
    /// business (RFC 7616 §3.4.6).
    pub fn verify(
        &self,
        method: &str,
        authorization: &str,
        password_of: impl FnOnce(&str) -> Option<String>,
    ) -> Result<String, DigestError> {
        self.verify_at(unix_seconds_now(), method, authorization, password_of)
    }

    fn verify_at(
        &self,
        now: u64,
        method: &str,
        authorization: &str,
        password_of: impl FnOnce(&str) -> Option<String>,
    ) -> Result<String, DigestError> {
        let parameters = DigestParameters::parse(authorization)?;
        if parameters.get("username").is_none() && parameters.get("username*").is_some() {
            return Err(DigestError::Unsupported {
                reason: "username* (RFC 7616 §3.4.4)",
            });
        }
        let username = parameters.require("username", "no username")?;
        let realm = parameters.require("realm", "no realm")?;
        let nonce = parameters.require("nonce", "no nonce")?;
        let uri = parameters.require("uri", "no uri")?;
        let response = parameters.require("response", "no response")?;
        if realm != self.realm {
            return Err(DigestError::WrongRealm);
        }
        let algorithm = match parameters.get("algorithm") {
            None => Algorithm::Md5,
            Some(token) => match Algorithm::from_token(token) {
                Some((algorithm, false)) => algorithm,
                Some((_, true)) => {
                    return Err(DigestError::Unsupported {
                        reason: "-sess algorithm",
                    })
                }
                None => return Err(DigestError::Unsupported { reason: "algorithm" }),
            },
        };
        if !self.algorithms.contains(&algorithm) {
            return Err(DigestError::Unsupported {
                reason: "algorithm not offered",
            });
        }
        if parameters
            .get("userhash")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
        {
            return Err(DigestError::Unsupported { reason: "userhash" });
        }
        let quality_of_protection = match parameters.get("qop") {
            None => None,
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let nonce_count = parameters.require("nc", "qop without nc")?;
                let cnonce = parameters.require("cnonce", "qop without cnonce")?;
                if nonce_count.len() != 8 || !nonce_count.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                    return Err(DigestError::Malformed {
                        reason: "nc is not 8 hex digits",
                    });
                }
                if cnonce.is_empty() {
                    return Err(DigestError::Malformed {
                        reason: "empty cnonce",
                    });
                }
                Some((nonce_count, cnonce))
            }
            Some(_) => {
                return Err(DigestError::Unsupported {
                    reason: "qop other than auth",
                })
            }
        };
        let password = password_of(username).ok_or(DigestError::UnknownUser)?;
        let expected = ResponseInputs {
            algorithm,
            session: false,
            username,
            realm,
            password: &password,
            method,
            uri,
            nonce,
            quality_of_protection,
        }
        .response();
        // Clients write lowercase hex (RFC 7616 §3.4.1) but some old ones do not.
        if !constant_time_equal(expected.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
            tracing::debug!(username, realm, "digest response does not match");
            return Err(DigestError::Wrong);
        }
        if !self.nonce_is_fresh(nonce, now) {
            tracing::debug!(username, realm, "digest nonce is stale or not ours");
            return Err(DigestError::Stale);
        }
        Ok(username.to_owned())
    }

    /// A new nonce: hex of issue time, a random salt (so two challenges in
    /// the same second differ) and the MAC over both and the realm.
    fn make_nonce(&self, now: u64) -> String {
        let salt = nonce_salt().to_be_bytes();
        let mac = self.nonce_mac(now, &salt);
        let mut nonce = String::with_capacity(NONCE_HEX_LENGTH);
        nonce.push_str(&hex(&now.to_be_bytes()));
        nonce.push_str(&hex(&salt));
        nonce.push_str(&hex(mac.get(..NONCE_MAC_BYTES).unwrap_or(&mac)));
        nonce
    }

    fn nonce_mac(&self, issued: u64, salt: &[u8; 8]) -> [u8; 32] {
        hmac_sha256(
            process_secret(),
            &[&issued.to_be_bytes(), salt, self.realm.as_bytes()],
        )
    }

    /// Whether `nonce` was made by this process for this realm and has not
    /// outlived the lifetime. A nonce dated in the future (the clock went
    /// back) is accepted for as long as one from the past would be.
    fn nonce_is_fresh(&self, nonce: &str, now: u64) -> bool {
        if nonce.len() != NONCE_HEX_LENGTH {
            return false;
        }
        let Some(bytes) = unhex(nonce) else { return false };
        let (Some(issued_bytes), Some(salt_bytes), Some(mac)) = (
            bytes.get(..8),
            bytes.get(8..16),
            bytes.get(16..16 + NONCE_MAC_BYTES),
        ) else {
            return false;
        };
        let (Ok(issued_bytes), Ok(salt)) =
            (<[u8; 8]>::try_from(issued_bytes), <[u8; 8]>::try_from(salt_bytes))
        else {
            return false;
        };
        let issued = u64::from_be_bytes(issued_bytes);
        let expected_mac = self.nonce_mac(issued, &salt);
        if !constant_time_equal(expected_mac.get(..NONCE_MAC_BYTES).unwrap_or(&expected_mac), mac) {
            return false;
        }
        let lifetime = self.nonce_lifetime.as_secs();
        now.abs_diff(issued) <= lifetime
    }
}

/// Answers a server's challenge, for pbxd authenticating to a trunk.
///
/// `challenge` is one WWW-Authenticate or Proxy-Authenticate value; the
/// result is the matching Authorization or Proxy-Authorization value.
/// MD5, SHA-256 and their -sess forms are supported; qop=auth is used when
/// offered (with `cnonce` and the nonce count `nc`, which the caller
/// increments for each request with the same nonce), else the RFC 2069 form,
/// in which `cnonce` and `nc` are unused. `opaque` is echoed.
pub fn client_response(
    challenge: &str,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, DigestError> {
    let parameters = DigestParameters::parse(challenge)?;
    let realm = parameters.require("realm", "challenge without realm")?;
    let nonce = parameters.require("nonce", "challenge without nonce")?;
    let algorithm_token = parameters.get("algorithm");
    let (algorithm, session) = match algorithm_token {
        None => (Algorithm::Md5, false),
        Some(token) => {
            Algorithm::from_token(token).ok_or(DigestError::Unsupported { reason: "algorithm" })?
        }
    };
    let uses_qop = match parameters.get("qop") {
        None => false,
        Some(offered)
            if offered
                .split(',')
                .any(|qop| qop.trim().eq_ignore_ascii_case("auth")) =>
        {
            true
        }
        Some(_) => {
            return Err(DigestError::Unsupported {
                reason: "challenge offers only qop=auth-int",
            })
        }
    };
    if session && !uses_qop {
        // -sess needs a cnonce, which RFC 2617 §3.2.2 forbids without qop.
        return Err(DigestError::Unsupported {
            reason: "-sess algorithm without qop",
        });
    }
    if uses_qop && cnonce.is_empty() {
        return Err(DigestError::Malformed {
            reason: "empty cnonce",
        });
    }
    let nonce_count = format!("{nc:08x}");
    let response = ResponseInputs {
        algorithm,
        session,
        username,
        realm,
        password,
        method,
        uri,
        nonce,
        quality_of_protection: uses_qop.then_some((nonce_count.as_str(), cnonce)),
    }
    .response();

    let mut header = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{response}\"",
        quoted_value(username)?,
        quoted_value(realm)?,
        quoted_value(nonce)?,
        quoted_value(uri)?,
    );
    if let Some(token) = algorithm_token {
        // Echo the server's own spelling; checked above to be one we know.
        let _ = write!(header, ", algorithm={token}");
    }
    if uses_qop {
        let _ = write!(
            header,
            ", cnonce=\"{}\", qop=auth, nc={nonce_count}",
            quoted_value(cnonce)?
        );
    }
    if let Some(opaque) = parameters.get("opaque") {
        let _ = write!(header, ", opaque=\"{}\"", quoted_value(opaque)?);
    }
    Ok(header)
}

/// Whether an Authorization value is in the Digest scheme (the only one
/// pbxd challenges with).
pub fn is_digest(value: &str) -> bool {
    value
        .trim_start()
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("digest"))
}

/// A fresh random client nonce for [`client_response`]: 128 bits in hex.
pub fn random_cnonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        bytes = fallback_entropy()
            .get(..16)
            .and_then(|slice| slice.try_into().ok())
            .unwrap_or([0; 16]);
    }
    hex(&bytes)
}

/// The parameters of a `Digest k=v, k="quoted", ...` header value, keys
/// lowercased (RFC 7616 §3.3: parameter names are case-insensitive).
struct DigestParameters {
    entries: Vec<(String, String)>,
}

impl DigestParameters {
    /// Parses a credentials or challenge value (RFC 7235 §2.1 syntax): the
    /// scheme `Digest`, then comma-separated `name=token` or
    /// `name="quoted string"` with backslash escapes. Empty list elements are
    /// allowed; duplicate names are not, since a client that sends two
    /// `response`s is broken or probing.
    fn parse(header: &str) -> Result<DigestParameters, DigestError> {
        let header = header.trim();
        if header.is_empty() {
            return Err(DigestError::Missing);
        }
        if header.len() > MAX_HEADER_BYTES {
            return Err(DigestError::Malformed {
                reason: "header too long",
            });
        }
        let (scheme, rest) = header
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::Malformed {
                reason: "not a Digest header",
            });
        }
        let mut scanner = Scanner {
            bytes: rest.as_bytes(),
            position: 0,
        };
        let mut entries: Vec<(String, String)> = Vec::new();
        loop {
            scanner.skip(|byte| byte.is_ascii_whitespace() || byte == b',');
            if scanner.at_end() {
                break;
            }
            let name = scanner.take_while(is_token_byte).to_ascii_lowercase();
            if name.is_empty() {
                return Err(DigestError::Malformed {
                    reason: "expected a parameter name",
                });
            }
            scanner.skip(|byte| byte.is_ascii_whitespace());
            if !scanner.eat(b'=') {
                return Err(DigestError::Malformed {
                    reason: "parameter without =",
                });
            }
            scanner.skip(|byte| byte.is_ascii_whitespace());
            let value = if scanner.eat(b'"') {
                scanner.quoted_string()?
            } else {
                let token = scanner.take_while(|byte| !byte.is_ascii_whitespace() && byte != b',');
                if token.is_empty() {
                    return Err(DigestError::Malformed {
                        reason: "parameter without a value",
                    });
                }
                token
            };
            scanner.skip(|byte| byte.is_ascii_whitespace());
            if !scanner.at_end() && !scanner.eat(b',') {
                return Err(DigestError::Malformed {
                    reason: "expected a comma between parameters",
                });
            }
            if entries.iter().any(|(existing, _)| *existing == name) {
                return Err(DigestError::Malformed {
                    reason: "duplicate parameter",
                });
            }
            if entries.len() == MAX_PARAMETERS {
                return Err(DigestError::Malformed {
                    reason: "too many parameters",
                });
            }
            entries.push((name, value));
        }
        if entries.is_empty() {
            return Err(DigestError::Malformed {
                reason: "no parameters",
            });
        }
        Ok(DigestParameters { entries })
    }

    /// The value of a parameter, by lowercase name.
    fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn require(&self, name: &str, reason: &'static str) -> Result<&str, DigestError> {
        self.get(name).ok_or(DigestError::Malformed { reason })
    }
}

/// A cursor over a header's bytes.
struct Scanner<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Scanner<'_> {
    fn at_end(&self) -> bool {
        self.position >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn eat(&mut self, expected: u8) -> bool {
        let matches = self.peek() == Some(expected);
        if matches {
            self.position += 1;
        }
        matches
    }

    fn skip(&mut self, mut predicate: impl FnMut(u8) -> bool) {
        while self.peek().is_some_and(&mut predicate) {
            self.position += 1;
        }
    }

    /// Takes bytes while `predicate` holds. The predicates used stop only at
    /// ASCII bytes, so the taken bytes are whole UTF-8 characters; a lossy
    /// conversion is still used so that nothing here can panic.
    fn take_while(&mut self, predicate: impl FnMut(u8) -> bool) -> String {
        let start = self.position;
        self.skip(predicate);
        String::from_utf8_lossy(self.bytes.get(start..self.position).unwrap_or_default()).into_owned()
    }

    /// Reads the rest of a quoted string whose opening quote was eaten,
    /// undoing backslash escapes (RFC 7230 §3.2.6).
    fn quoted_string(&mut self) -> Result<String, DigestError> {
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => {
                    return Err(DigestError::Malformed {
                        reason: "unterminated quoted string",
                    })
                }
                Some(b'"') => {
                    self.position += 1;
                    break;
                }
                Some(b'\\') => {
                    self.position += 1;
                    let escaped = self.peek().ok_or(DigestError::Malformed {
                        reason: "unterminated quoted string",
                    })?;
                    value.push(escaped);
                    self.position += 1;
                }
                Some(byte) => {
                    value.push(byte);
                    self.position += 1;
                }
            }
        }
        String::from_utf8(value).map_err(|_| DigestError::Malformed {
            reason: "invalid UTF-8",
        })
    }
}

/// Whether a byte may appear in an HTTP/SIP token (RFC 7230 §3.2.6 tchar).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Escapes `"` and `\` for use inside a quoted string.
fn escape_quoted(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        if character == '"' || character == '\\' {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// Escapes a value for a header pbxd sends, refusing control characters:
/// a CR or LF from a hostile challenge would otherwise split our request.
fn quoted_value(value: &str) -> Result<String, DigestError> {
    if value.chars().any(char::is_control) {
        return Err(DigestError::Malformed {
            reason: "control character in a value",
        });
    }
    Ok(escape_quoted(value))
}

/// Compares two byte strings in time that depends only on their lengths, so
/// a wrong response reveals nothing about how much of it was right.
fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |accumulated, (a, b)| accumulated | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// HMAC-SHA-256 (RFC 2104) of the concatenated `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK_BYTES: usize = 64;
    // RFC 2104 §2: a key longer than the block is replaced by its hash.
    let hashed_key: [u8; 32];
    let key = if key.len() > BLOCK_BYTES {
        hashed_key = Sha256::digest(key).into();
        &hashed_key[..]
    } else {
        key
    };
    let mut inner_pad = [0x36u8; BLOCK_BYTES];
    let mut outer_pad = [0x5cu8; BLOCK_BYTES];
    for ((inner, outer), key_byte) in inner_pad.iter_mut().zip(outer_pad.iter_mut()).zip(key) {
        *inner ^= key_byte;
        *outer ^= key_byte;
    }
    let mut inner_hash = Sha256::new();
    inner_hash.update(inner_pad);
    for part in parts {
        inner_hash.update(part);
    }
    let mut outer_hash = Sha256::new();
    outer_hash.update(outer_pad);
    outer_hash.update(inner_hash.finalize());
    outer_hash.finalize().into()
}

/// The per-process nonce key, drawn on first use.
fn process_secret() -> &'static [u8; 32] {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    SECRET.get_or_init(|| {
        let mut secret = [0u8; 32];
        if getrandom::fill(&mut secret).is_err() {
            tracing::warn!("the operating system's random source failed; digest nonces use a weaker key");
            secret = fallback_entropy();
        }
        secret
    })
}

/// A per-nonce salt, random where possible. The counter keeps salts distinct
/// even if the random source fails.
fn nonce_salt() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    getrandom::u64().unwrap_or(count) ^ count.rotate_left(32)
}

/// Entropy for when the OS random source fails: the standard library's
/// randomly keyed hasher, the time and the process id, hashed together.
fn fallback_entropy() -> [u8; 32] {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    let mut digest = Sha256::new();
    digest.update(hasher.finish().to_be_bytes());
    digest.update(std::process::id().to_be_bytes());
    digest.finalize().into()
}

fn unix_seconds_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    // from_str_radix alone would also take a sign ("+f"), letting one nonce
    // be spelt two ways.
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    pairs
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME_SECONDS: u64 = 300;
    const ISSUED: u64 = 1_700_000_000;

    fn server() -> DigestServer {
        DigestServer::new("example.com", Duration::from_secs(LIFETIME_SECONDS))
    }

    /// An Authorization value answering `server`'s SHA-256 challenge issued at `ISSUED`.
    fn authorization(server: &DigestServer, password: &str) -> String {
        let challenge = server.challenges_at(ISSUED, false).remove(0);
        client_response(
            &challenge,
            "REGISTER",
            "sip:example.com",
            "ivanov",
            password,
            "c0ffee",
            1,
        )
        .unwrap()
    }

    fn verify_at(server: &DigestServer, now: u64, header: &str) -> Result<String, DigestError> {
        server.verify_at(now, "REGISTER", header, |_| Some("secret".to_owned()))
    }

    #[test]
    fn nonce_lives_exactly_its_lifetime() {
        let server = server();
        let header = authorization(&server, "secret");
        assert_eq!(verify_at(&server, ISSUED, &header), Ok("ivanov".to_owned()));
        assert_eq!(
            verify_at(&server, ISSUED + LIFETIME_SECONDS, &header),
            Ok("ivanov".to_owned())
        );
        assert_eq!(
            verify_at(&server, ISSUED + LIFETIME_SECONDS + 1, &header),
            Err(DigestError::Stale)
        );
    }

    #[test]
    fn clock_going_back_is_tolerated_for_one_lifetime() {
        let server = server();
        let header = authorization(&server, "secret");
        assert_eq!(
            verify_at(&server, ISSUED - LIFETIME_SECONDS, &header),
            Ok("ivanov".to_owned())
        );
        assert_eq!(
            verify_at(&server, ISSUED - LIFETIME_SECONDS - 1, &header),
            Err(DigestError::Stale)
        );
    }

    #[test]
    fn a_wrong_password_is_wrong_even_with_an_expired_nonce() {
        let server = server();
        let header = authorization(&server, "guess");
        assert_eq!(
            verify_at(&server, ISSUED + 10 * LIFETIME_SECONDS, &header),
            Err(DigestError::Wrong)
        );
    }

    #[test]
    fn nonces_are_hex_distinct_and_bound_to_their_realm() {
        let server = server();
        let first = server.make_nonce(ISSUED);
        let second = server.make_nonce(ISSUED);
        assert_eq!(first.len(), NONCE_HEX_LENGTH);
        assert!(first.bytes().all(|byte| byte.is_ascii_hexdigit()));
        assert_ne!(first, second);
        assert!(server.nonce_is_fresh(&first, ISSUED));
        let other_realm = DigestServer::new("example.org", Duration::from_secs(LIFETIME_SECONDS));
        assert!(!other_realm.nonce_is_fresh(&first, ISSUED));
        // Moving the issue time forward breaks the MAC.
        let mut later = first.clone();
        later.replace_range(..16, &hex(&(ISSUED + 1000).to_be_bytes()));
        assert!(!server.nonce_is_fresh(&later, ISSUED + 1000));
        // The same bytes spelt with a sign ("+0" for "00") are not the same nonce.
        assert!(first.starts_with("00"));
        assert!(!server.nonce_is_fresh(&format!("+0{}", &first[2..]), ISSUED));
        assert!(!server.nonce_is_fresh("", ISSUED));
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, expected) in cases {
            assert_eq!(hex(&hmac_sha256(key, &[data])), expected);
        }
        // Parts are concatenated.
        assert_eq!(
            hmac_sha256(b"Jefe", &[b"what do ya ", b"want for nothing?"]),
            hmac_sha256(b"Jefe", &[b"what do ya want for nothing?"])
        );
    }

    #[test]
    fn algorithm_tokens() {
        assert_eq!(Algorithm::from_token("md5"), Some((Algorithm::Md5, false)));
        assert_eq!(Algorithm::from_token("SHA-256"), Some((Algorithm::Sha256, false)));
        assert_eq!(Algorithm::from_token("MD5-sess"), Some((Algorithm::Md5, true)));
        assert_eq!(
            Algorithm::from_token("sha-256-SESS"),
            Some((Algorithm::Sha256, true))
        );
        assert_eq!(Algorithm::from_token("SHA-512-256"), None);
        assert_eq!(Algorithm::from_token("-sess"), None);
        assert_eq!(Algorithm::from_token("é-sess"), None);
        assert_eq!(Algorithm::from_token(""), None);
    }

    #[test]
    fn hex_round_trip_and_strictness() {
        assert_eq!(unhex(&hex(&[0, 1, 0xab, 0xff])), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(unhex("+f"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn constant_time_equal_is_equality() {
        assert!(constant_time_equal(b"abc", b"abc"));
        assert!(!constant_time_equal(b"abc", b"abd"));
        assert!(!constant_time_equal(b"abc", b"abcd"));
        assert!(constant_time_equal(b"", b""));
    }

    #[test]
    fn debug_shows_no_secret_material() {
        let shown = format!("{:?}", server());
        assert_eq!(
            shown,
            "DigestServer { realm: \"example.com\", nonce_lifetime: 300s }"
        );
    }
}
