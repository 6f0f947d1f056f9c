//! The web console (issue 10, in part): a login form and a session cookie
//! (HttpOnly, SameSite=Strict, eight hours), and a user's page: recent and
//! missed calls from the call records, each number a button that dials it
//! (click-to-dial within the session, a POST with the session's CSRF
//! token), the phones registered, the voicemail messages kept. Pages are
//! rendered on the server (maud) and work with JavaScript off.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, RawForm, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use pbx_runtime::cdr::CallRecord;
use pbx_runtime::directory::Account;

use crate::click::{account_named, parameters};
use crate::Sources;

/// How long a session lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
const COOKIE: &str = "pbxd_session";

/// Who is logged in, by session token.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

#[derive(Clone)]
struct Session {
    account: Arc<Account>,
    /// Every form of the session carries it.
    csrf: String,
    expires: Instant,
}

/// 128 random bits, in hex.
fn token() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Sessions {
    fn begin(&self, account: Arc<Account>) -> (String, Session) {
        let session = Session {
            account,
            csrf: token(),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        let id = token();
        if let Ok(mut sessions) = self.0.lock() {
            let now = Instant::now();
            sessions.retain(|_, session| session.expires > now);
            sessions.insert(id.clone(), session.clone());
        }
        (id, session)
    }

    fn of(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))?
            .to_string();
        let sessions = self.0.lock().ok()?;
        let session = sessions
            .get(&id)
            .filter(|session| session.expires > Instant::now())?;
        Some((id, session.clone()))
    }

    fn end(&self, id: &str) {
        if let Ok(mut sessions) = self.0.lock() {
            sessions.remove(id);
        }
    }
}

/// A page with the console's look.
fn page(title: &str, body: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — pbxd" }
                style { (STYLE) }
            }
            body {
                header { strong { "pbxd" } " " span { (title) } }
                main { (body) }
            }
        }
    };
    Html(markup.into_string())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}\
header{background:#24425f;color:#fff;padding:.6em 1em}main{padding:1em;max-width:60em}\
table{border-collapse:collapse;width:100%;background:#fff}td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left}\
form.inline{display:inline}button{cursor:pointer}.missed{color:#a00}.error{color:#a00;font-weight:bold}\
section{margin-bottom:1.5em}label{display:block;margin:.4em 0}";

fn login_form(message: Option<&str>) -> Html<String> {
    page(
        "Log in",
        html! {
            @if let Some(message) = message { p.error { (message) } }
            form method="post" action="/login" {
                label { "Account " input name="name" autocomplete="username" placeholder="ivanov@example.com"; }
                label { "Password " input name="password" type="password" autocomplete="current-password"; }
                button type="submit" { "Log in" }
            }
        },
    )
}

/// `GET /login`.
pub async fn login_page() -> Html<String> {
    login_form(None)
}

/// `POST /login`: name and password; the session cookie, then the page.
pub async fn login(
    State(sources): State<Arc<Sources>>,
    ConnectInfo(source): ConnectInfo<SocketAddr>,
    secure: Option<axum::Extension<crate::Secure>>,
    RawForm(form): RawForm,
) -> Response {
    let fields = std::str::from_utf8(&form)
        .ok()
        .and_then(parameters)
        .unwrap_or_default();
    let get = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let (Some(name), Some(password)) = (get("name"), get("password")) else {
        return (
            StatusCode::BAD_REQUEST,
            login_form(Some("Give the account's name and password.")),
        )
            .into_response();
    };
    let failures = sources.sip.auth_failures();
    let limit = sources.runtime.config.sip.auth_failures_per_minute;
    if failures.blocked(source.ip(), limit) {
        return (
            StatusCode::FORBIDDEN,
            login_form(Some("Too many failed logins; try again later.")),
        )
            .into_response();
    }
    let account = account_named(&sources, name.trim()).ok().filter(|account| {
        account
            .password
            .as_deref()
            .is_some_and(|known| crate::click::same(password, known))
    });
    let Some(account) = account else {
        failures.failed(source.ip());
        tracing::info!(%source, name, "console login refused: wrong name or password");
        return (StatusCode::FORBIDDEN, login_form(Some("Wrong name or password."))).into_response();
    };
    let (id, _) = sources.sessions.begin(account);
    let secure = if secure.is_some() { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_LIFETIME.as_secs()
    );
    let mut response = Redirect::to("/console").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /logout`.
pub async fn logout(
    State(sources): State<Arc<Sources>>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Response {
    if let Some((id, session)) = sources.sessions.of(&headers) {
        if csrf_ok(&form, &session) {
            sources.sessions.end(&id);
        }
    }
    let mut response = Redirect::to("/login").into_response();
    let expired = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// A form sent within a session: the session and the form's fields, or
/// where to go instead (the login without a session, a refusal when the
/// form's CSRF token is not the session's).
fn session_form(
    sources: &Sources,
    headers: &HeaderMap,
    form: &[u8],
) -> Result<(Session, Vec<(String, String)>), crate::click::Refused> {
    let Some((_, session)) = sources.sessions.of(headers) else {
        return Err(Box::new(Redirect::to("/login").into_response()));
    };
    if !csrf_ok(form, &session) {
        let refused = html! { p.error { "This form has expired; go back and try again." } };
        return Err(Box::new(
            (StatusCode::FORBIDDEN, page("Refused", refused)).into_response(),
        ));
    }
    let fields = std::str::from_utf8(form)
        .ok()
        .and_then(parameters)
        .unwrap_or_default();
    Ok((session, fields))
}

/// The value of field `name`, trimmed ("" when missing).
fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_default()
}

fn csrf_ok(form: &[u8], session: &Session) -> bool {
    let fields = std::str::from_utf8(form)
        .ok()
        .and_then(parameters)
        .unwrap_or_default();
    fields
        .iter()
        .any(|(key, value)| key == "csrf" && crate::click::same(value, &session.csrf))
}

/// `GET /`: the console, or the login form.
pub async fn home(State(sources): State<Arc<Sources>>, headers: HeaderMap) -> Response {
    match sources.sessions.of(&headers) {
        Some(_) => Redirect::to("/console").into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// The number to call back for a leg: the far party, as a bare
/// `user@host` (or number).
fn party(uri: &str) -> String {
    let uri = uri.trim();
    let inner = match (uri.find('<'), uri.find('>')) {
        (Some(start), Some(end)) if start < end => &uri[start + 1..end],
        _ => uri,
    };
    let bare = inner.trim_start_matches("sip:").trim_start_matches("sips:");
    let bare = bare.split(';').next().unwrap_or(bare);
    bare.to_string()
}

/// A call as the user's page shows it: when, with whom, and whether the
/// user missed it.
struct Seen {
    when: String,
    other: String,
    outgoing: bool,
    missed: bool,
    talk: i64,
}

fn seen(record: &CallRecord, me: &str) -> Seen {
    let mine = |leg: &&pbx_runtime::cdr::LegRecord| leg.account.as_deref() == Some(me);
    // A call the user made: a leg in from them, or pbxd's first leg to
    // them placed for them (click-to-dial).
    let first = record.legs.first();
    let outgoing = first.is_some_and(|leg| {
        (leg.direction == "in" && leg.account.as_deref() == Some(me))
            || (leg.direction == "out" && leg.account.as_deref() == Some(me) && record.legs.len() > 1)
    });
    let other = if outgoing {
        record
            .legs
            .iter()
            .find(|leg| leg.account.as_deref() != Some(me))
            .map(|leg| {
                if leg.direction == "in" {
                    party(&leg.dialled)
                } else {
                    party(&leg.to)
                }
            })
            .unwrap_or_default()
    } else {
        first.map(|leg| party(&leg.from)).unwrap_or_default()
    };
    let answered_here = record.legs.iter().filter(mine).any(|leg| leg.answer.is_some());
    let talk = record.legs.iter().map(|leg| leg.talk_seconds).max().unwrap_or(0);
    let when = jiff::Timestamp::from_second(record.start)
        .map(|time| time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    Seen {
        when,
        other,
        outgoing,
        missed: !outgoing && !answered_here,
        talk,
    }
}

/// A number as a button that dials it.
fn dial_button(number: &str, csrf: &str) -> Markup {
    html! {
        form.inline method="post" action="/console/dial" {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" name="dest" value=(number) title={ "Call " (number) } { (number) }
        }
    }
}

/// `GET /console`: the user's page.
pub async fn console(State(sources): State<Arc<Sources>>, headers: HeaderMap) -> Response {
    let Some((_, session)) = sources.sessions.of(&headers) else {
        return Redirect::to("/login").into_response();
    };
    let account = &session.account;
    let me = account.address();
    let records = sources
        .runtime
        .records
        .query(None, None, 10_000, |record| record.accounts.contains(&me))
        .unwrap_or_default();
    let calls: Vec<Seen> = records
        .iter()
        .rev()
        .take(20)
        .map(|record| seen(record, &me))
        .collect();
    let phones = sources.runtime.network.devices(account);
    let messages = sources
        .runtime
        .storage
        .list(&me, Some("voicemail"))
        .map(|files| {
            files
                .iter()
                .filter(|(name, _)| name.ends_with(".wav") && !name.ends_with("greeting.wav"))
                .count()
        })
        .unwrap_or(0);
    let csrf = &session.csrf;
    page(
        &me,
        html! {
            section {
                h2 { "Calls" }
                @if calls.is_empty() { p { "No calls yet." } } @else {
                    table {
                        tr { th { "When" } th { "Who" } th { "" } th { "Talked" } }
                        @for call in &calls {
                            tr.missed[call.missed] {
                                td { (call.when) }
                                td { @if call.other.is_empty() { "?" } @else { (dial_button(&call.other, csrf)) } }
                                td { @if call.outgoing { "called" } @else if call.missed { "missed" } @else { "answered" } }
                                td { @if call.missed { "–" } @else { (call.talk) " s" } }
                            }
                        }
                    }
                }
                form method="post" action="/console/dial" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "Call " input name="dest" placeholder="202"; button type="submit" { "Dial" } }
                }
            }
            section {
                h2 { "Phones" }
                @if phones.is_empty() { p { "No phone is registered." } } @else {
                    ul { @for phone in &phones { li.phone { (phone.contact) } } }
                }
            }
            section {
                h2 { "Voicemail" }
                p #voicemail { (messages) " message" @if messages != 1 { "s" } }
            }
            @if account.domain_admin { (administration(&sources, account, csrf)) }
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Log out" }
            }
        },
    )
    .into_response()
}

/// What a domain administrator sees besides: live calls, running tasks
/// (each with a button that ends it), registrations, the domain's
/// programs with their compile result, the last script errors.
fn administration(sources: &Sources, admin: &Account, csrf: &str) -> Markup {
    let domain = format!("@{}", admin.domain);
    let ours = |account: &str| account.ends_with(&domain);
    let live: Vec<(CallRecord, usize)> = sources
        .runtime
        .records
        .live()
        .into_iter()
        .filter(|(record, _)| {
            record.accounts.iter().any(|account| ours(account)) || record.accounts.is_empty()
        })
        .collect();
    let tasks: Vec<_> = sources
        .runtime
        .registry
        .summaries()
        .into_iter()
        .filter(|task| ours(&task.account))
        .collect();
    let registrations: Vec<_> = sources
        .sip
        .registrations()
        .into_iter()
        .filter(|(account, ..)| ours(account))
        .collect();
    let programs: Vec<(String, &str, Result<(), String>)> = sources
        .runtime
        .environments
        .program_names(&admin.domain)
        .into_iter()
        .map(|(name, layer)| {
            let compiled = match sources.runtime.environments.program(&admin.domain, &name) {
                Ok(_) => Ok(()),
                Err(pbx_runtime::env::ProgramError::Compile { diagnostics, .. }) => {
                    Err(pbx_runtime::env::one_per_line(&diagnostics))
                }
                Err(error) => Err(error.to_string()),
            };
            (name, layer, compiled)
        })
        .collect();
    let queues: Vec<_> = sources
        .runtime
        .all_queue_figures()
        .into_iter()
        .filter(|queue| queue.domain == admin.domain)
        .collect();
    let (watches, handling) = sources.runtime.parlay.all();
    let watches: Vec<_> = watches.into_iter().filter(|watch| ours(&watch.account)).collect();
    let handling: Vec<_> = handling
        .into_iter()
        .filter(|(account, _)| ours(account))
        .collect();
    let errors: Vec<String> = sources
        .events
        .recent_errors
        .lock()
        .map(|errors| errors.iter().rev().cloned().collect())
        .unwrap_or_default();
    let since = |start: i64| {
        jiff::Timestamp::from_second(start)
            .map(|time| time.strftime("%H:%M:%S UTC").to_string())
            .unwrap_or_default()
    };
    html! {
        section #live-calls {
            h2 { "Live calls" }
            @if live.is_empty() { p { "None." } } @else {
                table {
                    tr { th { "Since" } th { "From" } th { "To" } th { "Accounts" } th { "Program" } th { "Legs up" } th { "" } }
                    @for (record, legs) in &live {
                        tr.live {
                            td { (since(record.start)) }
                            td { (party(&record.caller)) }
                            td { (party(&record.called)) }
                            td { (record.accounts.join(", ")) }
                            td { (record.program.clone().unwrap_or_default()) }
                            td { (legs) }
                            td { (end_button("call", record.id, csrf, "End call")) }
                        }
                    }
                }
            }
        }
        section #tasks {
            h2 { "Tasks" }
            @if tasks.is_empty() { p { "None." } } @else {
                table {
                    tr { th { "ID" } th { "Program" } th { "Account" } th { "State" } th { "" } }
                    @for task in &tasks {
                        tr.task {
                            td { (task.id.0) } td { (task.program) } td { (task.account) } td { (task.state) }
                            td { (end_button("task", task.id.0 as i64, csrf, "End task")) }
                        }
                    }
                }
            }
        }
        @if !queues.is_empty() {
            section #queues {
                h2 { "Call queues" }
                table {
                    tr { th { "Queue" } th { "Waiting" } th { "Longest wait" } th { "Agents logged in" } th { "Agents busy" } }
                    @for queue in &queues {
                        tr.queue {
                            td { (queue.queue) } td { (queue.waiting) } td { (queue.longest_wait.as_secs()) " s" }
                            td { (queue.agents.logged_in) } td { (queue.agents.busy) }
                        }
                    }
                }
            }
        }
        @if !watches.is_empty() || !handling.is_empty() {
            section #parlay {
                h2 { "Parlay X rules" }
                @if !watches.is_empty() {
                    table {
                        tr { th { "Account" } th { "Mode" } th { "When" } th { "Client" } th { "Correlator" } th { "Set by" } }
                        @for watch in &watches {
                            tr.watch {
                                td { (watch.account) } td { (format!("{:?}", watch.mode)) } td { (watch.criterion.name()) }
                                td { (watch.endpoint) } td { (watch.correlator) } td { (watch.by) }
                            }
                        }
                    }
                }
                @if !handling.is_empty() {
                    table {
                        tr { th { "Account" } th { "Accepted only" } th { "Blocked" } th { "Forwarded to" } }
                        @for (account, rules) in &handling {
                            tr.handling {
                                td { (account) } td { (rules.accept.join(", ")) } td { (rules.block.join(", ")) }
                                td { (rules.forward.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
        section #registrations {
            h2 { "Registrations" }
            @if registrations.is_empty() { p { "None." } } @else {
                table {
                    tr { th { "Account" } th { "Contact" } th { "From" } th { "Expires in" } th { "Phone" } }
                    @for (account, contact, source, left, agent) in &registrations {
                        tr { td { (account) } td { (contact) } td { (source) } td { (left) " s" } td { (agent) } }
                    }
                }
            }
        }
        section #programs {
            h2 { "Programs" }
            table {
                tr { th { "Program" } th { "Layer" } th { "Compiles" } }
                @for (name, layer, compiled) in &programs {
                    tr {
                        td { (name) } td { (layer) }
                        td { @match compiled { Ok(()) => "yes", Err(diagnostics) => pre.error { (diagnostics) } } }
                    }
                }
            }
        }
        section #errors {
            h2 { "Last script errors" }
            @if errors.is_empty() { p { "None." } } @else { ul { @for error in &errors { li { code { (error) } } } } }
        }
    }
}

/// A button that ends call or task `id` (`what`: `call` or `task`).
fn end_button(what: &str, id: i64, csrf: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action="/console/end" {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" name=(what) value=(id) { (label) }
        }
    }
}

/// `POST /console/end`: a domain administrator ends a call (every leg of
/// it still up is hung up) or a task (and so its calls).
pub async fn end(
    State(sources): State<Arc<Sources>>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Response {
    let (session, fields) = match session_form(&sources, &headers, &form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    if !session.account.domain_admin {
        return (
            StatusCode::FORBIDDEN,
            page("Refused", html! { p.error { "Not allowed." } }),
        )
            .into_response();
    }
    let domain = format!("@{}", session.account.domain);
    if let Ok(call) = field(&fields, "call").parse::<i64>() {
        let ours = sources.runtime.records.live().into_iter().any(|(record, _)| {
            record.id == call && record.accounts.iter().any(|account| account.ends_with(&domain))
        });
        let message = if ours && sources.runtime.records.hang_up(call) {
            tracing::info!(admin = %session.account.address(), call, "call ended from the console");
            format!("Call {call} was hung up.")
        } else {
            "No such call of this domain in progress.".to_string()
        };
        return page(
            "End",
            html! { p #outcome { (message) } p { a href="/console" { "Back" } } },
        )
        .into_response();
    }
    let task = field(&fields, "task").parse::<u64>().ok();
    let id = task.map(pbx_lang::value::TaskId);
    let summary = id.and_then(|id| sources.runtime.registry.summary(id));
    let message = match (id, summary) {
        (Some(id), Some(summary)) if summary.account.ends_with(&domain) => {
            sources.runtime.registry.stop(id);
            tracing::info!(admin = %session.account.address(), task = id.0, "task ended from the console");
            format!("Task {} ({}) was asked to end.", id.0, summary.program)
        }
        _ => "No such task of this domain.".to_string(),
    };
    page(
        "End",
        html! { p #outcome { (message) } p { a href="/console" { "Back" } } },
    )
    .into_response()
}

/// `POST /console/dial`: click-to-dial within the session.
pub async fn dial(
    State(sources): State<Arc<Sources>>,
    headers: HeaderMap,
    RawForm(form): RawForm,
) -> Response {
    let (session, fields) = match session_form(&sources, &headers, &form) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let dest = field(&fields, "dest");
    if dest.is_empty() {
        return Redirect::to("/console").into_response();
    }
    let outcome = crate::click::dial_for(&sources, session.account.clone(), &dest, false).await;
    let (status, message) = match outcome {
        Ok(task) => (
            StatusCode::OK,
            format!("Calling {dest}: your phone rings now (task {task})."),
        ),
        Err((status, why)) => (status, why),
    };
    (
        status,
        page(
            "Click to dial",
            html! {
                p #outcome { (message) }
                p { a href="/console" { "Back" } }
            },
        ),
    )
        .into_response()
}
