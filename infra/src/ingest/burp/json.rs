//! The two JSON exports, read as one document:
//!
//! * **REST API** (`GET /v0.1/scan/{task_id}`): `{"issue_events": […]}`;
//!   one finding per event of `type` `issue_found` (DefectDojo's "Burp
//!   REST API"), its identity the issue's `type_index`, `origin` and
//!   `path`. Burp's `false_positive` severity marks the finding
//!   suppressed.
//! * **GraphQL API** (Burp Suite DAST / Enterprise): `{"Issues": […]}` (or
//!   the bare array); issues of the same `issue_type.name` merged into one
//!   finding (DefectDojo's "Burp GraphQL API"); an issue without a name is
//!   an item error (DefectDojo refuses the whole report).

use std::collections::HashMap;
use std::io::Read;

use palisade_domain::finding::Severity;
use serde_json::Value;

use super::{
    finding, first_cwe, html_text, join_url, links_in_html, push_bounded, severity, tag, worse,
    Description, Locations, DETAIL_BYTES, PRODUCT,
};
use crate::ingest::{
    cve_in, fit_line, host_of, Item, ItemError, ParseError, ScannedFinding, LOCATION_CHARS,
    TITLE_CHARS,
};

/// Reads a REST API or GraphQL export.
pub(super) fn parse<R: Read>(input: R, sink: &mut dyn FnMut(Item)) -> Result<(), ParseError> {
    let document: Value = serde_json::from_reader(input).map_err(|e| ParseError::json(&e))?;
    if let Some(events) = document.get("issue_events") {
        let Some(events) = events.as_array() else {
            return Err(ParseError::new(
                "issue_events",
                "expected an array of issue events",
            ));
        };
        rest_api(events, sink);
        return Ok(());
    }
    let (issues, path) = match &document {
        Value::Array(issues) => (issues, String::new()),
        Value::Object(_) => match document.get("Issues") {
            Some(Value::Array(issues)) => (issues, "Issues".to_string()),
            Some(_) => return Err(ParseError::new("Issues", "expected an array of issues")),
            None => return Err(ParseError::new(
                "$",
                "not a Burp JSON export: neither issue_events (REST API) nor Issues (GraphQL API)",
            )),
        },
        _ => return Err(ParseError::new("$", "expected a JSON object or array")),
    };
    graphql(issues, &path, sink);
    Ok(())
}

/// A string member, or empty when absent, null or no string (numbers
/// are written out).
fn text<'a>(value: &'a Value, key: &str) -> std::borrow::Cow<'a, str> {
    match value.get(key) {
        Some(Value::String(s)) => s.as_str().into(),
        Some(Value::Number(n)) => n.to_string().into(),
        _ => "".into(),
    }
}

fn rest_api(events: &[Value], sink: &mut dyn FnMut(Item)) {
    for (i, event) in events.iter().enumerate() {
        if event.get("type").and_then(Value::as_str) != Some("issue_found") {
            continue;
        }
        match event.get("issue") {
            Some(issue @ Value::Object(_)) => sink(Item::Finding(Box::new(rest_finding(issue)))),
            _ => sink(Item::Error(ItemError {
                at: format!("issue_events[{i}]"),
                reason: "issue_found event without an issue".into(),
            })),
        }
    }
}

fn rest_finding(issue: &Value) -> ScannedFinding {
    let mut f = finding(PRODUCT);
    // DefectDojo names an unnamed issue so; the report's count is kept.
    let name = match text(issue, "name").trim() {
        "" => "Burp issue".to_string(),
        name => name.to_string(),
    };
    f.title = fit_line(&name, TITLE_CHARS);
    let word = text(issue, "severity");
    if word.trim().eq_ignore_ascii_case("false_positive") {
        f.suppressed = Some("marked a false positive in Burp".into());
    }
    f.severity = severity(&word);
    let origin = text(issue, "origin");
    let path = text(issue, "path");
    let url = join_url(&origin, &path);
    let asset = host_of(&origin);
    f.asset = (!asset.is_empty()).then_some(asset);
    f.location = (!url.is_empty()).then(|| fit_line(&url, LOCATION_CHARS));
    let mut description = Description::default();
    description.section("", &html_text(&text(issue, "description")));
    description.section(
        "Issue background",
        &html_text(&text(issue, "issue_background")),
    );
    description.section(
        "Remediation detail",
        &html_text(&text(issue, "remediation_detail")),
    );
    description.section("Remediation", &html_text(&text(issue, "remediation")));
    description.section(
        "Remediation background",
        &html_text(&text(issue, "remediation_background")),
    );
    let caption = text(issue, "caption");
    if caption.trim() != path.trim() {
        description.section("Caption", &caption);
    }
    description.section("Serial number", &text(issue, "serial_number"));
    f.description = description.finish();
    for key in ["references", "vulnerability_classifications"] {
        links_in_html(&text(issue, key), &mut f.references);
    }
    f.cwe = first_cwe(&text(issue, "vulnerability_classifications"));
    f.cve = cve_in(&f.title);
    f.tags = tag("confidence", &text(issue, "confidence"))
        .into_iter()
        .collect();
    let type_index = text(issue, "type_index");
    let kind = if type_index.trim().is_empty() {
        name.as_str()
    } else {
        type_index.trim()
    };
    f.identity = format!("type {kind} at {}", fit_line(&url, LOCATION_CHARS));
    f
}

/// The GraphQL issues of one name, merged.
struct Merged {
    name: String,
    severity: Severity,
    host: String,
    location: String,
    background: String,
    remediation: String,
    remediation_background: String,
    details: String,
    references: Vec<String>,
    cwe: Option<String>,
    locations: Locations,
}

impl Merged {
    fn new(name: &str, issue: &Value, issue_type: &Value) -> Self {
        let origin = text(issue, "origin");
        let classifications = text(issue_type, "vulnerability_classifications_html");
        let mut references = Vec::new();
        links_in_html(&text(issue_type, "references_html"), &mut references);
        links_in_html(&classifications, &mut references);
        let mut merged = Merged {
            name: fit_line(name, TITLE_CHARS),
            severity: Severity::Info,
            host: host_of(&origin),
            location: fit_line(&join_url(&origin, &text(issue, "path")), LOCATION_CHARS),
            background: html_text(&text(issue_type, "description_html")),
            remediation: html_text(&text(issue, "remediation_html")),
            remediation_background: html_text(&text(issue_type, "remediation_html")),
            details: String::new(),
            references,
            cwe: first_cwe(&classifications),
            locations: Locations::default(),
        };
        merged.add(issue);
        merged
    }

    fn add(&mut self, issue: &Value) {
        self.severity = worse(self.severity, severity(&text(issue, "severity")));
        let url = join_url(&text(issue, "origin"), &text(issue, "path"));
        self.locations.add(&url);
        let detail = html_text(&text(issue, "description_html"));
        if !detail.is_empty()
            && !self.details.contains(&detail)
            && self.details.len() < DETAIL_BYTES
        {
            if !self.details.is_empty() {
                self.details.push_str("\n\n");
            }
            push_bounded(&mut self.details, &detail, DETAIL_BYTES);
        }
        if self.remediation.is_empty() {
            self.remediation = html_text(&text(issue, "remediation_html"));
        }
    }

    fn finding(self) -> ScannedFinding {
        let mut f = finding(PRODUCT);
        f.identity = if self.host.is_empty() {
            format!("issue {}", self.name)
        } else {
            format!("issue {} on {}", self.name, self.host)
        };
        let mut description = Description::default();
        description.section("Issue detail", &self.details);
        description.section("Issue background", &self.background);
        description.section("Remediation detail", &self.remediation);
        description.section("Remediation background", &self.remediation_background);
        self.locations.section(&mut description);
        f.description = description.finish();
        f.cve = cve_in(&self.name);
        f.title = self.name;
        f.severity = self.severity;
        f.asset = (!self.host.is_empty()).then_some(self.host);
        f.location = (!self.location.is_empty()).then_some(self.location);
        f.cwe = self.cwe;
        f.references = self.references;
        f.occurrences = self.locations.issues.max(1);
        f
    }
}

fn graphql(issues: &[Value], path: &str, sink: &mut dyn FnMut(Item)) {
    let mut merged: Vec<Merged> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    let at = |i: usize| {
        if path.is_empty() {
            format!("[{i}]")
        } else {
            format!("{path}[{i}]")
        }
    };
    for (i, issue) in issues.iter().enumerate() {
        let Some(issue_type) = issue.get("issue_type").filter(|t| t.is_object()) else {
            sink(Item::Error(ItemError {
                at: format!("{}.issue_type", at(i)),
                reason: "issue has no issue_type".into(),
            }));
            continue;
        };
        let name = text(issue_type, "name");
        let name = name.trim();
        if name.is_empty() {
            sink(Item::Error(ItemError {
                at: format!("{}.issue_type.name", at(i)),
                reason: "issue has no name".into(),
            }));
            continue;
        }
        match by_name.get(name) {
            Some(&m) => merged[m].add(issue),
            None => {
                by_name.insert(name.to_string(), merged.len());
                merged.push(Merged::new(name, issue, issue_type));
            }
        }
    }
    for m in merged {
        sink(Item::Finding(Box::new(m.finding())));
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use palisade_domain::finding::Severity;

    #[test]
    fn rest_api_gives_one_finding_per_issue_found_event() {
        let text = r#"{"task_id": "5", "issue_events": [
            {"id": "1", "type": "issue_found", "issue": {"name": "TLS cookie without secure flag set",
             "type_index": 5243392, "serial_number": "56", "origin": "https://w.example", "path": "/build",
             "severity": "info", "confidence": "certain", "caption": "/build",
             "description": "The cookie:<ul><li>uid</li></ul>was issued."}},
            {"id": "2", "type": "issue_updated", "issue": {"name": "Other"}},
            {"id": "3", "type": "issue_found", "issue": {"name": "Content type incorrectly stated",
             "type_index": 8389632, "origin": "https://w.example", "path": "", "severity": "false_positive"}},
            {"id": "4", "type": "issue_found"}
        ]}"#;
        let (findings, errors, result) = parse_all(text);
        assert_eq!(result, Ok(()));
        assert_eq!(findings.len(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].at, "issue_events[3]");
        let f = &findings[0];
        assert_eq!(f.title, "TLS cookie without secure flag set");
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.asset.as_deref(), Some("w.example"));
        assert_eq!(f.location.as_deref(), Some("https://w.example/build"));
        assert_eq!(f.identity, "type 5243392 at https://w.example/build");
        assert!(
            f.description
                .starts_with("The cookie:\n\n- uid\n\nwas issued."),
            "{}",
            f.description
        );
        assert!(findings[1].suppressed.is_some());
        assert_eq!(findings[1].location.as_deref(), Some("https://w.example"));
    }

    #[test]
    fn graphql_issues_of_a_name_are_merged() {
        let text = r#"{"Issues": [
            {"issue_type": {"name": "Finding 1", "vulnerability_classifications_html": "CWE-79"},
             "description_html": "d1", "severity": "low", "path": "/p1", "origin": "https://t.example"},
            {"issue_type": {"name": "Finding 2", "description_html": "background 2",
             "references_html": "<a href=\"https://ref.example/2\">ref</a>"},
             "description_html": "d2", "severity": "medium", "path": "/p2", "origin": "https://t.example"},
            {"issue_type": {"name": "Finding 2"}, "description_html": "d3", "severity": "high",
             "path": "/p3", "origin": "https://t.example", "evidence": [{"request_index": 0, "request_segments": null}]}
        ]}"#;
        let (findings, errors, result) = parse_all(text);
        assert_eq!(result, Ok(()));
        assert!(errors.is_empty());
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].cwe.as_deref(), Some("CWE-79"));
        let f = &findings[1];
        assert_eq!(f.title, "Finding 2");
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.occurrences, 2);
        assert_eq!(f.identity, "issue Finding 2 on t.example");
        assert_eq!(f.location.as_deref(), Some("https://t.example/p2"));
        assert_eq!(f.references, ["https://ref.example/2"]);
        assert!(f.description.contains("d2\n\nd3"), "{}", f.description);
        assert!(
            f.description.contains("- https://t.example/p3"),
            "{}",
            f.description
        );
    }

    #[test]
    fn a_nameless_graphql_issue_is_an_item_error() {
        let text = r#"{"Issues": [
            {"issue_type": {"name": null}, "severity": "high", "path": "/", "origin": "https://t.example"},
            {"issue_type": {"name": "Named"}, "severity": "high", "path": "/", "origin": "https://t.example"},
            {"severity": "high"}
        ]}"#;
        let (findings, errors, result) = parse_all(text);
        assert_eq!(result, Ok(()));
        assert_eq!(findings.len(), 1);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].at, "Issues[0].issue_type.name");
        assert_eq!(errors[0].reason, "issue has no name");
        assert_eq!(errors[1].at, "Issues[2].issue_type");
    }

    #[test]
    fn malformed_or_foreign_json_is_refused() {
        let error = parse_all("{\"Issues\": [").2.expect_err("truncated");
        assert!(error.at.starts_with("line "), "{error:?}");
        let error = parse_all("{\"runs\": []}").2.expect_err("foreign");
        assert_eq!(error.at, "$");
    }
}
