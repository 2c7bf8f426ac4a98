//! The admin token: from `PALISADE_ADMIN_TOKEN`, or generated once into
//! `$PALISADE_DATA_DIR/admin-token` (mode 0600). Its value is never logged.

use std::path::{Path, PathBuf};

use rand::distributions::Alphanumeric;
use rand::Rng;
use subtle::ConstantTimeEq;

/// A secret that does not print itself.
#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl AdminToken {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// Compares in time independent of where the inputs differ.
    pub fn matches(&self, candidate: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(candidate.as_bytes()))
    }

    /// The configured token, or the one in `data_dir/admin-token`, generating
    /// that file on first use. Returns the file's path when it was used.
    pub fn load(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> std::io::Result<(Self, Option<PathBuf>)> {
        if let Some(token) = configured {
            return Ok((Self(token.to_string()), None));
        }
        let path = data_dir.join("admin-token");
        let token = palisade_infra::keyfile::load_or_generate(&path, || {
            let random: String = rand::rngs::OsRng
                .sample_iter(&Alphanumeric)
                .take(43)
                .map(char::from)
                .collect();
            format!("pal_admin_{random}")
        })?;
        Ok((Self(token), Some(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        let token = AdminToken::new("pal_admin_abc".into());
        assert!(token.matches("pal_admin_abc"));
        assert!(!token.matches("pal_admin_abd"));
        assert!(!token.matches("pal_admin_ab"));
        assert!(!token.matches(""));
    }

    #[test]
    fn a_generated_token_is_kept_in_a_private_file_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("palisade-token-{}", uuid::Uuid::new_v4()));
        let (first, path) = AdminToken::load(None, &dir).expect("generated");
        let path = path.expect("file used");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, _) = AdminToken::load(None, &dir).expect("reloaded");
        assert!(second.matches(&first.0));
        assert!(first.0.starts_with("pal_admin_") && first.0.len() == 53);
        std::fs::remove_dir_all(dir).expect("cleanup");
    }
}
