//! Nuclei reports: a JSON array or JSON lines (`-jsonl`), with the key
//! names of v2 (`templateID`, `matched`, `matcher_name`) and of v3
//! (`template-id`, `matched-at`, `matcher-name`).
//!
//! What counts as a finding follows DefectDojo: records are aggregated by
//! template id + type + matcher name + host, and repeats are counted as
//! occurrences. The aggregate is kept in memory until the end of the
//! report (one entry per distinct key, without request and response
//! bodies); records are read one at a time (a line, or an element of the
//! array), never as a whole tree.
//!
//! Mapping: `info.name` is the title, `info.severity` the severity
//! (`unknown` is info), the host the asset, `matched-at` the location;
//! `info.classification` gives the CVE, CWE and CVSS score,
//! `info.reference` the references and `info.tags` the tags.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, Read};

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use super::{
    cve_in, cwe_of, fit_line, fit_text, host_of, severity_word, Format, Item, ItemError,
    ParseError, ReportParser, ScannedFinding, DESCRIPTION_CHARS, LOCATION_CHARS, MAX_LIST,
    TAG_CHARS, TITLE_CHARS,
};

/// The Nuclei parser.
pub struct Nuclei;

/// The longest JSON line read (one record with its request and response).
const MAX_LINE: usize = 16 * 1024 * 1024;

impl ReportParser for Nuclei {
    fn format(&self) -> Format {
        Format::Nuclei
    }

    fn parse(&self, input: &mut dyn BufRead, sink: &mut dyn FnMut(Item)) -> Result<(), ParseError> {
        let mut aggregate = Aggregate::default();
        let first = loop {
            let buffer = input
                .fill_buf()
                .map_err(|e| ParseError::new("byte 0", e.to_string()))?;
            match buffer.iter().position(|b| !b.is_ascii_whitespace()) {
                Some(at) => break Some(buffer[at]),
                None if buffer.is_empty() => break None,
                None => {
                    let n = buffer.len();
                    input.consume(n);
                }
            }
        };
        match first {
            // An empty report (Nuclei writes none when nothing matched).
            None => {}
            Some(b'[') => {
                let mut de = serde_json::Deserializer::from_reader(&mut *input);
                ArraySeed {
                    aggregate: &mut aggregate,
                    sink: &mut *sink,
                }
                .deserialize(&mut de)
                .map_err(|e| ParseError::json(&e))?;
                de.end().map_err(|e| ParseError::json(&e))?;
            }
            Some(b'{') => lines(input, &mut aggregate, sink)?,
            Some(_) => {
                return Err(ParseError::new(
                    "line 1",
                    "not a Nuclei report: expected a JSON array or JSON lines",
                ))
            }
        }
        for finding in aggregate.findings {
            sink(Item::Finding(Box::new(finding)));
        }
        Ok(())
    }
}

/// JSON lines, one record each; a line that is not JSON is an item error.
fn lines(
    input: &mut dyn BufRead,
    aggregate: &mut Aggregate,
    sink: &mut dyn FnMut(Item),
) -> Result<(), ParseError> {
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        number += 1;
        let read = (&mut *input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| ParseError::new(format!("line {number}"), e.to_string()))?;
        if read == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE {
            return Err(ParseError::new(
                format!("line {number}"),
                format!("a line is longer than {MAX_LINE} bytes"),
            ));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Value>(&line) {
            Ok(record) => aggregate.add(&record, &format!("line {number}"), sink),
            Err(error) => sink(Item::Error(ItemError {
                at: format!("line {number}, column {}", error.column()),
                reason: format!("not a JSON record: {error}"),
            })),
        }
    }
}

struct ArraySeed<'a, 's> {
    aggregate: &'a mut Aggregate,
    sink: &'s mut dyn FnMut(Item),
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of Nuclei records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(record) = seq.next_element::<Value>()? {
            self.aggregate
                .add(&record, &format!("[{index}]"), &mut *self.sink);
            index += 1;
        }
        Ok(())
    }
}

/// Findings by aggregation key, in first-seen order.
#[derive(Default)]
struct Aggregate {
    findings: Vec<ScannedFinding>,
    by_key: HashMap<String, usize>,
}

/// The first of `keys` that `record` has as a string.
fn first_str<'v>(record: &'v Value, keys: &[&str]) -> Option<&'v str> {
    keys.iter()
        .find_map(|k| record.pointer(k).and_then(Value::as_str))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Strings of a value that is a string (split on `split`), a list, or a number.
fn list_of(value: Option<&Value>, split: &[char]) -> Vec<String> {
    match value {
        Some(Value::String(s)) => s
            .split(split)
            .map(|p| p.trim().trim_start_matches("- ").trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|p| !p.is_empty())
            .collect(),
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

impl Aggregate {
    fn add(&mut self, record: &Value, at: &str, sink: &mut dyn FnMut(Item)) {
        match finding_of(record) {
            Ok((key, finding)) => match self.by_key.get(&key) {
                Some(&i) => self.findings[i].occurrences += 1,
                None => {
                    self.by_key.insert(key, self.findings.len());
                    self.findings.push(finding);
                }
            },
            Err(reason) => sink(Item::Error(ItemError {
                at: at.to_string(),
                reason,
            })),
        }
    }
}

/// A record's aggregation key and its finding.
fn finding_of(record: &Value) -> Result<(String, ScannedFinding), String> {
    if !record.is_object() {
        return Err("a record must be an object".into());
    }
    let template = first_str(record, &["/template-id", "/templateID", "/template_id"])
        .ok_or("a record needs a template id")?;
    let kind = first_str(record, &["/type"]).unwrap_or("");
    let matcher = first_str(record, &["/matcher-name", "/matcher_name"]).unwrap_or("");
    let host = first_str(record, &["/host"]).unwrap_or("");
    let matched = first_str(record, &["/matched-at", "/matched"]);
    let name = first_str(record, &["/info/name"]).unwrap_or(template);

    let mut finding = ScannedFinding::new("Nuclei", "vulnerability");
    // The template's name (the matcher is in the description and the identity).
    finding.title = fit_line(name, TITLE_CHARS);
    finding.severity = first_str(record, &["/info/severity"])
        .and_then(severity_word)
        .unwrap_or(palisade_domain::finding::Severity::Info);
    let asset = if host.is_empty() {
        matched.map(host_of)
    } else {
        Some(host_of(host))
    };
    finding.asset = asset.filter(|a| !a.is_empty());
    finding.location = matched
        .or(Some(host).filter(|h| !h.is_empty()))
        .map(|l| fit_line(l, LOCATION_CHARS));

    let mut description = first_str(record, &["/info/description"])
        .unwrap_or("")
        .to_string();
    if !matcher.is_empty() {
        description.push_str(&format!("\n\nMatcher: {matcher}"));
    }
    if let Some(matched) = matched {
        description.push_str(&format!("\n\nMatched at: {matched}"));
    }
    let extracted = list_of(
        record
            .get("extracted-results")
            .or_else(|| record.get("extracted_results")),
        &[],
    );
    if !extracted.is_empty() {
        description.push_str("\n\nExtracted: ");
        description.push_str(
            &extracted
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    finding.description = fit_text(&description, DESCRIPTION_CHARS);

    let classification = record.pointer("/info/classification");
    finding.cve = list_of(classification.and_then(|c| c.get("cve-id")), &[','])
        .iter()
        .find_map(|c| cve_in(c))
        .or_else(|| cve_in(template));
    finding.cwe = list_of(classification.and_then(|c| c.get("cwe-id")), &[','])
        .iter()
        .find_map(|c| cwe_of(c));
    finding.cvss_score = classification
        .and_then(|c| c.get("cvss-score"))
        .and_then(|s| match s {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .filter(|s| (0.0..=10.0).contains(s));
    finding.references = list_of(record.pointer("/info/reference"), &['\n', ','])
        .iter()
        .map(|r| fit_line(r, LOCATION_CHARS))
        .filter(|r| !r.is_empty())
        .take(MAX_LIST)
        .collect();
    let mut tags: Vec<String> = list_of(record.pointer("/info/tags"), &[','])
        .iter()
        .map(|t| fit_line(t, TAG_CHARS).to_lowercase())
        .filter(|t| !t.is_empty())
        .take(MAX_LIST)
        .collect();
    tags.sort();
    tags.dedup();
    finding.tags = tags;
    // The host's name without scheme or port (DefectDojo's endpoint host):
    // one template on two ports of one machine is one finding.
    let hostname = host_of(if host.is_empty() {
        matched.unwrap_or("")
    } else {
        host
    });
    let hostname = match hostname.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => {
            name.to_string()
        }
        _ => hostname,
    };
    let key = [template, kind, matcher, &hostname].join("\x1f");
    finding.identity = key.clone();
    Ok((key, finding))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<ScannedFinding>, Vec<ItemError>, Result<(), ParseError>) {
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let outcome = Nuclei.parse(&mut text.as_bytes(), &mut |item| match item {
            Item::Finding(f) => findings.push(*f),
            Item::Error(e) => errors.push(e),
        });
        (findings, errors, outcome)
    }

    #[test]
    fn repeats_are_occurrences_of_one_finding() {
        let report = r#"{"templateID":"t1","info":{"name":"One","severity":"high","classification":{"cwe-id":["cwe-79"],"cve-id":"CVE-2021-1234"}},"type":"http","host":"https://a.example","matched":"https://a.example/x"}
{"templateID":"t1","info":{"name":"One","severity":"high"},"type":"http","host":"https://a.example","matched":"https://a.example/y"}
not json
{"template-id":"t1","info":{"name":"One","severity":"high"},"type":"http","host":"https://b.example"}
"#;
        let (findings, errors, outcome) = parse(report);
        assert_eq!(outcome, Ok(()));
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].occurrences, 2);
        assert_eq!(findings[0].asset.as_deref(), Some("a.example"));
        assert_eq!(findings[0].cwe.as_deref(), Some("CWE-79"));
        assert_eq!(findings[0].cve.as_deref(), Some("CVE-2021-1234"));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].at.starts_with("line 3"), "{errors:?}");
    }

    #[test]
    fn an_array_is_read_and_a_truncated_one_names_where() {
        let report = r#"[{"template-id":"t","info":{"name":"N","severity":"low"},"host":"h"}]"#;
        let (findings, _, outcome) = parse(report);
        assert_eq!(outcome, Ok(()));
        assert_eq!(findings.len(), 1);
        let (_, _, outcome) = parse(&report[..30]);
        assert!(outcome
            .expect_err("truncated")
            .at
            .starts_with("line 1, column"));
        let (findings, _, outcome) = parse("  \n");
        assert_eq!((findings.len(), outcome), (0, Ok(())));
    }
}
