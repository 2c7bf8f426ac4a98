//! Logs: `tracing` to stderr, pretty in a terminal or JSON with
//! `PALISADE_LOG_FORMAT=json`; `RUST_LOG` sets the filter.
//!
//! No line grows without bound: a slow-statement warning names its SQL,
//! which can be long, so every string in a JSON line is cut at
//! [`MAX_FIELD_CHARS`] and a pretty line at [`MAX_LINE_BYTES`], each marked
//! `… [truncated]`.

use std::io::{IsTerminal, Write};

use palisade_infra::LogFormat;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// The longest string value a JSON log line keeps.
pub const MAX_FIELD_CHARS: usize = 1_000;
/// The longest pretty log line.
pub const MAX_LINE_BYTES: usize = 4_096;

const MARK: &str = "… [truncated]";

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder
            .with_writer(Bounded { json: true })
            .json()
            .try_init(),
        LogFormat::Pretty => builder
            .with_writer(Bounded { json: false })
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// Standard error, through [`bounded`].
#[derive(Clone, Copy)]
struct Bounded {
    json: bool,
}

impl<'a> MakeWriter<'a> for Bounded {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        *self
    }
}

impl Write for Bounded {
    /// The formatter writes one whole event per call.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let bounded = bounded(line, self.json);
        std::io::stderr().lock().write_all(&bounded)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A log line within the bounds: unchanged when it already is.
fn bounded(line: &[u8], json: bool) -> std::borrow::Cow<'_, [u8]> {
    let limit = if json {
        MAX_FIELD_CHARS
    } else {
        MAX_LINE_BYTES
    };
    if line.len() <= limit {
        return line.into();
    }
    if json {
        if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(line) {
            cut_strings(&mut value);
            let mut text = value.to_string().into_bytes();
            text.push(b'\n');
            return text.into();
        }
    }
    let text = String::from_utf8_lossy(line);
    let mut end = MAX_LINE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}\n", &text[..end]).into_bytes().into()
}

fn cut_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) if text.chars().count() > MAX_FIELD_CHARS => {
            let kept: String = text.chars().take(MAX_FIELD_CHARS).collect();
            *text = format!("{kept}{MARK}");
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(cut_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(cut_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_short_ones_kept() {
        assert_eq!(&*bounded(b"short\n", false), b"short\n");
        let long = format!(
            "WARN slow statement db.statement=\"{}\"\n",
            "?, ".repeat(10_000)
        );
        let cut = bounded(long.as_bytes(), false);
        assert!(cut.len() < MAX_LINE_BYTES + 32);
        assert!(String::from_utf8_lossy(&cut).ends_with("[truncated]\n"));
        let json = serde_json::json!({"fields": {"db.statement": "x".repeat(50_000)}}).to_string();
        let cut = bounded(json.as_bytes(), true);
        let value: serde_json::Value = serde_json::from_slice(&cut).expect("still JSON");
        let statement = value["fields"]["db.statement"].as_str().unwrap_or_default();
        assert_eq!(
            statement.chars().count(),
            MAX_FIELD_CHARS + MARK.chars().count()
        );
    }
}
