//! Environments (FEATURES.md §2): where programs, modules and prompts are.
//!
//! A name is looked up in the domain's environment, then the server's, then
//! the stock one; in each, `<language>/name` before `name`. Names match
//! ignoring case, a name without extension tries the audio extensions, and
//! a name that would leave the environment (`..`, a path, a second folder)
//! is refused. Programs are compiled once per file version: the next task
//! after a change gets the new version; a version that no longer compiles
//! leaves the last good one in use and reports why.
//!
//! `Environments::watch` adds hot reload through file-system notifications:
//! a saved program (or a module it uses) is compiled at once, so its
//! mistakes are reported when it is saved, not when the next call comes,
//! and that call finds it compiled. Each use still compares file versions,
//! so a change the notifications miss is picked up all the same.

mod listing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pbx_lang::bytecode::Program;
use pbx_lang::compile::{compile_as, FileKind, ModuleLoader};
use pbx_lang::{Diagnostic, SourceFile};

use listing::Listings;

use crate::observe::{Event, Observer};

/// How long the file system must be quiet after a change before programs
/// are compiled again (an editor's save is often several writes).
const SETTLE: Duration = Duration::from_millis(200);

/// Audio extensions tried for a name without one, in order.
pub const AUDIO_EXTENSIONS: [&str; 1] = ["wav"];

/// What kind of file is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A program: `name.sppr`.
    Program,
    /// A module: `name.sppi`.
    Module,
    /// A prompt: `name` or `name.wav`.
    Audio,
    /// Any file, by its exact name.
    File,
}

/// A file found in an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    /// The name within its environment, as found: `russian/callbackbusy.wav`.
    pub shown: String,
}

/// Why a name cannot be looked up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("`{0}` is not a file name within an environment")]
    Refused(String),
}

/// Why a program cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("there is no program `{0}`")]
    Missing(String),
    #[error("`{0}` is not a program name")]
    Refused(String),
    #[error("{file} does not compile ({count} error(s))")]
    Compile {
        file: String,
        count: usize,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("cannot read {file}: {reason}")]
    Unreadable { file: String, reason: String },
}

/// Checks a name and splits off its language folder, if any.
fn check_name(name: &str) -> Result<(Option<&str>, &str), NameError> {
    let refused = || NameError::Refused(name.to_string());
    if name.is_empty()
        || name.contains('\\')
        || name.contains('\0')
        || name.starts_with('/')
        || name.chars().any(char::is_control)
    {
        return Err(refused());
    }
    let mut parts = name.split('/');
    let first = parts.next().ok_or_else(refused)?;
    let (folder, file) = match (parts.next(), parts.next()) {
        (None, _) => (None, first),
        (Some(file), None) => (Some(first), file),
        (Some(_), Some(_)) => return Err(refused()),
    };
    let bad = |part: &str| part.is_empty() || part == "." || part == ".." || part.starts_with('.');
    if bad(file) || folder.is_some_and(bad) {
        return Err(refused());
    }
    Ok((folder, file))
}

/// A file's modification time and length; `None` when it is missing.
type FileVersion = Option<(SystemTime, u64)>;

/// Files with the versions they had when a program was compiled from them.
type Versions = Vec<(PathBuf, FileVersion)>;

struct Cached {
    /// The files it was compiled from, with their versions when compiled.
    versions: Versions,
    program: Arc<Program>,
    /// The version of the main file whose failure was last reported, so it
    /// is reported once.
    reported: Option<Versions>,
}

/// The three layers of environments and the compiled programs.
pub struct Environments {
    stock: PathBuf,
    server: PathBuf,
    domains: PathBuf,
    programs: Mutex<HashMap<(String, String), Cached>>,
    /// The folders names were looked up in, kept until they change.
    listings: Listings,
    observer: Arc<dyn Observer>,
    /// Counts the times `refresh` saw an audio file change, for whoever
    /// keeps a prompt outside calls (the server's music on hold).
    audio_changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Environments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environments")
            .field("stock", &self.stock)
            .field("server", &self.server)
            .field("domains", &self.domains)
            .finish()
    }
}

fn version(path: &Path) -> FileVersion {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

impl Environments {
    /// Environments rooted at these folders.
    pub fn new(
        stock: PathBuf,
        server: PathBuf,
        domains: PathBuf,
        observer: Arc<dyn Observer>,
    ) -> Environments {
        Environments {
            stock,
            server,
            domains,
            programs: Mutex::new(HashMap::new()),
            listings: Listings::default(),
            observer,
            audio_changes: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Told each time the watch (`watch`) sees an audio file of a layer
    /// change, appear or go.
    pub fn audio_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.audio_changes.subscribe()
    }

    /// The programs `domain` can run (`.sppr` files of its layers; a name
    /// in a higher layer hides the same below), with the layer of each,
    /// in name order.
    pub fn program_names(&self, domain: &str) -> Vec<(String, &'static str)> {
        let mut names: Vec<(String, &'static str)> = Vec::new();
        for (dir, layer) in self.layers(domain) {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(stem) = name.strip_suffix(".sppr") {
                    if !names.iter().any(|(known, _)| known.eq_ignore_ascii_case(stem)) {
                        names.push((stem.to_string(), layer));
                    }
                }
            }
        }
        names.sort();
        names
    }

    /// The layers for `domain`, highest first, with a short label each.
    fn layers(&self, domain: &str) -> Vec<(PathBuf, &'static str)> {
        let mut layers = Vec::with_capacity(3);
        if let Some((dir, true)) = self.listings.find(&self.domains, domain) {
            layers.push((dir, "domain"));
        }
        layers.push((self.server.clone(), "server"));
        layers.push((self.stock.clone(), "stock"));
        layers
    }

    /// Finds `name` for `domain`, trying `language` first in each layer.
    pub fn find(
        &self,
        domain: &str,
        language: Option<&str>,
        name: &str,
        kind: Kind,
    ) -> Result<Option<Found>, NameError> {
        let (folder, file) = check_name(name)?;
        let candidates: Vec<String> = match kind {
            Kind::Program => vec![format!("{file}.sppr")],
            Kind::Module => vec![format!("{file}.sppi")],
            Kind::File => vec![file.to_string()],
            Kind::Audio if file.contains('.') => vec![file.to_string()],
            Kind::Audio => AUDIO_EXTENSIONS
                .iter()
                .map(|extension| format!("{file}.{extension}"))
                .collect(),
        };
        // An explicit folder is looked up as given; otherwise the task's
        // language folder, then the environment's root.
        let folders: Vec<Option<&str>> = match (folder, language) {
            (Some(folder), _) => vec![Some(folder)],
            (None, Some(language)) if !language.is_empty() => vec![Some(language), None],
            (None, _) => vec![None],
        };
        for (root, _) in self.layers(domain) {
            for folder in &folders {
                let dir = match folder {
                    Some(folder) => match self.listings.find(&root, folder) {
                        Some((dir, true)) => dir,
                        _ => continue,
                    },
                    None => root.clone(),
                };
                for candidate in &candidates {
                    if let Some((path, false)) = self.listings.find(&dir, candidate) {
                        let file_name = path
                            .file_name()
                            .map(|name| name.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        let shown = match folder {
                            Some(_) => {
                                let folder_name = dir
                                    .file_name()
                                    .map(|name| name.to_string_lossy().into_owned())
                                    .unwrap_or_default();
                                format!("{folder_name}/{file_name}")
                            }
                            None => file_name,
                        };
                        return Ok(Some(Found { path, shown }));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The compiled program `app` for `domain`: compiled again when it or
    /// a module it uses changed; if the new version does not compile, the
    /// last good one (if any) and a report.
    pub fn program(&self, domain: &str, app: &str) -> Result<(Arc<Program>, String), ProgramError> {
        let found = self
            .find(domain, None, app, Kind::Program)
            .map_err(|_| ProgramError::Refused(app.to_string()))?
            .ok_or_else(|| ProgramError::Missing(app.to_string()))?;
        let key = (domain.to_ascii_lowercase(), app.to_ascii_lowercase());
        let mut programs = self
            .programs
            .lock()
            .map_err(|_| ProgramError::Missing(app.to_string()))?;
        if let Some(cached) = programs.get(&key) {
            let unchanged = cached
                .versions
                .first()
                .is_some_and(|(path, _)| *path == found.path)
                && cached.versions.iter().all(|(path, seen)| version(path) == *seen);
            if unchanged {
                return Ok((cached.program.clone(), found.shown));
            }
        }
        let loader = EnvironmentModules {
            environments: self,
            domain,
            loaded: Mutex::new(Vec::new()),
        };
        let main_version = version(&found.path);
        let text = std::fs::read_to_string(&found.path).map_err(|error| ProgramError::Unreadable {
            file: found.path.display().to_string(),
            reason: error.to_string(),
        })?;
        let file = Arc::new(SourceFile::new(found.path.display().to_string(), text));
        let result = compile_as(file, FileKind::Program, &loader);
        let mut versions = vec![(found.path.clone(), main_version)];
        versions.extend(loader.loaded.into_inner().unwrap_or_default());
        match result {
            Ok(program) => {
                programs.insert(
                    key,
                    Cached {
                        versions,
                        program: program.clone(),
                        reported: None,
                    },
                );
                Ok((program, found.shown))
            }
            Err(diagnostics) => {
                let file = found.path.display().to_string();
                match programs.get_mut(&key) {
                    Some(cached) => {
                        if cached.reported.as_ref() != Some(&versions) {
                            cached.reported = Some(versions);
                            self.observer.event(Event::ProgramProblem {
                                file,
                                text: format!(
                                    "no longer compiles; the last good version stays in use:\n{}",
                                    one_per_line(&diagnostics)
                                ),
                            });
                        }
                        Ok((cached.program.clone(), found.shown))
                    }
                    None => Err(ProgramError::Compile {
                        file,
                        count: diagnostics.len(),
                        diagnostics,
                    }),
                }
            }
        }
    }

    /// Reads a file of the environment (`ReadEnvirFile`).
    pub fn read(
        &self,
        domain: &str,
        language: Option<&str>,
        name: &str,
    ) -> Result<Option<Vec<u8>>, NameError> {
        Ok(self
            .find(domain, language, name, Kind::File)?
            .and_then(|found| std::fs::read(found.path).ok()))
    }
}

/// Hot reload: stops watching when dropped.
pub struct EnvironmentWatch {
    _watcher: notify::RecommendedWatcher,
}

impl std::fmt::Debug for EnvironmentWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvironmentWatch")
    }
}

/// Whether `path` is a program or a module.
fn is_script(path: &Path) -> bool {
    path.extension().is_some_and(|extension| {
        extension.eq_ignore_ascii_case("sppr") || extension.eq_ignore_ascii_case("sppi")
    })
}

/// Whether `path` is a prompt (one of the audio extensions).
fn is_audio(path: &Path) -> bool {
    path.extension().is_some_and(|extension| {
        AUDIO_EXTENSIONS
            .iter()
            .any(|audio| extension.eq_ignore_ascii_case(audio))
    })
}

/// `path` made absolute with links resolved, when it exists.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Environments {
    /// Watches the three layers (those that exist) and compiles changed
    /// programs as soon as their files settle (and says when prompts change).
    pub fn watch(self: &Arc<Self>) -> notify::Result<EnvironmentWatch> {
        use notify::Watcher;
        let (sender, receiver) = std::sync::mpsc::channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
            if let Ok(event) = result {
                if matches!(
                    event.kind,
                    notify::EventKind::Create(_)
                        | notify::EventKind::Modify(_)
                        | notify::EventKind::Remove(_)
                ) {
                    for path in event
                        .paths
                        .into_iter()
                        .filter(|path| is_script(path) || is_audio(path))
                    {
                        let _ = sender.send(path);
                    }
                }
            }
        })?;
        for root in [&self.stock, &self.server, &self.domains] {
            if root.is_dir() {
                watcher.watch(root, notify::RecursiveMode::Recursive)?;
            }
        }
        let environments = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("environment-watch".into())
            .spawn(move || {
                // Ends when the watcher (and so the sender) is dropped.
                while let Ok(first) = receiver.recv() {
                    let mut changed = vec![canonical(&first)];
                    while let Ok(path) = receiver.recv_timeout(SETTLE) {
                        changed.push(canonical(&path));
                    }
                    changed.sort();
                    changed.dedup();
                    match environments.upgrade() {
                        Some(environments) => environments.refresh(&changed),
                        None => return,
                    }
                }
            })
            .map_err(|error| notify::Error::generic(&error.to_string()))?;
        Ok(EnvironmentWatch { _watcher: watcher })
    }

    /// Compiles again the cached programs that read a changed file, and
    /// checks changed programs no task has used yet, reporting mistakes;
    /// tells `audio_changes` of changed prompts.
    pub fn refresh(&self, changed: &[PathBuf]) {
        if changed.iter().any(|path| is_audio(path)) {
            self.audio_changes.send_modify(|count| *count += 1);
        }
        let stale: Vec<(String, String)> = match self.programs.lock() {
            Ok(programs) => programs
                .iter()
                .filter(|(_, cached)| {
                    cached
                        .versions
                        .iter()
                        .any(|(path, _)| changed.contains(&canonical(path)))
                })
                .map(|(key, _)| key.clone())
                .collect(),
            Err(_) => return,
        };
        let mut compiled = Vec::new();
        for (domain, app) in &stale {
            if let Ok((program, _)) = self.program(domain, app) {
                compiled.push(program);
            }
        }
        for path in changed {
            let is_program = path
                .extension()
                .is_some_and(|extension| extension.eq_ignore_ascii_case("sppr"));
            let already = compiled
                .iter()
                .any(|program| canonical(Path::new(program.main_file().name())) == *path);
            if is_program && path.is_file() && !already {
                self.check_file(path);
            }
        }
    }

    /// Compiles one program file with the modules its layers offer and
    /// reports its mistakes.
    fn check_file(&self, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        // A file in a domain's folder sees that domain's layers; one in the
        // server or stock layer sees those.
        let domains = canonical(&self.domains);
        let domain = path
            .strip_prefix(&domains)
            .ok()
            .and_then(|inside| inside.components().next())
            .map(|component| component.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let loader = EnvironmentModules {
            environments: self,
            domain: &domain,
            loaded: Mutex::new(Vec::new()),
        };
        let file = Arc::new(SourceFile::new(path.display().to_string(), text));
        if let Err(diagnostics) = compile_as(file, FileKind::Program, &loader) {
            self.observer.event(Event::ProgramProblem {
                file: path.display().to_string(),
                text: format!("does not compile:\n{}", one_per_line(&diagnostics)),
            });
        }
    }
}

/// Diagnostics one per line, for the log.
pub fn one_per_line(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(Diagnostic::one_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads a program's modules from the same layers, and remembers which
/// files it read so that a change to one of them recompiles the program.
struct EnvironmentModules<'a> {
    environments: &'a Environments,
    domain: &'a str,
    loaded: Mutex<Versions>,
}

impl ModuleLoader for EnvironmentModules<'_> {
    fn load(&self, name: &str) -> Result<Arc<SourceFile>, String> {
        let found = self
            .environments
            .find(self.domain, None, name, Kind::Module)
            .map_err(|error| error.to_string())?
            .ok_or_else(|| format!("no environment has {name}.sppi"))?;
        let seen = version(&found.path);
        let text = std::fs::read_to_string(&found.path).map_err(|error| error.to_string())?;
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.push((found.path.clone(), seen));
        }
        Ok(Arc::new(SourceFile::new(found.path.display().to_string(), text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_environment_are_refused() {
        for name in [
            "../etc/passwd",
            "/etc/passwd",
            "a/b/c",
            "..",
            "russian/..",
            "a\\b",
            ".hidden",
            "",
            "x/",
        ] {
            assert!(check_name(name).is_err(), "{name}");
        }
        assert_eq!(
            check_name("russian/welcome").unwrap(),
            (Some("russian"), "welcome")
        );
        assert_eq!(check_name("welcome.wav").unwrap(), (None, "welcome.wav"));
    }
}
