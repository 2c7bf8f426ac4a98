//! Secrets generated once into a private file (mode 0600) in the data
//! directory: the admin token and the root key in embedded mode.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The file's trimmed content; when the file does not exist, `generate()`'s
/// value is written to it first (created exclusively, 0600, synced).
pub fn load_or_generate(path: &Path, generate: impl FnOnce() -> String) -> std::io::Result<String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
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
