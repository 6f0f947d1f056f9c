//! The hot desk built-ins (pbxd extensions, docs/language.md): virtual
//! lines logged in and out on the phone that called, which is the account
//! the caller authenticated as (never the task's own account, which may be
//! the line in force).

use std::sync::Arc;

use pbx_lang::value::time::Clock;
use pbx_lang::value::{Array, Value};
use pbx_lang::HostOutcome;

use super::host::{arg, done, error_string, null, text_arg, TaskHost};
use super::ops::Op;
use crate::directory::Account;

impl TaskHost {
    /// The phone the task's call came from, and the line named by the
    /// first argument (a name, alias or extension number of its domain).
    /// Why not: the words the built-in returns.
    fn phone_and_line(&self, args: &[Value]) -> Result<(Arc<Account>, Arc<Account>), &'static str> {
        let phone = self
            .call
            .as_ref()
            .and_then(|leg| leg.info.authenticated.clone())
            .ok_or("the call is not from a phone of this server")?;
        let named = match arg(args, 0) {
            Value::Num(number) => number.to_string(),
            _ => text_arg(args, 0).ok_or("the line must be a string")?,
        };
        let line = self
            .runtime
            .directory
            .find(named.trim(), &phone.domain)
            .ok_or("there is no such line")?;
        Ok((phone, line))
    }

    /// `HotDeskLogin(line [, pin])`: null when the line is logged in on
    /// the calling phone, or why not. A line logged in there already needs
    /// no PIN: its settings come into force again.
    pub(super) fn hotdesk_login(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let (phone, line) = match self.phone_and_line(args) {
            Ok(found) => found,
            Err(refusal) => return error_string(refusal),
        };
        let pin = text_arg(args, 1);
        let now = self.runtime.clock.now();
        match self.runtime.hotdesk.login(&phone, &line, pin.as_deref(), now) {
            Ok(_) => null(),
            Err(error) => error_string(error.to_string()),
        }
    }

    /// `HotDeskLogout(line)`: null when the line was logged out of the
    /// calling phone, or why not.
    pub(super) fn hotdesk_logout(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let (phone, line) = match self.phone_and_line(args) {
            Ok(found) => found,
            Err(refusal) => return error_string(refusal),
        };
        match self.runtime.hotdesk.logout(&phone.address(), &line.address()) {
            Ok(()) => null(),
            Err(error) => error_string(error.to_string()),
        }
    }

    /// `HotDeskLines()`: the names of the lines logged in on the calling
    /// phone, in the order they logged in; empty for a call from no phone
    /// of this server.
    pub(super) fn hotdesk_lines(&mut self) -> HostOutcome<Op> {
        let Some(phone) = self.call.as_ref().and_then(|leg| leg.info.authenticated.clone()) else {
            return done(Value::Array(Array::from_vec(Vec::new())));
        };
        let names = self
            .runtime
            .hotdesk
            .lines(&phone.address())
            .into_iter()
            .map(|line| Value::str(line.split('@').next().unwrap_or(&line)))
            .collect();
        done(Value::Array(Array::from_vec(names)))
    }
}
