//! The built-ins behind call queues (pbxd extensions, docs/language.md;
//! `stdlib-scripts/queue.sppr` and `agent.sppr`): a queue's settings, and
//! its figures, which its dispatcher keeps current.

use pbx_lang::value::{Array, Bytes, Dict, Value};
use pbx_lang::HostOutcome;

use super::host::{arg, done, error_string, null, text_arg, TaskHost};
use super::ops::Op;
use crate::acd::Agents;
use crate::config::QueueConfig;

fn set(dict: &Dict, key: &str, value: Value) {
    let _ = dict.set(Bytes::from(key), value);
}

fn seconds(value: u64) -> Value {
    Value::Num(i64::try_from(value).unwrap_or(i64::MAX))
}

impl TaskHost {
    /// A queue's settings as scripts see them: `name`, `number`, `agents`
    /// (their addresses), `strategy`, `ringSeconds`, `wrapupSeconds`,
    /// `announceSeconds`, `timeoutSeconds`, `overflow`, `callbackMail`,
    /// `priorities` (pattern → priority).
    fn queue_dict(&self, name: &str, queue: &QueueConfig) -> Value {
        let dict = Dict::new();
        let text = |value: &Option<String>| value.as_deref().map_or(Value::Null, Value::str);
        set(&dict, "name", Value::str(name));
        set(&dict, "number", text(&queue.number));
        let domain = self.domain();
        let agents = queue
            .agents
            .iter()
            .map(|agent| {
                // Aliases name the account they stand for.
                let found = self.runtime.directory.find(agent, domain);
                let address = found.map_or_else(|| format!("{agent}@{domain}"), |account| account.address());
                Value::str(&address)
            })
            .collect();
        set(&dict, "agents", Value::Array(Array::from_vec(agents)));
        set(&dict, "strategy", Value::str(queue.strategy.name()));
        set(&dict, "ringSeconds", seconds(queue.ring_seconds));
        set(&dict, "wrapupSeconds", seconds(queue.wrapup_seconds));
        set(&dict, "announceSeconds", seconds(queue.announce_seconds));
        set(&dict, "timeoutSeconds", seconds(queue.timeout_seconds));
        set(&dict, "overflow", text(&queue.overflow));
        set(&dict, "callbackMail", text(&queue.callback_mail));
        let priorities = Dict::new();
        for (pattern, priority) in &queue.priorities {
            set(&priorities, pattern, Value::str(priority));
        }
        set(&dict, "priorities", Value::Dict(priorities));
        Value::Dict(dict)
    }

    /// `QueueSettings(queue)`: the settings of one of the task's domain's
    /// call queues, or null; `QueueSettings()`: every queue's, by name.
    pub(super) fn queue_settings(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Some(domain) = self.runtime.directory.domain(self.domain()) else {
            return null();
        };
        match arg(args, 0) {
            Value::Null => {
                let all = Dict::new();
                for (name, queue) in &domain.queues {
                    set(&all, name, self.queue_dict(name, queue));
                }
                done(Value::Dict(all))
            }
            _ => {
                let Some(name) = text_arg(args, 0).map(|name| name.trim().to_ascii_lowercase()) else {
                    return null();
                };
                match domain.queues.get(&name) {
                    Some(queue) => done(self.queue_dict(&name, queue)),
                    None => null(),
                }
            }
        }
    }

    /// `QueueStatus(queue [, agents])`: the queue's figures now,
    /// `{waiting; longestWait (seconds); loggedIn; busy}`. Its dispatcher
    /// gives `agents`, `{loggedIn; busy}`, which `/metrics` and the
    /// console show until it stops reporting.
    pub(super) fn queue_status(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Some(name) = text_arg(args, 0).map(|name| name.trim().to_ascii_lowercase()) else {
            return error_string("the queue name must be a string");
        };
        let known = self
            .runtime
            .directory
            .domain(self.domain())
            .is_some_and(|domain| domain.queues.contains_key(&name));
        if !known {
            return error_string(format!("there is no queue `{name}`"));
        }
        if let Value::Dict(report) = arg(args, 1) {
            let count = |key: &str| {
                report
                    .get(key.as_bytes())
                    .as_num()
                    .map_or(0, |count| u32::try_from(count.max(0)).unwrap_or(u32::MAX))
            };
            let agents = Agents {
                logged_in: count("loggedIn"),
                busy: count("busy"),
            };
            self.runtime.queue_agents.report(self.domain(), &name, agents);
        }
        let figures = self.runtime.queue_figures(self.domain(), &name);
        let dict = Dict::new();
        set(&dict, "waiting", Value::Num(figures.waiting as i64));
        set(
            &dict,
            "longestWait",
            Value::Num(figures.longest_wait.as_secs() as i64),
        );
        set(&dict, "loggedIn", Value::Num(i64::from(figures.agents.logged_in)));
        set(&dict, "busy", Value::Num(i64::from(figures.agents.busy)));
        done(Value::Dict(dict))
    }
}
