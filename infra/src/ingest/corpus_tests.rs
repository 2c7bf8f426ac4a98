//! Every report in `tests/corpus/` (DefectDojo's parser fixtures, see its
//! README) parsed with its format: the count of findings equals
//! `EXPECTED.tsv`'s `expected_findings`, files marked `error` are refused,
//! and the first finding's severity and title equal the table's where given.

use std::io::BufReader;
use std::path::PathBuf;

use super::{detect, Format, Item};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus")
}

struct Expected {
    format: Format,
    file: String,
    findings: Option<usize>,
    severity: String,
    title: String,
}

fn table() -> Vec<Expected> {
    let text = std::fs::read_to_string(corpus().join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Expected {
                format: cols[0].parse().expect("format"),
                file: cols[1].into(),
                findings: cols[2].parse().ok(),
                severity: cols[7].to_lowercase(),
                title: cols[8].into(),
            }
        })
        .collect()
}

struct Parsed {
    findings: Vec<super::ScannedFinding>,
    errors: Vec<super::ItemError>,
    failure: Option<super::ParseError>,
}

fn parse(format: Format, file: &str) -> Parsed {
    let path = corpus().join(format.as_str()).join(file);
    let mut input = BufReader::new(std::fs::File::open(&path).expect("corpus file"));
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    let failure = super::parser_for(format)
        .parse(&mut input, &mut |item| match item {
            Item::Finding(f) => findings.push(*f),
            Item::Error(e) => errors.push(e),
        })
        .err();
    Parsed {
        findings,
        errors,
        failure,
    }
}

fn check(format: Format) {
    let mut wrong = Vec::new();
    for row in table().into_iter().filter(|r| r.format == format) {
        let parsed = parse(format, &row.file);
        match row.findings {
            None => {
                if parsed.failure.is_none() && parsed.errors.is_empty() {
                    wrong.push(format!(
                        "{}: expected a refusal, got {} findings",
                        row.file,
                        parsed.findings.len()
                    ));
                }
            }
            Some(count) => {
                if let Some(failure) = &parsed.failure {
                    wrong.push(format!("{}: failed: {failure}", row.file));
                    continue;
                }
                if parsed.findings.len() != count {
                    wrong.push(format!(
                        "{}: {} findings, expected {count} ({} item errors: {:?})",
                        row.file,
                        parsed.findings.len(),
                        parsed.errors.len(),
                        parsed.errors.first()
                    ));
                }
                let first = parsed.findings.first();
                if !row.severity.is_empty()
                    && first.map(|f| f.severity.as_str()) != Some(row.severity.as_str())
                {
                    wrong.push(format!(
                        "{}: first severity {:?}, expected {}",
                        row.file,
                        first.map(|f| f.severity),
                        row.severity
                    ));
                }
                if !row.title.is_empty()
                    && first.map(|f| f.title.as_str()) != Some(row.title.as_str())
                {
                    wrong.push(format!(
                        "{}: first title {:?}, expected {:?}",
                        row.file,
                        first.map(|f| &f.title),
                        row.title
                    ));
                }
                for f in &parsed.findings {
                    if f.title.is_empty() || f.identity.is_empty() || f.product.is_empty() {
                        wrong.push(format!(
                            "{}: a finding without title, identity or product: {f:?}",
                            row.file
                        ));
                        break;
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn sarif_counts_as_defectdojo_does() {
    check(Format::Sarif);
}

#[test]
fn nuclei_counts_as_defectdojo_does() {
    check(Format::Nuclei);
}

#[test]
fn zap_counts_as_defectdojo_does() {
    check(Format::Zap);
}

#[test]
fn burp_counts_as_defectdojo_does() {
    check(Format::Burp);
}

#[test]
fn every_non_empty_report_is_detected_from_its_content() {
    let mut wrong = Vec::new();
    for row in table() {
        let path = corpus().join(row.format.as_str()).join(&row.file);
        let bytes = std::fs::read(&path).expect("corpus file");
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let detected = detect(&bytes);
        if detected != Some(row.format) {
            wrong.push(format!(
                "{}/{}: detected {detected:?}",
                row.format, row.file
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
