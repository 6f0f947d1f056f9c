//! The built-ins behind numbers a web server routes (pbxd extensions,
//! docs/language.md; `stdlib-scripts/weburl.sppr`, seed 000 §30): a
//! number's settings, routing the task's call inside pbxd, the call's and
//! the leg's identifiers, and the URLs told of each leg.

use pbx_lang::value::{Bytes, Dict, Value};
use pbx_lang::HostOutcome;

use super::host::{arg, done, error_string, null, text_arg, TaskHost};
use super::ops::Op;
use crate::cdr::LegHooks;

impl TaskHost {
    /// `ReadNumber(number)`: the settings of one of the task's domain's
    /// numbers (`weburl`, `answer_url`, `hangup_url`, `fallback_url`,
    /// `timeout_seconds`, `timeout_destination`, `prompt`, `patterns`,
    /// and `dtype`: `number`, or `code` for a feature code), or null.
    pub(super) fn read_number(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Some(number) = text_arg(args, 0) else {
            return null();
        };
        let Some(entry) = self
            .runtime
            .directory
            .domain(self.domain())
            .and_then(|domain| domain.numbers.get(number.trim()))
        else {
            return null();
        };
        let dict = Dict::new();
        for (key, value) in entry.settings(number.trim()) {
            let value = match key {
                "timeout_seconds" => Value::Num(value.parse().unwrap_or(5)),
                _ => Value::str(&value),
            };
            let _ = dict.set(Bytes::from(key), value);
        }
        let patterns = entry.patterns.iter().map(|pattern| Value::str(pattern)).collect();
        let _ = dict.set(
            Bytes::from("patterns"),
            Value::Array(pbx_lang::value::Array::from_vec(patterns)),
        );
        done(Value::Dict(dict))
    }

    /// `RouteCall(address)`: the task's call, ringing or answered, goes to
    /// `address` inside pbxd as if dialled there (an account's rules and
    /// phones, an app, a number through a trunk with the class of service
    /// of the task's account); the task no longer has it. Null, or why not.
    pub(super) fn route_call(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let Some(target) = text_arg(args, 0) else {
            return error_string("the address must be a string");
        };
        if self.call.is_none() {
            return error_string("there is no call");
        }
        self.hand_on(target.trim())
    }

    /// `CallIDs()`: `{callid; uniqueid}`, the call's identifier (the same
    /// for every leg: its call record) and the task's leg's (its SIP
    /// Call-ID); null without a call.
    pub(super) fn call_ids(&mut self) -> HostOutcome<Op> {
        let (Some(record), Some(leg)) = (self.record, self.call.as_ref()) else {
            return null();
        };
        let dict = Dict::new();
        let _ = dict.set(Bytes::from("callid"), Value::str(&record.to_string()));
        let unique = if leg.info.call_id.is_empty() {
            format!("{record}-{}", leg.id)
        } else {
            leg.info.call_id.clone()
        };
        let _ = dict.set(Bytes::from("uniqueid"), Value::str(&unique));
        done(Value::Dict(dict))
    }

    /// `SetCallURLs(answerURL, hangupURL, fields)`: from now on, each leg
    /// of the task's call that is answered is told to `answerURL` and each
    /// that ends to `hangupURL` (either may be null): a POST of the
    /// dictionary `fields` as a form, with the leg's `uniqueid` and
    /// `state` (and, at hang-up, `totaltime`, `talktime`, `status`,
    /// `recording`). Null, or why not.
    pub(super) fn set_call_urls(&mut self, args: &[Value]) -> HostOutcome<Op> {
        let url = |index: usize| text_arg(args, index).filter(|url| !url.is_empty());
        let (answer_url, hangup_url) = (url(0), url(1));
        for url in answer_url.iter().chain(hangup_url.iter()) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return error_string(format!("`{url}` is not an http:// or https:// URL"));
            }
        }
        let fields = match arg(args, 2) {
            Value::Dict(dict) => dict
                .entries()
                .iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::Str(bytes) | Value::Data(bytes) => {
                            String::from_utf8_lossy(bytes.as_slice()).into_owned()
                        }
                        Value::Null => String::new(),
                        other => pbx_lang::value::text::to_text(other),
                    };
                    (key.to_str_lossy().into_owned(), value)
                })
                .collect(),
            Value::Null => Vec::new(),
            _ => return error_string("the fields must be a dictionary"),
        };
        let Some(record) = self.record else {
            return error_string("the task's call has no record");
        };
        self.runtime.records.watch(
            record,
            LegHooks {
                answer_url,
                hangup_url,
                fields,
            },
        );
        null()
    }
}
