//! Signal rules: what happens to a call to an account (FEATURES.md §4).
//!
//! A rule is a condition and an action, written as words:
//! `{ when = "after hours", then = "divert #callback" }`,
//! `{ when = "busy or no answer after 20s", then = "#voicemail" }`,
//! `{ when = "always", then = "fork 5551234, ivanov" }`.
//!
//! Conditions: `always`, `working hours`, `after hours`, `caller PATTERN`
//! (digits or text, `*` matches anything), `unregistered`, `busy`,
//! `no answer [after N s]`; several joined by `or`. Actions: `divert`
//! (or `redirect`) to addresses, `fork` to addresses, `reject [CODE]`, or
//! an address alone (`#callback`), which diverts to it.

use std::time::Duration;

/// When a rule applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    Always,
    WorkingHours,
    AfterHours,
    /// The caller's address or number matches (`*` is a wildcard).
    Caller(String),
    /// The account has no registered device.
    Unregistered,
    /// Its devices are busy.
    Busy,
    /// Nobody answered within this time.
    NoAnswer(Duration),
}

impl Condition {
    /// Whether the condition is known when the call arrives (rather than
    /// after ringing).
    fn is_immediate(&self) -> bool {
        !matches!(self, Condition::Busy | Condition::NoAnswer(_))
    }
}

/// What a rule does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the call elsewhere instead (addresses: `#app`, an account, a number).
    Divert(Vec<String>),
    /// Ring these as well.
    Fork(Vec<String>),
    /// Refuse the call with a SIP code.
    Reject(u16),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Divert(targets) => write!(f, "divert to {}", targets.join(", ")),
            Action::Fork(targets) => write!(f, "fork to {}", targets.join(", ")),
            Action::Reject(code) => write!(f, "reject with {code}"),
        }
    }
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Any of these.
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// How long "no answer" waits when no time is given.
pub const DEFAULT_NO_ANSWER: Duration = Duration::from_secs(20);

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    let unit = text[digits.len()..].trim();
    if digits.is_empty() || !matches!(unit, "" | "s" | "sec" | "secs" | "second" | "seconds") {
        return Err(format!("`{text}` is not a number of seconds like `20s`"));
    }
    digits
        .parse()
        .map(Duration::from_secs)
        .map_err(|_| format!("`{text}` is too large"))
}

fn parse_condition(text: &str) -> Result<Condition, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|word| word.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    Ok(match lower.as_slice() {
        ["always"] => Condition::Always,
        ["working", "hours"] | ["workhours"] | ["in", "working", "hours"] => Condition::WorkingHours,
        ["after", "hours"] | ["afterhours"] | ["outside", "working", "hours"] => Condition::AfterHours,
        ["unregistered"] | ["not", "registered"] => Condition::Unregistered,
        ["busy"] => Condition::Busy,
        ["no", "answer"] => Condition::NoAnswer(DEFAULT_NO_ANSWER),
        ["no", "answer", "after" | "in", rest @ ..] if !rest.is_empty() => {
            Condition::NoAnswer(parse_seconds(&rest.join(""))?)
        }
        ["caller", _] => Condition::Caller(words[1].to_string()),
        _ => {
            return Err(format!(
                "`{text}` is not a condition; use always, working hours, after hours, caller PATTERN, \
                 unregistered, busy, or no answer after N s"
            ))
        }
    })
}

fn parse_addresses(text: &str) -> Result<Vec<String>, String> {
    let addresses: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|address| !address.is_empty())
        .map(str::to_string)
        .collect();
    if addresses.is_empty() {
        return Err("no address given".into());
    }
    Ok(addresses)
}

fn parse_action(text: &str) -> Result<Action, String> {
    let text = text.trim();
    let (verb, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    Ok(match verb.to_ascii_lowercase().as_str() {
        "divert" | "redirect" | "forward" => Action::Divert(parse_addresses(rest.trim_start_matches("to "))?),
        "fork" => Action::Fork(parse_addresses(rest.trim_start_matches("to "))?),
        "reject" => Action::Reject(match rest.trim() {
            "" => 486,
            code => code
                .parse()
                .ok()
                .filter(|code| (400..700).contains(code))
                .ok_or_else(|| format!("`{code}` is not a SIP code from 400 to 699"))?,
        }),
        _ if text.starts_with('#') || text.contains('@') || text.chars().all(|c| c.is_ascii_digit()) => {
            Action::Divert(parse_addresses(text)?)
        }
        _ => {
            return Err(format!(
            "`{text}` is not an action; use divert ADDRESS, fork ADDRESS, ADDRESS…, reject [CODE], or #app"
        ))
        }
    })
}

impl Rule {
    /// Reads a rule from its `when` and `then` words.
    pub fn parse(when: &str, then: &str) -> Result<Rule, String> {
        let conditions = when
            .split(" or ")
            .map(parse_condition)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rule {
            conditions,
            action: parse_action(then)?,
        })
    }
}

/// What is known about a call when it arrives.
#[derive(Clone, Debug)]
pub struct CallFacts<'a> {
    /// Whether it is working time for the account (`None`: no schedule,
    /// which counts as always working).
    pub working: Option<bool>,
    /// The caller's address or number.
    pub caller: &'a str,
    /// Whether the account has a registered device.
    pub registered: bool,
}

/// What to do with a call to an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Act at once.
    Act(Action),
    /// Ring the account's devices; on no answer within `no_answer` (if
    /// set) or on busy, act.
    Ring {
        no_answer: Option<(Duration, Action)>,
        busy: Option<Action>,
        /// Addresses a `fork` rule adds to the ringing.
        also: Vec<String>,
    },
}

/// The preference a phone's user sets (the `service` app) to have every
/// call forwarded to an address.
pub const FORWARD_ALL: &str = "ForwardAll";
/// The preference for do not disturb: calls are taken as if busy.
pub const DO_NOT_DISTURB: &str = "DoNotDisturb";

/// What do not disturb (set by the account's user with the `service`
/// app, over the rules the administrator wrote) makes of `plan`: calls are
/// taken as if the phones were busy (the busy rule, else the no-answer
/// rule, else 486); rules that act at once (after hours) still come
/// first. (`ForwardAll` is applied before any rule: `Runtime`.)
pub fn own_settings(do_not_disturb: bool, plan: Plan) -> Plan {
    match plan {
        Plan::Ring { busy, no_answer, .. } if do_not_disturb => Plan::Act(
            busy.or(no_answer.map(|(_, action)| action))
                .unwrap_or(Action::Reject(486)),
        ),
        plan => plan,
    }
}

/// Wildcard match (`*` is any run of characters), ignoring ASCII case, in
/// time proportional to the lengths.
fn caller_matches(pattern: &str, caller: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), caller.as_bytes());
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] != b'*' && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|byte| *byte == b'*')
}

/// Applies `rules`, in order, to a call.
pub fn plan(rules: &[Rule], facts: &CallFacts<'_>) -> Plan {
    let working = facts.working.unwrap_or(true);
    let holds = |condition: &Condition| match condition {
        Condition::Always => true,
        Condition::WorkingHours => working,
        Condition::AfterHours => !working,
        Condition::Caller(pattern) => caller_matches(pattern, facts.caller),
        Condition::Unregistered => !facts.registered,
        Condition::Busy | Condition::NoAnswer(_) => false,
    };
    let mut also = Vec::new();
    for rule in rules {
        if rule
            .conditions
            .iter()
            .any(|condition| condition.is_immediate() && holds(condition))
        {
            match &rule.action {
                Action::Fork(addresses) => also.extend(addresses.iter().cloned()),
                action => return Plan::Act(action.clone()),
            }
        }
    }
    let mut no_answer = None;
    let mut busy = None;
    for rule in rules {
        for condition in &rule.conditions {
            match condition {
                Condition::NoAnswer(after) if no_answer.is_none() => {
                    no_answer = Some((*after, rule.action.clone()))
                }
                Condition::Busy if busy.is_none() => busy = Some(rule.action.clone()),
                _ => {}
            }
        }
    }
    // With no device to ring, "no answer" applies at once.
    if !facts.registered && also.is_empty() {
        if let Some((_, action)) = no_answer {
            return Plan::Act(action);
        }
    }
    Plan::Ring {
        no_answer,
        busy,
        also,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_own_settings_come_over_the_rules() {
        let ringing = || Plan::Ring {
            no_answer: Some((Duration::from_secs(20), Action::Divert(vec!["#voicemail".into()]))),
            busy: None,
            also: Vec::new(),
        };
        // Do not disturb: as if busy, so the no-answer rule's voicemail.
        assert_eq!(
            own_settings(true, ringing()),
            Plan::Act(Action::Divert(vec!["#voicemail".into()]))
        );
        let bare = Plan::Ring {
            no_answer: None,
            busy: None,
            also: Vec::new(),
        };
        assert_eq!(own_settings(true, bare), Plan::Act(Action::Reject(486)));
        assert_eq!(own_settings(false, ringing()), ringing());
    }

    fn rules(list: &[(&str, &str)]) -> Vec<Rule> {
        list.iter()
            .map(|(when, then)| Rule::parse(when, then).unwrap())
            .collect()
    }

    fn facts(working: bool, registered: bool) -> CallFacts<'static> {
        CallFacts {
            working: Some(working),
            caller: "sip:5551234@example.net",
            registered,
        }
    }

    #[test]
    fn after_hours_diverts_to_the_callback_app() {
        let rules = rules(&[
            ("after hours", "divert #callback"),
            ("no answer after 20s", "#voicemail"),
        ]);
        assert_eq!(
            plan(&rules, &facts(false, true)),
            Plan::Act(Action::Divert(vec!["#callback".into()]))
        );
        assert_eq!(
            plan(&rules, &facts(true, true)),
            Plan::Ring {
                no_answer: Some((Duration::from_secs(20), Action::Divert(vec!["#voicemail".into()]))),
                busy: None,
                also: vec![],
            }
        );
    }

    #[test]
    fn nobody_registered_means_no_answer_at_once() {
        let rules = rules(&[("busy or no answer after 15 s", "#voicemail")]);
        assert_eq!(
            plan(&rules, &facts(true, false)),
            Plan::Act(Action::Divert(vec!["#voicemail".into()]))
        );
    }

    #[test]
    fn callers_forks_and_rejects() {
        let rules = rules(&[("caller *5551234*", "reject 603"), ("always", "fork 200, petrov")]);
        assert_eq!(plan(&rules, &facts(true, true)), Plan::Act(Action::Reject(603)));
        let rules = self::rules(&[("always", "fork 200, petrov")]);
        let Plan::Ring { also, .. } = plan(&rules, &facts(true, true)) else {
            panic!("expected ringing")
        };
        assert_eq!(also, vec!["200".to_string(), "petrov".to_string()]);
    }

    #[test]
    fn mistakes_are_described() {
        assert!(Rule::parse("sometimes", "#x").unwrap_err().contains("sometimes"));
        assert!(Rule::parse("always", "dance").unwrap_err().contains("dance"));
        assert!(Rule::parse("no answer after soon", "#x")
            .unwrap_err()
            .contains("soon"));
        assert!(Rule::parse("always", "reject 200")
            .unwrap_err()
            .contains("400 to 699"));
    }
}
