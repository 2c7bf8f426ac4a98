//! OWASP ZAP reports: the XML report (ZAP 2.9 … 2.16, also "XML plus"
//! with requests and responses), read as a stream of events, and the
//! traditional JSON report (`{"@version": …, "site": [{"@name": …,
//! "alerts": […]}]}`), read whole (ZAP writes it small).
//!
//! What counts as one finding follows DefectDojo's `ZAP Scan` parser: one
//! finding per `site/alerts/alertitem`, per site. ZAP already groups the
//! occurrences of an alert into the item's `instances/instance`; they are
//! the finding's locations, not findings of their own. Only the alert item
//! being read is held (its first [`LISTED_INSTANCES`] instances, its text
//! fields capped), never the document; requests and responses are skipped.
//!
//! An alert item becomes a finding so:
//!
//! - title: `alert`, else `name`; an item with neither is an
//!   [`ItemError`] (`site[i].alerts.alertitem[j]`) and the report goes on;
//! - severity: `riskcode` 3 high, 2 medium, 1 low, 0 info (ZAP has no
//!   critical), from the first word of `riskdesc` when the code is missing;
//! - description: `desc`, then `solution`, `otherinfo`, the confidence and
//!   the instances (method, URI, parameter, attack, evidence; the first
//!   [`LISTED_INSTANCES`]) as sections, ZAP's HTML made text;
//! - location: the first instance's URI, else the site's name; asset: the
//!   site's host, with its port when it is not the scheme's default;
//! - references: the URLs of `reference` (HTML paragraphs; ZAP 2.9 wrote
//!   them run together, `http://a/http://b`, and they are split again);
//! - CWE from `cweid` (ZAP's `-1` and `0` are none), CVE from the title;
//! - tags: `zap-plugin-<pluginid>`, `wasc-<wascid>` when above 0, and
//!   ZAP's own tags (`tags/tag/tag`: `OWASP_2021_A01`, `CWE-598`, …).
//!
//! The identity is the site's name, the plugin id, the alert ref
//! (`alertRef`; the title for reports before ZAP 2.10, which have none)
//! and the confidence. ZAP writes one item per alert ref and confidence: a
//! site may hold the same alert twice, once at low and once at medium
//! confidence (DefectDojo's `dvwa_baseline_dojo.xml`), and these stay two
//! findings. The risk is left out, so that a re-scan re-rating an alert
//! updates its finding; the instances too, so that a new URL does.

use std::borrow::Cow;
use std::io::{BufRead, Read};

use palisade_domain::finding::Severity;
use quick_xml::encoding::Decoder;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;
use serde_json::{Map, Value};

use super::{
    cve_in, cwe_of, fit_line, fit_text, host_of, severity_word, strip_html, Format, Item,
    ItemError, ParseError, ReportParser, ScannedFinding, DESCRIPTION_CHARS, LOCATION_CHARS,
    MAX_LIST, TAG_CHARS, TITLE_CHARS,
};

/// The OWASP ZAP parser.
pub struct Zap;

/// The product of ZAP's findings.
const PRODUCT: &str = "OWASP ZAP";
/// Instances listed in a finding's description (and held while reading).
pub const LISTED_INSTANCES: usize = 20;
/// Most bytes kept of a long text field (`desc`, `solution`, …) while
/// reading; the description is fitted to [`DESCRIPTION_CHARS`] after.
const LONG_FIELD_BYTES: usize = DESCRIPTION_CHARS * 4;
/// Most bytes kept of a short field (ids, names, URIs, evidence).
const SHORT_FIELD_BYTES: usize = LOCATION_CHARS * 4;
/// Most characters of a parameter, attack or evidence in an instance line.
const DETAIL_CHARS: usize = 200;

impl ReportParser for Zap {
    fn format(&self) -> Format {
        Format::Zap
    }

    fn parse(&self, input: &mut dyn BufRead, sink: &mut dyn FnMut(Item)) -> Result<(), ParseError> {
        let head = skip_leading(input)?;
        match head.first {
            None => Ok(()),
            Some(b'<') => parse_xml(input, head.bytes, sink),
            Some(b'{') => parse_json(input, &head, sink),
            Some(_) => Err(ParseError::new(
                format!("byte {}", head.bytes),
                "not an OWASP ZAP report: neither XML nor JSON",
            )),
        }
    }
}

/// What came before the report's first byte: a UTF-8 byte order mark and
/// whitespace, consumed.
struct Head {
    /// The first byte after them, not consumed; `None` at the end.
    first: Option<u8>,
    bytes: u64,
    /// Line feeds skipped, and characters skipped after the last one (to
    /// report JSON positions as in the whole input).
    lines: u64,
    columns: u64,
}

fn skip_leading(input: &mut dyn BufRead) -> Result<Head, ParseError> {
    const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
    let mut head = Head {
        first: None,
        bytes: 0,
        lines: 0,
        columns: 0,
    };
    let mut bom = 0;
    loop {
        let buf = input.fill_buf().map_err(|e| {
            ParseError::new(
                format!("byte {}", head.bytes),
                format!("the report cannot be read: {e}"),
            )
        })?;
        if buf.is_empty() {
            return Ok(head);
        }
        let mut used = 0;
        for &b in buf {
            if head.bytes == bom && BOM.get(bom_index(bom)) == Some(&b) {
                // A leading byte order mark: no column of its own.
                bom += 1;
            } else if b.is_ascii_whitespace() {
                if b == b'\n' {
                    head.lines += 1;
                    head.columns = 0;
                } else {
                    head.columns += 1;
                }
            } else {
                head.first = Some(b);
                input.consume(used);
                return Ok(head);
            }
            used += 1;
            head.bytes += 1;
        }
        input.consume(used);
    }
}

fn bom_index(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// One `site`: its attributes (`@name`, … in JSON).
#[derive(Debug, Default)]
struct Site {
    name: String,
    host: String,
    port: String,
    ssl: String,
}

/// One `alertitem`, its text fields as read (XML entities resolved).
#[derive(Debug, Default)]
struct Alert {
    plugin_id: String,
    alert_ref: String,
    alert: String,
    name: String,
    risk_code: String,
    risk_desc: String,
    confidence: String,
    confidence_desc: String,
    desc: String,
    solution: String,
    other_info: String,
    reference: String,
    cwe_id: String,
    wasc_id: String,
    count: String,
    tags: Vec<String>,
    /// The first [`LISTED_INSTANCES`] instances.
    instances: Vec<Instance>,
    /// All instances seen.
    instances_seen: u64,
}

#[derive(Debug, Default)]
struct Instance {
    uri: String,
    method: String,
    param: String,
    attack: String,
    evidence: String,
}

// ---------------------------------------------------------------------------
// XML

/// Where the reader is, element by element, below the report's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Root,
    Site,
    Alerts,
    AlertItem,
    Instances,
    Instance,
    Tags,
    Tag,
    Field(Field),
}

/// A text element of an alert item or an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    PluginId,
    AlertRef,
    Alert,
    Name,
    RiskCode,
    RiskDesc,
    Confidence,
    ConfidenceDesc,
    Desc,
    Solution,
    OtherInfo,
    Reference,
    CweId,
    WascId,
    Count,
    TagName,
    Uri,
    Method,
    Param,
    Attack,
    Evidence,
}

fn alert_field(name: &[u8]) -> Option<Field> {
    Some(match name {
        b"pluginid" => Field::PluginId,
        b"alertref" => Field::AlertRef,
        b"alert" => Field::Alert,
        b"name" => Field::Name,
        b"riskcode" => Field::RiskCode,
        b"riskdesc" => Field::RiskDesc,
        b"confidence" => Field::Confidence,
        b"confidencedesc" => Field::ConfidenceDesc,
        b"desc" => Field::Desc,
        b"solution" => Field::Solution,
        b"otherinfo" => Field::OtherInfo,
        b"reference" => Field::Reference,
        b"cweid" => Field::CweId,
        b"wascid" => Field::WascId,
        b"count" => Field::Count,
        _ => return None,
    })
}

fn instance_field(name: &[u8]) -> Option<Field> {
    Some(match name {
        b"uri" => Field::Uri,
        b"method" => Field::Method,
        b"param" => Field::Param,
        b"attack" => Field::Attack,
        b"evidence" => Field::Evidence,
        _ => return None,
    })
}

/// The reader's state: the path to the current element and the alert item
/// being read.
#[derive(Default)]
struct XmlState {
    stack: Vec<Node>,
    /// Depth inside elements of no interest (statistics, requests, …),
    /// which are not pushed on the stack.
    skipped: usize,
    root_done: bool,
    site: Site,
    sites_seen: usize,
    alerts_seen: usize,
    alert: Alert,
    /// Whether the current instance is among those kept.
    instance_kept: bool,
    tag: String,
}

fn parse_xml(
    input: &mut dyn BufRead,
    offset: u64,
    sink: &mut dyn FnMut(Item),
) -> Result<(), ParseError> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut state = XmlState::default();
    loop {
        let event = reader.read_event_into(&mut buf);
        let decoder = reader.decoder();
        let at = || format!("byte {}", offset + reader.buffer_position());
        let step = match event {
            Err(e) => Err(e.to_string()),
            Ok(Event::Start(e)) => state.start(&e, decoder),
            Ok(Event::Empty(e)) => state
                .start(&e, decoder)
                .and_then(|()| state.end(&mut *sink)),
            Ok(Event::End(_)) => state.end(&mut *sink),
            Ok(Event::Text(e)) => e
                .xml10_content()
                .map(|text| state.text(&text))
                .map_err(|e| e.to_string()),
            Ok(Event::CData(e)) => e
                .xml10_content()
                .map(|text| state.text(&text))
                .map_err(|e| e.to_string()),
            Ok(Event::GeneralRef(e)) => state.reference(&e),
            Ok(Event::Eof) => return state.finish().map_err(|m| ParseError::new(at(), m)),
            Ok(Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_)) => Ok(()),
        };
        step.map_err(|m| ParseError::new(at(), m))?;
        buf.clear();
    }
}

impl XmlState {
    fn start(&mut self, e: &BytesStart<'_>, decoder: Decoder) -> Result<(), String> {
        if self.skipped > 0 {
            self.skipped += 1;
            return Ok(());
        }
        let name = e.local_name().as_ref().to_ascii_lowercase();
        let name = name.as_slice();
        let node = match self.stack.last() {
            None if self.root_done => {
                return Err("an element after the end of the report".into());
            }
            None if name == b"owaspzapreport" => Some(Node::Root),
            None => {
                return Err(format!(
                    "not an OWASP ZAP report: the root element is <{}>, not <OWASPZAPReport>",
                    fit_line(&String::from_utf8_lossy(name), 100)
                ));
            }
            Some(Node::Root) if name == b"site" => {
                self.open_site(e, decoder)?;
                Some(Node::Site)
            }
            Some(Node::Site) if name == b"alerts" => Some(Node::Alerts),
            Some(Node::Alerts) if name == b"alertitem" => {
                self.alert = Alert::default();
                Some(Node::AlertItem)
            }
            Some(Node::AlertItem) if name == b"instances" => Some(Node::Instances),
            Some(Node::AlertItem) if name == b"tags" => Some(Node::Tags),
            Some(Node::AlertItem) => alert_field(name).map(Node::Field),
            Some(Node::Instances) if name == b"instance" => {
                self.open_instance();
                Some(Node::Instance)
            }
            Some(Node::Instance) => instance_field(name).map(Node::Field),
            Some(Node::Tags) if name == b"tag" => Some(Node::Tag),
            Some(Node::Tag) if name == b"tag" => {
                self.tag.clear();
                Some(Node::Field(Field::TagName))
            }
            Some(_) => None,
        };
        match node {
            Some(node) => self.stack.push(node),
            None => self.skipped = 1,
        }
        Ok(())
    }

    fn open_site(&mut self, e: &BytesStart<'_>, decoder: Decoder) -> Result<(), String> {
        self.site = Site::default();
        self.sites_seen += 1;
        self.alerts_seen = 0;
        for attribute in e.attributes() {
            let attribute = attribute.map_err(|e| e.to_string())?;
            let target = match attribute.key.local_name().as_ref() {
                b"name" => &mut self.site.name,
                b"host" => &mut self.site.host,
                b"port" => &mut self.site.port,
                b"ssl" => &mut self.site.ssl,
                _ => continue,
            };
            let value = attribute
                .decode_and_unescape_value(decoder)
                .map_err(|e| e.to_string())?;
            push_capped(target, &value, SHORT_FIELD_BYTES);
        }
        Ok(())
    }

    fn open_instance(&mut self) {
        self.alert.instances_seen += 1;
        self.instance_kept = self.alert.instances.len() < LISTED_INSTANCES;
        if self.instance_kept {
            self.alert.instances.push(Instance::default());
        }
    }

    fn end(&mut self, sink: &mut dyn FnMut(Item)) -> Result<(), String> {
        if self.skipped > 0 {
            self.skipped -= 1;
            return Ok(());
        }
        match self.stack.pop() {
            None => return Err("an end tag without its start".into()),
            Some(Node::Root) => self.root_done = true,
            Some(Node::AlertItem) => {
                let at = format!(
                    "site[{}].alerts.alertitem[{}]",
                    self.sites_seen.saturating_sub(1),
                    self.alerts_seen
                );
                self.alerts_seen += 1;
                let alert = std::mem::take(&mut self.alert);
                sink(item(&self.site, &alert, at));
            }
            Some(Node::Field(Field::TagName)) => {
                let tag = std::mem::take(&mut self.tag);
                if self.alert.tags.len() < MAX_LIST {
                    self.alert.tags.push(tag);
                }
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Text inside the current element: kept when it is a field's.
    fn text(&mut self, text: &str) {
        if self.skipped > 0 {
            return;
        }
        let Some(Node::Field(field)) = self.stack.last().copied() else {
            return;
        };
        let alert = &mut self.alert;
        let (target, cap) = match field {
            Field::PluginId => (&mut alert.plugin_id, SHORT_FIELD_BYTES),
            Field::AlertRef => (&mut alert.alert_ref, SHORT_FIELD_BYTES),
            Field::Alert => (&mut alert.alert, SHORT_FIELD_BYTES),
            Field::Name => (&mut alert.name, SHORT_FIELD_BYTES),
            Field::RiskCode => (&mut alert.risk_code, SHORT_FIELD_BYTES),
            Field::RiskDesc => (&mut alert.risk_desc, SHORT_FIELD_BYTES),
            Field::Confidence => (&mut alert.confidence, SHORT_FIELD_BYTES),
            Field::ConfidenceDesc => (&mut alert.confidence_desc, SHORT_FIELD_BYTES),
            Field::Desc => (&mut alert.desc, LONG_FIELD_BYTES),
            Field::Solution => (&mut alert.solution, LONG_FIELD_BYTES),
            Field::OtherInfo => (&mut alert.other_info, LONG_FIELD_BYTES),
            Field::Reference => (&mut alert.reference, LONG_FIELD_BYTES),
            Field::CweId => (&mut alert.cwe_id, SHORT_FIELD_BYTES),
            Field::WascId => (&mut alert.wasc_id, SHORT_FIELD_BYTES),
            Field::Count => (&mut alert.count, SHORT_FIELD_BYTES),
            Field::TagName => (&mut self.tag, TAG_CHARS * 4),
            Field::Uri | Field::Method | Field::Param | Field::Attack | Field::Evidence => {
                let Some(instance) = alert.instances.last_mut().filter(|_| self.instance_kept)
                else {
                    return;
                };
                let target = match field {
                    Field::Uri => &mut instance.uri,
                    Field::Method => &mut instance.method,
                    Field::Param => &mut instance.param,
                    Field::Attack => &mut instance.attack,
                    _ => &mut instance.evidence,
                };
                (target, SHORT_FIELD_BYTES)
            }
        };
        push_capped(target, text, cap);
    }

    /// An entity or character reference in text (`&lt;`, `&#39;`); one
    /// XML does not define is kept as written.
    fn reference(&mut self, e: &BytesRef<'_>) -> Result<(), String> {
        if let Some(c) = e.resolve_char_ref().map_err(|e| e.to_string())? {
            self.text(c.encode_utf8(&mut [0; 4]));
            return Ok(());
        }
        let name = e.decode().map_err(|e| e.to_string())?;
        match resolve_predefined_entity(&name) {
            Some(text) => self.text(text),
            None => self.text(&format!("&{name};")),
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), String> {
        if !self.stack.is_empty() || self.skipped > 0 {
            Err("the report ends before its elements are closed".into())
        } else if !self.root_done {
            Err("not an OWASP ZAP report: no <OWASPZAPReport> element".into())
        } else {
            Ok(())
        }
    }
}

/// `text` appended to `target` while `target` holds at most `cap` bytes
/// (cut at a character boundary).
fn push_capped(target: &mut String, text: &str, cap: usize) {
    let room = cap.saturating_sub(target.len());
    if text.len() <= room {
        target.push_str(text);
        return;
    }
    let mut end = room;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    target.push_str(&text[..end]);
}

// ---------------------------------------------------------------------------
// JSON

fn parse_json(
    input: &mut dyn BufRead,
    head: &Head,
    sink: &mut dyn FnMut(Item),
) -> Result<(), ParseError> {
    // The skipped whitespace, replayed as line feeds and spaces, so that
    // serde_json's line and column are those of the whole input.
    let replayed = std::io::repeat(b'\n')
        .take(head.lines)
        .chain(std::io::repeat(b' ').take(head.columns));
    let report: Value =
        serde_json::from_reader(replayed.chain(input)).map_err(|e| ParseError::json(&e))?;
    let Some(sites) = report.as_object().and_then(|root| root.get("site")) else {
        return Err(ParseError::new(
            "$",
            "not an OWASP ZAP report: no \"site\" in the JSON object",
        ));
    };
    for (i, site) in one_or_many(sites).into_iter().enumerate() {
        let Some(site) = site.as_object() else {
            sink(Item::Error(ItemError {
                at: format!("site[{i}]"),
                reason: "the site is not an object".into(),
            }));
            continue;
        };
        let info = Site {
            name: json_text(site.get("@name")),
            host: json_text(site.get("@host")),
            port: json_text(site.get("@port")),
            ssl: json_text(site.get("@ssl")),
        };
        let alerts = site.get("alerts").map(one_or_many).unwrap_or_default();
        for (j, alert) in alerts.into_iter().enumerate() {
            let at = format!("site[{i}].alerts[{j}]");
            match alert.as_object() {
                Some(alert) => sink(item(&info, &json_alert(alert), at)),
                None => sink(Item::Error(ItemError {
                    at,
                    reason: "the alert is not an object".into(),
                })),
            }
        }
    }
    Ok(())
}

/// The elements of an array, a lone value as one, `null` as none (ZAP's
/// older JSON wrote a list of one as the value itself).
fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(values) => values.iter().collect(),
        Value::Null => Vec::new(),
        value => vec![value],
    }
}

/// A string, number or boolean as text; anything else as none.
fn json_text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::Bool(flag)) => flag.to_string(),
        _ => String::new(),
    }
}

fn json_alert(alert: &Map<String, Value>) -> Alert {
    let text = |key: &str| json_text(alert.get(key));
    let instances = alert.get("instances").map(one_or_many).unwrap_or_default();
    let tags = match alert.get("tags") {
        // {"OWASP_2021_A01": "https://…", …}
        Some(Value::Object(tags)) => tags.keys().cloned().collect(),
        // [{"tag": "OWASP_2021_A01", "link": "https://…"}, …] or ["…", …]
        Some(Value::Array(tags)) => tags
            .iter()
            .map(|tag| match tag {
                Value::Object(tag) => json_text(tag.get("tag")),
                tag => json_text(Some(tag)),
            })
            .collect(),
        _ => Vec::new(),
    };
    Alert {
        plugin_id: text("pluginid"),
        alert_ref: text("alertRef"),
        alert: text("alert"),
        name: text("name"),
        risk_code: text("riskcode"),
        risk_desc: text("riskdesc"),
        confidence: text("confidence"),
        confidence_desc: text("confidencedesc"),
        desc: text("desc"),
        solution: text("solution"),
        other_info: text("otherinfo"),
        reference: text("reference"),
        cwe_id: text("cweid"),
        wasc_id: text("wascid"),
        count: text("count"),
        tags: tags.into_iter().take(MAX_LIST).collect(),
        instances_seen: u64::try_from(instances.len()).unwrap_or(u64::MAX),
        instances: instances
            .into_iter()
            .take(LISTED_INSTANCES)
            .map(|instance| {
                let text = |key: &str| json_text(instance.get(key));
                Instance {
                    uri: text("uri"),
                    method: text("method"),
                    param: text("param"),
                    attack: text("attack"),
                    evidence: text("evidence"),
                }
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// The finding

fn item(site: &Site, alert: &Alert, at: String) -> Item {
    match finding(site, alert) {
        Ok(finding) => Item::Finding(Box::new(finding)),
        Err(reason) => Item::Error(ItemError { at, reason }),
    }
}

fn finding(site: &Site, alert: &Alert) -> Result<ScannedFinding, String> {
    let title = [&alert.alert, &alert.name]
        .into_iter()
        .map(|name| fit_line(name, TITLE_CHARS))
        .find(|name| !name.is_empty())
        .ok_or("the alert item has no name (neither `alert` nor `name`)")?;
    let mut finding = ScannedFinding::new(PRODUCT, "dast");
    finding.severity = severity(alert);
    finding.description = description(site, alert);
    finding.asset = asset(site);
    finding.location = alert
        .instances
        .iter()
        .map(|instance| fit_line(&instance.uri, LOCATION_CHARS))
        .find(|uri| !uri.is_empty())
        .or_else(|| Some(fit_line(&site.name, LOCATION_CHARS)).filter(|name| !name.is_empty()));
    finding.cwe = cwe_of(&alert.cwe_id);
    finding.cve = cve_in(&title);
    finding.references = references(&alert.reference);
    finding.tags = tags(alert);
    finding.identity = identity(site, alert, &title);
    finding.title = title;
    Ok(finding)
}

fn severity(alert: &Alert) -> Severity {
    match alert.risk_code.trim() {
        "3" => Severity::High,
        "2" => Severity::Medium,
        "1" => Severity::Low,
        "0" => Severity::Info,
        // `riskdesc` is "High (Medium)": the risk, then the confidence.
        _ => alert
            .risk_desc
            .split_whitespace()
            .next()
            .and_then(severity_word)
            .unwrap_or(Severity::Info),
    }
}

/// The finding's identity (see the module's documentation).
fn identity(site: &Site, alert: &Alert, title: &str) -> String {
    let site = match fit_line(&site.name, LOCATION_CHARS).to_ascii_lowercase() {
        name if name.is_empty() => asset(site).unwrap_or_default(),
        name => name,
    };
    let plugin = fit_line(&alert.plugin_id, TITLE_CHARS);
    let alert_ref = fit_line(&alert.alert_ref, TITLE_CHARS);
    let rule = if alert_ref.is_empty() {
        title
    } else {
        &alert_ref
    };
    let confidence = fit_line(&alert.confidence, TITLE_CHARS);
    format!("{site}\u{1f}{plugin}\u{1f}{rule}\u{1f}{confidence}")
}

/// The site's host, with its port unless it is the scheme's default.
fn asset(site: &Site) -> Option<String> {
    let name = site.name.trim();
    let host = if name.is_empty() {
        let host = site.host.trim().to_ascii_lowercase();
        let port = site.port.trim();
        let default = if site.ssl.trim().eq_ignore_ascii_case("true") {
            "443"
        } else {
            "80"
        };
        if host.is_empty() || port.is_empty() || port == default {
            host
        } else {
            format!("{host}:{port}")
        }
    } else {
        let host = host_of(name);
        let scheme = name.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let default = match scheme.as_deref() {
            Some("https") => Some(":443"),
            Some("http") => Some(":80"),
            _ => None,
        };
        match default.and_then(|port| host.strip_suffix(port)) {
            Some(bare) => bare.to_string(),
            None => host,
        }
    };
    Some(fit_line(&host, LOCATION_CHARS)).filter(|host| !host.is_empty())
}

fn description(site: &Site, alert: &Alert) -> String {
    let mut sections = Vec::new();
    let desc = prose(&alert.desc);
    if !desc.is_empty() {
        sections.push(desc);
    }
    for (heading, text) in [
        ("Solution", &alert.solution),
        ("Other information", &alert.other_info),
    ] {
        let text = prose(text);
        if !text.is_empty() {
            sections.push(format!("{heading}:\n{text}"));
        }
    }
    let confidence = match fit_line(&alert.confidence_desc, TAG_CHARS) {
        word if !word.is_empty() => word,
        _ => match alert.confidence.trim() {
            "0" => "False Positive".into(),
            "1" => "Low".into(),
            "2" => "Medium".into(),
            "3" => "High".into(),
            "4" => "Confirmed".into(),
            other => fit_line(other, TAG_CHARS),
        },
    };
    if !confidence.is_empty() {
        sections.push(format!("Confidence: {confidence}"));
    }
    let count = alert
        .count
        .trim()
        .parse::<u64>()
        .unwrap_or(0)
        .max(alert.instances_seen);
    if count > 0 {
        let mut lines = vec![format!("Instances ({count}):")];
        lines.extend(alert.instances.iter().map(|i| instance_line(site, i)));
        let listed = u64::try_from(alert.instances.len()).unwrap_or(u64::MAX);
        if count > listed {
            lines.push(format!("… and {} more", count - listed));
        }
        sections.push(lines.join("\n"));
    }
    fit_text(&sections.join("\n\n"), DESCRIPTION_CHARS)
}

/// `- GET https://a.example/x (param: q; attack: …; evidence: …)`.
fn instance_line(site: &Site, instance: &Instance) -> String {
    let uri = match instance.uri.trim() {
        "" => site.name.as_str(),
        uri => uri,
    };
    let mut line = format!("- {} {uri}", instance.method.trim());
    let details: Vec<String> = [
        ("param", &instance.param),
        ("attack", &instance.attack),
        ("evidence", &instance.evidence),
    ]
    .into_iter()
    .map(|(label, text)| (label, fit_line(text, DETAIL_CHARS)))
    .filter(|(_, text)| !text.is_empty())
    .map(|(label, text)| format!("{label}: {text}"))
    .collect();
    if !details.is_empty() {
        line.push_str(&format!(" ({})", details.join("; ")));
    }
    fit_line(&line, LOCATION_CHARS)
}

/// Whether ZAP wrote `text` as HTML (ZAP 2.10 on), not as plain text (2.9).
fn is_html(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    [
        "<p>", "</p>", "<br", "<li>", "<ul>", "<ol>", "<a href", "<div",
    ]
    .iter()
    .any(|tag| lower.contains(tag))
}

/// A text field as text: HTML stripped, lines trimmed, runs of blank lines
/// made one.
fn prose(text: &str) -> String {
    let text: Cow<'_, str> = if is_html(text) {
        strip_html(text).into()
    } else {
        text.into()
    };
    let mut out = String::new();
    let mut blank = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if blank {
            out.push_str("\n\n");
        } else if !out.is_empty() {
            out.push('\n');
        }
        blank = false;
        out.push_str(line);
    }
    out
}

/// The URLs of `reference`, one each: lines of HTML paragraphs, and URLs
/// run together (`…/CSP2/http://www…`, ZAP 2.9) split again; a line
/// without a URL is kept as it is.
fn references(text: &str) -> Vec<String> {
    let text = prose(text);
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let pieces: Vec<&str> = if line.contains("://") {
            line.split_whitespace().flat_map(urls_in).collect()
        } else {
            vec![line]
        };
        for piece in pieces {
            let reference = fit_line(piece, LOCATION_CHARS);
            if !reference.is_empty() && !out.contains(&reference) {
                out.push(reference);
                if out.len() == MAX_LIST {
                    return out;
                }
            }
        }
    }
    out
}

/// The URLs in a word, split where a new `http://` or `https://` begins
/// (but not in a query: `?u=http://…` is one URL).
fn urls_in(word: &str) -> Vec<&str> {
    let lower = word.to_ascii_lowercase();
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find("http") {
        let at = from + found;
        let rest = &lower[at..];
        if rest.starts_with("http://") || rest.starts_with("https://") {
            let before = at.checked_sub(1).and_then(|i| lower.as_bytes().get(i));
            let in_query = matches!(before, Some(b'=' | b'%' | b'?' | b'&'));
            if starts.is_empty() || !in_query {
                starts.push(at);
            }
        }
        from = at + 4;
    }
    let mut urls = Vec::with_capacity(starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(word.len());
        let url = trim_url(&word[start..end]);
        if url.len() > "https://".len() {
            urls.push(url);
        }
    }
    urls
}

/// A URL without the punctuation that follows it in prose (a closing
/// parenthesis only when it has no opening one in the URL).
fn trim_url(url: &str) -> &str {
    let mut url = url.trim_end_matches(['.', ',', ';', ':', '>', '"', '\'']);
    while url.ends_with(')') && url.matches(')').count() > url.matches('(').count() {
        url = url[..url.len() - 1].trim_end_matches(['.', ',', ';', ':']);
    }
    url
}

fn tags(alert: &Alert) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let plugin = alert.plugin_id.trim();
    if !plugin.is_empty() && !plugin.starts_with('-') {
        tags.push(fit_line(&format!("zap-plugin-{plugin}"), TAG_CHARS));
    }
    if let Some(wasc) = alert.wasc_id.trim().parse::<u64>().ok().filter(|&n| n > 0) {
        tags.push(format!("wasc-{wasc}"));
    }
    for tag in &alert.tags {
        let tag = fit_line(tag, TAG_CHARS);
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.truncate(MAX_LIST);
    tags
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io::BufReader;
    use std::path::PathBuf;

    use super::*;
    use crate::ingest::detect;

    fn run(input: &[u8]) -> (Vec<ScannedFinding>, Vec<ItemError>, Result<(), ParseError>) {
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let mut input = input;
        let result = Zap.parse(&mut input, &mut |item| match item {
            Item::Finding(f) => findings.push(*f),
            Item::Error(e) => errors.push(e),
        });
        (findings, errors, result)
    }

    fn corpus(file: &str) -> Vec<ScannedFinding> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/corpus/zap")
            .join(file);
        let mut input = BufReader::new(std::fs::File::open(&path).expect("corpus file"));
        let mut findings = Vec::new();
        Zap.parse(&mut input, &mut |item| match item {
            Item::Finding(f) => findings.push(*f),
            Item::Error(e) => panic!("{file}: {e:?}"),
        })
        .expect("a ZAP report");
        findings
    }

    fn identities(file: &str) -> BTreeSet<String> {
        corpus(file).into_iter().map(|f| f.identity).collect()
    }

    const JSON: &str = r#"
    {
      "@programName": "ZAP",
      "@version": "2.14.0",
      "@generated": "Mon, 4 Mar 2024 10:00:00",
      "site": [
        {
          "@name": "https://shop.example:8443",
          "@host": "shop.example",
          "@port": "8443",
          "@ssl": "true",
          "alerts": [
            {
              "pluginid": "40012",
              "alertRef": "40012",
              "alert": "Cross Site Scripting (Reflected)",
              "name": "Cross Site Scripting (Reflected)",
              "riskcode": "3",
              "confidence": "2",
              "riskdesc": "High (Medium)",
              "desc": "<p>Cross-site Scripting (XSS) is an attack technique.</p><p>It echoes code.</p>",
              "instances": [
                {
                  "uri": "https://shop.example:8443/search?q=x",
                  "method": "GET",
                  "param": "q",
                  "attack": "<script>alert(1)</script>",
                  "evidence": "<script>alert(1)</script>"
                },
                {"uri": "https://shop.example:8443/item", "method": "POST", "param": "id"}
              ],
              "count": "2",
              "solution": "<p>Encode output.</p>",
              "otherinfo": "",
              "reference": "<p>https://owasp.org/www-community/attacks/xss/</p><p>https://cwe.mitre.org/data/definitions/79.html</p>",
              "cweid": "79",
              "wascid": "8",
              "sourceid": "1",
              "tags": {"OWASP_2021_A03": "https://owasp.org/Top10/A03_2021-Injection/"}
            },
            {
              "pluginid": 10109,
              "alert": "Modern Web Application",
              "riskcode": 0,
              "confidence": 2,
              "desc": "The application appears to be a modern web application.",
              "instances": [],
              "cweid": "-1",
              "wascid": "-1"
            },
            {"pluginid": "10021", "riskcode": "1", "desc": "no name"}
          ]
        },
        {"@name": "http://api.example", "@host": "api.example", "@port": "80", "@ssl": "false", "alerts": []}
      ]
    }"#;

    #[test]
    fn the_traditional_json_report_is_read() {
        assert_eq!(detect(JSON.as_bytes()), Some(Format::Zap));
        let (findings, errors, result) = run(JSON.as_bytes());
        assert_eq!(result, Ok(()));
        assert_eq!(findings.len(), 2);
        assert_eq!(
            errors,
            vec![ItemError {
                at: "site[0].alerts[2]".into(),
                reason: "the alert item has no name (neither `alert` nor `name`)".into(),
            }]
        );

        let xss = &findings[0];
        assert_eq!(xss.product, "OWASP ZAP");
        assert_eq!(xss.category, "dast");
        assert_eq!(xss.title, "Cross Site Scripting (Reflected)");
        assert_eq!(xss.severity, Severity::High);
        assert_eq!(xss.asset.as_deref(), Some("shop.example:8443"));
        assert_eq!(
            xss.location.as_deref(),
            Some("https://shop.example:8443/search?q=x")
        );
        assert_eq!(xss.cwe.as_deref(), Some("CWE-79"));
        assert_eq!(
            xss.references,
            vec![
                "https://owasp.org/www-community/attacks/xss/",
                "https://cwe.mitre.org/data/definitions/79.html"
            ]
        );
        assert_eq!(
            xss.tags,
            vec!["zap-plugin-40012", "wasc-8", "OWASP_2021_A03"]
        );
        assert!(xss.description.starts_with(
            "Cross-site Scripting (XSS) is an attack technique.\n\nIt echoes code.\n\nSolution:\nEncode output."
        ));
        assert!(xss.description.contains("Confidence: Medium"));
        assert!(xss.description.contains(
            "Instances (2):\n- GET https://shop.example:8443/search?q=x (param: q; attack: <script>alert(1)</script>"
        ));
        assert!(xss
            .description
            .ends_with("- POST https://shop.example:8443/item (param: id)"));
        assert_eq!(
            xss.identity,
            "https://shop.example:8443\u{1f}40012\u{1f}40012\u{1f}2"
        );

        let modern = &findings[1];
        assert_eq!(modern.severity, Severity::Info);
        assert_eq!(modern.cwe, None);
        assert_eq!(modern.tags, vec!["zap-plugin-10109"]);
        assert_eq!(
            modern.location.as_deref(),
            Some("https://shop.example:8443")
        );
        assert_eq!(
            modern.identity,
            "https://shop.example:8443\u{1f}10109\u{1f}Modern Web Application\u{1f}2"
        );
    }

    #[test]
    fn json_errors_are_refusals() {
        let (_, _, result) = run(b"\n\n  {\"site\": [}");
        let error = result.expect_err("malformed JSON");
        assert_eq!(error.at, "line 3, column 13");
        let (_, _, result) = run(br#"{"runs": []}"#);
        assert!(result.is_err());
    }

    #[test]
    fn a_rescan_without_one_alert_loses_exactly_its_identity() {
        let first = identities("0_zap_sample.xml");
        let second = identities("0_zap_sample_without_zap3.xml");
        assert_eq!(first.len(), 4);
        assert!(second.is_subset(&first));
        let gone: Vec<&String> = first.difference(&second).collect();
        assert_eq!(gone.len(), 1);
        assert!(gone[0].contains("zap3: CSP Scanner"), "{gone:?}");

        // A new endpoint does not make a new identity.
        assert_eq!(identities("2_zap_sample_0_and_new_endpoint.xml"), first);
    }

    #[test]
    fn identities_tell_alert_items_apart_but_not_copies() {
        // Two "Suspicious Comments" items with the same alert ref, at low
        // and at medium confidence: two identities.
        let full = identities("dvwa_baseline_dojo.xml");
        assert_eq!(full.len(), 19);
        // 13 items of which 3 are copies of others (DefectDojo's internal
        // duplicates).
        let copies = identities("dvwa_baseline_dojo_fabricated_internal_duplicates.xml");
        assert_eq!(copies.len(), 10);
        let subset = identities("dvwa_baseline_dojo_subset.xml");
        assert_eq!(subset.len(), 10);
        assert!(subset.is_subset(&full));
    }

    #[test]
    fn an_xml_alert_item_becomes_one_finding() {
        let findings = corpus("0_zap_sample.xml");
        let csp = &findings[2];
        assert_eq!(csp.title, "zap3: CSP Scanner: Wildcard Directive");
        assert_eq!(csp.severity, Severity::Medium);
        assert_eq!(csp.asset.as_deref(), Some("mainsite.com"));
        assert_eq!(csp.location.as_deref(), Some("https://mainsite.com"));
        assert_eq!(csp.cwe.as_deref(), Some("CWE-16"));
        assert_eq!(csp.tags, vec!["zap-plugin-10055", "wasc-15"]);
        // ZAP 2.9 ran the URLs together.
        assert_eq!(
            csp.references,
            vec![
                "http://www.w3.org/TR/CSP2/",
                "http://www.w3.org/TR/CSP/",
                "http://caniuse.com/#search=content+security+policy",
                "http://content-security-policy.com/",
                "https://github.com/shapesecurity/salvation"
            ]
        );
        assert!(csp.description.contains(
            "Instances (1):\n- GET https://mainsite.com (param: Content-Security-Policy; evidence: frame-ancestors 'self';)"
        ));
        let cookie = &findings[0];
        assert_eq!(
            cookie.references,
            vec!["http://www.owasp.org/index.php/Testing_for_cookies_attributes_(OWASP-SM-002)"]
        );
        assert_eq!(
            cookie.location.as_deref(),
            Some("https://mainsite.com/dashboard")
        );

        let bodgeit = corpus("zap-results-first-scan.xml");
        assert_eq!(
            bodgeit[0].asset.as_deref(),
            Some("bodgeit.securecodebox-demo.svc:8080")
        );
        assert_eq!(bodgeit[14].title, "PII Disclosure");
        assert_eq!(bodgeit[14].severity, Severity::High);
        assert_eq!(bodgeit[14].cwe.as_deref(), Some("CWE-359"));

        // ZAP 2.16: HTML-less other info indented, its own tags, CWE -1.
        let recent = corpus("zap_2.16.1_with_req_resp.xml");
        assert_eq!(recent[0].cwe, None);
        assert!(recent[0].description.contains(
            "Other information:\nuserParam=user_identifier\nuserValue=string\npasswordParam=passwordless_code"
        ));
        assert!(recent
            .iter()
            .any(|f| f.tags.iter().any(|t| t == "OWASP_2021_A03")));
        assert!(recent.iter().all(|f| !f.description.contains("HTTP/1.1")));
    }

    fn report(items: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><OWASPZAPReport version=\"2.11.1\">\
             <site name=\"http://localhost:8080\" host=\"localhost\" port=\"8080\" ssl=\"false\">\
             <alerts>{items}</alerts></site></OWASPZAPReport>"
        )
    }

    #[test]
    fn instances_are_listed_up_to_a_bound() {
        let instances: String = (0..25)
            .map(|n| format!("<instance><uri>http://localhost:8080/p{n}</uri><method>GET</method></instance>"))
            .collect();
        let xml = report(&format!(
            "<alertitem><pluginid>1</pluginid><alert>A</alert><riskcode>1</riskcode>\
             <instances>{instances}</instances><count>25</count></alertitem>"
        ));
        let (findings, errors, result) = run(xml.as_bytes());
        assert_eq!(result, Ok(()));
        assert!(errors.is_empty());
        assert_eq!(findings.len(), 1);
        let description = &findings[0].description;
        assert!(description.contains("Instances (25):\n- GET http://localhost:8080/p0\n"));
        assert!(description.contains("- GET http://localhost:8080/p19\n… and 5 more"));
        assert!(!description.contains("/p20"));
        assert_eq!(findings[0].asset.as_deref(), Some("localhost:8080"));
    }

    #[test]
    fn an_alert_item_without_a_name_is_an_item_error() {
        let xml = report(
            "<alertitem><pluginid>1</pluginid><alert>A &amp; B&#33;</alert></alertitem>\
             <alertitem><pluginid>2</pluginid><riskcode>2</riskcode></alertitem>\
             <alertitem/>\
             <alertitem><pluginid>3</pluginid><name>C</name><riskdesc>Medium (Low)</riskdesc></alertitem>",
        );
        let (findings, errors, result) = run(xml.as_bytes());
        assert_eq!(result, Ok(()));
        let titles: Vec<&str> = findings.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(titles, vec!["A & B!", "C"]);
        assert_eq!(findings[1].severity, Severity::Medium);
        let at: Vec<&str> = errors.iter().map(|e| e.at.as_str()).collect();
        assert_eq!(
            at,
            vec!["site[0].alerts.alertitem[1]", "site[0].alerts.alertitem[2]"]
        );
    }

    #[test]
    fn each_site_has_its_own_findings() {
        let xml = "<OWASPZAPReport>\
            <site name=\"https://a.example\"><alerts><alertitem><pluginid>1</pluginid><alert>X</alert></alertitem></alerts></site>\
            <site name=\"https://b.example:443\"><alerts><alertitem><pluginid>1</pluginid><alert>X</alert></alertitem></alerts></site>\
            </OWASPZAPReport>";
        let (findings, _, result) = run(xml.as_bytes());
        assert_eq!(result, Ok(()));
        let assets: Vec<_> = findings.iter().map(|f| f.asset.as_deref()).collect();
        assert_eq!(assets, vec![Some("a.example"), Some("b.example")]);
        assert_ne!(findings[0].identity, findings[1].identity);
    }

    #[test]
    fn malformed_reports_are_refused() {
        for (input, at) in [
            (
                "<OWASPZAPReport><site></alerts></OWASPZAPReport>",
                "byte 31",
            ),
            ("<OWASPZAPReport><site name=\"a\"><alerts>", "byte 39"),
            ("\u{feff}  <html><body/></html>", "byte 11"),
            ("<?xml version=\"1.0\"?>", "byte 21"),
            ("<OWASPZAPReport/><OWASPZAPReport/>", "byte 34"),
            ("not a report", "byte 0"),
        ] {
            let (_, _, result) = run(input.as_bytes());
            let error = result.expect_err(input);
            assert_eq!(error.at, at, "{input}: {error}");
        }
    }

    #[test]
    fn an_empty_report_has_no_findings() {
        for input in ["", "  \n\t", "\u{feff}\n"] {
            let (findings, errors, result) = run(input.as_bytes());
            assert_eq!(result, Ok(()));
            assert!(findings.is_empty() && errors.is_empty());
        }
        assert!(corpus("empty_2.9.0.xml").is_empty());
    }

    #[test]
    fn urls_run_together_are_split_but_queries_kept() {
        assert_eq!(
            urls_in("https://a.example/x?next=http://b.example/y"),
            vec!["https://a.example/x?next=http://b.example/y"]
        );
        assert_eq!(
            urls_in("(https://a.example/b_(c))."),
            vec!["https://a.example/b_(c)"]
        );
        assert_eq!(
            references("See https://a.example for more\nOWASP Testing Guide"),
            vec!["https://a.example", "OWASP Testing Guide"]
        );
    }
}
