//! Burp Scanner XML (`<issues burpVersion=…>`): `<issue>` elements
//! aggregated by issue type (`<type>`, Burp's numeric issue type id), as
//! DefectDojo's "Burp Scan" does: one finding per type in first-seen
//! order, `occurrences` the number of issues of the type.
//!
//! The report is read as a stream of events; of each issue only its text
//! fields are kept (bounded), never the request/response bodies, and of
//! each type only the aggregate.

use std::collections::HashMap;
use std::io::BufRead;

use palisade_domain::finding::Severity;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::{
    finding, first_cwe, html_text, links_in_html, push_bounded, severity, tag, worse, xml_error,
    xml_reference, xml_text, Description, Locations, DETAIL_BYTES, FIELD_BYTES, PRODUCT,
};
use crate::ingest::{
    cve_in, fit_line, host_of, Item, ItemError, ParseError, ScannedFinding, LOCATION_CHARS,
    MAX_LIST, TITLE_CHARS,
};

/// A text child of `<issue>` that is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Type,
    Name,
    Host,
    Path,
    Severity,
    Confidence,
    Background,
    RemediationBackground,
    Detail,
    DetailItem,
    RemediationDetail,
    References,
    Classifications,
}

impl Field {
    fn of(name: &[u8]) -> Option<Field> {
        Some(match name {
            b"type" => Field::Type,
            b"name" => Field::Name,
            b"host" => Field::Host,
            b"path" => Field::Path,
            b"severity" => Field::Severity,
            b"confidence" => Field::Confidence,
            b"issueBackground" => Field::Background,
            b"remediationBackground" => Field::RemediationBackground,
            b"issueDetail" => Field::Detail,
            b"remediationDetail" => Field::RemediationDetail,
            b"references" => Field::References,
            b"vulnerabilityClassifications" => Field::Classifications,
            _ => return None,
        })
    }
}

/// One `<issue>` as read (text bounded by [`FIELD_BYTES`] per field).
#[derive(Debug, Default)]
struct Issue {
    type_id: String,
    name: String,
    host: String,
    path: String,
    severity: String,
    confidence: String,
    background: String,
    remediation_background: String,
    detail: String,
    detail_items: Vec<String>,
    remediation_detail: String,
    references: String,
    classifications: String,
}

impl Issue {
    fn push(&mut self, field: Field, text: &str) {
        let target = match field {
            Field::Type => &mut self.type_id,
            Field::Name => &mut self.name,
            Field::Host => &mut self.host,
            Field::Path => &mut self.path,
            Field::Severity => &mut self.severity,
            Field::Confidence => &mut self.confidence,
            Field::Background => &mut self.background,
            Field::RemediationBackground => &mut self.remediation_background,
            Field::Detail => &mut self.detail,
            Field::DetailItem => match self.detail_items.last_mut() {
                Some(item) => item,
                None => return,
            },
            Field::RemediationDetail => &mut self.remediation_detail,
            Field::References => &mut self.references,
            Field::Classifications => &mut self.classifications,
        };
        push_bounded(target, text, FIELD_BYTES);
    }

    /// The issue's URL: host and path.
    fn url(&self) -> String {
        format!("{}{}", self.host.trim(), self.path.trim())
    }
}

/// The issues of one type, merged.
#[derive(Debug)]
struct Aggregate {
    type_id: String,
    title: String,
    severity: Severity,
    /// Other names reported under this type (extension-generated issues
    /// share one type id) with their severity, at most [`MAX_LIST`].
    other_names: Vec<(String, Severity)>,
    host: String,
    location: String,
    confidence: String,
    background: String,
    remediation_background: String,
    remediation_detail: String,
    /// The distinct issue details, each with its URL, within
    /// [`DETAIL_BYTES`] in all.
    details: String,
    references: Vec<String>,
    cwe: Option<String>,
    locations: Locations,
}

impl Aggregate {
    fn new(type_id: String, issue: &Issue) -> Self {
        let mut aggregate = Aggregate {
            type_id,
            title: fit_line(&issue.name, TITLE_CHARS),
            severity: severity(&issue.severity),
            other_names: Vec::new(),
            host: issue.host.trim().to_string(),
            location: fit_line(&issue.url(), LOCATION_CHARS),
            confidence: issue.confidence.trim().to_string(),
            background: String::new(),
            remediation_background: String::new(),
            remediation_detail: String::new(),
            details: String::new(),
            references: Vec::new(),
            cwe: None,
            locations: Locations::default(),
        };
        aggregate.add(issue);
        aggregate
    }

    fn add(&mut self, issue: &Issue) {
        let issue_severity = severity(&issue.severity);
        self.severity = worse(self.severity, issue_severity);
        self.locations.add(&issue.url());
        self.add_detail(issue);
        let name = fit_line(&issue.name, TITLE_CHARS);
        if name != self.title {
            // Another issue under the same type id (extension-generated
            // issues share one): its background is not this title's.
            let named = self.other_names.iter().any(|(n, _)| *n == name);
            if !named && self.other_names.len() < MAX_LIST {
                self.other_names.push((name, issue_severity));
            }
            return;
        }
        if self.background.is_empty() {
            self.background = html_text(&issue.background);
        }
        if self.remediation_background.is_empty() {
            self.remediation_background = html_text(&issue.remediation_background);
        }
        if self.remediation_detail.is_empty() {
            self.remediation_detail = html_text(&issue.remediation_detail);
        }
        links_in_html(&issue.references, &mut self.references);
        if self.cwe.is_none() {
            self.cwe = first_cwe(&issue.classifications);
        }
        links_in_html(&issue.classifications, &mut self.references);
    }

    /// The issue's detail (and detail items) added when new and within
    /// the budget.
    fn add_detail(&mut self, issue: &Issue) {
        if self.details.len() >= DETAIL_BYTES {
            return;
        }
        let mut detail = html_text(&issue.detail);
        for item in &issue.detail_items {
            let item = html_text(item);
            if !item.is_empty() {
                detail.push_str("\n- ");
                detail.push_str(&item);
            }
        }
        let detail = detail.trim();
        if detail.is_empty() || self.details.contains(detail) {
            return;
        }
        if !self.details.is_empty() {
            self.details.push_str("\n\n");
        }
        let name = fit_line(&issue.name, TITLE_CHARS);
        let url = fit_line(&issue.url(), LOCATION_CHARS);
        if name == self.title {
            self.details.push_str(&format!("{url}:\n"));
        } else {
            self.details.push_str(&format!("{url} ({name}):\n"));
        }
        push_bounded(&mut self.details, detail, DETAIL_BYTES);
    }

    fn finding(self) -> ScannedFinding {
        let mut f = finding(PRODUCT);
        let asset = host_of(&self.host);
        f.identity = if asset.is_empty() {
            format!("type {}", self.type_id)
        } else {
            format!("type {} on {asset}", self.type_id)
        };
        let mut description = Description::default();
        description.section("Issue background", &self.background);
        description.section("Issue detail", &self.details);
        description.section("Remediation detail", &self.remediation_detail);
        description.section("Remediation background", &self.remediation_background);
        if !self.other_names.is_empty() {
            let names: String = self
                .other_names
                .iter()
                .map(|(name, severity)| format!("- {name} ({})\n", severity.as_str()))
                .collect();
            description.section("Also reported under this issue type", &names);
        }
        self.locations.section(&mut description);
        f.description = description.finish();
        f.cve = cve_in(&self.title);
        f.title = self.title;
        f.severity = self.severity;
        f.asset = (!asset.is_empty()).then_some(asset);
        f.location = (!self.location.is_empty()).then_some(self.location);
        f.cwe = self.cwe;
        f.references = self.references;
        f.tags = tag("confidence", &self.confidence).into_iter().collect();
        f.occurrences = self.locations.issues.max(1);
        f
    }
}

/// The aggregates by type, in first-seen order.
#[derive(Default)]
struct Aggregates {
    list: Vec<Aggregate>,
    index: HashMap<String, usize>,
}

impl Aggregates {
    fn add(&mut self, issue: &Issue) {
        // An issue without a type id is its own type, by name.
        let type_id = match issue.type_id.trim() {
            "" => format!("named {}", fit_line(&issue.name, TITLE_CHARS)),
            id => id.to_string(),
        };
        match self.index.get(&type_id) {
            Some(&i) => self.list[i].add(issue),
            None => {
                self.index.insert(type_id.clone(), self.list.len());
                self.list.push(Aggregate::new(type_id, issue));
            }
        }
    }
}

/// Reads a Burp Scanner XML report, `offset` bytes into the upload.
pub(super) fn parse<R: BufRead>(
    input: R,
    offset: u64,
    sink: &mut dyn FnMut(Item),
) -> Result<(), ParseError> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut issue: Option<Issue> = None;
    let mut field: Option<Field> = None;
    let mut in_detail_items = false;
    let mut issues = 0usize;
    let mut aggregates = Aggregates::default();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(reader.error_position(), offset, &e))?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            _ => (None, false),
        };
        if let Some(element) = start {
            depth += 1;
            let name = element.local_name();
            let name = name.as_ref();
            match depth {
                1 => {
                    if name != b"issues" {
                        return Err(ParseError::new(
                            format!("byte {}", reader.buffer_position() + offset),
                            format!(
                                "expected the <issues> root element, found <{}>",
                                xml_text(name)
                            ),
                        ));
                    }
                    seen_root = true;
                }
                2 if name == b"issue" => {
                    issues += 1;
                    issue = Some(Issue::default());
                }
                3 if issue.is_some() => {
                    field = Field::of(name);
                    in_detail_items = name == b"issueDetailItems";
                }
                4 if in_detail_items && name == b"issueDetailItem" => {
                    if let Some(issue) = issue.as_mut() {
                        if issue.detail_items.len() < MAX_LIST {
                            issue.detail_items.push(String::new());
                            field = Some(Field::DetailItem);
                        }
                    }
                }
                _ => {}
            }
            if !empty {
                buf.clear();
                continue;
            }
        }
        match event {
            Event::Start(_) => {}
            Event::End(_) | Event::Empty(_) => {
                match depth {
                    4 if in_detail_items => field = None,
                    3 => {
                        field = None;
                        in_detail_items = false;
                    }
                    2 => {
                        if let Some(done) = issue.take() {
                            if done.name.trim().is_empty() {
                                sink(Item::Error(ItemError {
                                    at: format!("/issues/issue[{issues}]"),
                                    reason: "issue has no name".into(),
                                }));
                            } else {
                                aggregates.add(&done);
                            }
                        }
                    }
                    _ => {}
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(text) => push(&mut issue, field, &xml_text(&text)),
            Event::CData(text) => push(&mut issue, field, &xml_text(&text)),
            Event::GeneralRef(reference) => push(&mut issue, field, &xml_reference(&reference)),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if depth > 0 {
        return Err(ParseError::new(
            format!("byte {}", reader.buffer_position() + offset),
            format!("the report ends inside an element after {issues} issues (truncated?)"),
        ));
    }
    if !seen_root {
        return Err(ParseError::new(
            format!("byte {}", reader.buffer_position() + offset),
            "no <issues> element",
        ));
    }
    for aggregate in aggregates.list {
        sink(Item::Finding(Box::new(aggregate.finding())));
    }
    Ok(())
}

fn push(issue: &mut Option<Issue>, field: Option<Field>, text: &str) {
    if let (Some(issue), Some(field)) = (issue.as_mut(), field) {
        issue.push(field, text);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use palisade_domain::finding::Severity;

    fn issue(
        serial: u32,
        type_id: &str,
        name: &str,
        host: &str,
        path: &str,
        severity: &str,
    ) -> String {
        format!(
            "<issue><serialNumber>{serial}</serialNumber><type>{type_id}</type><name>{name}</name>\
             <host ip=\"10.0.0.1\">{host}</host><path><![CDATA[{path}]]></path><location><![CDATA[{path}]]></location>\
             <severity>{severity}</severity><confidence>Firm</confidence>\
             <issueBackground><![CDATA[<p>Background &amp; more.</p>]]></issueBackground>\
             <issueDetail><![CDATA[Detail of {path}.]]></issueDetail>\
             <vulnerabilityClassifications><![CDATA[<ul><li><a href=\"https://cwe.mitre.org/data/definitions/89.html\">CWE-89: SQLi</a></li>\
             <li><a href=\"https://cwe.mitre.org/data/definitions/94.html\">CWE-94: x</a></li></ul>]]></vulnerabilityClassifications>\
             <requestresponse><request method=\"GET\" base64=\"true\"><![CDATA[R0VUIC8=]]></request>\
             <response base64=\"true\"><![CDATA[SFRUUA==]]></response><responseRedirected>false</responseRedirected></requestresponse>\
             </issue>"
        )
    }

    fn report(issues: &[String]) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE issues [\n<!ELEMENT issues (issue*)>\n<!ATTLIST issues burpVersion CDATA \"\">\n]>\n\
             <issues burpVersion=\"2023.1\" exportTime=\"now\">\n{}\n</issues>\n",
            issues.join("\n")
        )
    }

    #[test]
    fn issues_are_aggregated_by_type_in_first_seen_order() {
        let text = report(&[
            issue(
                1,
                "1049088",
                "SQL injection",
                "http://a.example",
                "/one",
                "Medium",
            ),
            issue(
                2,
                "5245344",
                "Frameable response",
                "http://a.example",
                "/",
                "Information",
            ),
            issue(
                3,
                "1049088",
                "SQL injection",
                "http://a.example",
                "/two",
                "High",
            ),
            issue(
                4,
                "1049088",
                "SQL injection",
                "http://a.example",
                "/one",
                "Low",
            ),
        ]);
        let (findings, errors, result) = parse_all(&text);
        assert_eq!(result, Ok(()));
        assert!(errors.is_empty());
        assert_eq!(findings.len(), 2);
        let sqli = &findings[0];
        assert_eq!(sqli.title, "SQL injection");
        assert_eq!(sqli.product, "Burp Suite");
        assert_eq!(sqli.category, "dast");
        assert_eq!(
            sqli.severity,
            Severity::High,
            "the worst of the merged issues"
        );
        assert_eq!(sqli.occurrences, 3);
        assert_eq!(sqli.asset.as_deref(), Some("a.example"));
        assert_eq!(sqli.location.as_deref(), Some("http://a.example/one"));
        assert_eq!(sqli.cwe.as_deref(), Some("CWE-89"));
        assert_eq!(sqli.identity, "type 1049088 on a.example");
        assert_eq!(sqli.tags, ["confidence:firm"]);
        assert!(sqli
            .references
            .contains(&"https://cwe.mitre.org/data/definitions/89.html".to_string()));
        assert!(
            sqli.description
                .starts_with("Issue background:\nBackground & more."),
            "{}",
            sqli.description
        );
        assert!(
            sqli.description
                .contains("- http://a.example/one\n- http://a.example/two\n(3 issues in all)"),
            "{}",
            sqli.description
        );
        assert!(sqli.description.contains("Detail of /two."));
        assert!(
            !sqli.description.contains("R0VUIC8"),
            "request bodies are not kept"
        );
        assert_eq!(findings[1].title, "Frameable response");
        assert_eq!(findings[1].severity, Severity::Info);
        assert_eq!(findings[1].occurrences, 1);
    }

    #[test]
    fn a_nameless_issue_is_an_item_error() {
        let text = report(&[
            issue(1, "1", "", "http://a.example", "/", "High"),
            issue(2, "2", "Named", "http://a.example", "/", "High"),
        ]);
        let (findings, errors, result) = parse_all(&text);
        assert_eq!(result, Ok(()));
        assert_eq!(findings.len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].at, "/issues/issue[1]");
    }

    #[test]
    fn a_truncated_report_is_refused_where_it_stops() {
        let text = report(&[issue(
            1,
            "1",
            "SQL injection",
            "http://a.example",
            "/",
            "High",
        )]);
        let cut = &text[..text.find("<severity>").unwrap_or(0) + 5];
        let (findings, _, result) = parse_all(cut);
        assert!(findings.is_empty());
        let error = result.expect_err("truncated");
        assert!(error.at.starts_with("byte "), "{error:?}");
        let cut = &text[..text.find("</issue>").unwrap_or(0)];
        let error = parse_all(cut).2.expect_err("truncated");
        assert_eq!(error.at, format!("byte {}", cut.len()));
        assert!(error.message.contains("truncated"), "{error:?}");
    }

    #[test]
    fn a_mismatched_end_tag_is_refused() {
        let text = "<issues burpVersion=\"1\"><issue><name>x</nam></issue></issues>";
        let error = parse_all(text).2.expect_err("ill-formed");
        assert!(error.at.starts_with("byte "), "{error:?}");
    }
}
