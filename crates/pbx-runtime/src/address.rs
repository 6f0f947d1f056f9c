//! Addressing (FEATURES.md §2): `app#account@domain` starts `app.sppr` on
//! behalf of the account; `#app` means "app on behalf of this account";
//! `account@domain` or an alias goes through the account's rules; every call
//! to the `pbx` account starts `pbx.sppr`, which acts by the name it was
//! called by.

use std::sync::Arc;

use crate::directory::{Account, Directory, Domain, PBX_ACCOUNT};

/// A written address, split: `app#user@domain`, any part but `user` optional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub app: Option<String>,
    /// The user part (name, alias or number); empty in `#app`.
    pub user: String,
    pub domain: Option<String>,
}

impl Address {
    /// Reads `sip:callback%23ivanov@example.com;transport=udp`,
    /// `callback#ivanov@example.com`, `#callback`, `200`, `ivanov`.
    pub fn parse(text: &str) -> Option<Address> {
        let text = text.trim().trim_start_matches('<').trim_end_matches('>');
        let lower = text.to_ascii_lowercase();
        let text = if lower.starts_with("sips:") {
            &text[5..]
        } else if lower.starts_with("sip:") || lower.starts_with("tel:") {
            &text[4..]
        } else {
            text
        };
        let text = text.split([';', '?']).next().unwrap_or("");
        let text = percent_decode(text)?;
        let (app, rest) = match text.split_once('#') {
            // `#app`: the app, for the current account.
            Some(("", app)) => (Some(app.to_string()), String::new()),
            Some((app, rest)) => (Some(app.to_string()), rest.to_string()),
            None => (None, text.clone()),
        };
        let (user, domain) = match rest.rsplit_once('@') {
            Some((user, domain)) => {
                // A port after the host is not part of the domain.
                let host = domain.split(':').next().unwrap_or(domain);
                (user.to_string(), Some(host.to_ascii_lowercase()))
            }
            None => (rest, None),
        };
        let valid = |part: &str| part.chars().all(|c| c.is_alphanumeric() || "._-+*".contains(c));
        if app.as_deref().is_some_and(|app| app.is_empty() || !valid(app)) || !valid(&user) {
            return None;
        }
        if app.is_none() && user.is_empty() {
            return None;
        }
        Some(Address { app, user, domain })
    }
}

/// `%23` → `#`; `None` on a broken escape.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where a call goes.
#[derive(Clone, Debug)]
pub enum Destination {
    /// Run `app` on behalf of `account`; `called_as` is the name the call
    /// used (for `pbx.sppr`: `pbx`, `200`, `conference`).
    App {
        app: String,
        account: Arc<Account>,
        called_as: String,
    },
    /// An account: its rules decide.
    Account {
        account: Arc<Account>,
        called_as: String,
    },
    /// Not a local name: a number or address for a trunk.
    Outside(String),
}

/// Why an address leads nowhere.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("`{0}` is not an address")]
    Malformed(String),
    #[error("there is no domain `{0}` here")]
    UnknownDomain(String),
    #[error("there is no account `{0}`")]
    UnknownAccount(String),
    #[error("`#{0}` needs an account to run on behalf of")]
    NoAccount(String),
}

/// The app a number of the domain's numbers table leads to when a web
/// server decides (`stdlib-scripts/weburl.sppr`).
pub const WEBURL_APP: &str = "weburl";

/// The app a call queue's callers wait in (`stdlib-scripts/queue.sppr`),
/// run for the domain's `pbx` account with the queue's name.
pub const QUEUE_APP: &str = "queue";

/// Decides where `text` leads. `domain` is the domain bare names are in;
/// `current` the account dialling (a phone's, or the one `#app` runs for):
/// its speed dials apply, then its domain's feature codes (which start
/// their app for it) and the codes of the domain's numbers table.
pub fn resolve(
    directory: &Directory,
    text: &str,
    domain: Option<&str>,
    current: Option<&Arc<Account>>,
) -> Result<Destination, AddressError> {
    let dialled = text.trim().trim_start_matches("sip:");
    if let Some(target) = current.and_then(|account| account.speed_dials.get(dialled)) {
        // One level only: a speed dial's target is an address, not a code.
        return resolve_address(directory, target, domain, current, true);
    }
    if let Some(account) = current {
        let home = directory.domain(&account.domain);
        if let Some(app) = home.and_then(|home| home.feature_code(dialled)) {
            return Ok(Destination::App {
                app: app.to_string(),
                account: account.clone(),
                called_as: dialled.to_string(),
            });
        }
        // A feature code of the numbers table: for the domain's own.
        if dialled.starts_with('*') {
            if let Some(home) = home.filter(|home| home.numbers.contains_key(dialled)) {
                return number(directory, home, dialled, current);
            }
        }
    }
    resolve_address(directory, text, domain, current, true)
}

/// Where a number of `domain`'s numbers table leads: its destination, or
/// its web server (`weburl` for its owner, `pbx` by default).
fn number(
    directory: &Directory,
    domain: &Domain,
    number: &str,
    current: Option<&Arc<Account>>,
) -> Result<Destination, AddressError> {
    let entry = &domain.numbers[number];
    if let Some(destination) = &entry.destination {
        // One level only: a destination is an address, not another number.
        return resolve_address(directory, destination, Some(&domain.name), current, false);
    }
    let owner = entry.owner.as_deref().unwrap_or(PBX_ACCOUNT);
    let account = domain
        .find(owner)
        .ok_or_else(|| AddressError::UnknownAccount(owner.to_string()))?;
    Ok(Destination::App {
        app: WEBURL_APP.to_string(),
        account,
        called_as: number.to_string(),
    })
}

/// When `user` at `domain` is one of its public numbers (not a feature
/// code), which anybody may call: the account it belongs to, whose class
/// of service applies to where it leads.
pub fn public_number_owner(directory: &Directory, user: &str, domain: &str) -> Option<Arc<Account>> {
    if user.starts_with('*') {
        return None;
    }
    let domain = directory.domain(domain)?;
    let entry = domain.numbers.get(user)?;
    domain.find(entry.owner.as_deref().unwrap_or(PBX_ACCOUNT))
}

fn resolve_address(
    directory: &Directory,
    text: &str,
    domain: Option<&str>,
    current: Option<&Arc<Account>>,
    numbers: bool,
) -> Result<Destination, AddressError> {
    let address = Address::parse(text).ok_or_else(|| AddressError::Malformed(text.to_string()))?;
    let domain_name = address
        .domain
        .clone()
        .or_else(|| domain.map(str::to_string))
        .or_else(|| current.map(|account| account.domain.clone()))
        .or_else(|| directory.first_domain().map(|domain| domain.name.clone()));
    let domain = match &domain_name {
        Some(name) => match directory.domain(name) {
            Some(domain) => Some(domain),
            // A domain that is not ours: an outside address.
            None if address.app.is_none() => return Ok(Destination::Outside(text.to_string())),
            None => return Err(AddressError::UnknownDomain(name.clone())),
        },
        None => None,
    };
    if let Some(app) = address.app {
        let account = if address.user.is_empty() {
            current
                .cloned()
                .ok_or_else(|| AddressError::NoAccount(app.clone()))?
        } else {
            domain
                .and_then(|domain| domain.find(&address.user))
                .ok_or_else(|| AddressError::UnknownAccount(address.user.clone()))?
        };
        let called_as = if address.user.is_empty() {
            account.name.clone()
        } else {
            address.user
        };
        return Ok(Destination::App {
            app,
            account,
            called_as,
        });
    }
    if let Some(domain) = domain.filter(|domain| {
        numbers && !address.user.starts_with('*') && domain.numbers.contains_key(&address.user)
    }) {
        return number(directory, domain, &address.user, current);
    }
    if let Some((domain, queue)) =
        domain.and_then(|domain| Some((domain, domain.queue_called(&address.user)?)))
    {
        let account = domain
            .find(PBX_ACCOUNT)
            .ok_or_else(|| AddressError::UnknownAccount(PBX_ACCOUNT.to_string()))?;
        return Ok(Destination::App {
            app: QUEUE_APP.to_string(),
            account,
            called_as: queue.to_string(),
        });
    }
    match domain.and_then(|domain| domain.find(&address.user)) {
        Some(account) if account.name == PBX_ACCOUNT => Ok(Destination::App {
            app: PBX_ACCOUNT.to_string(),
            account,
            called_as: address.user.to_ascii_lowercase(),
        }),
        Some(account) => Ok(Destination::Account {
            account,
            called_as: address.user,
        }),
        None if address
            .user
            .chars()
            .all(|c| c.is_ascii_digit() || c == '+' || c == '*') =>
        {
            Ok(Destination::Outside(address.user))
        }
        None => Err(AddressError::UnknownAccount(address.user)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn directory() -> Directory {
        let config = Config::parse(
            "[domains.\"example.com\".accounts.ivanov]\naliases = [\"101\"]\n\
             [domains.\"example.com\".accounts.petrov]\nspeed_dials = { \"*1\" = \"101\", \"*2\" = \"84951234567\" }\n\
             [domains.\"example.com\".queues.sales]\nnumber = \"500\"\n\
             [domains.\"example.com\".queues.ivanov]\nnumber = \"501\"\n",
            "t",
            &[],
        )
        .unwrap();
        Directory::from_config(&config).unwrap()
    }

    #[test]
    fn a_queue_is_reached_by_its_number_and_by_a_name_no_account_has() {
        let directory = directory();
        for dialled in ["500", "sales", "sip:Sales@example.com"] {
            let Ok(Destination::App {
                app,
                account,
                called_as,
            }) = resolve(&directory, dialled, Some("example.com"), None)
            else {
                panic!("{dialled}: the queue app")
            };
            assert_eq!(
                (app.as_str(), account.name.as_str(), called_as.as_str()),
                ("queue", "pbx", "sales"),
                "{dialled}"
            );
        }
        // A queue named like an account is reached by its number only.
        assert!(matches!(
            resolve(&directory, "ivanov", Some("example.com"), None),
            Ok(Destination::Account { .. })
        ));
        let Ok(Destination::App { called_as, .. }) = resolve(&directory, "501", Some("example.com"), None)
        else {
            panic!("the queue by its number")
        };
        assert_eq!(called_as, "ivanov");
    }

    #[test]
    fn parses_every_written_form() {
        let address = Address::parse("sip:callback%23ivanov@Example.com:5060;transport=udp").unwrap();
        assert_eq!(address.app.as_deref(), Some("callback"));
        assert_eq!(address.user, "ivanov");
        assert_eq!(address.domain.as_deref(), Some("example.com"));
        assert_eq!(Address::parse("#callback").unwrap().user, "");
        assert!(Address::parse("a/b@c").is_none());
        assert!(Address::parse("%zz").is_none());
        assert!(Address::parse("").is_none());
    }

    #[test]
    fn apps_accounts_aliases_and_the_pbx_account() {
        let directory = directory();
        let Ok(Destination::App { app, account, .. }) =
            resolve(&directory, "callback#ivanov@example.com", None, None)
        else {
            panic!("an app")
        };
        assert_eq!((app.as_str(), account.name.as_str()), ("callback", "ivanov"));
        let Ok(Destination::Account { account, .. }) = resolve(&directory, "101", Some("example.com"), None)
        else {
            panic!("an account")
        };
        assert_eq!(account.name, "ivanov");
        let Ok(Destination::App { app, called_as, .. }) =
            resolve(&directory, "conference@example.com", None, None)
        else {
            panic!("the pbx app")
        };
        assert_eq!((app.as_str(), called_as.as_str()), ("pbx", "conference"));
        let petrov = directory.find("petrov", "example.com").unwrap();
        let Ok(Destination::App { account, .. }) = resolve(&directory, "#voicemail", None, Some(&petrov))
        else {
            panic!("an app for the current account")
        };
        assert_eq!(account.name, "petrov");
        assert!(matches!(
            resolve(&directory, "5551234", None, None),
            Ok(Destination::Outside(_))
        ));
        assert_eq!(
            resolve(&directory, "nobody@example.com", None, None).unwrap_err(),
            AddressError::UnknownAccount("nobody".into())
        );
    }

    #[test]
    fn speed_dials_are_the_callers_own() {
        let directory = directory();
        let petrov = directory.find("petrov", "example.com").unwrap();
        let ivanov = directory.find("ivanov", "example.com").unwrap();
        let Ok(Destination::Account { account, .. }) = resolve(&directory, "*1", None, Some(&petrov)) else {
            panic!("petrov's *1 is ivanov")
        };
        assert_eq!(account.name, "ivanov");
        assert!(matches!(
            resolve(&directory, "*2", None, Some(&petrov)),
            Ok(Destination::Outside(number)) if number == "84951234567"
        ));
        // ivanov has no speed dials: *1 is dialled as it is.
        assert!(matches!(
            resolve(&directory, "*1", None, Some(&ivanov)),
            Ok(Destination::Outside(number)) if number == "*1"
        ));
    }
}
