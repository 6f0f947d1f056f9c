//! Domains and accounts, as configured (FEATURES.md §4), with the parts
//! that scripts change at run time (preferences) kept beside them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;
use pbx_lang::value::Portable;

use crate::calendar::{Schedule, WorkingHours};
use crate::class::Classes;
pub use crate::class::{CallScope, ClassOfService};
use crate::config::{AccountConfig, Config, ConfigError};
use crate::rules::Rule;

/// The account every domain has, running `pbx.sppr` for every call.
pub const PBX_ACCOUNT: &str = "pbx";
/// The names the `pbx` account answers to besides its own.
pub const PBX_ALIASES: [&str; 2] = ["200", "conference"];

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
    /// What it may call beyond the server: a class of its domain.
    pub class_of_service: ClassOfService,
    pub caller_id: Option<String>,
    pub speed_dials: BTreeMap<String, String>,
    /// The PIN (voicemail, hot desk): as configured, until its owner
    /// changes it (`pin()`).
    configured_pin: Option<String>,
    changed_pin: Mutex<Option<String>>,
    /// Whether it may act for the other accounts of its domain.
    pub domain_admin: bool,
    /// Whether unauthenticated callers may call it and its apps.
    pub public: bool,
    /// Preferences: as configured, then as scripts set them.
    preferences: Mutex<BTreeMap<String, Portable>>,
}

impl Account {
    /// Whether this account may act for `other` (itself, or, as a domain
    /// administrator, any account of its domain).
    pub fn may_act_for(&self, other: &Account) -> bool {
        self.domain == other.domain && (self.domain_admin || self.name == other.name)
    }

    /// The PIN in force: the one its owner set last, else the configured
    /// one. Never logged.
    pub fn pin(&self) -> Option<String> {
        self.changed_pin
            .lock()
            .ok()
            .and_then(|pin| pin.clone())
            .or_else(|| self.configured_pin.clone())
    }

    /// A new PIN, from its owner (`SetAccountPIN`; kept in the store by
    /// the caller).
    pub fn set_pin(&self, pin: &str) {
        if let Ok(mut changed) = self.changed_pin.lock() {
            *changed = Some(pin.to_string());
        }
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
    /// Its classes of service, built-in and configured.
    classes: Classes,
    /// Feature code dialled → app started for the calling account.
    pub feature_codes: BTreeMap<String, String>,
    /// This server's host names and addresses that mean this domain,
    /// lower-case.
    pub addresses: Vec<String>,
    /// Public numbers and feature codes, and where each leads.
    pub numbers: BTreeMap<String, crate::config::NumberConfig>,
    /// Call queues by name (lower-case).
    pub queues: BTreeMap<String, crate::config::QueueConfig>,
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

    /// Its classes of service, for what names one (`national`, or
    /// `national; allow 8800*`).
    pub fn classes(&self) -> &Classes {
        &self.classes
    }

    /// The queue `user` calls: its number, or its name when no account
    /// has that name.
    pub fn queue_called(&self, user: &str) -> Option<&str> {
        let user = user.to_ascii_lowercase();
        if let Some((name, _)) = self.queues.get_key_value(&user) {
            return (self.find(&user).is_none()).then_some(name.as_str());
        }
        self.queues
            .iter()
            .find(|(_, queue)| queue.number.as_deref() == Some(user.as_str()))
            .map(|(name, _)| name.as_str())
    }

    /// The app a feature code starts (`*55` → `hotdesk`).
    pub fn feature_code(&self, dialled: &str) -> Option<&str> {
        self.feature_codes.get(dialled).map(String::as_str)
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
                classes: Classes::new(&domain_config.classes)
                    .map_err(|error| fail(format!("domains.{domain_name}.{error}")))?,
                feature_codes: domain_config.feature_codes.clone(),
                addresses: domain_config
                    .addresses
                    .iter()
                    .map(|address| address.to_ascii_lowercase())
                    .collect(),
                numbers: domain_config.numbers.clone(),
                queues: domain_config
                    .queues
                    .iter()
                    .map(|(name, queue)| (name.to_ascii_lowercase(), queue.clone()))
                    .collect(),
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
                    &domain.classes,
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

    /// Every domain, by name.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.values()
    }

    /// How many domains are configured.
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// The first domain configured (the default for bare names).
    pub fn first_domain(&self) -> Option<&Domain> {
        self.domains.values().next()
    }

    /// The domain whose `addresses` include `host` (a name or an IP
    /// address of this server).
    pub fn domain_at(&self, host: &str) -> Option<&Domain> {
        let host = host.to_ascii_lowercase();
        self.domains
            .values()
            .find(|domain| domain.addresses.contains(&host))
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
    classes: &Classes,
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
    let class_of_service = classes.parse(config.class_of_service.as_deref().unwrap_or("internal"))?;
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
        configured_pin: config.pin.clone(),
        changed_pin: Mutex::new(None),
        domain_admin: config.domain_admin || name == PBX_ACCOUNT,
        public: config.public.unwrap_or(name == PBX_ACCOUNT),
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
    fn accounts_name_classes_of_their_domain() {
        let config = Config::parse(
            "[domains.\"example.com\".classes.sales]\nallow = [\"8*\"]\ndeny = [\"8800*\"]\n\
             [domains.\"example.com\".accounts.ivanov]\nclass_of_service = \"Sales\"\n\
             [domains.\"example.com\".accounts.petrov]\nclass_of_service = \"sales; allow 8800*\"\n\
             [domains.\"example.com\".accounts.guest]\n",
            "t",
            &[],
        )
        .unwrap();
        let directory = Directory::from_config(&config).unwrap();
        let account = |name: &str| directory.find(name, "example.com").unwrap();
        assert_eq!(account("ivanov").class_of_service.name(), "sales");
        assert!(account("ivanov").class_of_service.allows("84951234567"));
        assert!(!account("ivanov").class_of_service.allows("88001234567"));
        assert!(account("petrov").class_of_service.allows("88001234567"));
        assert_eq!(account("guest").class_of_service, ClassOfService::default());
        assert!(directory
            .domain("example.com")
            .unwrap()
            .classes()
            .class("sales")
            .is_ok());
    }
}
