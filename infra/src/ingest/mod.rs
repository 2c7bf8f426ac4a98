//! Scanner reports in: one parser per format (SARIF, Nuclei, OWASP ZAP,
//! Burp) behind [`ReportParser`], format detection from content, and the
//! text fitting that turns what a scanner wrote into what a finding may
//! hold.
//!
//! A parser reads the report from a [`BufRead`] and hands each finding to
//! a sink as soon as it is complete, so a large report is never held as a
//! whole document tree where the format allows (SARIF results and Nuclei
//! JSONL lines one at a time; XML as a stream of events). What counts as
//! one finding follows DefectDojo's parsers (see each module), so that a
//! report counts the same here as there.
//!
//! Parsers are pure functions of their input: no I/O but the reader, no
//! clock. Ingesting what they produce (validation, deduplication, the job)
//! is the application layer's.

use std::io::BufRead;

use palisade_domain::finding::Severity;
use sha2::{Digest, Sha256};

pub mod burp;
pub mod files;
pub mod nuclei;
pub mod runner;
pub mod sarif;
pub mod zap;

pub use palisade_domain::ingestion::{Format, ItemError};

/// The parser of a format.
pub fn parser_for(format: Format) -> &'static dyn ReportParser {
    match format {
        Format::Sarif => &sarif::Sarif,
        Format::Nuclei => &nuclei::Nuclei,
        Format::Zap => &zap::Zap,
        Format::Burp => &burp::Burp,
    }
}

/// One finding as a scanner reported it, its text already fitted to the
/// finding's limits ([`fit_line`], [`fit_text`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedFinding {
    /// The tool: SARIF's `runs[].tool.driver.name`, else the format's scanner.
    pub product: String,
    /// `sast`, `dast`, `sca` or `vulnerability`.
    pub category: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    /// The host (DAST), or `None` for the upload's scope (SAST: the code base).
    pub asset: Option<String>,
    /// A file and line, or a URL.
    pub location: Option<String>,
    pub cve: Option<String>,
    pub cwe: Option<String>,
    pub cvss_score: Option<f64>,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    /// The scanner's identity for this finding, made of what the scanner
    /// keeps stable between scans; hashed with the product by
    /// [`ScannedFinding::fingerprint`].
    pub identity: String,
    /// Suppressed in the report (SARIF `suppressions`): ingested dismissed,
    /// with this justification.
    pub suppressed: Option<String>,
    /// How many raw records of the report this finding aggregates.
    pub occurrences: u64,
}

impl ScannedFinding {
    /// An empty finding of `product` and `category`, severity info, one occurrence.
    pub fn new(product: &str, category: &str) -> Self {
        Self {
            product: fit_line(product, PRODUCT_CHARS),
            category: category.into(),
            title: String::new(),
            description: String::new(),
            severity: Severity::Info,
            asset: None,
            location: None,
            cve: None,
            cwe: None,
            cvss_score: None,
            references: Vec::new(),
            tags: Vec::new(),
            identity: String::new(),
            suppressed: None,
            occurrences: 1,
        }
    }

    /// The finding's fingerprint within `product` and `scope` (as the job
    /// files it): hex SHA-256 of both and the scanner's identity, so
    /// re-scans address the same finding, and one report uploaded for
    /// two scopes gives two.
    pub fn fingerprint(&self, product: &str, scope: &str) -> String {
        let mut hash = Sha256::new();
        for part in ["scanner", &product.to_lowercase(), scope, &self.identity] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        hex::encode(hash.finalize())
    }
}

/// What a parser hands its sink.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Finding(Box<ScannedFinding>),
    Error(ItemError),
}

/// Why a report could not be read at all (the job fails with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at {at})")]
pub struct ParseError {
    /// Where parsing stopped: `line L, column C`, `byte N`, or a JSON path.
    pub at: String,
    pub message: String,
}

impl ParseError {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            message: message.into(),
        }
    }

    /// A JSON syntax or shape error, where serde_json stopped.
    pub fn json(error: &serde_json::Error) -> Self {
        // serde_json's message ends with " at line L column C"; keep the head.
        let text = error.to_string();
        let message = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(head, _)| head)
            .to_string();
        Self::new(
            format!("line {}, column {}", error.line(), error.column()),
            message,
        )
    }
}

/// A report format's reader.
pub trait ReportParser: Sync {
    fn format(&self) -> Format;

    /// Reads the whole report, handing each finding (or item error) to
    /// `sink` as it is complete. `Err` when the report itself is malformed;
    /// items already handed over stay handed over.
    fn parse(&self, input: &mut dyn BufRead, sink: &mut dyn FnMut(Item)) -> Result<(), ParseError>;
}

/// The format a report's first bytes show, if any.
pub fn detect(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(&head[..head.len().min(64 * 1024)]);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let lower = text.to_ascii_lowercase();
    if text.starts_with('<') {
        if lower.contains("<owaspzapreport") {
            return Some(Format::Zap);
        }
        if lower.contains("<issues") && lower.contains("burpversion")
            || lower.contains("dastardly")
            || lower.contains("<html") && lower.contains("burp")
        {
            return Some(Format::Burp);
        }
        return None;
    }
    if text.starts_with('{') || text.starts_with('[') {
        if lower.contains("\"runs\"") && (lower.contains("sarif") || lower.contains("\"version\""))
        {
            return Some(Format::Sarif);
        }
        if lower.contains("\"template-id\"")
            || lower.contains("\"templateid\"")
            || lower.contains("\"template_id\"")
            || lower.contains("\"matcher-name\"")
            || lower.contains("\"matcher_name\"")
        {
            return Some(Format::Nuclei);
        }
        if lower.contains("\"@programname\"") && lower.contains("zap")
            || lower.contains("\"alerts\"") && lower.contains("\"site\"")
        {
            return Some(Format::Zap);
        }
        if lower.contains("\"issue_events\"")
            || lower.contains("\"issue_type\"")
            || lower.contains("\"scan\"") && lower.contains("\"issues\"")
            // Burp's GraphQL export, even when empty.
            || text.contains("\"Issues\"")
        {
            return Some(Format::Burp);
        }
    }
    None
}

/// Most characters of a product name (the finding's limit).
pub const PRODUCT_CHARS: usize = 100;
/// Most characters of a title.
pub const TITLE_CHARS: usize = 500;
/// Most characters of a description.
pub const DESCRIPTION_CHARS: usize = 20_000;
/// Most characters of a location or a reference.
pub const LOCATION_CHARS: usize = 2_000;
/// Most characters of a tag.
pub const TAG_CHARS: usize = 100;
/// Most tags and references per finding.
pub const MAX_LIST: usize = 50;

/// One line of at most `max` characters: control characters (line ends
/// too) become spaces, runs of whitespace one space, trimmed; cut with `…`
/// when longer.
pub fn fit_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    cut(out, max)
}

/// Long-form text of at most `max` characters: line feeds and tabs kept,
/// other control characters dropped, trimmed; cut with `…` when longer.
pub fn fit_text(text: &str, max: usize) -> String {
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect();
    cut(kept.trim().to_string(), max)
}

fn cut(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out = out.trim_end().to_string();
    out.push('…');
    out
}

/// Text with HTML tags removed and the common entities decoded (scanner
/// descriptions are often HTML): block ends become line feeds.
pub fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let tag = rest[start + 1..start + end]
            .trim_start_matches('/')
            .to_ascii_lowercase();
        let name = tag
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        if matches!(
            name,
            "p" | "br" | "li" | "div" | "tr" | "h1" | "h2" | "h3" | "h4" | "ul" | "ol" | "table"
        ) {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    decode_entities(&out)
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&#39;`, `&nbsp;` and
/// numeric references decoded.
pub fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `CWE-<digits>` from `79`, `CWE-79`, `cwe-79` or `external/cwe/cwe-079`;
/// `None` when it holds no CWE id.
pub fn cwe_of(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let digits = match lower.rfind("cwe-") {
        Some(at) => &lower[at + 4..],
        None => lower.as_str(),
    };
    let digits: String = digits.chars().take_while(|c| c.is_ascii_digit()).collect();
    let number: u64 = digits.parse().ok()?;
    (number > 0 && number < 100_000_000).then(|| format!("CWE-{number}"))
}

/// The first `CVE-YYYY-NNNN…` in `text`, upper-cased.
pub fn cve_in(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    let mut from = 0;
    while let Some(at) = upper[from..].find("CVE-") {
        let start = from + at;
        let rest = &upper[start + 4..];
        let year: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        if year.len() == 4 && rest[4..].starts_with('-') {
            let number: String = rest[5..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if (4..=10).contains(&number.len()) {
                return Some(format!("CVE-{year}-{number}"));
            }
        }
        from = start + 4;
    }
    None
}

/// A severity from a scanner's word (`critical`, `HIGH`, `Medium`,
/// `informational`, `note`, …); `None` when it names none.
pub fn severity_word(word: &str) -> Option<Severity> {
    match word.trim().to_ascii_lowercase().as_str() {
        "critical" => Some(Severity::Critical),
        "high" | "error" => Some(Severity::High),
        "medium" | "moderate" | "warning" => Some(Severity::Medium),
        "low" | "note" => Some(Severity::Low),
        "info" | "information" | "informational" | "none" | "unknown" => Some(Severity::Info),
        _ => None,
    }
}

/// A severity from a CVSS score: ≥ 9 critical, ≥ 7 high, ≥ 4 medium, > 0
/// low, else info.
pub fn severity_of_score(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Info
    }
}

/// The host of a URL (`https://a.example:8443/x` → `a.example:8443`), or
/// the text itself when it is no URL.
pub fn host_of(url: &str) -> String {
    let url = url.trim();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod corpus_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_fitted_to_the_finding_rules() {
        assert_eq!(fit_line("  a\n\tb  c\u{0}d ", 100), "a b c d");
        assert_eq!(fit_line("abcdef", 4), "abc…");
        assert_eq!(fit_text(" a\nb\u{7}c ", 100), "a\nbc");
        assert_eq!(strip_html("<p>a &amp; b</p><br/>c&#39;s"), "\na & b\n\nc's");
    }

    #[test]
    fn identifiers_are_found_in_scanner_text() {
        assert_eq!(cwe_of("external/cwe/cwe-079").as_deref(), Some("CWE-79"));
        assert_eq!(cwe_of("89").as_deref(), Some("CWE-89"));
        assert_eq!(cwe_of("security"), None);
        assert_eq!(
            cve_in("see cve-2021-44228 now").as_deref(),
            Some("CVE-2021-44228")
        );
        assert_eq!(cve_in("CVE-21-1"), None);
        assert_eq!(severity_of_score(9.8), Severity::Critical);
        assert_eq!(severity_of_score(0.0), Severity::Info);
        assert_eq!(host_of("https://user@A.example:8443/x?y"), "a.example:8443");
    }
}
