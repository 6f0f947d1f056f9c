//! The call runtime: tasks (one per call or program run) driving the
//! language's VM, environments, accounts and rules, addressing, and the
//! built-ins that bind scripts to calls, mail and HTTP.
//!
//! It owns everything between the network and the scripts. It must never
//! depend on a particular network: calls come through the `call::Network`
//! trait (the simulated one here, SIP in `pbx-sip`).

pub mod acd;
pub mod address;
pub mod admission;
pub mod balance;
pub mod breaker;
pub mod calendar;
pub mod call;
pub mod cdr;
pub mod class;
pub mod config;
pub mod directory;
pub mod env;
pub mod hotdesk;
pub mod http;
pub mod mail;
pub mod mail_queue;
pub mod observe;
pub mod parlay;
pub mod pins;
pub mod queue;
pub mod ring;
pub mod rules;
pub mod runtime;
pub mod server;
pub mod shard;
pub mod sim;
pub mod soap;
pub mod store;
pub mod task;
pub mod tls;

pub use config::{Config, ConfigError};
pub use runtime::{Routed, Runtime, StartError};
pub use server::{Mode, NetworkSetup, Server, ServerError, ServerOptions};
