//! CGPL.md §6.8 (the account and its environment), §6.9 (logs, status,
//! records, HTTP is in http_call.rs) and §6.10 (mail) on simulated calls.

mod common;

use std::sync::Arc;

use common::{config, prompt, run, Call, Recorder, Scratch};
use pbx_runtime::observe::Event;
use pbx_test_peers::SmtpServer;

/// An administrator of example.com, besides the usual accounts.
const BOSS: &str = "[domains.\"example.com\".accounts.boss]\ndomain_admin = true\n";

/// Runs stock `name.sppr` for `account`; returns what happened (checking
/// no error was raised).
fn run_for(name: &str, account: &str, program: &str, extra: &str, overrides: &[String]) -> Arc<Recorder> {
    let scratch = Scratch::new(name);
    scratch.write(&format!("stock/{name}.sppr"), program);
    scratch.write("stock/beep.wav", prompt(200));
    scratch.write("stock/russian/beep.wav", prompt(300));
    let events = run(config(&scratch, extra, overrides), Call::App(name, account), "");
    assert!(events.errors().is_empty(), "{:?}", events.errors());
    events
}

#[test]
fn the_account_its_domain_and_its_language() {
    let program = r#"
        entry Main is
          SysLog(MyEmail() + " in " + MyDomain());
          SysLog("language: " + ObjectToString(GetLanguage()));
          Void(AcceptCall());
          PlayFile("beep");
          SetLanguage("russian");
          SysLog("now: " + ObjectToString(GetLanguage()));
          PlayFile("beep");
          SetLanguage(null);
          PlayFile("beep");
        end;
    "#;
    let events = run_for("language", "petrov@example.com", program, "", &[]);
    assert_eq!(
        events.logs(),
        [
            "petrov@example.com in example.com",
            "language: #null#",
            "now: russian"
        ]
    );
    assert_eq!(events.played(), ["beep.wav", "russian/beep.wav", "beep.wav"]);
    let events = run_for("language", "ivanov@example.com", program, "", &[]);
    assert_eq!(events.logs()[1], "language: russian");
    assert_eq!(events.played()[0], "russian/beep.wav");
}

#[test]
fn preferences_of_ones_own_account_and_of_others_for_an_administrator() {
    let program = r#"
        entry Main is
          SysLog("zone: " + GetAccountPreferences("TimeZone"));
          Void(SetAccountPreferences("blue", "Colour"));
          SysLog("colour: " + GetAccountPreferences("Colour"));
          all = GetAccountPreferences("");
          SysLog("all has colour: " + (all.Colour == "blue" ? "yes" : "no"));
          SysLog("other: " + ObjectToString(GetAccountPreferences("~ivanov/Language")));
          SysLog("set ivanov's: " + ObjectToString(SetAccountPreferences("green", "~ivanov/Colour")));
          SysLog("ivanov's colour: " + ObjectToString(GetAccountPreferences("~ivanov/Colour")));
        end;
    "#;
    let events = run_for("prefs", "petrov@example.com", program, BOSS, &[]);
    assert_eq!(
        events.logs(),
        [
            "zone: Europe/Moscow",
            "colour: blue",
            "all has colour: yes",
            "other: \"no right to another account's preferences\"",
            "set ivanov's: \"no right to another account's preferences\"",
            "ivanov's colour: \"no right to another account's preferences\"",
        ]
    );
    let events = run_for("prefs", "boss@example.com", program, BOSS, &[]);
    assert_eq!(
        events.logs()[3..],
        ["other: russian", "set ivanov's: #null#", "ivanov's colour: green"]
    );
}

#[test]
fn impersonate_needs_the_right_and_switches_account_and_language() {
    let program = r#"
        entry Main is
          SysLog("as ivanov: " + ObjectToString(Impersonate("ivanov@example.com")));
          SysLog(MyEmail() + " " + ObjectToString(GetLanguage()));
        end;
    "#;
    let events = run_for("impersonate", "petrov@example.com", program, BOSS, &[]);
    assert_eq!(
        events.logs(),
        [
            "as ivanov: \"no right to impersonate another account\"",
            "petrov@example.com #null#"
        ]
    );
    for admin in ["boss@example.com", "pbx@example.com"] {
        let events = run_for("impersonate", admin, program, BOSS, &[]);
        assert_eq!(
            events.logs(),
            ["as ivanov: #null#", "ivanov@example.com russian"],
            "{admin}"
        );
    }
}

#[test]
fn route_address_tells_where_an_address_goes() {
    let events = run_for(
        "route",
        "petrov@example.com",
        r#"
        entry Main is
          SysLog(ObjectToString(RouteAddress("101", "signal")));
          SysLog(ObjectToString(RouteAddress("callback#ivanov", "signal")));
          SysLog(ObjectToString(RouteAddress("200", "signal")));
          SysLog(ObjectToString(RouteAddress("nobody@example.com", "signal")));
        end;
        "#,
        "",
        &[],
    );
    let logs = events.logs();
    assert_eq!(logs.len(), 4, "{logs:?}");
    for (line, wanted) in [
        (
            &logs[0],
            ["module = LOCAL;", "host = \"example.com\";", "object = ivanov;"],
        ),
        (
            &logs[1],
            [
                "module = PBX;",
                "host = \"example.com\";",
                "object = \"callback#ivanov\";",
            ],
        ),
        (
            &logs[2],
            [
                "module = PBX;",
                "host = \"example.com\";",
                "object = \"pbx#pbx\";",
            ],
        ),
    ] {
        for part in wanted {
            assert!(line.contains(part), "{line} lacks {part}");
        }
    }
    assert!(
        logs[3].starts_with('"') && logs[3].contains("nobody"),
        "{}",
        logs[3]
    );
}

#[test]
fn log_lines_call_records_tones_and_dtmf_sent_reach_the_observer() {
    let events = run_for(
        "records",
        "petrov@example.com",
        r#"
        entry Main is
          Void(AcceptCall());
          SetApplicationStatus("answered");
          StoreCDR("petrov answered");
          PlayTone(425, 1000);
          PlayTone(350, 500, 440);
          Void(SendDTMF("5"));
          SetLocalHold(true);
          SysLog("done");
        end;
        "#,
        "",
        &[],
    );
    let seen = events.events.lock().unwrap();
    let mut kinds = Vec::new();
    for event in seen.iter() {
        match event {
            Event::Cdr { text, .. } => kinds.push(format!("cdr {text}")),
            Event::Tone {
                frequencies, length, ..
            } => kinds.push(format!("tone {frequencies} {}ms", length.as_millis())),
            Event::DtmfSent { symbol, .. } => kinds.push(format!("sent {symbol}")),
            Event::Log { text, .. } => kinds.push(format!("log {text}")),
            _ => {}
        }
    }
    assert_eq!(
        kinds,
        [
            "cdr APP petrov answered",
            "tone 425 Hz 1000ms",
            "tone 350 Hz + 440 Hz 500ms",
            "sent 5",
            "log done"
        ]
    );
}

#[test]
fn the_application_status_is_readable_from_outside_while_the_task_runs() {
    let scratch = Scratch::new("status");
    scratch.write(
        "stock/status.sppr",
        "entry Main is\n  SetApplicationStatus(ToObject(\"{state=ringing;}\"));\n  Void(ReadInput(10));\nend;\n",
    );
    let (_, (status, program)) = common::world(config(&scratch, "", &[]), async |runtime, _| {
        let petrov = runtime.directory.find("petrov", "example.com").unwrap();
        let task = runtime.start_app("status", petrov, None, Vec::new()).unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let summary = runtime.registry.summary(task).unwrap();
        runtime.registry.idle().await;
        assert!(runtime.registry.summary(task).is_none());
        (summary.status, summary.program)
    });
    assert_eq!(program, "status.sppr");
    assert_eq!(pbx_lang::value::Portable::str("ringing"), {
        let pbx_lang::value::Portable::Dict(entries, _) = status else {
            panic!("{status:?}")
        };
        entries[0].1.clone()
    });
}

#[test]
fn submit_email_sends_text_and_a_recording_as_an_attachment() {
    let Some(smtp) = SmtpServer::start() else { return };
    let events = run_for(
        "mail",
        "petrov@example.com",
        r#"
        entry Main is
          Void(AcceptCall());
          voice = Record(2);
          headers = NewDictionary();
          headers.From = "pbx@example.com";
          headers.To = ToObject("(\"ivanov@example.com\", \"operator@example.com\")");
          headers.Subject = "Voice message";
          headers.("X-Caller") = "petrov";
          content = NewArray();
          content[0] = "You have a voice message.";
          content[1] = voice;
          SysLog("submit: " + ObjectToString(SubmitEMail(headers, content)));
          SysLog("no recipient: " + ObjectToString(SendEMail("pbx@example.com", "x", null, null, "")));
          SysLog("bad address: " + ObjectToString(SendEMail("pbx@example.com", "x", "not an address", null, "")));
        end;
        "#,
        "",
        &[format!("smtp.relay={}", smtp.relay())],
    );
    let logs = events.logs();
    assert_eq!(logs[0], "submit: #null#");
    assert!(logs[1].starts_with("no recipient: \""), "{logs:?}");
    assert!(logs[2].contains("is not an e-mail address"), "{logs:?}");
    let messages = smtp.messages(1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    for part in [
        "From: pbx@example.com",
        "To: ivanov@example.com, operator@example.com",
        "Subject: Voice message",
        "X-Caller: petrov",
        "Content-Type: multipart/mixed",
        "You have a voice message.",
        "Content-Disposition: attachment; filename=\"message.wav\"",
        "Content-Type: audio/wav",
        "Content-Transfer-Encoding: base64",
    ] {
        assert!(message.contains(part), "no `{part}` in:\n{message}");
    }
    // The recording itself: a WAV file, base64 ("RIFF" is "UklGR").
    assert!(message.contains("UklGR"), "{message}");
}

/// `DoBalance`: a call charged per minute until the balance runs out
/// (the charge that would go below zero refused), the history it left,
/// reservations, and the rights: a task on its own balances, the `pbx`
/// account on its domain's, nobody else on another's.
#[test]
fn do_balance_charges_a_call_per_minute_until_the_balance_runs_out() {
    let program = r#"
        entry Main is
          Void(AcceptCall());
          SysLog("credit: " + ObjectToString(Balance("credit", "1.20", null)));
          minutes = 0;
          loop
            result = Balance("charge", 500, null);
            exitif IsString(result);
            minutes = minutes + 1;
            SysLog("minute " + String(minutes) + ": " + String(result.amount) + " left");
            Void(ReadInput(60));
          end loop;
          SysLog("refused: " + result);
          history = Balance("history", null, null).history;
          SysLog(String(Length(history)) + " entries, the latest a " + history[0].op + " " +
                 String(history[0].time - history[1].time) + " s after the one before");
          Disconnect();
        end;

        function Balance(op, amount, reservation) is
          parameters = NewDictionary();
          parameters.op = op;
          parameters.amount = amount;
          parameters.reserve = reservation;
          parameters.description = "call minute";
          return DoBalance(parameters, null);
        end;
    "#;
    let events = run_for("meter", "petrov@example.com", program, "", &[]);
    assert_eq!(
        events.logs(),
        [
            "credit: {balance = main; amount = #1200; reserved = #0;}",
            "minute 1: 700 left",
            "minute 2: 200 left",
            "refused: insufficient funds: 0.20 available",
            "3 entries, the latest a charge 60 s after the one before",
        ]
    );

    let program = r#"
        entry Main is
          SysLog("petrov's: " + ObjectToString(Do("read", null, null, "petrov")));
          Void(Do("credit", 5000, null, null));
          reserved = Do("reserve", "2.5", null, null);
          SysLog("reserved " + reserved.reserve + ": " + String(reserved.amount) + " free, " + String(reserved.reserved) + " held");
          SysLog("too much: " + Do("charge", 3000, reserved.reserve, null));
          more = Do("reserve", 1000, reserved.reserve, null);
          SysLog("extended: " + String(more.reserved) + " held");
          charged = Do("charge", 2000, reserved.reserve, null);
          SysLog("charged: " + String(charged.amount) + " free, " + String(charged.reserved) + " held");
          released = Do("release", null, reserved.reserve, null);
          SysLog("released: " + String(released.amount) + " free, " + String(released.reserved) + " held");
          SysLog("again: " + Do("release", null, reserved.reserve, null));
          SysLog("bad: " + Do("charge", "1.0005", null, null) + "; " + Do("fly", null, null, null));
          SysLog("balances: " + String(Length(Do("list", null, null, null).balances)));
        end;

        function Do(op, amount, reservation, account) is
          parameters = NewDictionary();
          parameters.op = op;
          parameters.amount = amount;
          parameters.reserve = reservation;
          return DoBalance(parameters, account);
        end;
    "#;
    let events = run_for("reserve", "ivanov@example.com", program, "", &[]);
    assert_eq!(
        events.logs(),
        [
            "petrov's: \"no right to another account's balances\"",
            "reserved 2: 2500 free, 2500 held",
            "too much: the charge is more than the 2.50 reserved",
            "extended: 3500 held",
            "charged: 1500 free, 1500 held",
            "released: 3000 free, 0 held",
            "again: no such reservation",
            "bad: bad amount: 1.0005; unknown op fly",
            "balances: 1",
        ]
    );
    let events = run_for("reserve", "pbx@example.com", program, "", &[]);
    assert_eq!(
        events.logs()[0],
        "petrov's: {balance = main; amount = #0; reserved = #0;}"
    );
}
