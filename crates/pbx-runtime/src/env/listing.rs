//! Names matched ignoring case without reading a folder at every lookup.
//!
//! Each folder's entries are kept with the folder's modification time and
//! read again when it changes: adding, removing or renaming an entry
//! changes it, so a lookup costs one `stat` of the folder and still sees
//! every change. (A file rewritten in place keeps its name; its version is
//! checked where its content is used.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// One folder's entries, by lower-case name: the names as written, and
/// whether each is a folder.
struct Listing {
    modified: SystemTime,
    entries: HashMap<String, Vec<(String, bool)>>,
}

/// The folders looked in so far.
#[derive(Default)]
pub(super) struct Listings(Mutex<HashMap<PathBuf, Listing>>);

impl Listings {
    /// The entry of `dir` named `name` ignoring case (the exact name first),
    /// and whether it is a folder; `None` when there is none.
    pub fn find(&self, dir: &Path, name: &str) -> Option<(PathBuf, bool)> {
        let modified = std::fs::metadata(dir).ok()?.modified().ok();
        let wanted = name.to_lowercase();
        let pick = |entries: &HashMap<String, Vec<(String, bool)>>| {
            let candidates = entries.get(&wanted)?;
            let (found, is_dir) = candidates
                .iter()
                .find(|(written, _)| written == name)
                .or_else(|| candidates.first())?;
            Some((dir.join(found), *is_dir))
        };
        let Some(modified) = modified else {
            // No modification times here: read the folder every time.
            return pick(&read(dir)?);
        };
        let mut listings = self.0.lock().ok()?;
        if let Some(listing) = listings.get(dir).filter(|listing| listing.modified == modified) {
            return pick(&listing.entries);
        }
        let entries = read(dir)?;
        let found = pick(&entries);
        listings.insert(dir.to_path_buf(), Listing { modified, entries });
        found
    }
}

fn read(dir: &Path) -> Option<HashMap<String, Vec<(String, bool)>>> {
    let mut entries: HashMap<String, Vec<(String, bool)>> = HashMap::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // A link is followed, as opening it would.
        let is_dir = entry.path().is_dir();
        entries
            .entry(name.to_lowercase())
            .or_default()
            .push((name, is_dir));
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_ignoring_case_and_changes_are_seen() {
        let dir = std::env::temp_dir().join(format!("pbx-listing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("Russian")).unwrap();
        std::fs::write(dir.join("Hello.wav"), b"x").unwrap();
        let listings = Listings::default();
        assert_eq!(
            listings.find(&dir, "hello.WAV"),
            Some((dir.join("Hello.wav"), false))
        );
        assert_eq!(listings.find(&dir, "russian"), Some((dir.join("Russian"), true)));
        assert_eq!(listings.find(&dir, "bye.wav"), None);
        // Folder times can be coarse: wait until a new entry shows in them.
        let before = std::fs::metadata(&dir).unwrap().modified().unwrap();
        loop {
            std::fs::write(dir.join("Bye.wav"), b"x").unwrap();
            if std::fs::metadata(&dir).unwrap().modified().unwrap() != before {
                break;
            }
            std::fs::remove_file(dir.join("Bye.wav")).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(listings.find(&dir, "bye.wav"), Some((dir.join("Bye.wav"), false)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
