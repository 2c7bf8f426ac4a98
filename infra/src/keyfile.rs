//! Secrets generated once into a private file (mode 0600) in the data
//! directory: the admin token and the root key in embedded mode. The data
//! directory itself is private (0700), and so is every file the embedded
//! store keeps there ([`private_dir`], [`private_file`]).

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and its parents) with mode 0700, or tightens an existing
/// one whose mode lets anyone else in (and logs that it did).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    tighten(dir, 0o700)
}

/// Makes an existing file private (0600) when it is not; a file that does
/// not exist is left alone.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(_) => tighten(path, 0o600),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{mode:o}"),
            "tightened the permissions of a data file"
        );
    }
    Ok(())
}

/// The file's trimmed content; when the file does not exist, `generate()`'s
/// value is written to it first (created exclusively, 0600, synced).
pub fn load_or_generate(path: &Path, generate: impl FnOnce() -> String) -> std::io::Result<String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    private_file(path)?;
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let value = generate();
            file.write_all(value.as_bytes())?;
            file.sync_all()?;
            Ok(value)
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            let value = std::fs::read_to_string(path)?.trim().to_string();
            if value.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{} is empty; delete it to generate a new one",
                    path.display()
                )));
            }
            Ok(value)
        }
        Err(error) => Err(error),
    }
}
