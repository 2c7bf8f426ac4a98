//! The layering, checked on the source: the application layer
//! (`api/src/app/`) knows nothing of HTTP or GraphQL, so REST, GraphQL and
//! the CLI stay adapters over it (see `docs/architecture.md`).

use std::path::{Path, PathBuf};

/// What no file of the application layer may name, outside comments.
const FORBIDDEN: [&str; 5] = [
    "crate::rest",
    "crate::graphql",
    "axum",
    "async_graphql",
    "utoipa_axum",
];

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn the_application_layer_imports_no_adapter() {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/src/app");
    let mut files = Vec::new();
    rust_files(&app, &mut files);
    assert!(
        files.len() >= 5,
        "expected the app layer's files in {app:?}"
    );
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for name in FORBIDDEN {
                if code.contains(name) {
                    offences.push(format!(
                        "{}:{}: {}",
                        file.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the app layer names an adapter:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_check_sees_an_offence() {
    // The rule itself: a use of an adapter is caught, a comment is not.
    let caught = |line: &str| {
        let code = line.split("//").next().unwrap_or_default();
        FORBIDDEN.iter().any(|name| code.contains(name))
    };
    assert!(caught("use axum::http::StatusCode;"));
    assert!(caught("use crate::rest::ApiError;"));
    assert!(caught("    async_graphql::Error::new(m)"));
    assert!(!caught("//! nothing here imports `axum`"));
    assert!(!caught("use super::{App, Error};"));
}
