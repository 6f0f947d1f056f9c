//! The configuration file as `pbxd serve` and `pbxd check` read it:
//! `Config::parse` (TOML, the keys, `--set` overrides, the checks serde
//! cannot make) and then the directory built from it
//! (`Directory::from_config`: zones, classes, accounts, aliases).
//!
//! The input is the file; after a NUL byte, `--set` overrides, one per
//! line. Any text gives a configuration or a `ConfigError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbx_runtime::config::Config;
use pbx_runtime::directory::Directory;

fuzz_target!(|data: &[u8]| {
    let (file, overrides) = match data.iter().position(|&byte| byte == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(file) else {
        return;
    };
    let overrides: Vec<String> = String::from_utf8_lossy(overrides)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();
    if let Ok(config) = Config::parse(text, "fuzz.toml", &[]) {
        let _ = Directory::from_config(&config);
    }
    if !overrides.is_empty() {
        if let Ok(config) = Config::parse(text, "fuzz.toml", &overrides) {
            let _ = Directory::from_config(&config);
        }
    }
});
