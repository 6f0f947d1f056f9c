//! Builds the stock environment (`stdlib-scripts/`: the stock programs,
//! modules and prompts) into the binary, so that an installed `pbxd` has
//! them wherever it runs (`src/stock.rs` writes them out when no stock
//! folder is found).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(folder: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|entry| entry.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            files(&path, found);
        } else if path.is_file() {
            found.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let stock = manifest.join("../../stdlib-scripts");
    println!("cargo:rerun-if-changed={}", stock.display());
    let mut found = Vec::new();
    files(&stock, &mut found);
    // A fingerprint of names and contents (FNV-1a), so a new version is
    // written out beside an older one rather than over it.
    let mut fingerprint: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |bytes: &[u8]| {
        for byte in bytes {
            fingerprint ^= u64::from(*byte);
            fingerprint = fingerprint.wrapping_mul(0x0100_0000_01b3);
        }
    };
    let mut table = String::from("/// The stock environment's files: path within it, contents.\npub static FILES: &[(&str, &[u8])] = &[\n");
    for path in &found {
        let relative = path
            .strip_prefix(&stock)
            .expect("under the stock folder")
            .to_string_lossy()
            .replace('\\', "/");
        mix(relative.as_bytes());
        mix(&std::fs::read(path).expect("a stock file is readable"));
        let absolute = path.canonicalize().expect("a stock file has a path");
        writeln!(
            table,
            "    ({relative:?}, include_bytes!({:?})),",
            absolute.display().to_string()
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    writeln!(
        table,
        "/// A fingerprint of the files, names and contents.\npub const FINGERPRINT: &str = \"{fingerprint:016x}\";"
    )
    .expect("writing to a String");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("stock.rs");
    std::fs::write(out, table).expect("OUT_DIR is writable");
}
