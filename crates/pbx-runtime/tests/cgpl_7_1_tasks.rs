//! CGPL.md §7.1 (tasks, the input queue, events) and §7.3 (playing and
//! DTMF), each rule shown by a small program on a simulated call.

mod common;

use common::{config, prompt, run, run_with, Call, Scratch};

/// Runs `program` (as stock `test.sppr`) for petrov with the caller's
/// `dtmf`; returns its SysLog lines (and checks it raised no error).
fn logs(name: &str, program: &str, dtmf: &str) -> Vec<String> {
    let scratch = Scratch::new(name);
    scratch.write("stock/test.sppr", program);
    scratch.write("stock/long.wav", prompt(10_000));
    scratch.write("stock/short.wav", prompt(500));
    let events = run(
        config(&scratch, "", &[]),
        Call::App("test", "petrov@example.com"),
        dtmf,
    );
    assert!(events.errors().is_empty(), "{:?}", events.errors());
    events.logs()
}

#[test]
fn read_input_returns_dtmf_one_symbol_at_a_time_then_times_out() {
    let lines = logs(
        "read-input",
        r#"
        entry Main is
          Void(AcceptCall());
          start = GMTTime();
          loop
            input = ReadInput(5);
            exitif input == null;
            SysLog(ObjectClass(input) + " " + input + " after " + String(GMTTime() - start));
          end loop;
          SysLog("timed out after " + String(GMTTime() - start));
        end;
        "#,
        "12",
    );
    // The caller presses a key 0.3 s after the line goes quiet.
    assert_eq!(
        lines,
        ["STString 1 after 0", "STString 2 after 0", "timed out after 5"]
    );
}

#[test]
fn read_input_zero_polls_without_waiting() {
    let lines = logs(
        "poll",
        r#"
        entry Main is
          Void(AcceptCall());
          start = GMTTime();
          SysLog(ObjectToString(ReadInput(0)));
          SysLog(String(GMTTime() - start));
        end;
        "#,
        "",
    );
    assert_eq!(lines, ["#null#", "0"]);
}

#[test]
fn dtmf_symbols_come_before_events_and_dtmf_peeks_and_clear_empties() {
    let lines = logs(
        "dtmf-first",
        r#"
        entry Main is
          Void(AcceptCall());
          Void(SetInterruptOnDTMF(null));
          // The caller presses 1, 2, 3 while this records.
          Void(Record(2));
          Void(SendEvent(ThisTask(), "note", "later"));
          SysLog("buffer " + DTMF());
          first = ReadInput(0);
          SysLog("first " + first);
          SysLog("buffer " + DTMF());
          ClearDTMF();
          SysLog("buffer '" + DTMF() + "'");
          event = ReadInput(0);
          SysLog(event.what + " " + event.parameter + " " + (Same(event.sender, ThisTask()) ? "from me" : "?"));
          SysLog(ObjectToString(ReadInput(0)));
        end;
        "#,
        "123",
    );
    assert_eq!(
        lines,
        [
            "buffer 123",
            "first 1",
            "buffer 23",
            "buffer ''",
            "note later from me",
            "#null#"
        ]
    );
}

#[test]
fn events_between_tasks_carry_their_sender_and_parameter() {
    let lines = logs(
        "events",
        r#"
        entry Main is
          worker = spawn Worker(ThisTask(), "job-7");
          SysLog(IsTask(worker) ? "spawned a task" : "no task");
          reply = ReadInput(10);
          SysLog(reply.what + " " + ObjectToString(reply.parameter));
          SysLog(Same(reply.sender, worker) ? "from the worker" : "from someone else");
          SysLog("bad name: " + SendEvent(worker, "1x", null));
        end;

        entry Worker is
          parameters = Vars().startParameter;
          result = NewDictionary();
          result.job = parameters[1];
          result.status = "done";
          Void(SendEvent(parameters[0], "finished", result));
        end;
        "#,
        "",
    );
    assert_eq!(
        lines,
        [
            "spawned a task",
            "finished {job = \"job-7\"; status = done;}",
            "from the worker",
            "bad name: an event name starts with a Latin letter",
        ]
    );
}

#[test]
fn sending_to_a_task_that_ended_is_an_error_string() {
    let lines = logs(
        "ended-task",
        r#"
        entry Main is
          worker = spawn Quick();
          Void(ReadInput(2));
          SysLog(SendEvent(worker, "hello", null));
        end;

        entry Quick is
          SysLog("quick done");
        end;
        "#,
        "",
    );
    assert_eq!(lines, ["quick done", "no such task"]);
}

#[test]
fn a_hang_up_is_a_disconnect_event() {
    let lines = logs(
        "disconnect",
        r#"
        entry Main is
          Void(AcceptCall());
          SysLog(IsConnected() ? "connected" : "not connected");
          loop
            input = ReadInput(600);
            exitif IsDisconnectEvent(input);
          end loop;
          SysLog("what: " + input.what + ", sender: " + ObjectToString(input.sender));
          SysLog(IsConnected() ? "connected" : "not connected");
        end;
        "#,
        "",
    );
    // The simulated caller gives up after an hour of silence.
    assert_eq!(
        lines,
        ["connected", "what: Disconnect, sender: #null#", "not connected"]
    );
}

#[test]
fn dtmf_stops_a_prompt_and_a_buffered_symbol_skips_the_next() {
    let lines = logs(
        "barge-in",
        r#"
        entry Main is
          Void(AcceptCall());
          PlayFile("long");
          SysLog("completed " + ObjectToString(IsPlayCompleted()) + " at " + String(GetPlayPosition()) + " ms");
          PlayFile("long");
          SysLog("skipped: completed " + ObjectToString(IsPlayCompleted()) + " at " + String(GetPlayPosition()) + " ms");
          SysLog("key " + ReadInput(0));
          SysLog("was " + ObjectToString(SetInterruptOnDTMF(null)));
          PlayFile("short");
          SysLog("not interrupted: completed " + ObjectToString(IsPlayCompleted()));
          SysLog("key " + ReadInput(0));
        end;
        "#,
        "!5!6",
    );
    assert_eq!(
        lines,
        [
            "completed #null# at 300 ms",
            "skipped: completed #null# at 0 ms",
            "key 5",
            "was YES",
            "not interrupted: completed YES",
            "key 6",
        ]
    );
}

#[test]
fn an_event_stops_a_prompt_too() {
    let lines = logs(
        "event-stops-play",
        r#"
        entry Main is
          Void(AcceptCall());
          helper = spawn Helper(ThisTask());
          PlayFile("long");
          SysLog("completed " + ObjectToString(IsPlayCompleted()) + " at " + String(GetPlayPosition()) + " ms");
          SysLog(ReadInput(0).what);
        end;

        entry Helper is
          Void(ReadInput(2));
          Void(SendEvent(Vars().startParameter[0], "wake", null));
        end;
        "#,
        "",
    );
    assert_eq!(lines, ["completed #null# at 2000 ms", "wake"]);
}

#[test]
fn a_task_ending_releases_its_call() {
    let scratch = Scratch::new("release");
    scratch.write(
        "stock/unanswered.sppr",
        "entry Main is SysLog(\"not answering\"); end;",
    );
    scratch.write("stock/answered.sppr", "entry Main is Void(AcceptCall()); end;");
    scratch.write(
        "stock/failing.sppr",
        "entry Main is Void(AcceptCall()); x = 1 / 0; end;",
    );
    let events = run(
        config(&scratch, "", &[]),
        Call::App("unanswered", "petrov@example.com"),
        "",
    );
    assert!(
        events
            .calls()
            .contains(&"released the unanswered call (500)".into()),
        "{:?}",
        events.calls()
    );
    let events = run(
        config(&scratch, "", &[]),
        Call::App("answered", "petrov@example.com"),
        "",
    );
    assert_eq!(events.calls().last().map(String::as_str), Some("hung up"));
    let events = run(
        config(&scratch, "", &[]),
        Call::App("failing", "petrov@example.com"),
        "",
    );
    assert_eq!(events.calls().last().map(String::as_str), Some("hung up"));
    assert_eq!(events.errors().len(), 1);
    assert!(
        events.errors()[0].contains("division by zero"),
        "{:?}",
        events.errors()
    );
}

#[test]
fn two_simulated_calls_bridge() {
    let scratch = Scratch::new("bridge");
    scratch.write(
        "stock/front.sppr",
        r#"
        entry Main is
          Void(AcceptCall());
          back = spawn Back(ThisTask());
          loop
            input = ReadInput(60);
            exitif IsStartBridgeEvent(input);
          end loop;
          SysLog("accept: " + ObjectToString(AcceptBridge(input)));
          loop
            input = ReadInput(60);
            exitif IsBreakBridgeEvent(input) or IsDisconnectEvent(input);
          end loop;
          SysLog("front saw " + input.what);
        end;

        entry Back is
          SysLog("dial: " + ObjectToString(StartCall("operator")));
          loop
            input = ReadInput(30);
            exitif IsCallCompletedEvent(input);
          end loop;
          SysLog("operator answered: " + ObjectToString(input.parameter));
          SysLog("bridge: " + ObjectToString(StartBridge(Vars().startParameter[0])));
          Void(ReadInput(5));
          SysLog("break: " + ObjectToString(BreakBridge()));
        end;
        "#,
    );
    let events = run(
        config(
            &scratch,
            "[simulation]\nphones = { operator = \"answer after 3s\" }\n",
            &[],
        ),
        Call::App("front", "petrov@example.com"),
        "",
    );
    assert!(events.errors().is_empty(), "{:?}", events.errors());
    assert_eq!(
        events.logs(),
        [
            "dial: #null#",
            "operator answered: #null#",
            "accept: #null#",
            "bridge: #null#",
            "break: #null#",
            "front saw BreakBridge",
        ]
    );
    let calls = events.calls();
    assert!(
        calls.iter().any(|call| call.starts_with("bridged with task")),
        "{calls:?}"
    );
}

#[test]
fn a_busy_phone_and_one_that_never_answers() {
    let scratch = Scratch::new("busy");
    scratch.write(
        "stock/dial.sppr",
        r#"
        entry Main is
          // StartCall needs a task without a call (CGPL.md §7.2).
          SysLog("with a call: " + StartCall("petrov"));
          Disconnect();
          SysLog("busy: " + Outcome("petrov"));
          SysLog("never: " + Outcome("ivanov"));
        end;

        function Outcome(who) is
          error = StartCall(who);
          if error != null then return "refused " + error; end if;
          loop
            input = ReadInput(120);
            if input == null then CancelCall(); return "gave up"; end if;
            if IsCallCompletedEvent(input) then
              return input.parameter == null ? "answered" : input.parameter;
            end if;
          end loop;
        end;
        "#,
    );
    let phones = "[simulation]\nphones = { petrov = \"busy\", ivanov = \"never answer\" }\n";
    let events = run(
        config(&scratch, phones, &[]),
        Call::App("dial", "operator@example.com"),
        "",
    );
    assert_eq!(
        events.logs(),
        [
            "with a call: the task already has a call",
            "busy: 486 Busy Here",
            "never: gave up"
        ]
    );
}

#[test]
fn start_parameters_and_the_task_handle() {
    let lines = logs(
        "spawn-parameters",
        r#"
        entry Main is
          SysLog(IsTask(ThisTask()) ? "a task" : "not a task");
          SysLog(ObjectToString(Vars().startParameter));
          Void(spawn Child(1, "two", NewArray()));
          Void(ReadInput(1));
        end;

        entry Child is
          SysLog("child got " + ObjectToString(Vars().startParameter));
        end;
        "#,
        "",
    );
    assert_eq!(lines, ["a task", "#null#", "child got (#1, two, ())"]);
}

#[test]
fn tasks_run_independently_and_one_error_ends_only_its_task() {
    let scratch = Scratch::new("independent");
    scratch.write(
        "stock/test.sppr",
        r#"
        entry Main is
          Void(spawn Broken());
          Void(ReadInput(1));
          SysLog("main still runs");
        end;

        entry Broken is
          x = NewArray();
          x[5] = 1;
        end;
        "#,
    );
    let events = run_with(
        config(&scratch, "", &[]),
        Call::App("test", "petrov@example.com"),
        "",
        |_| {},
    );
    assert_eq!(events.logs(), ["main still runs"]);
    assert_eq!(events.errors().len(), 1, "{:?}", events.errors());
}

/// CGPL §6.11's queues: tasks wait in their account's queue, higher
/// priority first and in order within one; `ReadQueue` takes the head with
/// its parameter and handle; a task that ends leaves its queues.
#[test]
fn tasks_wait_in_queues_by_priority_and_leave_them_when_they_end() {
    let lines = logs(
        "queues",
        r#"
        entry Main is
          me = ThisTask();
          Void(spawn Waiter(me, "first", null));
          SysLog("first at " + String(ReadInput(5).parameter));
          Void(spawn Waiter(me, "second", "1.0"));
          SysLog("second at " + String(ReadInput(5).parameter));
          Void(spawn Waiter(me, "urgent", "2.5"));
          SysLog("urgent at " + String(ReadInput(5).parameter));
          state = CheckQueue("sales");
          SysLog("length " + String(state.length) + (state.position == null ? ", without me" : ", with me"));
          SysLog("bad priority: " + String(Enqueue("sales", "x", "high")));
          for var n = 0 while n < 3 by n += 1 loop
            head = ReadQueue("sales");
            SysLog("took " + head.parameter);
            Void(SendEvent(head.id, "answered", null));
          end loop;
          SysLog(ReadQueue("sales") == null ? "empty" : "not empty");
          Void(spawn Waiter(me, "leaver", "9"));
          Void(ReadInput(5));
          Void(ReadInput(2));
          SysLog(ReadQueue("sales") == null ? "the task that ended left the queue" : "it is still there");
        end;

        entry Waiter is
          p = Vars().startParameter;
          if p[2] == null then where = Enqueue("sales", p[1]); else where = Enqueue("sales", p[1], p[2]); end if;
          Void(SendEvent(p[0], "queued", where.position));
          if p[1] != "leaver" then Void(ReadInput(30)); end if;
        end;
        "#,
        "",
    );
    assert_eq!(
        lines,
        [
            "first at 0",
            "second at 1",
            "urgent at 0",
            "length 3, without me",
            "bad priority: the priority must be a number like \"1.0\"",
            "took urgent",
            "took first",
            "took second",
            "empty",
            "the task that ended left the queue",
        ]
    );
}
