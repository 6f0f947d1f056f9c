//! The stock environment built into the binary (`build.rs`): when the
//! configured stock folder (`environments.stock`, `stdlib-scripts` by
//! default) does not exist — an installed `pbxd` started anywhere — its
//! files are written once to `data_dir/stock/FINGERPRINT` and that folder
//! serves. A stock folder that exists always wins, so the repository's
//! (or one an administrator keeps) is used as it is.

use pbx_runtime::Config;

mod built_in {
    include!(concat!(env!("OUT_DIR"), "/stock.rs"));
}

/// Points `config` at the built-in stock environment when its stock
/// folder is missing; what was done, for the log, or why it failed.
pub fn provide(config: &mut Config) -> Result<Option<String>, String> {
    if config.environments.stock.is_dir() {
        return Ok(None);
    }
    let folder = config.data_dir.join("stock").join(built_in::FINGERPRINT);
    let complete = folder.join(".complete");
    if !complete.exists() {
        for (name, bytes) in built_in::FILES {
            let path = folder.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|error| format!("cannot create {}: {error}", parent.display()))?;
            }
            std::fs::write(&path, bytes)
                .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        }
        std::fs::write(&complete, b"")
            .map_err(|error| format!("cannot write {}: {error}", complete.display()))?;
    }
    let note = format!(
        "{} does not exist: the stock environment built into pbxd serves, from {}",
        config.environments.stock.display(),
        folder.display()
    );
    config.environments.stock = folder;
    Ok(Some(note))
}
