//! Call queues (ACD) as the outside sees them: each configured queue's
//! waiting callers (from the `pbx` account's task queue of that name, where
//! `stdlib-scripts/queue.sppr` puts them) and its agents (as the queue's
//! dispatcher, the `Acd` entry of that script, last reported them).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::directory::PBX_ACCOUNT;
use crate::runtime::Runtime;

/// A dispatcher that has not reported for this long is taken to be gone:
/// its agents count as none.
const REPORT_LIFETIME: Duration = Duration::from_secs(10);

/// What a queue's dispatcher reports of its agents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Agents {
    /// Logged in to the queue (`*60`).
    pub logged_in: u32,
    /// On a call from the queue, ringing for one, or wrapping up after one.
    pub busy: u32,
}

/// The latest reports, by domain and queue.
#[derive(Debug, Default)]
pub struct AgentBoard {
    reports: Mutex<HashMap<(String, String), (Agents, Instant)>>,
}

impl AgentBoard {
    pub fn report(&self, domain: &str, queue: &str, agents: Agents) {
        self.reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((domain.to_string(), queue.to_string()), (agents, Instant::now()));
    }

    /// The last report, while it is fresh.
    pub fn agents(&self, domain: &str, queue: &str) -> Agents {
        let reports = self.reports.lock().unwrap_or_else(PoisonError::into_inner);
        match reports.get(&(domain.to_string(), queue.to_string())) {
            Some((agents, at)) if at.elapsed() < REPORT_LIFETIME => *agents,
            _ => Agents::default(),
        }
    }
}

/// One queue now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueFigures {
    pub domain: String,
    pub queue: String,
    /// Callers waiting.
    pub waiting: usize,
    /// The longest any waiting caller has waited.
    pub longest_wait: Duration,
    pub agents: Agents,
}

impl Runtime {
    /// The figures of queue `queue` of `domain`.
    pub fn queue_figures(&self, domain: &str, queue: &str) -> QueueFigures {
        let owner = format!("{PBX_ACCOUNT}@{domain}");
        let registry = &self.registry;
        let (waiting, longest_wait) = self
            .queues
            .figures(&owner, queue, |task| registry.sender(task).is_some());
        QueueFigures {
            domain: domain.to_string(),
            queue: queue.to_string(),
            waiting,
            longest_wait,
            agents: self.queue_agents.agents(domain, queue),
        }
    }

    /// Every configured queue's figures, by domain and name.
    pub fn all_queue_figures(&self) -> Vec<QueueFigures> {
        self.directory
            .domains()
            .flat_map(|domain| {
                domain
                    .queues
                    .keys()
                    .map(|queue| self.queue_figures(&domain.name, queue))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_counts_while_it_is_fresh() {
        let board = AgentBoard::default();
        assert_eq!(board.agents("example.com", "sales"), Agents::default());
        let agents = Agents {
            logged_in: 2,
            busy: 1,
        };
        board.report("example.com", "sales", agents);
        assert_eq!(board.agents("example.com", "sales"), agents);
        assert_eq!(board.agents("example.com", "support"), Agents::default());
    }
}
