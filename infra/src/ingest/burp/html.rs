//! The Burp Suite DAST (Enterprise) HTML scan report. It is no
//! well-formed XML, so it is read as text (at most [`HTML_MAX_BYTES`]) and
//! the parts these generated reports always have are picked out:
//!
//! * each "Issues found on `<origin>`" section's `issue-table`: a row of
//!   class `issue-type-row` names an issue type (`Title [count]`), the
//!   rows after it give a path, severity and confidence each;
//! * each `issue-container` (`<h2>` title, then `<h3>` headings each
//!   followed by its content: issue detail or description, background,
//!   remediation, references, vulnerability classifications, request,
//!   response).
//!
//! As DefectDojo's "Burp Suite DAST Scan" does, there is one finding per
//! issue title of the tables (the rows of a title merged, across hosts),
//! in table order; its text comes from the first container of that title.

use std::collections::HashMap;
use std::io::Read;

use palisade_domain::finding::Severity;

use super::{
    finding, first_cwe, html_text, join_url, links_in_html, read_error, severity, tag, worse,
    Description, Locations, HTML_MAX_BYTES, PRODUCT,
};
use crate::ingest::{
    cve_in, fit_line, host_of, strip_html, Item, ParseError, ScannedFinding, LOCATION_CHARS,
    TITLE_CHARS,
};

/// One issue title of the report.
#[derive(Debug, Default)]
struct Entry {
    title: String,
    severity: Option<Severity>,
    confidence: String,
    origin: String,
    location: String,
    locations: Locations,
    /// From the first container of the title.
    details: Option<Details>,
}

#[derive(Debug, Default)]
struct Details {
    detail: String,
    background: String,
    remediation: String,
    classifications: String,
    cwe: Option<String>,
    references: Vec<String>,
}

#[derive(Default)]
struct Entries {
    list: Vec<Entry>,
    index: HashMap<String, usize>,
}

impl Entries {
    fn get(&mut self, title: &str) -> &mut Entry {
        let i = match self.index.get(title) {
            Some(&i) => i,
            None => {
                self.index.insert(title.to_string(), self.list.len());
                self.list.push(Entry {
                    title: title.to_string(),
                    ..Entry::default()
                });
                self.list.len() - 1
            }
        };
        &mut self.list[i]
    }
}

/// Reads an HTML report, `offset` bytes into the upload.
pub(super) fn parse<R: Read>(
    input: R,
    offset: u64,
    sink: &mut dyn FnMut(Item),
) -> Result<(), ParseError> {
    let mut bytes = Vec::new();
    input
        .take(HTML_MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(offset + bytes.len() as u64, &e))?;
    if bytes.len() > HTML_MAX_BYTES {
        return Err(ParseError::new(
            format!("byte {}", offset + HTML_MAX_BYTES as u64),
            format!(
                "the HTML report is larger than {} MiB",
                HTML_MAX_BYTES >> 20
            ),
        ));
    }
    let html = String::from_utf8_lossy(&bytes);
    let mut entries = Entries::default();
    read_tables(&html, &mut entries);
    read_containers(&html, &mut entries);
    for entry in entries.list {
        sink(Item::Finding(Box::new(entry.finding())));
    }
    Ok(())
}

/// The issue tables: titles, and the rows (path, severity, confidence)
/// under each.
fn read_tables(html: &str, entries: &mut Entries) {
    let lower = html.to_ascii_lowercase();
    let end = lower.len();
    let mut from = 0;
    while let Some((_, h1_open)) = next_tag(&lower, "h1", from, end) {
        let h1_close = find_from(&lower, "</h1", h1_open, end);
        from = h1_close;
        let heading = fit_line(&strip_html(&html[h1_open..h1_close]), LOCATION_CHARS);
        let Some(origin) = heading.strip_prefix("Issues found on ") else {
            continue;
        };
        let origin = origin.trim().trim_end_matches('/');
        let next_h1 = next_tag(&lower, "h1", h1_close, end).map_or(end, |(start, _)| start);
        let Some((_, table_open)) =
            next_tag_with_class(&lower, "table", "issue-table", h1_close, next_h1)
        else {
            continue;
        };
        let table_close = find_from(&lower, "</table", table_open, next_h1);
        let mut title: Option<String> = None;
        let mut row_from = table_open;
        while let Some((row_start, row_open)) = next_tag(&lower, "tr", row_from, table_close) {
            let row_end = find_from(&lower, "</tr", row_open, table_close)
                .min(next_tag(&lower, "tr", row_open, table_close).map_or(table_close, |(s, _)| s));
            row_from = row_end.max(row_open);
            if has_class(&lower[row_start..row_open], "issue-type-row") {
                title = Some(type_title(&strip_html(&html[row_open..row_end])));
                continue;
            }
            let Some(title) = title.as_deref().filter(|t| !t.is_empty()) else {
                continue;
            };
            let cells = cells(html, &lower, row_open, row_end);
            if cells.len() < 2 {
                continue;
            }
            let entry = entries.get(title);
            let url = join_url(origin, &cells[0]);
            if entry.locations.issues == 0 {
                entry.origin = origin.to_string();
                entry.location = fit_line(&url, LOCATION_CHARS);
                entry.confidence = cells.get(2).cloned().unwrap_or_default();
            }
            entry.locations.add(&url);
            let row_severity = severity(&cells[1]);
            entry.severity = Some(
                entry
                    .severity
                    .map_or(row_severity, |s| worse(s, row_severity)),
            );
        }
    }
}

/// An issue type row's title: its text without the trailing `[count]`.
fn type_title(text: &str) -> String {
    let text = fit_line(text, TITLE_CHARS);
    match text.rsplit_once(' ') {
        Some((title, count)) if count.starts_with('[') && count.ends_with(']') => title.to_string(),
        _ => text,
    }
}

/// The texts of a row's `<td>` cells.
fn cells(html: &str, lower: &str, from: usize, to: usize) -> Vec<String> {
    let mut cells = Vec::new();
    let mut at = from;
    while let Some((_, open)) = next_tag(lower, "td", at, to) {
        let close = find_from(lower, "</td", open, to);
        cells.push(fit_line(&strip_html(&html[open..close]), LOCATION_CHARS));
        at = close.max(open);
        if cells.len() == 3 {
            break;
        }
    }
    cells
}

/// The issue containers: the text of the first container of each title.
fn read_containers(html: &str, entries: &mut Entries) {
    let lower = html.to_ascii_lowercase();
    let end = lower.len();
    let mut from = 0;
    while let Some((_, open)) = next_tag_with_class(&lower, "div", "issue-container", from, end) {
        let container_end = next_tag_with_class(&lower, "div", "issue-container", open, end)
            .map_or(end, |(start, _)| start);
        from = container_end.max(open);
        let Some((_, h2_open)) = next_tag(&lower, "h2", open, container_end) else {
            continue;
        };
        let h2_close = find_from(&lower, "</h2", h2_open, container_end);
        let title = fit_line(&strip_html(&html[h2_open..h2_close]), TITLE_CHARS);
        if title.is_empty() {
            continue;
        }
        let entry = entries.get(&title);
        if entry.details.is_some() {
            continue;
        }
        entry.details = Some(details(html, &lower, h2_close, container_end));
    }
}

/// The `<h3>` sections of a container.
fn details(html: &str, lower: &str, from: usize, to: usize) -> Details {
    let mut details = Details::default();
    let mut at = from;
    while let Some((_, h3_open)) = next_tag(lower, "h3", at, to) {
        let h3_close = find_from(lower, "</h3", h3_open, to);
        let body_start = lower[h3_close..to]
            .find('>')
            .map_or(to, |i| h3_close + i + 1);
        let body_end = ["h3", "h2", "h1"]
            .iter()
            .filter_map(|name| next_tag(lower, name, body_start, to).map(|(start, _)| start))
            .min()
            .unwrap_or(to);
        at = body_end.max(h3_open);
        let heading = fit_line(&strip_html(&html[h3_open..h3_close]), TITLE_CHARS)
            .trim_end_matches(':')
            .trim()
            .to_ascii_lowercase();
        let body = &html[body_start..body_end];
        let target = match heading.as_str() {
            "issue detail" | "issue description" => &mut details.detail,
            "issue background" => &mut details.background,
            "issue remediation" | "remediation detail" | "remediation background" => {
                &mut details.remediation
            }
            "references" => {
                links_in_html(body, &mut details.references);
                continue;
            }
            "vulnerability classifications" => {
                if details.cwe.is_none() {
                    details.cwe = first_cwe(&strip_html(body));
                }
                links_in_html(body, &mut details.references);
                &mut details.classifications
            }
            _ => continue,
        };
        let text = html_text(body);
        if !text.is_empty() && !target.contains(&text) {
            if !target.is_empty() {
                target.push_str("\n\n");
            }
            target.push_str(&text);
        }
    }
    details
}

impl Entry {
    fn finding(self) -> ScannedFinding {
        let mut f = finding(PRODUCT);
        let asset = host_of(&self.origin);
        f.identity = if asset.is_empty() {
            format!("issue {}", self.title)
        } else {
            format!("issue {} on {asset}", self.title)
        };
        let details = self.details.unwrap_or_default();
        let mut description = Description::default();
        description.section("Issue detail", &details.detail);
        description.section("Issue background", &details.background);
        description.section("Remediation", &details.remediation);
        description.section("Vulnerability classifications", &details.classifications);
        self.locations.section(&mut description);
        f.description = description.finish();
        f.cve = cve_in(&self.title);
        f.title = self.title;
        f.severity = self.severity.unwrap_or(Severity::Info);
        f.asset = (!asset.is_empty()).then_some(asset);
        f.location = (!self.location.is_empty()).then_some(self.location);
        f.cwe = details.cwe;
        f.references = details.references;
        f.tags = tag("confidence", &self.confidence).into_iter().collect();
        f.occurrences = self.locations.issues.max(1);
        f
    }
}

/// Where `pattern` next occurs in `lower[from..to]`, else `to`.
fn find_from(lower: &str, pattern: &str, from: usize, to: usize) -> usize {
    if from >= to {
        return to;
    }
    lower[from..to].find(pattern).map_or(to, |i| from + i)
}

/// The next `<name …>` open tag in `lower[from..to]`: where it starts and
/// where its `>` ends.
fn next_tag(lower: &str, name: &str, from: usize, to: usize) -> Option<(usize, usize)> {
    let pattern = format!("<{name}");
    let mut at = from;
    while at < to {
        let start = at + lower[at..to].find(&pattern)?;
        let after = start + pattern.len();
        match lower.as_bytes().get(after) {
            Some(b) if b.is_ascii_whitespace() || matches!(b, b'>' | b'/') => {
                let open_end = after + lower[after..to].find('>')? + 1;
                return Some((start, open_end));
            }
            _ => at = after,
        }
    }
    None
}

/// The next `<name …>` open tag in `lower[from..to]` that has `class`.
fn next_tag_with_class(
    lower: &str,
    name: &str,
    class: &str,
    from: usize,
    to: usize,
) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some((start, open_end)) = next_tag(lower, name, at, to) {
        if has_class(&lower[start..open_end], class) {
            return Some((start, open_end));
        }
        at = open_end;
    }
    None
}

/// Whether an open tag's `class` attribute lists `class`.
fn has_class(open_tag: &str, class: &str) -> bool {
    let Some(at) = open_tag.find("class=") else {
        return false;
    };
    let value = &open_tag[at + 6..];
    let Some(quote) = value.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
        return value.split([' ', '>', '/']).next() == Some(class);
    };
    let value = &value[1..];
    let value = value.find(quote).map_or(value, |end| &value[..end]);
    value.split_whitespace().any(|c| c == class)
}

#[cfg(test)]
mod tests {
    use super::super::tests::parse_all;
    use palisade_domain::finding::Severity;

    const REPORT: &str = r##"<html>
<head><title>Scan Remediation Report #13</title><meta charset="utf-8"></head>
<body><div class="report">
<div class="section">
<h1>Issues found on https://a.example/</h1>
<table class='issue-table'>
<thead><tr><th>URLs By issue type</th><th>Severity</th><th>Confidence</th><th class="no-print">More detail</th></tr></thead>
<tbody>
<tr class="issue-type-row"><td colspan="4">Cross-origin resource sharing: arbitrary origin trusted [2]</td></tr>
<tr><td class="issue-path issue-link"><a href="https://dast/issues/1">/one</a></td><td>Medium</td><td class="nowrap">Certain</td><td><a href="#1">&gt;&gt;</a></td></tr>
<tr><td class="issue-path issue-link">/two</td><td>High</td><td class="nowrap">Firm</td><td><a href="#2">&gt;&gt;</a></td></tr>
<tr class="issue-type-row"><td colspan="4">Cookie scoped to parent domain [1]</td></tr>
<tr><td class="issue-path issue-link">/</td><td>Low</td><td class="nowrap">Certain</td><td></td></tr>
</tbody></table></div>
<div class="section">
<h1>Issues found on https://b.example</h1>
<table class='issue-table'><tbody>
<tr class="issue-type-row"><td colspan="4">Cookie scoped to parent domain [1]</td></tr>
<tr><td class="issue-path issue-link">/x</td><td>Low</td><td class="nowrap">Certain</td><td></td></tr>
</tbody></table></div>
<div class="section details"><h1>More details for https://a.example</h1></div>
<div class="section details">
<div class="issue-container">
<a name="1"></a>
<h2>Cross-origin resource sharing: arbitrary origin trusted</h2>
<h3>Issue detail:</h3>
<div>The application allowed access from <strong>https://evil.example</strong>.</div>
<h3>
Issue background
</h3>
<div><p>A CORS policy &amp; more.</p></div>
<h3>Issue remediation</h3>
<div><p>Use a whitelist.</p></div>
<h3>References</h3>
<div class="no-bullets"><ul><li><a href="https://portswigger.net/web-security/cors">CORS</a></li></ul></div>
<h3>Vulnerability classifications</h3>
<div class="no-bullets"><ul><li><a href="https://cwe.mitre.org/data/definitions/942.html">CWE-942: Overly Permissive</a></li></ul></div>
<div class="evidence-container"><h3>Request:</h3><div class="request-response">POST /one HTTP/2
Origin: https://evil.example</div></div>
</div>
<div class="issue-container">
<h2>Cross-origin resource sharing: arbitrary origin trusted</h2>
<h3>Issue detail:</h3><div>Second detail.</div>
</div>
</div>
</div></body></html>
"##;

    #[test]
    fn one_finding_per_issue_title_of_the_tables() {
        let (findings, errors, result) = parse_all(REPORT);
        assert_eq!(result, Ok(()));
        assert!(errors.is_empty());
        assert_eq!(findings.len(), 2, "{findings:#?}");
        let cors = &findings[0];
        assert_eq!(
            cors.title,
            "Cross-origin resource sharing: arbitrary origin trusted"
        );
        assert_eq!(cors.severity, Severity::High);
        assert_eq!(cors.occurrences, 2);
        assert_eq!(cors.asset.as_deref(), Some("a.example"));
        assert_eq!(cors.location.as_deref(), Some("https://a.example/one"));
        assert_eq!(cors.cwe.as_deref(), Some("CWE-942"));
        assert_eq!(
            cors.references,
            [
                "https://portswigger.net/web-security/cors",
                "https://cwe.mitre.org/data/definitions/942.html"
            ]
        );
        assert_eq!(cors.tags, ["confidence:certain"]);
        assert!(
            cors.description.starts_with(
                "Issue detail:\nThe application allowed access from https://evil.example.\n\nIssue background:\nA CORS policy & more."
            ),
            "{}",
            cors.description
        );
        assert!(
            !cors.description.contains("Second detail"),
            "the first container's text"
        );
        assert!(!cors.description.contains("POST /one"), "no request");
        let cookie = &findings[1];
        assert_eq!(cookie.title, "Cookie scoped to parent domain");
        assert_eq!(cookie.occurrences, 2, "merged across the two tables");
        assert_eq!(cookie.severity, Severity::Low);
        assert!(
            cookie
                .description
                .contains("- https://a.example/\n- https://b.example/x"),
            "{}",
            cookie.description
        );
    }

    #[test]
    fn classes_are_matched_as_tokens() {
        assert!(super::has_class(
            "<div class=\"section details issue-container\">",
            "issue-container"
        ));
        assert!(!super::has_class(
            "<div class=\"issue-container-x\">",
            "issue-container"
        ));
        assert!(super::has_class(
            "<table class='issue-table'>",
            "issue-table"
        ));
        assert_eq!(super::type_title("TLS certificate [1]"), "TLS certificate");
        assert_eq!(super::type_title("No count"), "No count");
    }
}
