//! Secrets generated once into a private file (mode 0600) in the data
//! directory: the admin token and the root key in embedded mode. The data
//! directory itself is private (0700), and so is every file the embedded
//! store keeps there (0600): [`private_dir`], [`private_file`].

use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and its parents) with mode 0700, or takes group and
/// other access away from an existing one (and logs that it did). A shared
/// directory (sticky, such as `/tmp`) is left as it is, with a warning:
/// the files in it are still private.
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
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & STICKY != 0 {
        tracing::warn!(
            path = %dir.display(),
            "the data directory is shared (sticky bit); give Palisade a directory of its own"
        );
        return Ok(());
    }
    tighten(dir)
}

/// Takes group and other access away from an existing file; a file that
/// does not exist is left alone.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(_) => tighten(path),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

const STICKY: u32 = 0o1000;

/// Clears the group and other bits, keeping the owner's and any special
/// bits, and logs when that changed anything.
fn tighten(path: &Path) -> std::io::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    let private = current & !0o077;
    if private != current {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(private))?;
        tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{private:o}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn data_dirs_are_made_private_but_shared_ones_are_left_alone() {
        let base = std::env::temp_dir().join(format!("palisade-keyfile-{}", std::process::id()));
        let fresh = base.join("a").join("data");
        private_dir(&fresh).expect("created");
        assert_eq!(mode(&fresh), 0o700);
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o2755)).expect("chmod");
        private_dir(&fresh).expect("tightened");
        assert_eq!(mode(&fresh), 0o2700, "setgid kept, group and other gone");
        let shared = base.join("shared");
        std::fs::create_dir_all(&shared).expect("created");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        private_dir(&shared).expect("left alone");
        assert_eq!(mode(&shared), 0o1777);
        std::fs::remove_dir_all(&base).expect("removed");
    }
}
