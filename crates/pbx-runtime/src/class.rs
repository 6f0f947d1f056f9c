//! Class of service (FEATURES.md §6): what a line may call beyond the
//! server. Each domain has five classes built in (`internal`, `local`,
//! `national`, `international`, `premium`) and may define more, or
//! redefine those, once, by number patterns
//! (`[domains."example.com".classes.NAME]`); an account (a virtual line
//! too) names its class. A number its class does not allow is never
//! placed: a phone's call goes to the stock app `notallowed` (a refusal
//! prompt, or 403 where it cannot be played, see `Runtime::route`), a
//! script's `StartCall` fails with an error string starting with `403`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::address::Destination;
use crate::config::ClassConfig;
use crate::directory::Account;

/// The app a phone's refused call is handed to, for the calling account,
/// with the number dialled as its start parameter
/// (`stdlib-scripts/notallowed.sppr`).
pub const NOT_ALLOWED_APP: &str = "notallowed";

/// Premium-rate numbers, which the built-in `national` and
/// `international` classes refuse and `premium` reaches: Russia's 809
/// code (dialled 8 809, 7 809 or +7 809) and ITU's International Premium
/// Rate Service, +979 (also dialled 00 979 or 810 979). A domain that
/// needs others redefines those classes.
pub const PREMIUM_NUMBERS: [&str; 6] = ["8809*", "7809*", "+7809*", "+979*", "00979*", "810979*"];

/// The classes every domain has unless it defines one of the same name.
pub const BUILT_IN_CLASSES: [&str; 5] = ["internal", "local", "national", "international", "premium"];

/// How far a number reaches by its shape alone, from nearest to farthest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallScope {
    /// Up to 5 digits: another system's extension, a service number
    /// (112).
    Internal,
    /// A short outside number (6 or 7 digits).
    Local,
    /// A longer number without an international prefix.
    National,
    /// `+`, `00` or `810` first.
    International,
}

impl CallScope {
    /// How far an outside number reaches.
    pub fn of_number(number: &str) -> CallScope {
        let digits = dialled_digits(number);
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

/// The digits of a number as dialled (and a leading `+`), what patterns
/// are matched against: `+7 (495) 123-45-67` is `+74951234567`.
fn dialled_digits(number: &str) -> String {
    number
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}

/// A number pattern: digits, a leading `+` if the number has one, and at
/// most one `*` standing for any run of digits (`8809*`, `+7495*`, `112`;
/// `*` alone is every number). The trunks' `numbers` are written the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// What comes before the `*` (all of it when there is none).
    head: String,
    /// What comes after the `*`; `None` when there is no `*`.
    tail: Option<String>,
}

impl Pattern {
    /// Reads `8809*`; says what is wrong with anything else.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let text = text.trim();
        let body = text.strip_prefix('+').unwrap_or(text);
        let well_formed = !body.is_empty()
            && body.chars().all(|c| c.is_ascii_digit() || c == '*')
            && body.matches('*').count() <= 1;
        if !well_formed {
            return Err(format!(
                "`{text}` is not a number pattern; expected digits, a leading `+` and at most one `*` (`8809*`)"
            ));
        }
        Ok(match text.split_once('*') {
            Some((head, tail)) => Pattern {
                head: head.to_string(),
                tail: Some(tail.to_string()),
            },
            None => Pattern {
                head: text.to_string(),
                tail: None,
            },
        })
    }

    fn matches(&self, digits: &str) -> bool {
        match &self.tail {
            None => digits == self.head,
            Some(tail) => {
                digits.len() >= self.head.len() + tail.len()
                    && digits.starts_with(&self.head)
                    && digits.ends_with(tail.as_str())
            }
        }
    }

    /// How much of a number the pattern pins down: the characters it
    /// names, and an exact number over a `*` naming as many.
    fn specificity(&self) -> (usize, bool) {
        let named = self.head.len() + self.tail.as_ref().map_or(0, String::len);
        (named, self.tail.is_none())
    }
}

/// One class's own patterns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rules {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
}

/// What decides the numbers a class's own patterns do not.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Base {
    /// Their shape: those within the scope are allowed.
    Scope(CallScope),
    /// Another class (lower-case name).
    Extends(String),
}

/// A class as defined: built in, or in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Definition {
    base: Base,
    rules: Rules,
}

/// The built-in class called `name` (lower-case).
fn built_in(name: &str) -> Option<Definition> {
    let premium = || {
        PREMIUM_NUMBERS
            .iter()
            .filter_map(|text| Pattern::parse(text).ok())
            .collect()
    };
    let (scope, deny) = match name {
        "internal" => (CallScope::Internal, Vec::new()),
        "local" => (CallScope::Local, Vec::new()),
        "national" => (CallScope::National, premium()),
        "international" => (CallScope::International, premium()),
        "premium" => (CallScope::International, Vec::new()),
        _ => return None,
    };
    Some(Definition {
        base: Base::Scope(scope),
        rules: Rules {
            allow: Vec::new(),
            deny,
        },
    })
}

/// A mistake in a domain's classes: which class, which of its keys (none:
/// the class as a whole), and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("classes.{class}: {message}")]
pub struct ClassError {
    pub class: String,
    pub key: Option<&'static str>,
    pub message: String,
}

/// A domain's classes: the built-in ones, and those its configuration
/// defines (which replace built-in ones of the same name).
#[derive(Clone, Debug, Default)]
pub struct Classes {
    /// The domain's own, by lower-case name.
    defined: BTreeMap<String, Definition>,
}

impl Classes {
    /// A domain's classes from its `classes` tables: every pattern read,
    /// every class `extends` names found, no class extending itself round
    /// a loop.
    pub fn new(configured: &BTreeMap<String, ClassConfig>) -> Result<Classes, ClassError> {
        let mut defined = BTreeMap::new();
        for (name, config) in configured {
            let error = |key: Option<&'static str>, message: String| ClassError {
                class: name.clone(),
                key,
                message,
            };
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_name {
                return Err(error(
                    None,
                    "a class's name is letters, digits, `-` and `_`".into(),
                ));
            }
            let base = match (&config.extends, config.scope) {
                (Some(_), Some(_)) => {
                    return Err(error(
                        Some("scope"),
                        "give `extends` or `scope`, not both (a class extending another has its scope)"
                            .into(),
                    ))
                }
                (Some(parent), None) => Base::Extends(parent.trim().to_ascii_lowercase()),
                (None, scope) => Base::Scope(scope.unwrap_or(CallScope::Internal)),
            };
            let read = |key: &'static str, patterns: &[String]| {
                patterns
                    .iter()
                    .map(|text| Pattern::parse(text))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|problem| error(Some(key), problem))
            };
            let rules = Rules {
                allow: read("allow", &config.allow)?,
                deny: read("deny", &config.deny)?,
            };
            defined.insert(name.to_ascii_lowercase(), Definition { base, rules });
        }
        let classes = Classes { defined };
        for (name, definition) in &classes.defined {
            if matches!(definition.base, Base::Extends(_)) {
                classes.resolve(name).map_err(|message| ClassError {
                    class: name.clone(),
                    key: Some("extends"),
                    message,
                })?;
            }
        }
        Ok(classes)
    }

    /// Every class's name: the built-in ones, then the domain's others.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = BUILT_IN_CLASSES.iter().map(|name| name.to_string()).collect();
        names.extend(
            self.defined
                .keys()
                .filter(|name| !BUILT_IN_CLASSES.contains(&name.as_str()))
                .cloned(),
        );
        names
    }

    /// The class called `name`, ignoring case.
    pub fn class(&self, name: &str) -> Result<ClassOfService, String> {
        let name = name.trim().to_ascii_lowercase();
        let (layers, scope) = self.resolve(&name)?;
        Ok(ClassOfService { name, layers, scope })
    }

    /// What an account's `class_of_service` says: a class's name
    /// (`national`), optionally followed by patterns of the account's own
    /// (`national; allow 8800*; deny 8809*`), which extend the class as a
    /// class's own patterns do. Patterns alone (`allow 8800*`) extend the
    /// `internal` scope.
    pub fn parse(&self, text: &str) -> Result<ClassOfService, String> {
        let parts: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect();
        let is_rule = |part: &str| {
            let lower = part.to_ascii_lowercase();
            lower.starts_with("allow ") || lower.starts_with("deny ")
        };
        let (class, own) = match parts.split_first() {
            None => return self.class("internal"),
            Some((first, rest)) if !is_rule(first) => (Some(*first), rest),
            Some(_) => (None, &parts[..]),
        };
        if let (Some(class), true) = (class, own.is_empty()) {
            return self.class(class);
        }
        let mut rules = Rules::default();
        for part in own {
            let lower = part.to_ascii_lowercase();
            let (list, patterns) = if let Some(patterns) = lower.strip_prefix("allow ") {
                (&mut rules.allow, patterns)
            } else if let Some(patterns) = lower.strip_prefix("deny ") {
                (&mut rules.deny, patterns)
            } else {
                return Err(format!(
                    "`{part}`: expected `allow PATTERN` or `deny PATTERN` (the class's name comes first)"
                ));
            };
            for pattern in patterns.split(',') {
                list.push(Pattern::parse(pattern)?);
            }
        }
        let (mut layers, scope) = match class {
            Some(class) => self.resolve(&class.to_ascii_lowercase())?,
            None => (Vec::new(), CallScope::Internal),
        };
        layers.insert(0, rules);
        Ok(ClassOfService {
            name: parts.join("; "),
            layers,
            scope,
        })
    }

    /// The patterns of class `name` and of those it extends, its own
    /// first, and the scope the last of them ends with.
    fn resolve(&self, name: &str) -> Result<(Vec<Rules>, CallScope), String> {
        let mut layers = Vec::new();
        let mut chain: Vec<String> = Vec::new();
        let mut current = name.to_string();
        // After a domain's class that extends the built-in class of its
        // own name, only built-in classes are looked at.
        let mut built_in_only = false;
        loop {
            if chain.contains(&current) && !built_in_only {
                chain.push(current);
                return Err(format!(
                    "classes extend each other in a loop: {}",
                    chain.join(" → ")
                ));
            }
            let own = if built_in_only {
                None
            } else {
                self.defined.get(&current).cloned()
            };
            let is_domains = own.is_some();
            let Some(definition) = own.or_else(|| built_in(&current)) else {
                return Err(match chain.last() {
                    Some(child) => format!(
                        "`{child}` extends `{current}`, which is not a class; the classes are {}",
                        self.names().join(", ")
                    ),
                    None => format!(
                        "there is no class `{current}`; the classes are {}",
                        self.names().join(", ")
                    ),
                });
            };
            chain.push(current.clone());
            if definition.rules != Rules::default() {
                layers.push(definition.rules);
            }
            match definition.base {
                Base::Scope(scope) => return Ok((layers, scope)),
                Base::Extends(parent) => {
                    if parent == current && is_domains {
                        if built_in(&current).is_none() {
                            return Err(format!("`{current}` extends itself"));
                        }
                        built_in_only = true;
                    }
                    current = parent;
                }
            }
        }
    }
}

/// What an account may call beyond the server: a class, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassOfService {
    /// As the account names it (`national`, `national; allow 8800*`).
    name: String,
    /// Patterns: the class's own first, then those of the classes it
    /// extends, nearest first.
    layers: Vec<Rules>,
    /// What decides a number no pattern does.
    scope: CallScope,
}

impl Default for ClassOfService {
    /// Built-in `internal`: no call leaves through a trunk unless it is
    /// allowed (FEATURES.md §12).
    fn default() -> ClassOfService {
        ClassOfService {
            name: "internal".into(),
            layers: Vec::new(),
            scope: CallScope::Internal,
        }
    }
}

impl ClassOfService {
    /// Reads an account's `class_of_service` against the built-in classes
    /// only (a domain's own are known to `Classes`).
    pub fn parse(text: &str) -> Result<ClassOfService, String> {
        Classes::default().parse(text)
    }

    /// The class's name, as the account gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a number beyond the server may be called: as the most
    /// specific pattern that matches it says, whichever class it is in; on
    /// a tie the class's own pattern over one of the class it extends, and
    /// `deny` over `allow`. A number no pattern matches is allowed within
    /// the scope. So a class extending another cannot open by accident
    /// what the other shuts precisely (`allow +*` leaves `deny +7809*`).
    pub fn allows(&self, number: &str) -> bool {
        let digits = dialled_digits(number);
        let mut decisive = None;
        for (depth, rules) in self.layers.iter().enumerate() {
            for (patterns, denies) in [(&rules.allow, false), (&rules.deny, true)] {
                for pattern in patterns.iter().filter(|pattern| pattern.matches(&digits)) {
                    let rank = (pattern.specificity(), std::cmp::Reverse(depth), denies);
                    decisive = decisive.max(Some(rank));
                }
            }
        }
        match decisive {
            Some((_, _, denies)) => !denies,
            None => CallScope::of_number(&digits) <= self.scope,
        }
    }

    /// Why `number` is not placed, as a call-placing built-in's error
    /// string: `403 Forbidden (88091234567 is not allowed by the class of
    /// service national)`.
    pub fn refusal(&self, number: &str) -> String {
        format!(
            "403 Forbidden ({number} is not allowed by the class of service {})",
            self.name
        )
    }
}

/// Where a call `caller` (authenticated) makes goes: a number beyond the
/// server its class of service does not allow goes to `NOT_ALLOWED_APP`,
/// run for the caller with the number as the name it was called by;
/// anything else where it was resolved to. The SIP side asks this of
/// every call a phone makes, so no refused number reaches a trunk.
pub fn screen(caller: &Arc<Account>, destination: Destination) -> Destination {
    match destination {
        Destination::Outside(number) if !caller.class_of_service.allows(&number) => {
            tracing::info!(
                account = %caller.address(),
                %number,
                class = caller.class_of_service.name(),
                "call refused by the class of service"
            );
            Destination::App {
                app: NOT_ALLOWED_APP.into(),
                account: caller.clone(),
                called_as: number,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(text: &str) -> Result<Classes, ClassError> {
        #[derive(Deserialize)]
        struct Domain {
            classes: BTreeMap<String, ClassConfig>,
        }
        let domain: Domain = toml::from_str(text).unwrap_or_else(|error| panic!("{error}"));
        Classes::new(&domain.classes)
    }

    /// Checks that `class` allows every number of `allowed` and none of
    /// `refused`.
    fn check(class: &ClassOfService, allowed: &[&str], refused: &[&str]) {
        for number in allowed {
            assert!(class.allows(number), "{} refuses {number}", class.name());
        }
        for number in refused {
            assert!(!class.allows(number), "{} allows {number}", class.name());
        }
    }

    #[test]
    fn built_in_classes_reach_as_far_as_their_scope_and_keep_premium_numbers_for_premium() {
        let classes = Classes::default();
        let class = |name: &str| classes.class(name).unwrap();
        check(
            &class("internal"),
            &["201", "112"],
            &["5551234", "84951234567", "+12125551234"],
        );
        check(&class("local"), &["112", "5551234"], &["84951234567"]);
        check(
            &class("national"),
            &["5551234", "84951234567", "8 (495) 123-45-67"],
            &["88091234567", "78091234567", "+12125551234", "+78091234567"],
        );
        check(
            &class("International"),
            &[
                "84951234567",
                "0014155550100",
                "81014155550100",
                "+7 495 123 45 67",
            ],
            &["+78091234567", "+9791234567", "009791234567", "8 809 123 45 67"],
        );
        check(
            &class("premium"),
            &["88091234567", "+7 809 123 45 67", "009791234567", "84951234567"],
            &[],
        );
        assert_eq!(ClassOfService::default(), class("internal"));
    }

    #[test]
    fn an_account_adds_its_own_patterns_to_a_class() {
        let national = ClassOfService::parse("national; deny 8495*; allow +7495*").unwrap();
        check(
            &national,
            &["84991234567", "+74951234567"],
            &["84951234567", "+74991234567"],
        );
        assert_eq!(national.name(), "national; deny 8495*; allow +7495*");
        // The more specific pattern decides; as specific, refused.
        let class = ClassOfService::parse("allow 8*, +7*; deny 8800*; allow 88001234567").unwrap();
        check(&class, &["84951234567", "88001234567", "201"], &["88005553535"]);
        check(
            &ClassOfService::parse("allow 88*; deny 88*").unwrap(),
            &[],
            &["88001234567"],
        );
        let error = ClassOfService::parse("galactic").unwrap_err();
        assert!(error.contains("there is no class `galactic`"), "{error}");
        assert!(ClassOfService::parse("national; allow 8O0*").is_err());
        assert!(ClassOfService::parse("national; local").is_err());
    }

    #[test]
    fn a_domain_defines_classes_by_patterns_and_redefines_built_in_ones() {
        let classes = configured(
            r#"
            [classes.sales]
            allow = ["8*", "+7*"]
            deny = ["8809*", "+7809*"]
            [classes.managers]
            extends = "sales"
            allow = ["+*"]
            [classes.national]
            extends = "national"
            allow = ["+7*"]
            [classes.premium]
            scope = "national"
            "#,
        )
        .unwrap();
        let class = |name: &str| classes.class(name).unwrap();
        check(
            &class("sales"),
            &["84951234567", "+74951234567", "112"],
            &["88091234567", "+12125551234", "5551234"],
        );
        check(
            &class("managers"),
            &["+12125551234", "84951234567"],
            &["+78091234567"],
        );
        // Extending its own name reaches the built-in class of that name.
        check(
            &class("national"),
            &["+74951234567", "5551234"],
            &["88091234567", "+78091234567", "+12125551234"],
        );
        check(&class("premium"), &["88091234567"], &["+12125551234"]);
        assert_eq!(
            classes.names(),
            [
                "internal",
                "local",
                "national",
                "international",
                "premium",
                "managers",
                "sales"
            ]
        );
        let error = classes.parse("galactic; allow 8*").unwrap_err();
        assert!(
            error.ends_with(
                "the classes are internal, local, national, international, premium, managers, sales"
            ),
            "{error}"
        );
    }

    #[test]
    fn mistakes_in_classes_name_the_class_and_key() {
        let error = configured("[classes.a]\nextends = \"b\"\n[classes.b]\nextends = \"a\"\n").unwrap_err();
        assert_eq!((error.class.as_str(), error.key), ("a", Some("extends")));
        assert!(error.message.contains("a → b → a"), "{}", error.message);
        let error = configured("[classes.a]\nextends = \"a\"\n").unwrap_err();
        assert_eq!(error.message, "`a` extends itself");
        let error = configured("[classes.a]\nextends = \"nowhere\"\n").unwrap_err();
        assert!(
            error
                .message
                .starts_with("`a` extends `nowhere`, which is not a class"),
            "{}",
            error.message
        );
        let error = configured("[classes.a]\ndeny = [\"88-09\"]\n").unwrap_err();
        assert_eq!(error.key, Some("deny"));
        let error = configured("[classes.a]\nscope = \"local\"\nextends = \"national\"\n").unwrap_err();
        assert_eq!(error.key, Some("scope"));
        let error = configured("[classes.\"a b\"]\n").unwrap_err();
        assert_eq!(error.key, None);
    }
}
