//! Call records over HTTP (FEATURES.md §11; issue 10):
//! `GET /api/cdr?account=&since=&until=&limit=` as JSON, `/api/cdr.csv`
//! the same as CSV, one row a leg. Who asks proves it as for click-to-dial
//! (`auth=NAME:PASSWORD`, or HTTP Digest); a user sees the calls that
//! involved them, a domain administrator those of the domain's accounts.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use pbx_runtime::cdr::CallRecord;
use pbx_runtime::directory::Account;

use crate::click::{account_named, authenticate, parameters, text, Refused};
use crate::Sources;

/// The most records one request returns.
const MOST: usize = 10_000;

/// What a request asks for, and who asks.
struct Asked {
    asker: Arc<Account>,
    account: Option<Arc<Account>>,
    since: Option<i64>,
    until: Option<i64>,
    limit: usize,
}

fn asked(
    sources: &Sources,
    source: SocketAddr,
    secure: bool,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Asked, Refused> {
    let Some(parameters) = parameters(query.unwrap_or_default()) else {
        return Err(refuse(StatusCode::BAD_REQUEST, "the query is not UTF-8"));
    };
    let get = |name: &str| {
        parameters
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim())
            .filter(|value| !value.is_empty())
    };
    let number = |name: &str| -> Result<Option<i64>, Refused> {
        get(name)
            .map(|value| {
                value.parse::<i64>().map_err(|_| {
                    refuse(
                        StatusCode::BAD_REQUEST,
                        format!("{name}={value}: a whole number (since and until: Unix seconds)"),
                    )
                })
            })
            .transpose()
    };
    let since = number("since")?;
    let until = number("until")?;
    let limit = match number("limit")? {
        None => 100,
        Some(limit) if (1..=MOST as i64).contains(&limit) => limit as usize,
        Some(limit) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                format!("limit={limit}: 1 to {MOST}"),
            ))
        }
    };
    let account = get("account")
        .map(|name| account_named(sources, name))
        .transpose()?;
    // The realm: the account's domain, else the first.
    let realm = match &account {
        Some(account) => account.clone(),
        None => {
            let directory = &sources.runtime.directory;
            let first = directory
                .first_domain()
                .and_then(|domain| domain.accounts().next().cloned());
            match first {
                Some(any) => any,
                None => return Err(refuse(StatusCode::NOT_FOUND, "no domain is configured")),
            }
        }
    };
    let asker = authenticate(sources, source, headers, get("auth"), &realm, secure)?;
    if let Some(account) = &account {
        if !asker.may_act_for(account) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!("{} may not read {}'s calls", asker.address(), account.address()),
            ));
        }
    }
    Ok(Asked {
        asker,
        account,
        since,
        until,
        limit,
    })
}

/// A refusal with a reason.
fn refuse(status: StatusCode, reason: impl Into<String>) -> Refused {
    Box::new(text(status, reason))
}

/// The records `asked` may see.
fn found(sources: &Sources, asked: &Asked) -> Result<Vec<CallRecord>, Refused> {
    let mine = asked.asker.address();
    let domain = format!("@{}", asked.asker.domain);
    let wanted = asked.account.as_ref().map(|account| account.address());
    let visible = |record: &CallRecord| {
        let allowed = record
            .accounts
            .iter()
            .any(|account| *account == mine || (asked.asker.domain_admin && account.ends_with(&domain)));
        let matching = wanted
            .as_ref()
            .is_none_or(|wanted| record.accounts.iter().any(|account| account == wanted));
        allowed && matching
    };
    sources
        .runtime
        .records
        .query(asked.since, asked.until, asked.limit, visible)
        .map_err(|error| refuse(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))
}

/// `GET /api/cdr` (JSON) and `/api/cdr.csv`.
pub async fn page(
    State(sources): State<Arc<Sources>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    secure: Option<axum::Extension<crate::Secure>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let records = match asked(&sources, source, secure.is_some(), &headers, uri.query())
        .and_then(|asked| found(&sources, &asked))
    {
        Ok(records) => records,
        Err(response) => return *response,
    };
    if uri.path().ends_with(".csv") {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv(&records),
        )
            .into_response();
    }
    match serde_json::to_string(&records) {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

/// The columns of `/api/cdr.csv`: the record's, then the leg's.
const COLUMNS: &str =
    "id,start,end,caller,called,accounts,program,task,notes,direction,from,to,dialled,account,trunk,\
                       call_id,leg_start,answer,leg_end,talk_seconds,disposition,code,hung_up_by";

/// A CSV field, quoted when it must be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn csv(records: &[CallRecord]) -> String {
    let mut out = format!("{COLUMNS}\r\n");
    let optional = |value: Option<String>| value.unwrap_or_default();
    for record in records {
        for leg in &record.legs {
            let row = [
                record.id.to_string(),
                record.start.to_string(),
                record.end.to_string(),
                record.caller.clone(),
                record.called.clone(),
                record.accounts.join(" "),
                optional(record.program.clone()),
                optional(record.task.map(|task| task.to_string())),
                record.notes.join(" | "),
                leg.direction.clone(),
                leg.from.clone(),
                leg.to.clone(),
                leg.dialled.clone(),
                optional(leg.account.clone()),
                optional(leg.trunk.clone()),
                leg.call_id.clone(),
                leg.start.to_string(),
                optional(leg.answer.map(|answer| answer.to_string())),
                leg.end.to_string(),
                leg.talk_seconds.to_string(),
                leg.disposition.clone(),
                optional(leg.code.map(|code| code.to_string())),
                leg.hung_up_by.clone(),
            ];
            let row: Vec<String> = row.iter().map(|value| field(value)).collect();
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it_and_has_a_row_a_leg() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        let record = CallRecord {
            id: 1,
            legs: vec![Default::default(), Default::default()],
            notes: vec!["x, y".into()],
            ..CallRecord::default()
        };
        let text = csv(&[record]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], COLUMNS);
        assert_eq!(lines[0].split(',').count(), 23);
        assert!(lines[1].starts_with("1,0,0,,,,,,\"x, y\","), "{}", lines[1]);
    }
}
