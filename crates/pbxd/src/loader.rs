//! Finds modules (`name.sppi`) in a program's folder, ignoring case.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pbx_lang::{ModuleLoader, SourceFile};

/// Loads modules from one folder.
pub struct FolderModules {
    folder: PathBuf,
}

impl FolderModules {
    /// Modules next to `program`.
    pub fn beside(program: &Path) -> FolderModules {
        let folder = program
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        FolderModules { folder }
    }
}

impl ModuleLoader for FolderModules {
    fn load(&self, name: &str) -> Result<Arc<SourceFile>, String> {
        if name.is_empty() || name.contains(['/', '\\', '.']) {
            return Err(format!("`{name}` is not a module name"));
        }
        let wanted = format!("{name}.sppi").to_ascii_lowercase();
        let entries = std::fs::read_dir(&self.folder)
            .map_err(|error| format!("cannot read {}: {error}", self.folder.display()))?;
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            if file_name.to_string_lossy().to_ascii_lowercase() == wanted {
                let path = entry.path();
                let text = std::fs::read_to_string(&path)
                    .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
                return Ok(Arc::new(SourceFile::new(path.display().to_string(), text)));
            }
        }
        Err(format!("there is no {name}.sppi in {}", self.folder.display()))
    }
}
