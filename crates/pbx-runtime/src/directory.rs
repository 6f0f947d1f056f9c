//! Domains and accounts, as configured (FEATURES.md §4), with the parts
//! that scripts change at run time (preferences) kept beside them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;
use pbx_lang::value::Portable;

use crate::calendar::{Schedule, WorkingHours};
use crate::config::{AccountConfig, Config, ConfigError};
use crate::rules::Rule;

/// The account every domain has, running `pbx.sppr` for every call.
pub const PBX_ACCOUNT: &str = "pbx";
/// The names the `pbx` account answers to besides its own.
pub const PBX_ALIASES: [&str; 2] = ["200", "conference"];

/// How far a number reaches, from nearest to farthest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallScope {
    /// An account or extension of the server.
    Internal,
    /// A short outside number (up to 7 digits).
    Local,
    /// A longer number without an international prefix.
    National,
    /// `+`, `00` or `810` first.
    International,
}

impl CallScope {
    fn parse(word: &str) -> Option<CallScope> {
        Some(match word {
            "internal" => CallScope::Internal,
            "local" => CallScope::Local,
            "national" => CallScope::National,
            "international" => CallScope::International,
            _ => return None,
        })
    }

    /// How far an outside number reaches.
    pub fn of_number(number: &str) -> CallScope {
        let digits: String = number
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        if digits.starts_with('+') || digits.starts_with("00") || digits.starts_with("810") {
            CallScope::International
        } else if digits.len() <= 5 {
            CallScope::Internal
        } else if digits.len() <= 7 {
            CallScope::Local
        } else {
            CallScope::National
        }
    }
}

/// What an account may call: `national`, or `local; allow 8800*; deny 8809*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassOfService {
    pub scope: CallScope,
    /// Patterns (`*` wildcard) allowed beyond the scope.
    pub allow: Vec<String>,
    /// Patterns refused even within the scope.
    pub deny: Vec<String>,
}

impl Default for ClassOfService {
    /// With nothing configured an account reaches only the server: no call
    /// leaves through a trunk unless it is allowed (FEATURES.md §12).
    fn default() -> ClassOfService {
        ClassOfService {
            scope: CallScope::Internal,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

fn pattern_matches(pattern: &str, number: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => number.starts_with(prefix),
        None => number == pattern,
    }
}

impl ClassOfService {
    /// Parses `national; allow 8800*; deny 8809*`.
    pub fn parse(text: &str) -> Result<ClassOfService, String> {
        let mut class = ClassOfService::default();
        for (index, part) in text
            .split(';')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .enumerate()
        {
            let lower = part.to_ascii_lowercase();
            if let Some(scope) = CallScope::parse(&lower) {
                if index != 0 {
                    return Err(format!("`{part}`: the scope comes first"));
                }
                class.scope = scope;
            } else if let Some(patterns) = lower.strip_prefix("allow ") {
                class
                    .allow
                    .extend(patterns.split(',').map(|pattern| pattern.trim().to_string()));
            } else if let Some(patterns) = lower.strip_prefix("deny ") {
                class
                    .deny
                    .extend(patterns.split(',').map(|pattern| pattern.trim().to_string()));
            } else {
                return Err(format!(
                    "`{part}`: expected internal, local, national or international, then `allow PATTERN` or `deny PATTERN`"
                ));
            }
        }
        Ok(class)
    }

    /// Whether an outside number may be called.
    pub fn allows(&self, number: &str) -> bool {
        let digits: String = number
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        if self.deny.iter().any(|pattern| pattern_matches(pattern, &digits)) {
            return false;
        }
        CallScope::of_number(&digits) <= self.scope
            || self.allow.iter().any(|pattern| pattern_matches(pattern, &digits))
    }
}

/// An account.
#[derive(Debug)]
pub struct Account {
    /// The name, lower-case.
    pub name: String,
    /// The domain, lower-case.
    pub domain: String,
    pub password: Option<String>,
    pub aliases: Vec<String>,
    /// Prompt language (a folder name); `None` is English.
    pub language: Option<String>,
    pub zone: TimeZone,
    pub working_hours: Option<WorkingHours>,
    pub rules: Vec<Rule>,
    pub class_of_service: ClassOfService,
    pub caller_id: Option<String>,
    pub speed_dials: BTreeMap<String, String>,
    pub pin: Option<String>,
    /// Whether it may act for the other accounts of its domain.
    pub domain_admin: bool,
    /// Preferences: as configured, then as scripts set them.
    preferences: Mutex<BTreeMap<String, Portable>>,
}

impl Account {
    /// Whether this account may act for `other` (itself, or, as a domain
    /// administrator, any account of its domain).
    pub fn may_act_for(&self, other: &Account) -> bool {
        self.domain == other.domain && (self.domain_admin || self.name == other.name)
    }

    /// `name@domain`.
    pub fn address(&self) -> String {
        format!("{}@{}", self.name, self.domain)
    }

    /// One preference, or null.
    pub fn preference(&self, key: &str) -> Portable {
        self.preferences
            .lock()
            .map(|preferences| preferences.get(key).cloned().unwrap_or(Portable::Null))
            .unwrap_or(Portable::Null)
    }

    /// All preferences, in key order.
    pub fn preferences(&self) -> Vec<(String, Portable)> {
        self.preferences
            .lock()
            .map(|preferences| {
                preferences
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets (or, with null, removes) a preference.
    pub fn set_preference(&self, key: &str, value: Portable) {
        if let Ok(mut preferences) = self.preferences.lock() {
            match value {
                Portable::Null => preferences.remove(key),
                value => preferences.insert(key.to_string(), value),
            };
        }
    }
}

/// A domain and its accounts.
#[derive(Debug)]
pub struct Domain {
    pub name: String,
    pub zone: TimeZone,
    accounts: BTreeMap<String, Arc<Account>>,
    /// Alias → account name, lower-case.
    aliases: HashMap<String, String>,
}

impl Domain {
    /// The account called `user` (its name or an alias), ignoring case.
    pub fn find(&self, user: &str) -> Option<Arc<Account>> {
        let user = user.to_ascii_lowercase();
        let name = self.aliases.get(&user).unwrap_or(&user);
        self.accounts.get(name).cloned()
    }

    /// Every account.
    pub fn accounts(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.accounts.values()
    }
}

/// All domains.
#[derive(Debug, Default)]
pub struct Directory {
    domains: BTreeMap<String, Domain>,
}

fn toml_to_portable(value: &toml::Value) -> Portable {
    match value {
        toml::Value::String(text) => Portable::str(text),
        toml::Value::Integer(number) => Portable::Num(*number),
        toml::Value::Float(number) => Portable::str(&number.to_string()),
        toml::Value::Boolean(true) => Portable::str("YES"),
        toml::Value::Boolean(false) => Portable::Null,
        toml::Value::Datetime(when) => Portable::str(&when.to_string()),
        toml::Value::Array(items) => Portable::Array(items.iter().map(toml_to_portable).collect()),
        toml::Value::Table(table) => Portable::Dict(
            table
                .iter()
                .map(|(key, value)| {
                    (
                        pbx_lang::value::Bytes::from(key.as_str()),
                        toml_to_portable(value),
                    )
                })
                .collect(),
            false,
        ),
    }
}

impl Directory {
    /// Builds the directory from the configuration (already checked).
    pub fn from_config(config: &Config) -> Result<Directory, ConfigError> {
        let fail = |message: String| ConfigError {
            location: config
                .source
                .as_ref()
                .map_or_else(|| "configuration".to_string(), |path| path.display().to_string()),
            message,
        };
        let server_zone = TimeZone::get(&config.server.time_zone).map_err(|error| fail(error.to_string()))?;
        let mut domains = BTreeMap::new();
        for (domain_name, domain_config) in &config.domains {
            let domain_name = domain_name.to_ascii_lowercase();
            let zone = match &domain_config.time_zone {
                Some(zone) => TimeZone::get(zone).map_err(|error| fail(error.to_string()))?,
                None => server_zone.clone(),
            };
            let mut domain = Domain {
                name: domain_name.clone(),
                zone: zone.clone(),
                accounts: BTreeMap::new(),
                aliases: HashMap::new(),
            };
            let mut configured: Vec<(String, AccountConfig)> = domain_config
                .accounts
                .iter()
                .map(|(name, account)| (name.to_ascii_lowercase(), account.clone()))
                .collect();
            if !configured.iter().any(|(name, _)| name == PBX_ACCOUNT) {
                configured.push((PBX_ACCOUNT.to_string(), AccountConfig::default()));
            }
            for (name, mut account_config) in configured {
                if name == PBX_ACCOUNT {
                    for alias in PBX_ALIASES {
                        if !account_config
                            .aliases
                            .iter()
                            .any(|known| known.eq_ignore_ascii_case(alias))
                        {
                            account_config.aliases.push(alias.to_string());
                        }
                    }
                }
                let account = build_account(
                    &name,
                    &domain_name,
                    &account_config,
                    &zone,
                    domain_config.language.as_deref(),
                )
                .map_err(|problem| fail(format!("domains.{domain_name}.accounts.{name}: {problem}")))?;
                for alias in &account.aliases {
                    let alias = alias.to_ascii_lowercase();
                    if let Some(other) = domain.aliases.insert(alias.clone(), name.clone()) {
                        return Err(fail(format!(
                            "domains.{domain_name}: alias `{alias}` is given to both `{other}` and `{name}`"
                        )));
                    }
                }
                domain.accounts.insert(name, Arc::new(account));
            }
            for alias in domain.aliases.keys() {
                if domain.accounts.contains_key(alias) {
                    return Err(fail(format!(
                        "domains.{domain_name}: alias `{alias}` is also an account's name"
                    )));
                }
            }
            domains.insert(domain_name, domain);
        }
        Ok(Directory { domains })
    }

    /// The domain called `name`, ignoring case.
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.get(&name.to_ascii_lowercase())
    }

    /// How many domains are configured.
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// The first domain configured (the default for bare names).
    pub fn first_domain(&self) -> Option<&Domain> {
        self.domains.values().next()
    }

    /// `user@domain` (name or alias), ignoring case.
    pub fn find(&self, user: &str, domain: &str) -> Option<Arc<Account>> {
        self.domain(domain)?.find(user)
    }
}

fn build_account(
    name: &str,
    domain: &str,
    config: &AccountConfig,
    domain_zone: &TimeZone,
    domain_language: Option<&str>,
) -> Result<Account, String> {
    let zone = match &config.time_zone {
        Some(zone) => TimeZone::get(zone).map_err(|error| error.to_string())?,
        None => domain_zone.clone(),
    };
    let working_hours = match &config.working_hours {
        Some(text) => Some(WorkingHours {
            schedule: Schedule::parse(text)?,
            holidays: config
                .holidays
                .iter()
                .map(|day| day.parse().map_err(|_| format!("`{day}` is not a date")))
                .collect::<Result<_, _>>()?,
            zone: zone.clone(),
        }),
        None => None,
    };
    let rules = config
        .rules
        .iter()
        .map(|rule| Rule::parse(&rule.when, &rule.then))
        .collect::<Result<_, _>>()?;
    let class_of_service = match &config.class_of_service {
        Some(text) => ClassOfService::parse(text)?,
        None => ClassOfService::default(),
    };
    let language = config
        .language
        .clone()
        .or_else(|| domain_language.map(str::to_string))
        .map(|language| language.to_ascii_lowercase())
        .filter(|language| language != "english");
    let mut preferences: BTreeMap<String, Portable> = config
        .preferences
        .iter()
        .map(|(key, value)| (key.clone(), toml_to_portable(value)))
        .collect();
    preferences
        .entry("Language".into())
        .or_insert_with(|| Portable::str(language.as_deref().unwrap_or("english")));
    if let Some(zone_name) = zone.iana_name() {
        preferences
            .entry("TimeZone".into())
            .or_insert_with(|| Portable::str(zone_name));
    }
    Ok(Account {
        name: name.to_string(),
        domain: domain.to_string(),
        password: config.password.clone(),
        aliases: config.aliases.clone(),
        language,
        zone,
        working_hours,
        rules,
        class_of_service,
        caller_id: config.caller_id.clone(),
        speed_dials: config.speed_dials.clone(),
        pin: config.pin.clone(),
        domain_admin: config.domain_admin || name == PBX_ACCOUNT,
        preferences: Mutex::new(preferences),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_has_the_pbx_account_with_its_aliases() {
        let config = Config::parse(
            "[domains.\"example.com\".accounts.ivanov]\naliases = [\"101\"]\n",
            "t",
            &[],
        )
        .unwrap();
        let directory = Directory::from_config(&config).unwrap();
        let pbx = directory.find("200", "EXAMPLE.com").unwrap();
        assert_eq!(pbx.name, "pbx");
        assert_eq!(directory.find("Conference", "example.com").unwrap().name, "pbx");
        assert_eq!(
            directory.find("101", "example.com").unwrap().address(),
            "ivanov@example.com"
        );
        assert!(directory.find("nobody", "example.com").is_none());
    }

    #[test]
    fn class_of_service_reaches_as_far_as_its_scope() {
        let national = ClassOfService::parse("national; deny 8809*; allow +7495*").unwrap();
        assert!(national.allows("84951234567"));
        assert!(!national.allows("88091234567"));
        assert!(!national.allows("+12125551234"));
        assert!(national.allows("+74951234567"));
        let internal = ClassOfService::default();
        assert!(internal.allows("201"));
        assert!(!internal.allows("5551234"));
        assert!(ClassOfService::parse("galactic").is_err());
    }
}
