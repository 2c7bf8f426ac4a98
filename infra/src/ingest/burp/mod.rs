//! Burp reports: one parser for the five report formats PortSwigger's
//! tools write, told apart by content.
//!
//! | Format | Looks like | One finding per |
//! |---|---|---|
//! | Burp Scanner XML ("Export issue data") | `<issues burpVersion=…>` of `<issue>` | issue **type** (`<type>` id): the issues of a type are aggregated, their locations listed |
//! | Burp REST API JSON (`/scan/{task_id}`) | `{"issue_events": […]}` | `issue_events[]` entry with `type == "issue_found"` |
//! | Burp GraphQL API JSON (Enterprise / Burp Suite DAST) | `{"Issues": […]}` | issue type **name** (`issue_type.name`): issues of a name are merged |
//! | Burp Dastardly (JUnit XML) | `<testsuites>` of `<testsuite>`/`<testcase>` | `<failure>` |
//! | Burp Suite DAST / Enterprise HTML report | `<html>` with `issue-table`s and `issue-container`s | issue title of the "Issues found on …" tables (rows of a title merged, across hosts) |
//!
//! What counts as one finding follows DefectDojo's parsers for these scan
//! types (Burp Scan, Burp REST API, Burp GraphQL API, Burp Dastardly
//! Scan, Burp Suite DAST Scan), so a report counts the same here as
//! there. Where DefectDojo merges several Burp issues into one finding,
//! the finding's `occurrences` is the number merged, its severity the
//! highest among them, and its description lists where they were found
//! (bounded); title, location and identity come from the first issue.
//!
//! A finding's identity is what Burp keeps stable between scans: the
//! issue type (XML), type index and URL (REST API), issue name (GraphQL,
//! HTML) or issue name and URL (Dastardly), with the host for the merged
//! formats, so that the same issue type on another host is another
//! finding across uploads.
//!
//! The Scanner and Dastardly XML are read as a stream of events (only the
//! per-type aggregate is kept, never the base64 request/response bodies);
//! the JSON exports are read as one document, the HTML report as text (at
//! most [`HTML_MAX_BYTES`]).

use std::io::{BufRead, ErrorKind, Read};

use palisade_domain::finding::Severity;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart};

use super::{
    cwe_of, fit_line, fit_text, strip_html, Format, Item, ParseError, ReportParser, ScannedFinding,
    DESCRIPTION_CHARS, LOCATION_CHARS, MAX_LIST, TAG_CHARS,
};

mod dastardly;
mod html;
mod json;
mod scanner;

/// The Burp parser (all five formats).
pub struct Burp;

/// The product of the Scanner, API and HTML formats.
const PRODUCT: &str = "Burp Suite";
/// The product of Dastardly reports.
const DASTARDLY: &str = "Burp Dastardly";
/// How much of a report is read to tell its format.
const HEAD_BYTES: usize = 64 * 1024;
/// The largest HTML report read.
pub const HTML_MAX_BYTES: usize = 50 * 1024 * 1024;
/// The most bytes of issue details kept for a finding that merges
/// issues, so that the list of where they were found still fits the
/// description.
const DETAIL_BYTES: usize = DESCRIPTION_CHARS / 2;
/// The most bytes kept of one text field of an XML issue.
const FIELD_BYTES: usize = 256 * 1024;

impl ReportParser for Burp {
    fn format(&self) -> Format {
        Format::Burp
    }

    fn parse(&self, input: &mut dyn BufRead, sink: &mut dyn FnMut(Item)) -> Result<(), ParseError> {
        let (head, kind) = read_head(input)?;
        let bom = if head.starts_with(b"\xef\xbb\xbf") {
            3
        } else {
            0
        };
        let rest = (&head[bom..]).chain(input);
        let offset = bom as u64;
        match kind {
            Kind::Empty => Ok(()),
            Kind::Json => json::parse(rest, sink),
            Kind::ScannerXml => scanner::parse(rest, offset, sink),
            Kind::Dastardly => dastardly::parse(rest, offset, sink),
            Kind::Html => html::parse(rest, offset, sink),
        }
    }
}

/// The format a report's start shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Nothing but whitespace.
    Empty,
    Json,
    ScannerXml,
    Dastardly,
    Html,
}

/// Reads the report's start (until its format shows, at most
/// [`HEAD_BYTES`]) and tells the format.
fn read_head(input: &mut dyn BufRead) -> Result<(Vec<u8>, Kind), ParseError> {
    let mut head = Vec::new();
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(head.len() as u64, &e)),
        };
        if chunk.is_empty() {
            break;
        }
        let take = chunk.len().min(HEAD_BYTES - head.len());
        head.extend_from_slice(&chunk[..take]);
        input.consume(take);
        if head.len() >= HEAD_BYTES {
            break;
        }
        if let Some(kind) = classify(&head, false) {
            return Ok((head, kind?));
        }
    }
    let kind = classify(&head, true).unwrap_or_else(|| {
        Err(ParseError::new(
            "byte 0",
            "not a Burp report: no root element in its first 64 KiB",
        ))
    })?;
    Ok((head, kind))
}

/// The format `head` shows, `None` while more bytes are needed
/// (`complete`: `head` is all there is).
fn classify(head: &[u8], complete: bool) -> Option<Result<Kind, ParseError>> {
    let start = if head.starts_with(b"\xef\xbb\xbf") {
        3
    } else {
        0
    };
    let Some(first) = head[start..].iter().position(|b| !b.is_ascii_whitespace()) else {
        return complete.then_some(Ok(Kind::Empty));
    };
    let first = start + first;
    match head[first] {
        b'{' | b'[' => Some(Ok(Kind::Json)),
        b'<' => match root_element(head, first) {
            Root::Found(at, name) => Some(kind_of_root(at, &name)),
            Root::Missing if complete => Some(Err(ParseError::new(
                format!("byte {}", head.len()),
                "not a Burp report: the document has no root element",
            ))),
            Root::Missing => None,
        },
        _ => Some(Err(ParseError::new(
            format!("byte {first}"),
            "not a Burp report: expected XML, HTML or JSON",
        ))),
    }
}

fn kind_of_root(at: usize, name: &str) -> Result<Kind, ParseError> {
    let local = name.rsplit(':').next().unwrap_or(name).to_ascii_lowercase();
    match local.as_str() {
        "issues" => Ok(Kind::ScannerXml),
        "testsuites" | "testsuite" => Ok(Kind::Dastardly),
        "html" => Ok(Kind::Html),
        _ => Err(ParseError::new(
            format!("byte {at}"),
            format!(
                "not a Burp report: root element <{name}>, expected <issues>, <testsuites> or <html>"
            ),
        )),
    }
}

enum Root {
    /// Where the root element starts, and its name.
    Found(usize, String),
    /// Not (yet) seen.
    Missing,
}

/// The first element of the markup in `head` from `from`, past the XML
/// declaration, processing instructions, comments and the DOCTYPE (with
/// its internal subset).
fn root_element(head: &[u8], from: usize) -> Root {
    let mut at = from;
    while at < head.len() {
        let rest = &head[at..];
        if rest[0] != b'<' {
            match rest.iter().position(|&b| b == b'<') {
                Some(next) => at += next,
                None => return Root::Missing,
            }
            continue;
        }
        let skip = if rest.starts_with(b"<!--") {
            find(rest, b"-->").map(|end| end + 3)
        } else if rest.starts_with(b"<?") {
            find(rest, b"?>").map(|end| end + 2)
        } else if rest.starts_with(b"<!") {
            doctype_end(rest)
        } else if rest.len() > 1 && rest[1].is_ascii_alphabetic() {
            let name_len = rest[1..].iter().position(|&b| {
                !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.'))
            });
            return match name_len {
                Some(len) => {
                    Root::Found(at, String::from_utf8_lossy(&rest[1..1 + len]).into_owned())
                }
                None => Root::Missing,
            };
        } else if rest.len() > 1 {
            Some(1)
        } else {
            None
        };
        match skip {
            Some(len) => at += len,
            None => return Root::Missing,
        }
    }
    Root::Missing
}

/// The length of a `<!…>` declaration, an internal subset `[…]` included.
fn doctype_end(rest: &[u8]) -> Option<usize> {
    let close = rest.iter().position(|&b| b == b'>')?;
    match rest[..close].iter().position(|&b| b == b'[') {
        None => Some(close + 1),
        Some(open) => {
            let subset_end = open + find(&rest[open..], b"]")?;
            let close = subset_end + rest[subset_end..].iter().position(|&b| b == b'>')?;
            Some(close + 1)
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn read_error(at: u64, error: &std::io::Error) -> ParseError {
    ParseError::new(
        format!("byte {at}"),
        format!("could not read the report: {error}"),
    )
}

/// A new Burp finding of `product`.
fn finding(product: &str) -> ScannedFinding {
    ScannedFinding::new(product, "dast")
}

/// A severity from Burp's word (`High`, `Information`, `info`, …); info
/// when it names none.
fn severity(word: &str) -> Severity {
    super::severity_word(word).unwrap_or(Severity::Info)
}

/// The more serious of two severities.
fn worse(a: Severity, b: Severity) -> Severity {
    if b.rank() > a.rank() {
        b
    } else {
        a
    }
}

/// `text` appended to `out` while `out` holds less than `cap` bytes (cut
/// at a character boundary).
fn push_bounded(out: &mut String, text: &str, cap: usize) {
    let room = cap.saturating_sub(out.len());
    if text.len() <= room {
        out.push_str(text);
        return;
    }
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.push_str(&text[..end]);
}

/// Text from HTML: tags removed, entities decoded, list items marked
/// `- `, each line trimmed and its whitespace runs collapsed, at most one
/// blank line in a row.
fn html_text(html: &str) -> String {
    tidy(&strip_html(&mark_list_items(html)))
}

/// `- ` written after each `<li …>` open tag.
fn mark_list_items(html: &str) -> std::borrow::Cow<'_, str> {
    let lower = html.to_ascii_lowercase();
    if !lower.contains("<li") {
        return html.into();
    }
    let mut out = String::with_capacity(html.len() + 64);
    let mut from = 0;
    while let Some(at) = lower[from..].find("<li") {
        let start = from + at;
        let after = start + 3;
        let is_li = lower
            .as_bytes()
            .get(after)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b'>');
        let Some(close) = lower[after..].find('>').filter(|_| is_li) else {
            out.push_str(&html[from..after]);
            from = after;
            continue;
        };
        let end = after + close + 1;
        out.push_str(&html[from..end]);
        out.push_str("- ");
        from = end;
    }
    out.push_str(&html[from..]);
    out.into()
}

/// Each line trimmed with its whitespace runs collapsed; at most one
/// blank line in a row, none between list items (`- `); no blank lines
/// at either end.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    let mut in_list = false;
    // A lone `-` line (a list item's text on the next line) joins the next.
    let mut dash = false;
    for line in text.lines() {
        let mut words = line.split_whitespace().peekable();
        let Some(&first) = words.peek() else {
            blank = !out.is_empty() && !dash;
            continue;
        };
        if first == "-" && line.trim() == "-" {
            dash = true;
            continue;
        }
        let item = dash || first == "-";
        if !out.is_empty() {
            out.push_str(if blank && !(item && in_list) {
                "\n\n"
            } else {
                "\n"
            });
        }
        if dash {
            out.push_str("- ");
        }
        blank = false;
        dash = false;
        in_list = item;
        for (i, word) in words.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

/// The first `CWE-<digits>` in `text` (Burp lists the most specific
/// classification first).
fn first_cwe(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("cwe-") {
        let start = from + at;
        let digits = lower[start + 4..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits > 0 {
            if let Some(cwe) = cwe_of(&lower[start..start + 4 + digits]) {
                return Some(cwe);
            }
        }
        from = start + 4;
    }
    None
}

/// Adds the `href` targets of the links in `html` (http, https) to
/// `references`.
fn links_in_html(html: &str, references: &mut Vec<String>) {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("href=") {
        let start = from + at + 5;
        from = start;
        let Some(quote) = html[start..]
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\''))
        else {
            continue;
        };
        let value_start = start + 1;
        let Some(len) = html[value_start..].find(quote) else {
            break;
        };
        add_reference(
            references,
            &super::decode_entities(&html[value_start..value_start + len]),
        );
        from = value_start + len;
    }
}

/// Adds the http(s) URLs written in plain `text` to `references`.
fn links_in_text(text: &str, references: &mut Vec<String>) {
    let mut from = 0;
    while let Some(at) = text[from..].find("http") {
        let start = from + at;
        let rest = &text[start..];
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            from = start + 4;
            continue;
        }
        let len = rest
            .find(|c: char| {
                c.is_whitespace() || matches!(c, ')' | '(' | '<' | '>' | '"' | '\'' | ']')
            })
            .unwrap_or(rest.len());
        add_reference(references, rest[..len].trim_end_matches(['.', ',', ';']));
        from = start + len.max(4);
    }
}

/// `url` added to `references` when it is a web link not yet there and
/// the list has room ([`MAX_LIST`]).
fn add_reference(references: &mut Vec<String>, url: &str) {
    let url = fit_line(url, LOCATION_CHARS);
    let lower = url.to_ascii_lowercase();
    let web = lower.starts_with("http://") || lower.starts_with("https://");
    if web && references.len() < MAX_LIST && !references.contains(&url) {
        references.push(url);
    }
}

/// A tag `name:value` fitted to [`TAG_CHARS`], `None` when `value` is empty.
fn tag(name: &str, value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty())
        .then(|| fit_line(&format!("{name}:{}", value.to_ascii_lowercase()), TAG_CHARS))
}

/// `origin` and `path` joined into a URL (one slash between).
fn join_url(origin: &str, path: &str) -> String {
    let origin = origin.trim();
    let path = path.trim();
    if path.is_empty() {
        return origin.to_string();
    }
    if origin.is_empty() {
        return path.to_string();
    }
    format!(
        "{}/{}",
        origin.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// A finding's long text, built from headed sections.
#[derive(Default)]
struct Description {
    text: String,
}

impl Description {
    /// Appends `body` under `heading` (none when empty); an empty body is
    /// left out.
    fn section(&mut self, heading: &str, body: &str) {
        let body = body.trim();
        if body.is_empty() || self.text.len() > DESCRIPTION_CHARS * 4 {
            return;
        }
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        if !heading.is_empty() {
            self.text.push_str(heading);
            self.text.push_str(":\n");
        }
        push_bounded(&mut self.text, body, DESCRIPTION_CHARS * 4);
    }

    fn finish(self) -> String {
        fit_text(&self.text, DESCRIPTION_CHARS)
    }
}

/// Where the issues merged into one finding were found: the distinct
/// locations (at most [`MAX_LIST`]) and how many issues in all.
#[derive(Debug, Default)]
struct Locations {
    listed: Vec<String>,
    issues: u64,
}

impl Locations {
    fn add(&mut self, location: &str) {
        self.issues += 1;
        let location = fit_line(location, LOCATION_CHARS);
        if !location.is_empty() && self.listed.len() < MAX_LIST && !self.listed.contains(&location)
        {
            self.listed.push(location);
        }
    }

    /// The heading and list for a description.
    fn section(&self, description: &mut Description) {
        if self.listed.is_empty() {
            return;
        }
        let mut body: String = self.listed.iter().map(|l| format!("- {l}\n")).collect();
        if self.issues > self.listed.len() as u64 {
            body.push_str(&format!("({} issues in all)", self.issues));
        }
        let heading = if self.issues == 1 {
            "Found at"
        } else {
            "Found at (issues merged into this finding)"
        };
        description.section(heading, &body);
    }
}

/// The text of an XML text, CDATA or general reference event, for the
/// readers of the XML formats.
fn xml_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The text an XML entity or character reference stands for; an unknown
/// entity is kept as written.
fn xml_reference(reference: &BytesRef<'_>) -> String {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        return c.to_string();
    }
    let name = xml_text(reference);
    match resolve_predefined_entity(&name) {
        Some(text) => text.to_string(),
        None => format!("&{name};"),
    }
}

/// An attribute's value, unescaped, or empty when absent.
fn xml_attribute(element: &BytesStart<'_>, name: &str) -> String {
    match element.try_get_attribute(name) {
        Ok(Some(attribute)) => match attribute.unescape_value() {
            Ok(value) => value.into_owned(),
            Err(_) => xml_text(&attribute.value).into_owned(),
        },
        _ => String::new(),
    }
}

/// A quick-xml error where the reader stopped, `offset` bytes into the
/// report.
fn xml_error(position: u64, offset: u64, error: &quick_xml::Error) -> ParseError {
    ParseError::new(format!("byte {}", position + offset), error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn parse_all(
        text: &str,
    ) -> (
        Vec<ScannedFinding>,
        Vec<super::super::ItemError>,
        Result<(), ParseError>,
    ) {
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let mut input = text.as_bytes();
        let result = Burp.parse(&mut input, &mut |item| match item {
            Item::Finding(f) => findings.push(*f),
            Item::Error(e) => errors.push(e),
        });
        (findings, errors, result)
    }

    #[test]
    fn formats_are_told_apart_by_content() {
        let kind = |text: &str| classify(text.as_bytes(), true).map(|k| k.map_err(|e| e.at));
        assert_eq!(kind("  \n"), Some(Ok(Kind::Empty)));
        assert_eq!(kind("\u{feff}{\"issue_events\": []}"), Some(Ok(Kind::Json)));
        assert_eq!(kind("[]"), Some(Ok(Kind::Json)));
        assert_eq!(
            kind("<?xml version=\"1.0\"?>\n<!DOCTYPE issues [\n<!ELEMENT issues (issue*)>\n]>\n<issues burpVersion=\"1\">"),
            Some(Ok(Kind::ScannerXml))
        );
        assert_eq!(
            kind("<?xml version=\"1.0\"?><!-- x --><testsuites name=\"Dastardly\">"),
            Some(Ok(Kind::Dastardly))
        );
        assert_eq!(kind("<!DOCTYPE html>\n<HTML><head>"), Some(Ok(Kind::Html)));
        assert_eq!(kind("<OWASPZAPReport>"), Some(Err("byte 0".into())));
        assert_eq!(kind("  nope"), Some(Err("byte 2".into())));
        // More bytes are needed before the root element shows.
        assert_eq!(
            classify(b"<?xml version=\"1.0\"?><!DOCTYPE issues [", false).map(|k| k.is_ok()),
            None
        );
    }

    #[test]
    fn empty_input_gives_nothing() {
        let (findings, errors, result) = parse_all(" \n\t ");
        assert!(findings.is_empty() && errors.is_empty());
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn text_helpers_keep_what_a_finding_needs() {
        assert_eq!(
            first_cwe("<li>CWE-524: x</li><li>CWE-525: y</li>").as_deref(),
            Some("CWE-524")
        );
        assert_eq!(first_cwe("CAPEC-94 only"), None);
        let mut refs = Vec::new();
        links_in_html(
            "<a href=\"https://a.example/x?a=1&amp;b=2\">A</a> <a href='mailto:x'>m</a>",
            &mut refs,
        );
        links_in_text(
            "see https://b.example/y). and (https://a.example/x?a=1&b=2)",
            &mut refs,
        );
        assert_eq!(refs, ["https://a.example/x?a=1&b=2", "https://b.example/y"]);
        assert_eq!(tidy("  a   b \n\n\n  c\n"), "a b\n\nc");
        assert_eq!(
            tidy("list:\n\n- \nfirst\n\n\n-\nsecond\n\nafter"),
            "list:\n\n- first\n- second\n\nafter"
        );
        assert_eq!(
            html_text("<p>The cookie:<ul><li>a</li><li class=x>b &amp; c</li></ul></p><link>"),
            "The cookie:\n\n- a\n- b & c"
        );
        assert_eq!(join_url("https://h.example/", "/p"), "https://h.example/p");
        assert_eq!(join_url("https://h.example", ""), "https://h.example");
        let mut s = String::new();
        push_bounded(&mut s, "aé", 2);
        assert_eq!(s, "a");
    }
}
