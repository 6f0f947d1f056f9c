//! `[trunks.NAME]`: the SIP providers numbers beyond the server go out
//! through, how long each is given to answer, when one is taken as down,
//! and how numbers are rewritten on the way to it and from it.
//!
//! Numbers inside pbxd are in the form its users dial (`84951234567`);
//! each trunk may want another (E.164, `+74951234567`), and sends its
//! own. A trunk's rules say how: the first rule whose pattern matches a
//! number strips so many characters from its start and puts a prefix in
//! their place; a number no rule matches goes as it is.

use serde::Deserialize;

/// `[trunks.NAME]`: a SIP provider calls beyond the server go through.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// `host:port` of the provider's proxy (5060 when no port is given).
    /// A call that comes from this address is taken as the trunk's.
    pub proxy: String,
    /// The domain to put in From and Request-URI (default: the proxy host).
    #[serde(default)]
    pub domain: Option<String>,
    /// Credentials to answer the provider's digest challenges with.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Number patterns it carries (`*` any run of digits: `8*`, `+7*`),
    /// matched against the number as dialled, before `outgoing` rewrites
    /// it; empty: every number.
    #[serde(default)]
    pub numbers: Vec<String>,
    /// How long the provider has to say anything to an INVITE (a
    /// `100 Trying` is enough) before the call goes to the next trunk
    /// that carries the number.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Failures in a row (a 5xx, a 408, no word within `timeout_seconds`)
    /// after which the trunk is taken as down: new calls skip it while
    /// another trunk carries their number.
    #[serde(default = "default_down_after")]
    pub down_after_failures: u32,
    /// While the trunk is down, pbxd sends it an `OPTIONS` this often; any
    /// response brings it back up.
    #[serde(default = "default_ping")]
    pub ping_seconds: u64,
    /// How the number called is rewritten for this provider (the
    /// Request-URI and To of the INVITE): `[{ match = "8*", strip = 1,
    /// prepend = "+7" }]` sends `84951234567` as `+74951234567`.
    #[serde(default)]
    pub outgoing: Vec<NumberRule>,
    /// How the caller ID of a call out through this provider (the user
    /// part of its From, when it is a number) is rewritten:
    /// `[{ match = "7*", prepend = "+" }]` sends `74951110301` as
    /// `+74951110301`.
    #[serde(default)]
    pub outgoing_caller: Vec<NumberRule>,
    /// How the caller's number of a call from this provider (its From) is
    /// rewritten into the form pbxd's users dial back: `[{ match = "+7*",
    /// strip = 2, prepend = "8" }]`.
    #[serde(default)]
    pub incoming_caller: Vec<NumberRule>,
    /// How the number a call from this provider is for (its Request-URI)
    /// is rewritten before pbxd routes it: `[{ match = "+74951234*",
    /// strip = 9 }]` makes the direct number `+74951234202` extension 202.
    #[serde(default)]
    pub incoming_called: Vec<NumberRule>,
}

fn default_timeout() -> u64 {
    5
}

fn default_down_after() -> u32 {
    3
}

fn default_ping() -> u64 {
    10
}

/// One rewriting rule: for a number `match` matches, drop the first
/// `strip` characters and put `prepend` in front.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NumberRule {
    /// A pattern as in `numbers`: `*` stands for any run of characters.
    #[serde(rename = "match")]
    pub pattern: String,
    #[serde(default)]
    pub strip: usize,
    #[serde(default)]
    pub prepend: String,
}

/// Whether `number` matches `pattern`: `*` is any run of characters (once
/// at most), the rest must be the same.
pub fn number_matches(pattern: &str, number: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == number,
        Some((head, tail)) => {
            number.len() >= head.len() + tail.len() && number.starts_with(head) && number.ends_with(tail)
        }
    }
}

/// `number` rewritten by the first of `rules` that matches it; as it is
/// when none does.
pub fn rewrite(rules: &[NumberRule], number: &str) -> String {
    match rules.iter().find(|rule| number_matches(&rule.pattern, number)) {
        Some(rule) => {
            let kept: String = number.chars().skip(rule.strip).collect();
            format!("{}{kept}", rule.prepend)
        }
        None => number.to_string(),
    }
}

impl TrunkConfig {
    /// The number called as this trunk is sent it.
    pub fn outgoing_number(&self, number: &str) -> String {
        rewrite(&self.outgoing, number)
    }

    /// The caller (`number`, `number@host` or `name@domain`) as this trunk
    /// is shown it: a number's user part rewritten by `outgoing_caller`.
    pub fn outgoing_caller(&self, caller: &str) -> String {
        let caller = caller.trim_start_matches("sip:");
        let (user, host) = match caller.split_once('@') {
            Some((user, host)) => (user, Some(host)),
            None => (caller, None),
        };
        if !user.chars().all(|c| c.is_ascii_digit() || c == '+') {
            return caller.to_string();
        }
        let user = rewrite(&self.outgoing_caller, user);
        match host {
            Some(host) => format!("{user}@{host}"),
            None => user,
        }
    }

    /// Whether this trunk carries `number` (as dialled).
    pub fn carries(&self, number: &str) -> bool {
        self.numbers.is_empty() || self.numbers.iter().any(|pattern| number_matches(pattern, number))
    }

    /// What serde cannot check: the problem, for `trunks.NAME`.
    pub fn check(&self) -> Result<(), String> {
        if self.proxy.trim().is_empty() {
            return Err("proxy: expected host:port".into());
        }
        for (key, value) in [
            ("timeout_seconds", self.timeout_seconds),
            ("ping_seconds", self.ping_seconds),
            ("down_after_failures", u64::from(self.down_after_failures)),
        ] {
            if value == 0 {
                return Err(format!("{key}: expected at least 1"));
            }
        }
        let pattern_ok = |pattern: &str| !pattern.is_empty() && pattern.matches('*').count() <= 1;
        if let Some(pattern) = self.numbers.iter().find(|pattern| !pattern_ok(pattern)) {
            return Err(format!(
                "numbers: `{pattern}`; expected digits with at most one `*`"
            ));
        }
        for (key, rules) in [
            ("outgoing", &self.outgoing),
            ("outgoing_caller", &self.outgoing_caller),
            ("incoming_caller", &self.incoming_caller),
            ("incoming_called", &self.incoming_called),
        ] {
            if let Some(rule) = rules.iter().find(|rule| !pattern_ok(&rule.pattern)) {
                return Err(format!(
                    "{key}: match = `{}`; expected digits with at most one `*`",
                    rule.pattern
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, strip: usize, prepend: &str) -> NumberRule {
        NumberRule {
            pattern: pattern.into(),
            strip,
            prepend: prepend.into(),
        }
    }

    #[test]
    fn number_patterns() {
        assert!(number_matches("8*", "84951234567"));
        assert!(number_matches("+7*", "+74951234567"));
        assert!(number_matches("*", "1"));
        assert!(!number_matches("8*", "74951234567"));
        assert!(number_matches("112", "112"));
        assert!(!number_matches("112", "1120"));
        assert!(number_matches("8*#", "8123#"));
        // The run may be empty, but head and tail may not overlap.
        assert!(number_matches("8*1", "81"));
        assert!(!number_matches("8*8", "8"));
    }

    #[test]
    fn national_numbers_go_out_as_e164_and_come_back_national() {
        let out = [rule("8*", 1, "+7"), rule("810*", 3, "+")];
        // The first rule that matches wins: 810 never reaches the second.
        assert_eq!(rewrite(&out, "84951234567"), "+74951234567");
        let out = [rule("810*", 3, "+"), rule("8*", 1, "+7")];
        assert_eq!(rewrite(&out, "81044123456"), "+44123456");
        assert_eq!(rewrite(&out, "84951234567"), "+74951234567");
        // No rule matches: as it is.
        assert_eq!(rewrite(&out, "112"), "112");
        assert_eq!(rewrite(&[], "84951234567"), "84951234567");
        let back = [rule("+7*", 2, "8"), rule("+*", 1, "810")];
        assert_eq!(rewrite(&back, "+74957654321"), "84957654321");
        assert_eq!(rewrite(&back, "+44123456"), "81044123456");
    }

    #[test]
    fn caller_ids_go_out_the_trunks_way() {
        let trunk = TrunkConfig {
            outgoing_caller: vec![rule("7*", 0, "+")],
            ..trunk()
        };
        assert_eq!(trunk.outgoing_caller("74951110301"), "+74951110301");
        assert_eq!(
            trunk.outgoing_caller("sip:74951110301@example.com"),
            "+74951110301@example.com"
        );
        // An address that is not a number goes as it is.
        assert_eq!(trunk.outgoing_caller("ivanov@example.com"), "ivanov@example.com");
        assert_eq!(trunk.outgoing_caller("112"), "112");
    }

    #[test]
    fn direct_numbers_become_extensions() {
        let called = [rule("+74951234*", 9, "")];
        assert_eq!(rewrite(&called, "+74951234202"), "202");
        // Stripping more than there is leaves the prefix alone.
        assert_eq!(rewrite(&[rule("*", 20, "0")], "123"), "0");
    }

    fn trunk() -> TrunkConfig {
        toml::from_str("proxy = \"203.0.113.5:5060\"").unwrap()
    }

    #[test]
    fn defaults_and_checks() {
        let trunk = trunk();
        assert_eq!(trunk.timeout_seconds, 5);
        assert_eq!(trunk.down_after_failures, 3);
        assert_eq!(trunk.ping_seconds, 10);
        assert!(trunk.carries("anything"));
        assert_eq!(trunk.check(), Ok(()));
        let mut bad = trunk.clone();
        bad.timeout_seconds = 0;
        assert!(bad.check().unwrap_err().starts_with("timeout_seconds"));
        let mut bad = trunk.clone();
        bad.outgoing = vec![rule("8**", 1, "+7")];
        assert!(bad.check().unwrap_err().starts_with("outgoing"));
        let mut bad = trunk;
        bad.numbers = vec![String::new()];
        assert!(bad.check().unwrap_err().starts_with("numbers"));
    }

    #[test]
    fn rules_are_tables_with_match_strip_and_prepend() {
        let trunk: TrunkConfig = toml::from_str(
            "proxy = \"p:5060\"\nnumbers = [\"8*\"]\noutgoing = [{ match = \"8*\", strip = 1, prepend = \"+7\" }]",
        )
        .unwrap();
        assert_eq!(trunk.outgoing_number("84951234567"), "+74951234567");
        assert!(trunk.carries("84951234567"));
        assert!(!trunk.carries("+74951234567"));
        let unknown =
            toml::from_str::<TrunkConfig>("proxy = \"p\"\noutgoing = [{ match = \"8*\", cut = 1 }]");
        assert!(unknown.is_err());
    }
}
