//! CGPL.md §7.2 (call signalling) and §7.4 (bridges, mixers, transfers) on
//! simulated calls: each operation of the call abstraction, shown by a
//! small program and the simulated phones' behaviour.

mod common;

use common::{config, prompt, run, Call, Recorder, Scratch};

/// Runs stock `name.sppr` (`program`) on a call to petrov, with phones
/// configured as `phones` (`operator = "answer after 2s"`…).
fn run_program(name: &str, program: &str, phones: &str) -> std::sync::Arc<Recorder> {
    let scratch = Scratch::new(name);
    scratch.write(&format!("stock/{name}.sppr"), program);
    scratch.write("stock/music.wav", prompt(30_000));
    let extra = format!("[simulation]\nphones = {{ {phones} }}\n");
    let events = run(
        config(&scratch, &extra, &[]),
        Call::App(name, "petrov@example.com"),
        "",
    );
    assert!(events.errors().is_empty(), "{:?}", events.errors());
    events
}

#[test]
fn a_forked_target_that_answers_first_takes_the_call() {
    let events = run_program(
        "fork",
        r#"
        entry Main is
          ForkCall("operator");
          SysLog(ObjectToString(ProvisionCall(true, false)));
          PlayFile("music");
          SysLog("play completed: " + (IsPlayCompleted() ? "yes" : "no"));
          input = ReadInput(10);
          SysLog(IsDisconnectEvent(input) ? "disconnect event" : ObjectToString(input));
          SysLog("connected: " + (IsHalfConnected() ? "yes" : "no"));
          SysLog("accept: " + ObjectToString(AcceptCall()));
        end;
        "#,
        r#"operator = "answer after 4s""#,
    );
    assert_eq!(
        events.logs(),
        [
            "#null#",
            "play completed: no",
            "disconnect event",
            "connected: no",
            "accept: \"there is no call to accept\"",
        ]
    );
    let calls = events.calls();
    assert!(calls.contains(&"forked to operator".to_string()), "{calls:?}");
    assert!(
        calls.contains(&"operator@example.com answered the forked call".to_string()),
        "{calls:?}"
    );
}

#[test]
fn a_number_the_class_of_service_refuses_is_not_forked_to() {
    // petrov's class of service is internal: no outside numbers.
    let events = run_program(
        "fork-refused",
        r#"
        entry Main is
          ForkCall(ToObject("(5551234, operator)"));
          input = ReadInput(10);
          SysLog(IsDisconnectEvent(input) ? "disconnect event" : ObjectToString(input));
        end;
        "#,
        r#"operator = "answer after 2s", "5551234" = "answer after 1s""#,
    );
    assert_eq!(events.logs(), ["disconnect event"]);
    let calls = events.calls();
    assert!(
        calls.contains(
            &"not forked to 5551234: 403 Forbidden (5551234 is not allowed by the class of service internal)"
                .to_string()
        ),
        "{calls:?}"
    );
    assert!(
        calls.contains(&"operator@example.com answered the forked call".to_string()),
        "{calls:?}"
    );
    assert!(
        !events.routing().iter().any(|note| note.contains("5551234")),
        "{:?}",
        events.routing()
    );
}

#[test]
fn answering_first_stops_the_forked_branches() {
    let events = run_program(
        "fork-first",
        r#"
        entry Main is
          ForkCall(ToObject("(operator, ivanov)"));
          SysLog("accept: " + ObjectToString(AcceptCall()));
          SysLog("input: " + ObjectToString(ReadInput(10)));
          SysLog("connected: " + (IsConnected() ? "yes" : "no"));
        end;
        "#,
        r#"operator = "answer after 4s", ivanov = "answer after 2s""#,
    );
    assert_eq!(
        events.logs(),
        ["accept: #null#", "input: #null#", "connected: yes"]
    );
}

#[test]
fn reject_and_redirect_end_the_pending_call() {
    let events = run_program(
        "refuse",
        r#"
        entry Main is
          RejectCall(486);
          SysLog("after reject: " + (IsHalfConnected() ? "half" : "disconnected"));
        end;
        "#,
        "",
    );
    assert_eq!(events.logs(), ["after reject: disconnected"]);
    assert_eq!(events.calls()[1..], ["rejected 486 Busy Here"]);

    let events = run_program(
        "redirect",
        r#"
        entry Main is
          RedirectCall(ToObject("(\"sip:101@example.com\", \"sip:102@example.com\")"));
        end;
        "#,
        "",
    );
    assert_eq!(
        events.calls()[1..],
        ["redirected to sip:101@example.com, sip:102@example.com"]
    );
}

#[test]
fn a_blind_transfer_hands_the_peer_over_when_the_target_answers() {
    let events = run_program(
        "blind",
        r#"
        entry Main is
          Void(AcceptCall());
          SysLog("supported: " + (TransferSupported() ? "yes" : "no"));
          SysLog("to busy: " + ObjectToString(TransferCall("petrov")));
          SysLog("still connected: " + (IsConnected() ? "yes" : "no"));
          SysLog("to operator: " + ObjectToString(TransferCall("operator")));
          SysLog("connected after: " + (IsConnected() ? "yes" : "no"));
          SysLog("again: " + ObjectToString(TransferCall("operator")));
        end;
        "#,
        r#"operator = "answer after 3s", petrov = "busy""#,
    );
    assert_eq!(
        events.logs(),
        [
            "supported: yes",
            "to busy: \"486 Busy Here\"",
            "still connected: yes",
            "to operator: #null#",
            "connected after: no",
            "again: \"this task has no connected call to transfer\"",
        ]
    );
    let calls = events.calls();
    assert!(
        calls.contains(&"the peer was transferred to operator".to_string()),
        "{calls:?}"
    );
    // Transferred, the call is not pbxd's to hang up.
    assert!(!calls.contains(&"hung up".to_string()), "{calls:?}");
}

#[test]
fn an_attended_transfer_joins_two_tasks_peers() {
    let events = run_program(
        "attended",
        r#"
        entry Main is
          Void(AcceptCall());
          consult = spawn Consult(ThisTask());
          loop
            input = ReadInput(60);
            exitif IsStartTransferEvent(input);
          end loop;
          SysLog("accept: " + ObjectToString(AcceptTransfer(input)));
          SysLog("caller side connected: " + (IsConnected() ? "yes" : "no"));
        end;

        entry Consult is
          Void(StartCall("operator"));
          loop
            input = ReadInput(30);
            exitif IsCallCompletedEvent(input);
          end loop;
          SysLog("not a task: " + ObjectToString(StartTransfer(NewArray())));
          SysLog("transfer: " + ObjectToString(StartTransfer(Vars().startParameter[0])));
          SysLog("operator side connected: " + (IsConnected() ? "yes" : "no"));
        end;
        "#,
        r#"operator = "answer after 2s""#,
    );
    let logs = events.logs();
    assert_eq!(logs.len(), 5, "{logs:?}");
    assert!(
        logs.contains(&"not a task: \"the argument must be a task handle\"".to_string()),
        "{logs:?}"
    );
    assert!(logs.contains(&"accept: #null#".to_string()), "{logs:?}");
    assert!(logs.contains(&"transfer: #null#".to_string()), "{logs:?}");
    assert!(
        logs.contains(&"caller side connected: no".to_string()),
        "{logs:?}"
    );
    assert!(
        logs.contains(&"operator side connected: no".to_string()),
        "{logs:?}"
    );
}

#[test]
fn a_rejected_transfer_keeps_both_calls() {
    let events = run_program(
        "transfer-refused",
        r#"
        entry Main is
          Void(AcceptCall());
          helper = spawn Helper(ThisTask());
          loop
            input = ReadInput(60);
            exitif IsStartTransferEvent(input);
          end loop;
          SysLog("reject: " + ObjectToString(RejectTransfer(input, "not now")));
          Void(ReadInput(5));
          SysLog("caller side connected: " + (IsConnected() ? "yes" : "no"));
        end;

        entry Helper is
          Void(StartCall("operator"));
          loop
            input = ReadInput(30);
            exitif IsCallCompletedEvent(input);
          end loop;
          SysLog("transfer: " + ObjectToString(StartTransfer(Vars().startParameter[0])));
          SysLog("operator side connected: " + (IsConnected() ? "yes" : "no"));
        end;
        "#,
        r#"operator = "answer after 1s""#,
    );
    assert_eq!(
        events.logs(),
        [
            "reject: #null#",
            "transfer: \"not now\"",
            "operator side connected: yes",
            "caller side connected: yes",
        ]
    );
}

#[test]
fn a_conference_mixer_attaches_mutes_and_detaches() {
    let events = run_program(
        "mixer",
        r#"
        entry Main is
          Void(AcceptCall());
          first = spawn Participant(ThisTask(), "operator");
          second = spawn Participant(ThisTask(), "ivanov");
          count = 0;
          loop
            input = ReadInput(60);
            if IsStartBridgeEvent(input) then
              SysLog("attach: " + ObjectToString(AttachMixer(input)));
              count += 1;
            end if;
            exitif count == 2;
          end loop;
          SysLog("attached: " + ObjectToString(Length(MixerAttached())));
          MuteMixer(first, true);
          MuteMixer(second, "hearsSpecial");
          // Not attached: nothing happens.
          MuteMixer(ThisTask(), true);
          SysLog("detach: " + ObjectToString(DetachMixer(first)));
          SysLog("attached after detach: " + ObjectToString(Length(MixerAttached())));
          Void(ReadInput(3));
        end;

        entry Participant is
          Void(StartCall(Vars().startParameter[1]));
          loop
            input = ReadInput(30);
            exitif IsCallCompletedEvent(input);
          end loop;
          Void(StartBridge(Vars().startParameter[0]));
          loop
            input = ReadInput(60);
            exitif IsBreakBridgeEvent(input);
          end loop;
          SysLog(Vars().startParameter[1] + " left the conference");
        end;
        "#,
        r#"operator = "answer after 1s", ivanov = "answer after 2s""#,
    );
    assert_eq!(
        events.logs(),
        [
            "attach: #null#",
            "attach: #null#",
            "attached: #2",
            "detach: #null#",
            "attached after detach: #1",
            "operator left the conference",
            // The mixer's task ends: the rest are let go.
            "ivanov left the conference",
        ]
    );
    let calls = events.calls();
    for expected in [
        "task 2 muted in the mixer",
        "task 3 set to HearsSpecial in the mixer",
        "task 2 left the mixer",
    ] {
        assert!(calls.contains(&expected.to_string()), "{expected}: {calls:?}");
    }
    let muted = calls.iter().filter(|call| call.contains("in the mixer")).count();
    assert_eq!(muted, 2, "{calls:?}");
}

#[test]
fn a_bridged_call_rings_out_for_the_caller_and_retries_after_a_failure() {
    let events = run_program(
        "bridged-call",
        r#"
        entry Main is
          router = spawn Router();
          SysLog("bridge: " + ObjectToString(StartBridge(router)));
          SysLog("caller connected: " + (IsConnected() ? "yes" : "no"));
          loop
            input = ReadInput(60);
            exitif IsBreakBridgeEvent(input);
          end loop;
          SysLog("bridge broken");
        end;

        entry Router is
          loop
            request = ReadInput(60);
            exitif IsStartBridgeEvent(request);
          end loop;
          SysLog("busy one: " + ObjectToString(StartBridgedCall("ivanov", request)));
          SysLog("operator: " + ObjectToString(StartBridgedCall("operator", request)));
          Void(ReadInput(5));
          SysLog("break: " + ObjectToString(BreakBridge()));
        end;
        "#,
        r#"operator = "answer after 3s", ivanov = "busy""#,
    );
    assert_eq!(
        events.logs(),
        [
            "busy one: \"486 Busy Here\"",
            "operator: #null#",
            "bridge: #null#",
            "caller connected: yes",
            "break: #null#",
            "bridge broken",
        ]
    );
}

#[test]
fn outside_calls_follow_the_class_of_service_and_show_the_caller_id() {
    let scratch = Scratch::new("outside");
    scratch.write(
        "stock/dial.sppr",
        r#"
        entry Main is
          // Let the incoming call go first: StartCall needs a task without one.
          Disconnect();
          SysLog("speed dial: " + ObjectToString(StartCall("*9")));
          loop
            input = ReadInput(30);
            exitif IsCallCompletedEvent(input);
          end loop;
          Disconnect();
          SysLog("abroad: " + ObjectToString(StartCall("0014155550100")));
        end;
        "#,
    );
    let extra = "[domains.\"example.com\".accounts.sales]\nclass_of_service = \"national\"\n\
                 caller_id = \"+74951234567\"\nspeed_dials = { \"*9\" = \"84957654321\" }\n";
    let events = run(
        config(&scratch, extra, &[]),
        Call::App("dial", "sales@example.com"),
        "",
    );
    assert_eq!(
        events.logs(),
        [
            "speed dial: #null#",
            "abroad: \"403 Forbidden (0014155550100 is not allowed by the class of service national)\""
        ]
    );
    assert!(
        events
            .calls()
            .contains(&"calling *9 (84957654321) as +74951234567".to_string()),
        "{:?}",
        events.calls()
    );
}

#[test]
fn an_answered_call_redirected_is_routed_inside_pbxd_unless_its_class_of_service_forbids() {
    let events = run_program(
        "handon",
        r#"
        entry Main is
          if AcceptCall() != null then stop; end if;
          // petrov's class of service is internal: no outside numbers.
          RedirectCall("84951234567");
          SysLog("after the outside number: " + (IsConnected() ? "still ours" : "gone"));
          RedirectCall("operator");
          SysLog("after operator: " + (IsConnected() ? "still ours" : "gone"));
        end;
        "#,
        r#"operator = "answer after 1s""#,
    );
    assert_eq!(
        events.logs(),
        ["after the outside number: still ours", "after operator: gone"]
    );
    let routing = events.routing();
    assert!(
        routing.contains(&"operator@example.com answered; connected".to_string()),
        "{routing:?}"
    );
}
