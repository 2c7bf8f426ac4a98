//! Burp Dastardly (JUnit XML): `<testsuites>` of one `<testsuite>` per
//! crawled URL, a `<testcase>` per issue; every `<failure>` is one finding
//! (DefectDojo's "Burp Dastardly Scan"). The failure's `type` is the
//! severity, its text the issue written out in sections (`Issue Detail`,
//! `Issue Background`, `Evidence`, `References`, `Vulnerability
//! Classifications`, …); the evidence (request and response) is left out.
//! The report is read as a stream of events, one failure's text (bounded)
//! at a time.

use std::io::BufRead;

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{
    finding, first_cwe, links_in_text, push_bounded, severity, tag, tidy, xml_attribute, xml_error,
    xml_reference, xml_text, Description, DASTARDLY,
};
use crate::ingest::{
    cve_in, fit_line, host_of, Item, ItemError, ParseError, ScannedFinding, LOCATION_CHARS,
    TITLE_CHARS,
};

/// The most bytes kept of one failure's text.
const FAILURE_BYTES: usize = 2 * 1024 * 1024;

/// One `<failure>` and where it is.
#[derive(Debug, Default)]
struct Failure {
    suite: String,
    case: String,
    message: String,
    kind: String,
    text: String,
    /// An XPath-like address for item errors.
    at: String,
}

/// Reads a Dastardly report, `offset` bytes into the upload.
pub(super) fn parse<R: BufRead>(
    input: R,
    offset: u64,
    sink: &mut dyn FnMut(Item),
) -> Result<(), ParseError> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut suite = String::new();
    let mut case = String::new();
    let (mut suites, mut cases, mut failures) = (0usize, 0usize, 0usize);
    let mut failure: Option<(usize, Failure)> = None;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| xml_error(reader.error_position(), offset, &e))?;
        match &event {
            Event::Start(element) | Event::Empty(element) => {
                depth += 1;
                let name = element.local_name();
                let name = name.as_ref();
                if depth == 1 && !matches!(name, b"testsuites" | b"testsuite") {
                    return Err(ParseError::new(
                        format!("byte {}", reader.buffer_position() + offset),
                        format!(
                            "expected the <testsuites> root element, found <{}>",
                            xml_text(name)
                        ),
                    ));
                }
                match name {
                    b"testsuite" => {
                        suites += 1;
                        cases = 0;
                        suite = xml_attribute(element, "name");
                    }
                    b"testcase" => {
                        cases += 1;
                        failures = 0;
                        case = xml_attribute(element, "name");
                    }
                    b"failure" if failure.is_none() => {
                        failures += 1;
                        let at = format!(
                            "/testsuites/testsuite[{suites}]/testcase[{cases}]/failure[{failures}]"
                        );
                        let started = Failure {
                            suite: suite.clone(),
                            case: case.clone(),
                            message: xml_attribute(element, "message"),
                            kind: xml_attribute(element, "type"),
                            text: String::new(),
                            at,
                        };
                        failure = Some((depth, started));
                    }
                    _ => {}
                }
                if matches!(event, Event::Empty(_)) {
                    end(&mut depth, &mut failure, sink);
                }
            }
            Event::End(_) => end(&mut depth, &mut failure, sink),
            Event::Text(text) => push(&mut failure, &xml_text(text)),
            Event::CData(text) => push(&mut failure, &xml_text(text)),
            Event::GeneralRef(reference) => push(&mut failure, &xml_reference(reference)),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if depth > 0 {
        return Err(ParseError::new(
            format!("byte {}", reader.buffer_position() + offset),
            "the report ends inside an element (truncated?)",
        ));
    }
    Ok(())
}

fn push(failure: &mut Option<(usize, Failure)>, text: &str) {
    if let Some((_, failure)) = failure.as_mut() {
        push_bounded(&mut failure.text, text, FAILURE_BYTES);
    }
}

/// An element ends: a failure's end hands its finding (or item error) on.
fn end(depth: &mut usize, failure: &mut Option<(usize, Failure)>, sink: &mut dyn FnMut(Item)) {
    if failure.as_ref().is_some_and(|(at, _)| *at == *depth) {
        if let Some((_, done)) = failure.take() {
            sink(match failure_finding(done) {
                Ok(f) => Item::Finding(Box::new(f)),
                Err(e) => Item::Error(e),
            });
        }
    }
    *depth = depth.saturating_sub(1);
}

/// The sections of a failure's text.
#[derive(Debug, Default)]
struct Sections {
    severity: String,
    confidence: String,
    host: String,
    path: String,
    detail: String,
    background: String,
    remediation: String,
    references: String,
    classifications: String,
}

/// Which section a heading line starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Header,
    Detail,
    Background,
    Remediation,
    Evidence,
    References,
    Classifications,
}

fn heading(line: &str) -> Option<Section> {
    Some(match line.trim().to_ascii_lowercase().as_str() {
        "issue detail" | "issue description" => Section::Detail,
        "issue background" => Section::Background,
        "issue remediation" | "remediation detail" | "remediation background" => {
            Section::Remediation
        }
        "evidence" => Section::Evidence,
        "references" => Section::References,
        "vulnerability classifications" => Section::Classifications,
        _ => return None,
    })
}

fn sections(text: &str) -> Sections {
    let mut out = Sections::default();
    let mut current = Section::Header;
    for line in text.lines() {
        if let Some(next) = heading(line) {
            // Evidence is a raw request and response: only the sections
            // after it end it.
            let ends_evidence = matches!(next, Section::References | Section::Classifications);
            if current != Section::Evidence || ends_evidence {
                current = next;
                continue;
            }
        }
        let target = match current {
            Section::Header => {
                if let Some((key, value)) = line.split_once(':') {
                    let value = value.trim().to_string();
                    match key.trim().to_ascii_lowercase().as_str() {
                        "severity" => out.severity = value,
                        "confidence" => out.confidence = value,
                        "host" => out.host = value,
                        "path" => out.path = value,
                        _ => {}
                    }
                }
                continue;
            }
            Section::Evidence => continue,
            Section::Detail => &mut out.detail,
            Section::Background => &mut out.background,
            Section::Remediation => &mut out.remediation,
            Section::References => &mut out.references,
            Section::Classifications => {
                if line.trim_start().starts_with("Reported by Dastardly") {
                    continue;
                }
                &mut out.classifications
            }
        };
        target.push_str(line);
        target.push('\n');
    }
    out
}

fn failure_finding(failure: Failure) -> Result<ScannedFinding, ItemError> {
    let s = sections(&failure.text);
    let (issue_name, found_at) = match failure.message.split_once(" found at ") {
        Some((name, url)) => (name.trim(), url.trim()),
        None => (failure.message.trim(), ""),
    };
    let name = match failure.case.trim() {
        "" => issue_name,
        case => case,
    };
    if name.is_empty() {
        return Err(ItemError {
            at: failure.at,
            reason: "failure has no issue name".into(),
        });
    }
    let mut f = finding(DASTARDLY);
    f.title = fit_line(name, TITLE_CHARS);
    f.severity = severity(if failure.kind.trim().is_empty() {
        &s.severity
    } else {
        &failure.kind
    });
    let location = if !s.host.is_empty() {
        format!("{}{}", s.host.trim_end_matches('/'), s.path)
    } else if !found_at.is_empty() {
        found_at.to_string()
    } else {
        failure.suite.trim().to_string()
    };
    let location = fit_line(&location, LOCATION_CHARS);
    let asset = host_of(if s.host.is_empty() {
        &location
    } else {
        &s.host
    });
    f.asset = (!asset.is_empty()).then_some(asset);
    let mut description = Description::default();
    description.section("Issue detail", &tidy(&s.detail));
    description.section("Issue background", &tidy(&s.background));
    description.section("Remediation", &tidy(&s.remediation));
    description.section("Vulnerability classifications", &tidy(&s.classifications));
    if location != failure.suite.trim() {
        description.section("Found at", &failure.suite);
    }
    f.description = description.finish();
    links_in_text(&s.references, &mut f.references);
    links_in_text(&s.classifications, &mut f.references);
    f.cwe = first_cwe(&s.classifications);
    f.cve = cve_in(&f.title);
    f.tags = tag("confidence", &s.confidence).into_iter().collect();
    f.identity = format!("issue {} at {location}", f.title);
    f.location = (!location.is_empty()).then_some(location);
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use palisade_domain::finding::Severity;

    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<testsuites failures="2" name="Dastardly scan results - have a vulnerability-free day!" tests="3">
    <testsuite failures="0" name="https://shop.example:443/" tests="1">
        <testcase name="No issues were identified"/>
    </testsuite>
    <testsuite failures="1" name="https://shop.example:443/catalog?searchTerm=x" tests="1">
        <testcase name="Cross-site scripting (reflected)">
            <failure message="Cross-site scripting (reflected) found at https://shop.example/catalog" type="High"><![CDATA[
Severity: High

Confidence: Certain

Host: https://shop.example

Path: /catalog


Issue Detail
The value of the searchTerm parameter is echoed.

Issue Background
Reflected XSS arises when data is echoed.

Evidence
Request:
GET /catalog HTTP/1.1

References
- Web Security Academy: XSS (https://portswigger.net/web-security/cross-site-scripting)

Vulnerability Classifications

- CWE-79: Improper Neutralization (https://cwe.mitre.org/data/definitions/79.html)

- CWE-80: Basic XSS (https://cwe.mitre.org/data/definitions/80.html)

Reported by Dastardly: https://portswigger.net/burp/dastardly/scan-checks
]]></failure>
        </testcase>
    </testsuite>
    <testsuite failures="1" name="https://shop.example:443/js" tests="1">
        <testcase name="">
            <failure message="" type="Low"/>
        </testcase>
    </testsuite>
</testsuites>
"#;

    #[test]
    fn each_failure_is_a_finding() {
        let (findings, errors, result) = parse_all(REPORT);
        assert_eq!(result, Ok(()));
        assert_eq!(findings.len(), 1);
        assert_eq!(errors.len(), 1, "a failure without a name");
        assert_eq!(
            errors[0].at,
            "/testsuites/testsuite[3]/testcase[1]/failure[1]"
        );
        let f = &findings[0];
        assert_eq!(f.product, "Burp Dastardly");
        assert_eq!(f.title, "Cross-site scripting (reflected)");
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.asset.as_deref(), Some("shop.example"));
        assert_eq!(f.location.as_deref(), Some("https://shop.example/catalog"));
        assert_eq!(
            f.identity,
            "issue Cross-site scripting (reflected) at https://shop.example/catalog"
        );
        assert_eq!(f.cwe.as_deref(), Some("CWE-79"));
        assert_eq!(f.tags, ["confidence:certain"]);
        assert_eq!(
            f.references,
            [
                "https://portswigger.net/web-security/cross-site-scripting",
                "https://cwe.mitre.org/data/definitions/79.html",
                "https://cwe.mitre.org/data/definitions/80.html"
            ]
        );
        assert!(f
            .description
            .starts_with("Issue detail:\nThe value of the searchTerm parameter is echoed."));
        assert!(
            !f.description.contains("GET /catalog"),
            "evidence is left out: {}",
            f.description
        );
    }

    #[test]
    fn a_truncated_report_is_refused() {
        let cut = &REPORT[..REPORT.find("</testcase>").unwrap_or(0)];
        let error = parse_all(cut).2.expect_err("truncated");
        assert!(error.at.starts_with("byte "), "{error:?}");
    }
}
