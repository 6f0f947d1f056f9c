//! Parlay X Payment and Account Management (issue 13 item 5) with a real
//! SOAP client (zeep, reading the WSDLs pbxd serves, with HTTP Digest)
//! and curl:
//!
//! - the domain's administrator tops ivanov up; ivanov charges, reserves,
//!   charges the reservation, extends and releases it; a charge beyond
//!   the balance is refused and changes nothing; a reference is taken
//!   once; giving money is the administrator's alone; petrov may not
//!   touch ivanov's balances; named balances are apart; the history
//!   lists every change; balances and an open reservation outlast a
//!   restart;
//! - the same as JSON, and bad requests (malformed XML, a DTD, an
//!   unknown operation, one of the other service, bad amounts, bad JSON)
//!   answered with faults or 4xx, the balance and history unchanged.

// Helpers are test code: a panic is how a test fails.
#![allow(clippy::unwrap_used)]

mod common;

use common::{curl, Pbxd};
use pbx_test_peers::SoapClient;
use serde_json::{json, Value};

/// An administrator of example.com besides the demo's accounts.
fn start(name: &str) -> Pbxd {
    Pbxd::start(
        name,
        &[
            "domains.\"example.com\".accounts.boss.password=\"boss-pw\"".to_string(),
            "domains.\"example.com\".accounts.boss.domain_admin=true".to_string(),
        ],
    )
}

/// Zeep clients of both services for one user.
struct Clients {
    payment: SoapClient,
    accounts: SoapClient,
}

fn clients(pbxd: &Pbxd, user: &str, password: &str) -> Option<Clients> {
    let wsdl = |service: &str| format!("http://{}/ParlayX/{service}?wsdl", pbxd.http);
    Some(Clients {
        payment: SoapClient::start(&wsdl("Payment"), user, password)?,
        accounts: SoapClient::start(&wsdl("AccountManagement"), user, password)?,
    })
}

fn message_id(answer: &Value) -> Option<&str> {
    answer["fault"]["messageId"].as_str()
}

fn succeeded(answer: &Value) {
    assert!(answer.get("result").is_some(), "{answer}");
}

fn charge(amount: &str, description: &str) -> Value {
    json!({ "description": description, "currency": "RUB", "amount": amount })
}

/// `who`'s view of `account`'s balance (`main` unless `balance` names
/// one), or the fault.
fn balance_of(client: &mut Clients, account: &str, balance: Option<&str>) -> Value {
    let mut arguments = json!({ "endUserIdentifier": account });
    if let Some(balance) = balance {
        arguments["balanceType"] = balance.into();
    }
    client.accounts.call("getBalance", arguments)
}

fn available(client: &mut Clients, account: &str) -> f64 {
    let answer = balance_of(client, account, None);
    answer["result"].as_f64().unwrap_or_else(|| panic!("{answer}"))
}

#[test]
fn charges_refunds_and_reservations_over_soap_outlast_a_restart() {
    let pbxd = start("parlay-payment");
    let Some(mut boss) = clients(&pbxd, "boss@example.com", "boss-pw") else {
        return;
    };
    let mut ivanov = clients(&pbxd, "ivanov@example.com", "ivanov-demo").unwrap();
    let mut petrov = clients(&pbxd, "petrov@example.com", "petrov-demo").unwrap();
    let ivanov_uri = "sip:ivanov@example.com";

    // The administrator tops ivanov up; ivanov may not do it himself.
    succeeded(&boss.accounts.call(
        "balanceUpdate",
        json!({ "endUserIdentifier": ivanov_uri, "referenceCode": "top-up-1", "amount": "100.00" }),
    ));
    let own = ivanov.accounts.call(
        "balanceUpdate",
        json!({ "endUserIdentifier": ivanov_uri, "referenceCode": "mine", "amount": "1000" }),
    );
    assert_eq!(message_id(&own), Some("POL0001"), "{own}");
    assert_eq!(available(&mut ivanov, ivanov_uri), 100.0);

    // A charge; the same request again is refused, not charged twice.
    let call = json!({
        "endUserIdentifier": ivanov_uri,
        "charge": charge("1.50", "a call to Moscow"),
        "referenceCode": "call-1",
    });
    succeeded(&ivanov.payment.call("chargeAmount", call.clone()));
    let again = ivanov.payment.call("chargeAmount", call);
    assert_eq!(message_id(&again), Some("SVC0002"), "{again}");
    assert_eq!(again["fault"]["variables"][0], "referenceCode", "{again}");
    assert_eq!(available(&mut ivanov, "ivanov@example.com"), 98.5);

    // A refund: the administrator's, not ivanov's.
    let refund = json!({
        "endUserIdentifier": "tel:201",
        "charge": charge("0.50", "dropped call"),
        "referenceCode": "refund-1",
    });
    assert_eq!(
        message_id(&ivanov.payment.call("refundAmount", refund.clone())),
        Some("POL0001")
    );
    succeeded(&boss.payment.call("refundAmount", refund));
    assert_eq!(available(&mut ivanov, ivanov_uri), 99.0);

    // A reservation: charged in part, extended, released.
    let reserved = ivanov.payment.call(
        "reserveAmount",
        json!({ "endUserIdentifier": ivanov_uri, "charge": charge("10", "a long call") }),
    );
    let id = reserved["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{reserved}"))
        .to_string();
    assert_eq!(available(&mut ivanov, ivanov_uri), 89.0);
    succeeded(&ivanov.payment.call(
        "chargeReservation",
        json!({ "reservationIdentifier": id, "charge": charge("4", "first minutes"), "referenceCode": "call-2" }),
    ));
    let beyond = ivanov.payment.call(
        "chargeReservation",
        json!({ "reservationIdentifier": id, "charge": charge("7", "too much"), "referenceCode": "call-3" }),
    );
    assert_eq!(message_id(&beyond), Some("SVC0270"), "{beyond}");
    succeeded(&ivanov.payment.call(
        "reserveAdditionalAmount",
        json!({ "reservationIdentifier": id, "charge": charge("2", "more minutes") }),
    ));
    assert_eq!(available(&mut ivanov, ivanov_uri), 87.0);
    // petrov may neither read nor touch ivanov's balance or reservation.
    assert_eq!(
        message_id(&balance_of(&mut petrov, ivanov_uri, None)),
        Some("POL0001")
    );
    let theft = petrov.payment.call(
        "chargeAmount",
        json!({ "endUserIdentifier": ivanov_uri, "charge": charge("1", "theft"), "referenceCode": "t" }),
    );
    assert_eq!(message_id(&theft), Some("POL0001"), "{theft}");
    assert_eq!(
        message_id(
            &petrov
                .payment
                .call("releaseReservation", json!({ "reservationIdentifier": id }))
        ),
        Some("POL0001")
    );
    succeeded(
        &ivanov
            .payment
            .call("releaseReservation", json!({ "reservationIdentifier": id })),
    );
    assert_eq!(available(&mut ivanov, ivanov_uri), 95.0);
    let gone = ivanov
        .payment
        .call("releaseReservation", json!({ "reservationIdentifier": id }));
    assert_eq!(message_id(&gone), Some("SVC0002"), "{gone}");

    // More than there is: refused, nothing changed; petrov has nothing.
    let overdraft = ivanov.payment.call(
        "chargeAmount",
        json!({ "endUserIdentifier": ivanov_uri, "charge": charge("95.01", "too much"), "referenceCode": "call-4" }),
    );
    assert_eq!(message_id(&overdraft), Some("SVC0270"), "{overdraft}");
    assert!(
        overdraft["fault"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("95.00 available"),
        "{overdraft}"
    );
    assert_eq!(available(&mut ivanov, ivanov_uri), 95.0);
    let nothing = petrov.payment.call(
        "reserveAmount",
        json!({ "endUserIdentifier": "petrov@example.com", "charge": charge("0.01", "a call") }),
    );
    assert_eq!(message_id(&nothing), Some("SVC0270"), "{nothing}");

    // A balance of another name is apart.
    succeeded(&boss.accounts.call(
        "balanceUpdate",
        json!({ "endUserIdentifier": ivanov_uri, "referenceCode": "bonus-1", "amount": "5", "balanceType": "bonus" }),
    ));
    assert_eq!(balance_of(&mut ivanov, ivanov_uri, Some("bonus"))["result"], 5.0);
    assert_eq!(available(&mut ivanov, ivanov_uri), 95.0);

    // The history: every change, latest first.
    let history = ivanov.accounts.call(
        "getHistory",
        json!({ "endUserIdentifier": ivanov_uri, "maxEntries": 20 }),
    );
    let entries = history["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{history}"));
    let kinds: Vec<&str> = entries
        .iter()
        .map(|entry| entry["transactionType"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        [
            "credit",
            "release",
            "reserve",
            "chargeReservation",
            "reserve",
            "credit",
            "charge",
            "credit"
        ],
        "{history}"
    );
    assert_eq!(entries[6]["transactionDetails"], "a call to Moscow");
    assert_eq!(entries[6]["amount"], 1.5);
    assert_eq!(entries[6]["balance"], 98.5);
    assert_eq!(entries[6]["currency"], "RUB");
    assert_eq!(entries[6]["referenceCode"], "call-1");
    assert_eq!(entries[0]["balanceType"], "bonus");
    let main_only = ivanov.accounts.call(
        "getHistory",
        json!({ "endUserIdentifier": ivanov_uri, "maxEntries": 2, "balanceType": "main" }),
    );
    let kinds: Vec<&str> = main_only["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{main_only}"))
        .iter()
        .map(|entry| entry["transactionType"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["release", "reserve"]);

    // A reservation left open, then a restart: all of it is still there.
    let open = ivanov.payment.call(
        "reserveAmount",
        json!({ "endUserIdentifier": ivanov_uri, "charge": charge("5", "across a restart") }),
    );
    let open = open["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{open}"))
        .to_string();
    drop((boss, ivanov, petrov));
    let pbxd = pbxd.restart();
    let mut ivanov = clients(&pbxd, "ivanov@example.com", "ivanov-demo").unwrap();
    assert_eq!(available(&mut ivanov, ivanov_uri), 90.0);
    assert_eq!(balance_of(&mut ivanov, ivanov_uri, Some("bonus"))["result"], 5.0);
    succeeded(
        &ivanov
            .payment
            .call("releaseReservation", json!({ "reservationIdentifier": open })),
    );
    assert_eq!(available(&mut ivanov, ivanov_uri), 95.0);
    let history = ivanov.accounts.call(
        "getHistory",
        json!({ "endUserIdentifier": ivanov_uri, "maxEntries": 100 }),
    );
    assert_eq!(history["result"].as_array().map(Vec::len), Some(10), "{history}");
    // A reference is still taken once after the restart.
    let again = ivanov.payment.call(
        "chargeAmount",
        json!({ "endUserIdentifier": ivanov_uri, "charge": charge("1.50", "a call"), "referenceCode": "call-1" }),
    );
    assert_eq!(message_id(&again), Some("SVC0002"), "{again}");
}

#[test]
fn json_and_bad_requests_are_answered_and_change_nothing() {
    let Some(curl_program) = pbx_test_peers::curl() else {
        return;
    };
    let pbxd = start("parlay-payment-json");
    let post = |user: &str, path: &str, kind: &str, body: &str| {
        let arguments = ["--digest", "-u", user, "-H", kind, "--data-binary", body];
        curl(&curl_program, &pbxd, &arguments, path)
    };
    let boss = |operation: &str, body: &str| {
        post(
            "boss@example.com:boss-pw",
            &format!("/api/payment/{operation}"),
            "Content-Type: application/json",
            body,
        )
    };
    let petrov = |operation: &str, body: &str| {
        post(
            "petrov@example.com:petrov-demo",
            &format!("/api/payment/{operation}"),
            "Content-Type: application/json",
            body,
        )
    };
    let (status, topped) = boss(
        "balanceUpdate",
        r#"{"endUserIdentifier": "petrov@example.com", "amount": "20", "referenceCode": "t1"}"#,
    );
    assert_eq!(status, 200, "{topped}");
    assert!(topped.contains(r#""balance":"20.00""#), "{topped}");
    let (status, charged) = petrov(
        "chargeAmount",
        r#"{"endUserIdentifier": "tel:202", "charge": {"description": "a call", "amount": 2.5}, "referenceCode": "j1"}"#,
    );
    assert_eq!(status, 200, "{charged}");
    let charged: Value = serde_json::from_str(&charged).unwrap();
    assert_eq!(charged["balance"], "17.50");
    assert_eq!(charged["balanceType"], "main");

    // Refused: more than there is (409), another's balance (403), no
    // credentials (401), parts missing or bad (400), no such operation
    // (404), not JSON (400).
    let (status, overdraft) = petrov(
        "chargeAmount",
        r#"{"endUserIdentifier": "petrov", "charge": {"description": "x", "amount": "17.501"}, "referenceCode": "j2"}"#,
    );
    assert_eq!(status, 409, "{overdraft}");
    assert!(overdraft.contains("SVC0270"), "{overdraft}");
    let (status, _) = post(
        "ivanov@example.com:ivanov-demo",
        "/api/payment/getBalance",
        "Content-Type: application/json",
        r#"{"endUserIdentifier": "petrov@example.com"}"#,
    );
    assert_eq!(status, 403);
    let (status, _) = curl(
        &curl_program,
        &pbxd,
        &["-H", "Content-Type: application/json", "--data-binary", "{}"],
        "/api/payment/getBalance",
    );
    assert_eq!(status, 401);
    for (operation, body, part) in [
        (
            "chargeAmount",
            r#"{"endUserIdentifier": "petrov", "referenceCode": "j3"}"#,
            "charge",
        ),
        (
            "chargeAmount",
            r#"{"endUserIdentifier": "petrov", "charge": {"amount": "-1"}, "referenceCode": "j3"}"#,
            "charge.amount",
        ),
        (
            "chargeAmount",
            r#"{"endUserIdentifier": "petrov", "charge": {"amount": "1e3"}, "referenceCode": "j3"}"#,
            "charge.amount",
        ),
        (
            "chargeAmount",
            r#"{"endUserIdentifier": "nobody", "charge": {"amount": "1"}, "referenceCode": "j3"}"#,
            "endUserIdentifier",
        ),
        (
            "releaseReservation",
            r#"{"reservationIdentifier": "x1"}"#,
            "reservationIdentifier",
        ),
        (
            "getHistory",
            r#"{"endUserIdentifier": "petrov", "date": "someday"}"#,
            "date",
        ),
    ] {
        let (status, refused) = petrov(operation, body);
        assert_eq!(status, 400, "{body}: {refused}");
        let refused: Value = serde_json::from_str(&refused).unwrap();
        assert_eq!(refused["messageId"], "SVC0002", "{body}: {refused}");
        assert_eq!(refused["variables"][0], part, "{body}: {refused}");
    }
    assert_eq!(petrov("launchRocket", "{}").0, 404);
    assert_eq!(petrov("chargeAmount", "{not json").0, 400);

    // SOAP that is not, or asks the wrong service: faults.
    let soap = |service: &str, body: &str| {
        post(
            "petrov@example.com:petrov-demo",
            &format!("/ParlayX/{service}"),
            "Content-Type: text/xml",
            body,
        )
    };
    let charge_xml = |amount: &str| {
        format!(
            "<Envelope><Body><chargeAmount><endUserIdentifier>petrov</endUserIdentifier><charge><description>x</description><amount>{amount}</amount></charge><referenceCode>x-{amount}</referenceCode></chargeAmount></Body></Envelope>"
        )
    };
    for (service, body, message) in [
        ("Payment", "<Envelope><Body><chargeAmount>".to_string(), "SVC0001"),
        (
            "Payment",
            r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Envelope><Body><chargeAmount><endUserIdentifier>&e;</endUserIdentifier></chargeAmount></Body></Envelope>"#.to_string(),
            "SVC0001",
        ),
        ("Payment", "<Envelope><Body><launchRocket/></Body></Envelope>".to_string(), "SVC0001"),
        (
            "Payment",
            "<Envelope><Body><getBalance><endUserIdentifier>petrov</endUserIdentifier></getBalance></Body></Envelope>".to_string(),
            "SVC0001",
        ),
        ("AccountManagement", charge_xml("1"), "SVC0001"),
        ("Payment", charge_xml("1.0001"), "SVC0002"),
        ("Payment", charge_xml("0"), "SVC0002"),
        ("Payment", charge_xml("ten"), "SVC0002"),
    ] {
        let (status, fault) = soap(service, &body);
        assert_eq!(status, 500, "{body}: {fault}");
        assert!(
            fault.contains("<soapenv:Fault>") && fault.contains(message),
            "{body}: {fault}"
        );
        assert!(!fault.contains("root:"), "an entity was expanded: {fault}");
    }

    // Nothing of that changed petrov's balance or history.
    let (status, balance) = petrov("getBalance", r#"{"endUserIdentifier": "petrov"}"#);
    assert_eq!(status, 200, "{balance}");
    assert!(balance.contains(r#""balance":"17.50""#), "{balance}");
    let (status, history) = petrov("getHistory", r#"{"endUserIdentifier": "petrov"}"#);
    assert_eq!(status, 200, "{history}");
    let history: Value = serde_json::from_str(&history).unwrap();
    let kinds: Vec<&str> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["transactionType"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["charge", "credit"], "{history}");
    assert_eq!(history["history"][1]["by"], "boss@example.com");

    // The descriptions name where they are served.
    let (status, description) = curl(&curl_program, &pbxd, &[], "/ParlayX/Payment?wsdl");
    assert_eq!(status, 200);
    assert!(
        description.contains(&format!("location=\"http://{}/ParlayX/Payment\"", pbxd.http)),
        "{description}"
    );
    let (status, description) = curl(&curl_program, &pbxd, &[], "/ParlayX/AccountManagement?wsdl");
    assert_eq!(status, 200);
    assert!(description.contains("getHistory"));
}
