//! Digest authentication: the RFC examples, both directions of a real
//! exchange, and headers that are broken or hostile.

// Helpers outside #[test] functions unwrap too: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;
use std::time::Duration;

use pbx_sip::digest::{self, DigestError, DigestServer};
use proptest::prelude::*;

const REALM: &str = "example.com";
const URI: &str = "sip:example.com";

fn server() -> DigestServer {
    DigestServer::new(REALM, Duration::from_secs(300))
}

/// The password book of the tests: one account, `ivanov`, also reachable
/// as `ivanov@example.com`.
fn password_of(username: &str) -> Option<String> {
    (username == "ivanov" || username == "ivanov@example.com").then(|| "Tr0ub4dor&3".to_owned())
}

/// The value of one parameter in a header pbxd wrote (no escapes needed there).
fn parameter<'a>(header: &'a str, name: &str) -> &'a str {
    let start = header
        .find(&format!("{name}="))
        .map(|at| at + name.len() + 1)
        .unwrap();
    let rest = &header[start..];
    match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"').unwrap()],
        None => rest.split([',', ' ']).next().unwrap(),
    }
}

/// The SHA-256 and MD5 challenges of a fresh 401.
fn sha256_and_md5_challenges(server: &DigestServer) -> (String, String) {
    let challenges = server.challenges(false);
    assert_eq!(challenges.len(), 2);
    (challenges[0].clone(), challenges[1].clone())
}

fn answer(challenge: &str, username: &str, password: &str) -> String {
    digest::client_response(challenge, "REGISTER", URI, username, password, "8a3f2e1b", 1).unwrap()
}

fn check_verify(header: &str, expected: Result<&str, DigestError>) {
    let result = server().verify("REGISTER", header, password_of);
    assert_eq!(result, expected.map(str::to_owned), "for {header:?}");
}

// RFC 7616 §3.9.1: Mufasa, "Circle of Life", SHA-256 and MD5.
const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
const RFC7616_SHA256_RESPONSE: &str = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1";
const RFC7616_MD5_RESPONSE: &str = "8ca523f5e9506fed4657c9700eebdbec";

fn rfc7616_challenge(algorithm: &str) -> String {
    format!(
        "Digest\n realm=\"http-auth@example.org\",\n qop=\"auth, auth-int\",\n algorithm={algorithm},\n \
         nonce=\"{RFC7616_NONCE}\",\n opaque=\"{RFC7616_OPAQUE}\""
    )
}

#[test]
fn rfc_7616_example_client_side() {
    for (algorithm, expected) in [
        ("SHA-256", RFC7616_SHA256_RESPONSE),
        ("MD5", RFC7616_MD5_RESPONSE),
    ] {
        let header = digest::client_response(
            &rfc7616_challenge(algorithm),
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            RFC7616_CNONCE,
            1,
        )
        .unwrap();
        assert_eq!(
            header,
            format!(
                "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", nonce=\"{RFC7616_NONCE}\", \
                 uri=\"/dir/index.html\", response=\"{expected}\", algorithm={algorithm}, \
                 cnonce=\"{RFC7616_CNONCE}\", qop=auth, nc=00000001, opaque=\"{RFC7616_OPAQUE}\""
            )
        );
    }
}

#[test]
fn rfc_7616_example_server_side_checks_the_response_before_the_nonce() {
    let server = DigestServer::new("http-auth@example.org", Duration::from_secs(300));
    for (algorithm, response) in [
        ("SHA-256", RFC7616_SHA256_RESPONSE),
        ("MD5", RFC7616_MD5_RESPONSE),
    ] {
        // The RFC's own Authorization header, as its §3.9.1 lays it out.
        let header = format!(
            "Digest username=\"Mufasa\",\n realm=\"http-auth@example.org\",\n uri=\"/dir/index.html\",\n \
             algorithm={algorithm},\n nonce=\"{RFC7616_NONCE}\",\n nc=00000001,\n \
             cnonce=\"{RFC7616_CNONCE}\",\n qop=auth,\n response=\"{response}\",\n opaque=\"{RFC7616_OPAQUE}\""
        );
        // The right password: the response checks out, but the nonce is not
        // one this server issued, so the client is told to retry (stale).
        let right = server.verify("GET", &header, |_| Some("Circle of Life".to_owned()));
        assert_eq!(right, Err(DigestError::Stale), "{algorithm}");
        let wrong = server.verify("GET", &header, |_| Some("Circle Of Life".to_owned()));
        assert_eq!(wrong, Err(DigestError::Wrong), "{algorithm}");
    }
}

#[test]
fn rfc_2617_example() {
    let challenge = "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
                     nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let header = digest::client_response(
        challenge,
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle Of Life",
        "0a4f113b",
        1,
    )
    .unwrap();
    assert_eq!(parameter(&header, "response"), "6629fae49393a05397450978507c4ef1");
    assert_eq!(parameter(&header, "opaque"), "5ccc069c403ebaf9f0171e9517f40e41");
    assert!(
        !header.contains("algorithm"),
        "the challenge named none, so none is echoed: {header}"
    );

    // The same without qop: the RFC 2069 form, where cnonce and nc are unused.
    let challenge = "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\"";
    let header = digest::client_response(
        challenge,
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle Of Life",
        "unused",
        7,
    )
    .unwrap();
    assert_eq!(parameter(&header, "response"), "670fd8c2df070c60b045671b8b24ff02");
    assert!(
        !header.contains("qop") && !header.contains("cnonce") && !header.contains("nc="),
        "{header}"
    );
}

#[test]
fn sess_algorithms_for_trunks() {
    // Expected values computed independently with Python's hashlib.
    for (algorithm, expected) in [
        ("MD5-sess", "1a23a0a0d6bbffad0abc9355c08a7a6a"),
        (
            "SHA-256-sess",
            "eb7c02bda549d07e6949439962d7882859a8609879d6c40dc9e91c0e4dd05ad2",
        ),
    ] {
        let challenge = format!(
            "Digest realm=\"trunk.example.net\", nonce=\"abc123nonce\", algorithm={algorithm}, qop=\"auth\""
        );
        let uri = "sip:+15551234@trunk.example.net";
        let header =
            digest::client_response(&challenge, "INVITE", uri, "alice", "s3cret", "0a4f113b", 2).unwrap();
        assert_eq!(parameter(&header, "response"), expected, "{algorithm}");
        assert_eq!(parameter(&header, "nc"), "00000002");
        assert_eq!(parameter(&header, "algorithm"), algorithm);
    }
}

#[test]
fn challenges_offer_sha256_then_md5_with_one_nonce() {
    let server = server();
    let (sha256, md5) = sha256_and_md5_challenges(&server);
    assert!(
        sha256.starts_with("Digest realm=\"example.com\", nonce=\""),
        "{sha256}"
    );
    assert_eq!(parameter(&sha256, "algorithm"), "SHA-256");
    assert_eq!(parameter(&md5, "algorithm"), "MD5");
    assert_eq!(parameter(&sha256, "qop"), "auth");
    assert_eq!(parameter(&sha256, "nonce"), parameter(&md5, "nonce"));
    assert!(!sha256.contains("stale"));
    assert!(server
        .challenges(true)
        .iter()
        .all(|challenge| challenge.ends_with(", stale=true")));
    // Every 401 gets a nonce of its own.
    assert_ne!(
        parameter(&sha256, "nonce"),
        parameter(&server.challenges(false)[0], "nonce")
    );
}

#[test]
fn round_trip_for_both_algorithms_with_and_without_qop() {
    let server = server();
    let (sha256, md5) = sha256_and_md5_challenges(&server);
    for challenge in [
        sha256.clone(),
        md5.clone(),
        sha256.replace(", qop=\"auth\"", ""),
        md5.replace(", qop=\"auth\"", ""),
    ] {
        for username in ["ivanov", "ivanov@example.com"] {
            let header = answer(&challenge, username, "Tr0ub4dor&3");
            assert_eq!(
                server.verify("REGISTER", &header, password_of),
                Ok(username.to_owned()),
                "{header}"
            );
        }
    }
    // Another server of the same realm in this process accepts the nonce too.
    let header = answer(&sha256, "ivanov", "Tr0ub4dor&3");
    let same_realm = DigestServer::new(REALM, Duration::from_secs(60));
    assert_eq!(
        same_realm.verify("REGISTER", &header, password_of),
        Ok("ivanov".to_owned())
    );
}

#[test]
fn wrong_password_unknown_user_and_wrong_realm() {
    let server = server();
    let (sha256, _) = sha256_and_md5_challenges(&server);
    check_verify(&answer(&sha256, "ivanov", "Tr0ub4dor&4"), Err(DigestError::Wrong));
    check_verify(
        &answer(&sha256, "petrov", "Tr0ub4dor&3"),
        Err(DigestError::UnknownUser),
    );

    let elsewhere = DigestServer::new("example.org", Duration::from_secs(300));
    let header = answer(&elsewhere.challenges(false)[0], "ivanov", "Tr0ub4dor&3");
    let asked = Cell::new(false);
    let result = server.verify("REGISTER", &header, |_| {
        asked.set(true);
        Some("Tr0ub4dor&3".to_owned())
    });
    assert_eq!(result, Err(DigestError::WrongRealm));
    assert!(!asked.get(), "no password is looked up for another realm");

    // That other realm's nonce, answered for our realm, is not ours: the
    // client knows the password, so it is told to retry.
    let borrowed = elsewhere.challenges(false)[0].replace("example.org", REALM);
    check_verify(
        &answer(&borrowed, "ivanov", "Tr0ub4dor&3"),
        Err(DigestError::Stale),
    );
}

#[test]
fn tampering_is_wrong() {
    let server = server();
    let (sha256, md5) = sha256_and_md5_challenges(&server);
    for challenge in [sha256, md5] {
        let header = answer(&challenge, "ivanov", "Tr0ub4dor&3");
        let nonce = parameter(&header, "nonce").to_owned();
        let flipped_nonce = format!(
            "{}{}",
            if nonce.starts_with('0') { '1' } else { '0' },
            &nonce[1..]
        );
        let response = parameter(&header, "response").to_owned();
        let flipped_response = format!(
            "{}{}",
            if response.starts_with('0') { '1' } else { '0' },
            &response[1..]
        );
        for tampered in [
            header.replace(&nonce, &flipped_nonce),
            header.replace(&response, &flipped_response),
            header.replace(URI, "sip:elsewhere.example.com"),
            header.replace("nc=00000001", "nc=00000002"),
            header.replace("8a3f2e1b", "8a3f2e1c"),
        ] {
            check_verify(&tampered, Err(DigestError::Wrong));
        }
        // Another method under the same credentials.
        assert_eq!(
            server.verify("INVITE", &header, password_of),
            Err(DigestError::Wrong)
        );
        // Truncated nonces and a forged one are not the server's either.
        check_verify(&header.replace(&nonce, &nonce[..10]), Err(DigestError::Wrong));
    }
}

#[test]
fn flexible_but_correct_header_syntax() {
    let server = server();
    let (sha256, _) = sha256_and_md5_challenges(&server);
    let header = answer(&sha256, "ivanov", "Tr0ub4dor&3");
    let response = parameter(&header, "response").to_owned();
    let variants = [
        header.replacen("Digest", "dIgEsT", 1),
        header
            .replace("username=", "UserName =")
            .replace("response=", "RESPONSE= "),
        header.replace(", ", ",\r\n\t"),
        header.replace(&format!("\"{response}\""), &response.to_uppercase()),
        header
            .replace("qop=auth", "qop=\"auth\"")
            .replace("nc=00000001", "nc=\"00000001\""),
        format!("{header},, "),
    ];
    for variant in variants {
        assert_eq!(
            server.verify("REGISTER", &variant, password_of),
            Ok("ivanov".to_owned()),
            "{variant}"
        );
    }
}

#[test]
fn quoted_values_with_commas_quotes_and_backslashes() {
    let server = server();
    let (sha256, _) = sha256_and_md5_challenges(&server);
    let awkward = "o\"brien, \\jr";
    let header = answer(&sha256, awkward, "pass, \"word\"");
    assert!(header.contains(r#"username="o\"brien, \\jr""#), "{header}");
    let result = server.verify("REGISTER", &header, |username| {
        (username == awkward).then(|| "pass, \"word\"".to_owned())
    });
    assert_eq!(result, Ok(awkward.to_owned()));
}

#[test]
fn broken_headers() {
    let server = server();
    let (sha256, _) = sha256_and_md5_challenges(&server);
    let good = answer(&sha256, "ivanov", "Tr0ub4dor&3");
    let malformed = |header: &str| match server.verify("REGISTER", header, password_of) {
        Err(DigestError::Malformed { .. }) => {}
        other => panic!("{header:?} gave {other:?}"),
    };
    let unsupported = |header: &str| match server.verify("REGISTER", header, password_of) {
        Err(DigestError::Unsupported { .. }) => {}
        other => panic!("{header:?} gave {other:?}"),
    };
    check_verify("", Err(DigestError::Missing));
    check_verify("   \r\n ", Err(DigestError::Missing));
    malformed("Digest");
    malformed("Basic aXZhbm92OnNlY3JldA==");
    malformed("Digestusername=\"ivanov\"");
    malformed("Digest username=\"ivanov");
    malformed("Digest username=\"ivanov\\");
    malformed("Digest username");
    malformed("Digest username=");
    malformed("Digest =x");
    malformed("Digest username=\"a\" realm=\"b\"");
    malformed(&good.replace("username=\"ivanov\"", "username=\"ivanov\", username=\"petrov\""));
    malformed(&good.replace("response=", "reply="));
    malformed(&good.replace("uri=", "url="));
    malformed(&good.replace("nc=00000001", "nc=1"));
    malformed(&good.replace("nc=00000001", "nc=0000000g"));
    malformed(&good.replace("cnonce=\"8a3f2e1b\", ", ""));
    malformed(&good.replace("cnonce=\"8a3f2e1b\"", "cnonce=\"\""));
    malformed(&format!(
        "{good}, padding=\"{}\"",
        "x".repeat(digest::MAX_HEADER_BYTES)
    ));
    malformed(&format!(
        "Digest {}",
        (0..40)
            .map(|index| format!("p{index}=1"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    unsupported(&good.replace("qop=auth", "qop=auth-int"));
    unsupported(&good.replace("algorithm=SHA-256", "algorithm=SHA-256-sess"));
    unsupported(&good.replace("algorithm=SHA-256", "algorithm=SHA-512-256"));
    unsupported(&format!("{good}, userhash=true"));
    unsupported(&good.replace("username=\"ivanov\"", "username*=UTF-8''ivanov"));
}

#[test]
fn client_refuses_what_it_cannot_answer() {
    let respond = |challenge: &str| digest::client_response(challenge, "INVITE", URI, "u", "p", "cn", 1);
    assert_eq!(respond(""), Err(DigestError::Missing));
    assert!(matches!(
        respond("Basic realm=\"x\""),
        Err(DigestError::Malformed { .. })
    ));
    assert!(matches!(
        respond("Digest nonce=\"n\""),
        Err(DigestError::Malformed { .. })
    ));
    assert!(matches!(
        respond("Digest realm=\"r\""),
        Err(DigestError::Malformed { .. })
    ));
    let unsupported = |challenge: &str| matches!(respond(challenge), Err(DigestError::Unsupported { .. }));
    assert!(unsupported("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""));
    assert!(unsupported(
        "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"
    ));
    assert!(unsupported("Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess"));
    // A CR or LF smuggled into a quoted value must not reach our request.
    assert!(matches!(
        respond("Digest realm=\"r\", nonce=\"n\r\nVia: x\""),
        Err(DigestError::Malformed { .. })
    ));
    // An empty cnonce cannot go with qop.
    let empty_cnonce = digest::client_response(
        "Digest realm=\"r\", nonce=\"n\", qop=auth",
        "INVITE",
        URI,
        "u",
        "p",
        "",
        1,
    );
    assert!(matches!(empty_cnonce, Err(DigestError::Malformed { .. })));
}

#[test]
fn random_cnonces_differ() {
    let first = digest::random_cnonce();
    assert_eq!(first.len(), 32);
    assert_ne!(first, digest::random_cnonce());
}

/// Headers built from Digest-like parts, to reach past the first checks.
fn digest_like_header() -> impl Strategy<Value = String> {
    let parameter = prop_oneof![
        Just("realm=\"example.com\"".to_owned()),
        Just("qop=auth".to_owned()),
        Just("nc=00000001".to_owned()),
        "(username|realm|nonce|uri|response|cnonce|opaque)=\"[ -~]{0,20}\"",
        "(algorithm|qop|nc|stale|userhash)=[!-~]{0,12}",
        "[A-Za-z*]{1,8} ?= ?[^,]{0,10}",
        "[ -~]{0,12}",
    ];
    (
        prop::sample::select(vec!["Digest", "digest", "Basic", ""]),
        proptest::collection::vec(parameter, 0..12),
    )
        .prop_map(|(scheme, parameters)| format!("{scheme} {}", parameters.join(", ")))
}

proptest! {
    #[test]
    fn verify_never_panics_on_any_text(header in ".{0,400}") {
        let _ = server().verify("REGISTER", &header, password_of);
        let _ = digest::client_response(&header, "INVITE", URI, "u", "p", "cn", 1);
    }

    #[test]
    fn verify_never_panics_on_digest_like_headers(header in digest_like_header()) {
        let result = server().verify("REGISTER", &header, |_| Some("p".to_owned()));
        // Only a real, freshly computed response can pass.
        prop_assert!(result.is_err(), "{header:?} was accepted");
        let _ = digest::client_response(&header, "INVITE", URI, "u", "p", "cn", 1);
    }

    #[test]
    fn any_printable_credentials_round_trip(
        username in "[^\\p{Cc}]{1,24}",
        password in ".{0,24}",
        cnonce in "[!-~&&[^\"]]{1,16}",
        nonce_count in 1u32..,
        use_md5 in any::<bool>(),
    ) {
        let server = server();
        let challenge = server.challenges(false).remove(usize::from(use_md5));
        let header = digest::client_response(&challenge, "INVITE", URI, &username, &password, &cnonce, nonce_count)
            .unwrap();
        let expected = Ok(username.clone());
        prop_assert_eq!(server.verify("INVITE", &header, |given| (given == username).then(|| password.clone())), expected);
    }
}
