//! `pbxd check PATH...`

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use pbx_lang::compile::{compile_as, FileKind};
use pbx_lang::SourceFile;

use crate::loader::FolderModules;
use crate::report;

/// `pbxd check --config FILE`: the configuration as `serve` reads it
/// (with `--set` overrides), its domains and accounts, and every program
/// each domain's environments hold, compiled as that domain sees them.
/// Each problem on stderr; exit 1 on any.
pub fn check_config(path: &Path, set: &[String]) -> ExitCode {
    let config = match crate::run::load_config(Some(path), set) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let directory = match pbx_runtime::directory::Directory::from_config(&config) {
        Ok(directory) => directory,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let environments = pbx_runtime::env::Environments::new(
        config.environments.stock.clone(),
        config.environments.server.clone(),
        config.environments.domains.clone(),
        Arc::new(pbx_runtime::observe::LogObserver),
    );
    let mut problems = 0;
    let mut programs = 0;
    for domain in directory.domains() {
        for (name, layer) in environments.program_names(&domain.name) {
            programs += 1;
            match environments.program(&domain.name, &name) {
                Ok(_) => {}
                Err(pbx_runtime::env::ProgramError::Compile { diagnostics, .. }) => {
                    problems += 1;
                    eprintln!(
                        "error: {name} ({layer} environment, domain {}):\n{}",
                        domain.name,
                        pbx_runtime::env::one_per_line(&diagnostics)
                    );
                }
                Err(error) => {
                    problems += 1;
                    eprintln!(
                        "error: {name} ({layer} environment, domain {}): {error}",
                        domain.name
                    );
                }
            }
        }
    }
    let domains = directory.domain_count();
    if problems > 0 {
        eprintln!(
            "{}: {problems} problem(s) in {programs} program(s) of {domains} domain(s)",
            path.display()
        );
        ExitCode::FAILURE
    } else {
        eprintln!(
            "{}: the configuration and {programs} program(s) of {domains} domain(s) are fine",
            path.display()
        );
        ExitCode::SUCCESS
    }
}

/// Checks every program and module under `paths`; exit 1 on any error.
pub fn check(paths: &[PathBuf], bytecode: bool) -> ExitCode {
    let mut files = Vec::new();
    let mut failed = false;
    for path in paths {
        if let Err(error) = collect(path, &mut files) {
            eprintln!("error: {}: {error}", path.display());
            failed = true;
        }
    }
    let mut errors = 0;
    for file in &files {
        errors += check_file(file, bytecode);
    }
    if errors > 0 || failed {
        eprintln!(
            "{} file{} checked, {errors} error{}",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            if errors == 1 { "" } else { "s" }
        );
        ExitCode::FAILURE
    } else {
        eprintln!(
            "{} file{} checked, no errors",
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
        ExitCode::SUCCESS
    }
}

fn kind_of(path: &Path) -> Option<FileKind> {
    let extension = path.extension()?.to_string_lossy().to_ascii_lowercase();
    match extension.as_str() {
        "sppr" => Some(FileKind::Program),
        "sppi" => Some(FileKind::Module),
        _ => None,
    }
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let metadata = std::fs::metadata(path)?;
    if metadata.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if kind_of(&entry).is_some() {
            files.push(entry);
        }
    }
    Ok(())
}

/// Checks one file; returns the number of errors.
fn check_file(path: &Path, bytecode: bool) -> usize {
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                eprintln!("error: {}: not UTF-8 text", path.display());
                return 1;
            }
        },
        Err(error) => {
            eprintln!("error: {}: {error}", path.display());
            return 1;
        }
    };
    let kind = kind_of(path).unwrap_or(FileKind::Program);
    let file = Arc::new(SourceFile::new(path.display().to_string(), text));
    match compile_as(file, kind, &FolderModules::beside(path)) {
        Ok(program) => {
            if bytecode {
                print!("{}", program.disassemble());
            }
            0
        }
        Err(diagnostics) => {
            report::print_all(&diagnostics);
            diagnostics.len()
        }
    }
}
