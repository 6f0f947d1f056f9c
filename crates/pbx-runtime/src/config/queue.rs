//! `[domains."example.com".queues.NAME]`: call queues (ACD). Callers of
//! the queue's number wait in `stdlib-scripts/queue.sppr` (run for the
//! domain's `pbx` account), which hands each, longest-waiting first, to a
//! free agent; agents log in and out with feature codes (`agent.sppr`).

use serde::Deserialize;

/// How a queue picks the agent for the caller at its head.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Every free agent rings; the first to answer takes the call.
    RingAll,
    /// The free agent who has waited longest since their last call.
    #[default]
    LongestIdle,
    /// The agents in turn, in the order `agents` lists them.
    RoundRobin,
}

impl Strategy {
    /// The name the configuration and scripts use.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::RingAll => "ring-all",
            Strategy::LongestIdle => "longest-idle",
            Strategy::RoundRobin => "round-robin",
        }
    }
}

/// One call queue.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// The number that reaches the queue (besides its name, when no
    /// account has that name).
    pub number: Option<String>,
    /// The accounts that may log in as its agents (`*60`).
    #[serde(default)]
    pub agents: Vec<String>,
    #[serde(default)]
    pub strategy: Strategy,
    /// How long an agent's phone rings before the caller goes back to the
    /// head of the queue.
    #[serde(default = "default_ring")]
    pub ring_seconds: u64,
    /// How long an agent rests after a call before the next.
    #[serde(default = "default_wrapup")]
    pub wrapup_seconds: u64,
    /// How often a waiting caller hears their position (and whenever it
    /// changes).
    #[serde(default = "default_announce")]
    pub announce_seconds: u64,
    /// The longest a caller waits before going to `overflow`.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Where a caller goes after `timeout_seconds` (`voicemail#operator`,
    /// `100`); unset, the call ends with a prompt.
    pub overflow: Option<String>,
    /// Where a caller's callback request (`*` while waiting) is mailed;
    /// unset, `*` does nothing.
    pub callback_mail: Option<String>,
    /// Callers who go ahead of others: the caller's number or name (a
    /// final `*`: any that start so) → a priority (`"2.0"`; the others
    /// have `"1.0"`). The longest pattern that matches decides; within a
    /// priority, callers are served in the order they came.
    #[serde(default)]
    pub priorities: std::collections::BTreeMap<String, String>,
}

fn default_ring() -> u64 {
    15
}

fn default_wrapup() -> u64 {
    10
}

fn default_announce() -> u64 {
    30
}

fn default_timeout() -> u64 {
    300
}

impl QueueConfig {
    /// What serde cannot check: the problem, for `queues.NAME`.
    pub fn check(&self) -> Result<(), String> {
        if let Some(number) = &self.number {
            if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("number: `{number}`; expected digits"));
            }
        }
        for (key, value, range) in [
            ("ring_seconds", self.ring_seconds, 5..=120),
            ("wrapup_seconds", self.wrapup_seconds, 0..=600),
            ("announce_seconds", self.announce_seconds, 5..=600),
            ("timeout_seconds", self.timeout_seconds, 10..=7200),
        ] {
            if !range.contains(&value) {
                return Err(format!(
                    "{key}: {value}; expected {} to {}",
                    range.start(),
                    range.end()
                ));
            }
        }
        for (pattern, priority) in &self.priorities {
            let stem = pattern.strip_suffix('*').unwrap_or(pattern);
            if stem.is_empty() || stem.contains('*') {
                return Err(format!(
                    "priorities: `{pattern}`; expected a number or name, with a `*` at the end at most"
                ));
            }
            match crate::store::parse_priority(priority) {
                Some(value) if value < 1000 * 1000 => {}
                _ => {
                    return Err(format!(
                        "priorities.\"{pattern}\": `{priority}`; expected a priority below 1000 like \"2.0\""
                    ))
                }
            }
        }
        if let Some(mail) = &self.callback_mail {
            if !mail.contains('@') {
                return Err(format!("callback_mail: `{mail}` is not a mail address"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> QueueConfig {
        toml::from_str(text).expect("a queue")
    }

    #[test]
    fn defaults_and_strategies() {
        let queue = parse("agents = [\"ivanov\"]");
        assert_eq!(queue.strategy, Strategy::LongestIdle);
        assert_eq!(
            (
                queue.ring_seconds,
                queue.wrapup_seconds,
                queue.announce_seconds,
                queue.timeout_seconds
            ),
            (15, 10, 30, 300)
        );
        assert_eq!(queue.check(), Ok(()));
        assert_eq!(parse("strategy = \"ring-all\"").strategy, Strategy::RingAll);
        assert_eq!(parse("strategy = \"round-robin\"").strategy.name(), "round-robin");
        assert!(toml::from_str::<QueueConfig>("strategy = \"random\"").is_err());
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            parse("number = \"5a\"").check(),
            Err("number: `5a`; expected digits".into())
        );
        assert_eq!(
            parse("ring_seconds = 1").check(),
            Err("ring_seconds: 1; expected 5 to 120".into())
        );
        assert_eq!(
            parse("priorities = { \"8495*\" = \"high\" }").check(),
            Err("priorities.\"8495*\": `high`; expected a priority below 1000 like \"2.0\"".into())
        );
        assert!(parse("priorities = { \"*\" = \"2\" }").check().is_err());
        assert_eq!(
            parse("priorities = { \"8495*\" = \"2.5\", \"petrov\" = \"3\" }").check(),
            Ok(())
        );
        assert_eq!(
            parse("callback_mail = \"sales\"").check(),
            Err("callback_mail: `sales` is not a mail address".into())
        );
    }
}
