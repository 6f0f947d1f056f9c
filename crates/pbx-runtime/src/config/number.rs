//! `[domains."example.com".numbers."NUMBER"]`: public numbers (a DID
//! arriving from a trunk, an alias) and feature codes, and where each
//! leads: an address, or a web server asked for every call (seed 000 §30,
//! carried out by `stdlib-scripts/weburl.sppr`).

use serde::Deserialize;

/// Where a number leads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberConfig {
    /// An address the number leads to (`200`, `voicemail#operator`,
    /// `ivanov`, a number out through a trunk).
    pub destination: Option<String>,
    /// Ask this web server where each call goes.
    pub weburl: Option<String>,
    /// POSTed when each leg of the call is answered, and when each ends
    /// (the web server's reply may name others).
    pub answer_url: Option<String>,
    pub hangup_url: Option<String>,
    /// Tried once when `weburl` fails.
    pub fallback_url: Option<String>,
    /// How long the web server has to answer, DNS to the last byte.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Where the call goes when the web server does not say (timeout,
    /// error, a reply with no usable destination); unset: it is refused.
    pub timeout_destination: Option<String>,
    /// The account the number belongs to, which routes its calls: its
    /// class of service applies to numbers the web server sends the call
    /// to (default: `pbx`).
    pub owner: Option<String>,
    /// A pattern menu first: the caller keys digits until they match one
    /// of these (`X` any digit, a final `.` one or more digits ended by
    /// `#` or a pause); the web server gets them as `patternmenu_digits`.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// The pattern menu's prompt (default `dialknownextension`).
    pub prompt: Option<String>,
}

fn default_timeout() -> u64 {
    5
}

impl NumberConfig {
    /// What serde cannot check: the problem, for `numbers."NUMBER"`.
    pub fn check(&self) -> Result<(), String> {
        match (&self.destination, &self.weburl) {
            (Some(_), Some(_)) => return Err("give `destination` or `weburl`, not both".into()),
            (None, None) => return Err("expected `destination` or `weburl`".into()),
            _ => {}
        }
        for (key, url) in [
            ("weburl", &self.weburl),
            ("answer_url", &self.answer_url),
            ("hangup_url", &self.hangup_url),
            ("fallback_url", &self.fallback_url),
        ] {
            let Some(url) = url else { continue };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("{key}: `{url}` is not an http:// or https:// URL"));
            }
        }
        if !(1..=60).contains(&self.timeout_seconds) {
            return Err("timeout_seconds: expected 1 to 60".into());
        }
        for pattern in &self.patterns {
            let body = pattern.strip_suffix('.').unwrap_or(pattern);
            if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit() || "X*#".contains(c)) {
                return Err(format!(
                    "patterns: `{pattern}`; expected digits and X (any digit), and a `.` (more digits) at the end"
                ));
            }
        }
        if !self.patterns.is_empty() && self.weburl.is_none() {
            return Err("patterns: a pattern menu passes its digits to a `weburl`".into());
        }
        Ok(())
    }

    /// What `weburl.sppr` is told of the number (a start parameter): the
    /// keys above that are set, and `dtype` (`code` for a feature code,
    /// else `number`).
    pub fn settings(&self, number: &str) -> Vec<(&'static str, String)> {
        let mut settings = vec![
            (
                "dtype",
                if number.starts_with('*') { "code" } else { "number" }.to_string(),
            ),
            ("timeout_seconds", self.timeout_seconds.to_string()),
        ];
        for (key, value) in [
            ("weburl", &self.weburl),
            ("answer_url", &self.answer_url),
            ("hangup_url", &self.hangup_url),
            ("fallback_url", &self.fallback_url),
            ("timeout_destination", &self.timeout_destination),
            ("prompt", &self.prompt),
        ] {
            if let Some(value) = value {
                settings.push((key, value.clone()));
            }
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> NumberConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_number_leads_somewhere_and_its_urls_are_http() {
        assert!(number("destination = \"200\"").check().is_ok());
        assert!(
            number("weburl = \"https://crm.example/route\"\ntimeout_destination = \"100\"")
                .check()
                .is_ok()
        );
        assert!(number("").check().unwrap_err().contains("destination"));
        assert!(number("destination = \"200\"\nweburl = \"http://x/\"")
            .check()
            .is_err());
        assert!(number("weburl = \"ftp://x/\"")
            .check()
            .unwrap_err()
            .contains("ftp://x/"));
        assert!(number("weburl = \"http://x/\"\ntimeout_seconds = 0")
            .check()
            .is_err());
        assert!(number("weburl = \"http://x/\"\npatterns = [\"1XX\", \"9.\"]")
            .check()
            .is_ok());
        assert!(number("weburl = \"http://x/\"\npatterns = [\"1Y\"]")
            .check()
            .is_err());
        assert!(number("destination = \"200\"\npatterns = [\"1XX\"]")
            .check()
            .is_err());
    }

    #[test]
    fn the_script_is_told_the_numbers_settings() {
        let settings = number("weburl = \"http://x/\"").settings("*77");
        assert_eq!(settings[0], ("dtype", "code".to_string()));
        assert!(settings.contains(&("timeout_seconds", "5".to_string())));
        assert!(settings.contains(&("weburl", "http://x/".to_string())));
    }
}
