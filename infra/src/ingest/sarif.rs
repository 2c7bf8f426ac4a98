//! SARIF 2.1.0 reports, from any tool (the product is
//! `runs[].tool.driver.name`).
//!
//! What counts as a finding follows DefectDojo: one per result of kind
//! `fail` (an absent kind is `fail`) per location, and one for a result
//! without locations; results of kind `pass`, `open`, `informational`
//! and `notApplicable` are dropped.
//!
//! - **Severity**: the rule's (or the result's) `properties.security-severity`
//!   as a CVSS band (≥ 9 critical, ≥ 7 high, ≥ 4 medium, > 0 low) or a word
//!   (`MEDIUM`, `CRITICAL`); else the level resolved as the specification
//!   says: the result's `level`, the rule's configuration override in the
//!   run's invocations, the rule's `defaultConfiguration.level`, else
//!   `warning`; `error` is high, `warning` medium, `note` low, `none` info.
//! - **Title**: the first line of the message, which is `message.text` or
//!   the rule's `messageStrings[message.id]` with its `{n}` arguments filled.
//! - **CWE and CVE**: from the rule's tags, `properties.cwe`, its
//!   relationships' targets, its id, and the message.
//! - **Identity**: `partialFingerprints` and `fingerprints` (values may be
//!   objects `{"value": …}`), else the rule id and the location (and the
//!   message when there is no location); a result with several locations
//!   adds the location, so each of its findings has its own.
//! - **Suppressions**: a non-empty `suppressions` list (none `rejected`)
//!   marks the finding suppressed, with the suppressions' justification.
//!
//! Streaming: the log is read with serde visitors, one result at a time,
//! never as a whole tree. A run's rules are needed to read its results;
//! when `tool` comes after `results` in a run (legal JSON, rare in
//! practice), that run's results are held until the tool is read.

use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{
    cve_in, cwe_of, fit_line, fit_text, severity_of_score, severity_word, Format, Item, ItemError,
    ParseError, ReportParser, ScannedFinding, DESCRIPTION_CHARS, LOCATION_CHARS, MAX_LIST,
    TAG_CHARS, TITLE_CHARS,
};
use palisade_domain::finding::Severity;

/// The SARIF parser.
pub struct Sarif;

impl ReportParser for Sarif {
    fn format(&self) -> Format {
        Format::Sarif
    }

    fn parse(&self, input: &mut dyn BufRead, sink: &mut dyn FnMut(Item)) -> Result<(), ParseError> {
        let mut de = serde_json::Deserializer::from_reader(input);
        let outcome = LogSeed { sink: &mut *sink }.deserialize(&mut de);
        match outcome {
            Ok(()) => de.end().map_err(|e| ParseError::json(&e)),
            Err(error) if error.is_eof() && error.line() == 1 && error.column() == 0 => {
                Err(ParseError::new("byte 0", "the report is empty"))
            }
            Err(error) => Err(ParseError::json(&error)),
        }
    }
}

struct LogSeed<'s> {
    sink: &'s mut dyn FnMut(Item),
}

impl<'de> DeserializeSeed<'de> for LogSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LogSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a SARIF log (an object with runs)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut runs = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "runs" {
                map.next_value_seed(RunsSeed { sink: self.sink })?;
                runs = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !runs {
            return Err(serde::de::Error::custom("not a SARIF log: no runs"));
        }
        Ok(())
    }
}

struct RunsSeed<'s> {
    sink: &'s mut dyn FnMut(Item),
}

impl<'de> DeserializeSeed<'de> for RunsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RunsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of runs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(RunSeed {
                sink: &mut *self.sink,
                index,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }
}

struct RunSeed<'s> {
    sink: &'s mut dyn FnMut(Item),
    index: usize,
}

impl<'de> DeserializeSeed<'de> for RunSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// What a run's results are read against: the tool and its rules.
#[derive(Debug, Default, Deserialize)]
struct Tool {
    #[serde(default)]
    driver: Component,
    #[serde(default)]
    extensions: Vec<Component>,
}

#[derive(Debug, Default, Deserialize)]
struct Component {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    rules: Vec<Value>,
}

/// The run's tool and rules, indexed, and the levels its invocations override.
struct Context {
    product: String,
    rules: Vec<Value>,
    by_id: HashMap<String, usize>,
    overrides: HashMap<String, String>,
}

impl Context {
    fn new(tool: Tool, overrides: HashMap<String, String>) -> Self {
        let product = tool
            .driver
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "SARIF".into());
        let mut rules = tool.driver.rules;
        for extension in tool.extensions {
            rules.extend(extension.rules);
        }
        let by_id = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.get("id")
                    .and_then(Value::as_str)
                    .map(|id| (id.to_string(), i))
            })
            .collect();
        Self {
            product,
            rules,
            by_id,
            overrides,
        }
    }

    fn rule(&self, result: &Value) -> Option<&Value> {
        let by_index = result
            .get("ruleIndex")
            .or_else(|| result.pointer("/rule/index"))
            .and_then(Value::as_u64)
            .and_then(|i| self.rules.get(i as usize));
        by_index.or_else(|| {
            rule_id(result).and_then(|id| self.by_id.get(id).and_then(|&i| self.rules.get(i)))
        })
    }
}

fn rule_id(result: &Value) -> Option<&str> {
    result
        .get("ruleId")
        .or_else(|| result.pointer("/rule/id"))
        .and_then(Value::as_str)
}

/// `ruleConfigurationOverrides` of every invocation: rule id → level.
fn overrides_of(invocations: &Value) -> HashMap<String, String> {
    let mut levels = HashMap::new();
    for invocation in invocations.as_array().into_iter().flatten() {
        let list = invocation
            .get("ruleConfigurationOverrides")
            .and_then(Value::as_array);
        for o in list.into_iter().flatten() {
            let id = o.pointer("/descriptor/id").and_then(Value::as_str);
            let level = o.pointer("/configuration/level").and_then(Value::as_str);
            if let (Some(id), Some(level)) = (id, level) {
                levels.insert(id.to_string(), level.to_string());
            }
        }
    }
    levels
}

impl<'de> Visitor<'de> for RunSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a run")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut tool: Option<Tool> = None;
        let mut invocations = Value::Null;
        let mut context: Option<Context> = None;
        // Results read before the tool (rare): held until it is known.
        let mut held: Vec<Value> = Vec::new();
        let mut next_result = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "tool" => tool = Some(map.next_value()?),
                "invocations" => invocations = map.next_value()?,
                "results" => {
                    let ready = match (&context, tool.take()) {
                        (Some(_), _) => true,
                        (None, Some(t)) => {
                            context = Some(Context::new(t, overrides_of(&invocations)));
                            true
                        }
                        (None, None) => false,
                    };
                    if let (true, Some(context)) = (ready, &context) {
                        map.next_value_seed(ResultsSeed {
                            context,
                            sink: &mut *self.sink,
                            run: self.index,
                            next: &mut next_result,
                        })?;
                    } else {
                        held = map.next_value::<Option<Vec<Value>>>()?.unwrap_or_default();
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !held.is_empty() {
            let context = context.unwrap_or_else(|| {
                Context::new(tool.take().unwrap_or_default(), overrides_of(&invocations))
            });
            for (index, result) in held.iter().enumerate() {
                emit(&context, result, self.index, index, &mut *self.sink);
            }
        }
        Ok(())
    }
}

struct ResultsSeed<'a, 's> {
    context: &'a Context,
    sink: &'s mut dyn FnMut(Item),
    run: usize,
    next: &'a mut usize,
}

impl<'de> DeserializeSeed<'de> for ResultsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ResultsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of results")
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(result) = seq.next_element::<Value>()? {
            emit(self.context, &result, self.run, *self.next, &mut *self.sink);
            *self.next += 1;
        }
        Ok(())
    }
}

/// The findings of one result (none when it is not a failure), or its
/// item error.
fn emit(context: &Context, result: &Value, run: usize, index: usize, sink: &mut dyn FnMut(Item)) {
    match findings_of(context, result) {
        Ok(findings) => {
            for finding in findings {
                sink(Item::Finding(Box::new(finding)));
            }
        }
        Err(reason) => sink(Item::Error(ItemError {
            at: format!("runs[{run}].results[{index}]"),
            reason,
        })),
    }
}

fn text_of<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
}

/// `message.text`, or the rule's `messageStrings[message.id]` with `{n}`
/// replaced by the message's arguments.
fn message_of(result: &Value, rule: Option<&Value>) -> Option<String> {
    if let Some(text) = text_of(result, "/message/text") {
        return Some(text.to_string());
    }
    let id = result.pointer("/message/id").and_then(Value::as_str)?;
    let template = rule?
        .get("messageStrings")
        .and_then(|m| m.get(id))
        .and_then(|m| m.get("text"))
        .and_then(Value::as_str)?;
    let arguments: Vec<&str> = result
        .pointer("/message/arguments")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    let mut out = template.to_string();
    for (i, argument) in arguments.iter().enumerate() {
        out = out.replace(&format!("{{{i}}}"), argument);
    }
    Some(out)
}

/// The security severity of `properties`: a CVSS number (or numeric
/// string) as its band, or a word.
fn security_severity(properties: Option<&Value>) -> Option<(Severity, Option<f64>)> {
    let value = properties?.get("security-severity")?;
    let score = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    if let Some(score) = score.filter(|s| (0.0..=10.0).contains(s)) {
        return Some((severity_of_score(score), Some(score)));
    }
    value.as_str().and_then(severity_word).map(|s| (s, None))
}

fn level_severity(level: &str) -> Severity {
    match level {
        "error" => Severity::High,
        "note" => Severity::Low,
        "none" => Severity::Info,
        _ => Severity::Medium,
    }
}

/// A fingerprint map's entries as `key=value`, sorted; values may be
/// strings, numbers or objects `{"value": …}`.
fn fingerprints_of(result: &Value) -> Vec<String> {
    let mut parts = Vec::new();
    for field in ["partialFingerprints", "fingerprints"] {
        let Some(map) = result.get(field).and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in map {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Object(o) => match o.get("value") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => value.to_string(),
                },
                other => other.to_string(),
            };
            parts.push(format!("{field}.{key}={text}"));
        }
    }
    parts.sort();
    parts
}

/// `uri:line` of a location (its physical location), if it names one.
fn location_of(location: &Value) -> Option<String> {
    let physical = location.get("physicalLocation")?;
    let uri = text_of(physical, "/artifactLocation/uri")?;
    Some(
        match physical
            .pointer("/region/startLine")
            .and_then(Value::as_u64)
        {
            Some(line) => format!("{uri}:{line}"),
            None => uri.to_string(),
        },
    )
}

/// Strings of a value that is a string or a list of strings.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn cwe_from(rule: Option<&Value>, result: &Value, message: &str) -> Option<String> {
    if let Some(rule) = rule {
        let properties = rule.get("properties");
        let candidates = strings(properties.and_then(|p| p.get("cwe")))
            .into_iter()
            .chain(strings(properties.and_then(|p| p.get("tags"))))
            .chain(
                rule.get("relationships")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r.pointer("/target/id").and_then(Value::as_str)),
            );
        for candidate in candidates {
            if candidate.to_ascii_lowercase().contains("cwe") {
                if let Some(cwe) = cwe_of(candidate) {
                    return Some(cwe);
                }
            }
        }
    }
    let tags = strings(result.pointer("/properties/tags"));
    tags.into_iter()
        .chain([message])
        .filter(|t| t.to_ascii_lowercase().contains("cwe-"))
        .find_map(cwe_of)
}

/// A result's findings: one per location (one without), none unless it
/// is a failure.
fn findings_of(context: &Context, result: &Value) -> Result<Vec<ScannedFinding>, String> {
    if !result.is_object() {
        return Err("a result must be an object".into());
    }
    let kind = result.get("kind").and_then(Value::as_str).unwrap_or("fail");
    if kind != "fail" {
        return Ok(Vec::new());
    }
    let rule = context.rule(result);
    let id = rule_id(result)
        .or_else(|| rule.and_then(|r| r.get("id")).and_then(Value::as_str))
        .unwrap_or("");
    let message = message_of(result, rule)
        .or_else(|| {
            rule.and_then(|r| text_of(r, "/shortDescription/text"))
                .map(String::from)
        })
        .or_else(|| (!id.is_empty()).then(|| id.to_string()))
        .ok_or_else(|| "a result needs a message or a rule".to_string())?;
    let title = fit_line(
        message
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(&message),
        TITLE_CHARS,
    );
    if title.is_empty() {
        return Err("the result's message is blank".into());
    }

    let scored = security_severity(result.get("properties"))
        .or_else(|| security_severity(rule.and_then(|r| r.get("properties"))));
    let severity = match scored {
        Some((severity, _)) => severity,
        None => {
            let level = result
                .get("level")
                .and_then(Value::as_str)
                .or_else(|| context.overrides.get(id).map(String::as_str))
                .or_else(|| rule.and_then(|r| text_of(r, "/defaultConfiguration/level")))
                .unwrap_or("warning");
            level_severity(level)
        }
    };

    let mut description = message.clone();
    for pointer in ["/fullDescription/text", "/help/text"] {
        if let Some(text) = rule.and_then(|r| text_of(r, pointer)) {
            if !description.contains(text) {
                description.push_str("\n\n");
                description.push_str(text);
            }
        }
    }
    let mut references: Vec<String> = Vec::new();
    if let Some(uri) = rule.and_then(|r| text_of(r, "/helpUri")) {
        references.push(fit_line(uri, LOCATION_CHARS));
    }
    let mut tags: Vec<String> = strings(rule.and_then(|r| r.pointer("/properties/tags")))
        .into_iter()
        .map(|t| fit_line(t, TAG_CHARS).to_lowercase())
        .filter(|t| !t.is_empty())
        .take(MAX_LIST)
        .collect();
    tags.sort();
    tags.dedup();

    let cve = cve_in(id).or_else(|| cve_in(&message)).or_else(|| {
        rule.and_then(|r| text_of(r, "/shortDescription/text"))
            .and_then(cve_in)
    });
    let cwe = cwe_from(rule, result, &message);
    let suppressions: Vec<&Value> = result
        .get("suppressions")
        .and_then(Value::as_array)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    let suppressed = (!suppressions.is_empty()
        && suppressions
            .iter()
            .all(|s| s.get("state").and_then(Value::as_str) != Some("rejected")))
    .then(|| {
        let reasons: Vec<String> = suppressions
            .iter()
            .filter_map(|s| text_of(s, "/justification"))
            .map(String::from)
            .collect();
        if reasons.is_empty() {
            let kind = suppressions[0]
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("external");
            format!("suppressed in the SARIF report ({kind})")
        } else {
            reasons.join("; ")
        }
    })
    .map(|reason| fit_text(&reason, 2_000));

    let fingerprints = fingerprints_of(result);
    let locations: Vec<Option<String>> = match result.get("locations").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.iter().map(location_of).collect(),
        _ => vec![None],
    };
    let many = locations.len() > 1;
    let category = if cve.is_some() { "sca" } else { "sast" };
    let mut findings = Vec::with_capacity(locations.len());
    for location in locations {
        let location = location
            .map(|l| fit_line(&l, LOCATION_CHARS))
            .filter(|l| !l.is_empty());
        let mut identity = if fingerprints.is_empty() {
            format!(
                "rule={id}\x1flocation={}",
                location.as_deref().unwrap_or(&message)
            )
        } else {
            fingerprints.join("\x1f")
        };
        if many && !fingerprints.is_empty() {
            identity.push_str("\x1flocation=");
            identity.push_str(location.as_deref().unwrap_or(""));
        }
        let mut finding = ScannedFinding::new(&context.product, category);
        finding.title = title.clone();
        finding.description = fit_text(&description, DESCRIPTION_CHARS);
        finding.severity = severity;
        finding.location = location;
        finding.cve = cve.clone();
        finding.cwe = cwe.clone();
        finding.cvss_score = scored.and_then(|(_, score)| score);
        finding.references = references.clone();
        finding.tags = tags.clone();
        finding.identity = identity;
        finding.suppressed = suppressed.clone();
        findings.push(finding);
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<ScannedFinding>, Vec<ItemError>, Result<(), ParseError>) {
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let outcome = Sarif.parse(&mut text.as_bytes(), &mut |item| match item {
            Item::Finding(f) => findings.push(*f),
            Item::Error(e) => errors.push(e),
        });
        (findings, errors, outcome)
    }

    const RULES: &str = r#"{"name":"Scanner","rules":[
        {"id":"R1","defaultConfiguration":{"level":"note"},"properties":{"tags":["external/cwe/cwe-079"]}},
        {"id":"R2","properties":{"security-severity":"9.1"}},
        {"id":"R3","properties":{"security-severity":"MEDIUM"}}]}"#;

    #[test]
    fn severity_comes_from_security_severity_then_the_resolved_level() {
        let log = format!(
            r#"{{"version":"2.1.0","runs":[{{"tool":{{"driver":{RULES}}},"results":[
            {{"ruleId":"R1","message":{{"text":"one"}}}},
            {{"ruleId":"R1","level":"error","message":{{"text":"two"}}}},
            {{"ruleId":"R2","message":{{"text":"three"}}}},
            {{"ruleId":"R3","message":{{"text":"four"}}}},
            {{"ruleId":"R9","message":{{"text":"five"}}}}]}}]}}"#
        );
        let (findings, errors, outcome) = parse(&log);
        assert_eq!(outcome, Ok(()));
        assert!(errors.is_empty());
        let severities: Vec<Severity> = findings.iter().map(|f| f.severity).collect();
        assert_eq!(
            severities,
            [
                Severity::Low,
                Severity::High,
                Severity::Critical,
                Severity::Medium,
                Severity::Medium
            ]
        );
        assert_eq!(findings[0].cwe.as_deref(), Some("CWE-79"));
        assert_eq!(findings[2].cvss_score, Some(9.1));
        assert_eq!(findings[0].product, "Scanner");
    }

    #[test]
    fn results_before_the_tool_are_read_against_its_rules() {
        let log = format!(
            r#"{{"runs":[{{"results":[{{"ruleId":"R2","message":{{"text":"late"}}}}],"tool":{{"driver":{RULES}}}}}]}}"#
        );
        let (findings, _, outcome) = parse(&log);
        assert_eq!(outcome, Ok(()));
        assert_eq!(findings[0].severity, Severity::Critical);
    }

    #[test]
    fn one_finding_per_location_and_passes_dropped() {
        let log = r#"{"runs":[{"tool":{"driver":{"name":"T"}},"results":[
            {"ruleId":"A","message":{"text":"m"},"partialFingerprints":{"h":"x"},"locations":[
              {"physicalLocation":{"artifactLocation":{"uri":"a.c"},"region":{"startLine":3}}},
              {"physicalLocation":{"artifactLocation":{"uri":"b.c"}}}]},
            {"ruleId":"A","kind":"pass","message":{"text":"ok"}}]}]}"#;
        let (findings, _, _) = parse(log);
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].location.as_deref(), Some("a.c:3"));
        assert_ne!(findings[0].identity, findings[1].identity);
    }

    #[test]
    fn a_malformed_result_is_an_item_error_and_a_truncated_log_names_where() {
        let log = r#"{"runs":[{"tool":{"driver":{"name":"T"}},"results":[
            42, {"ruleId":"A","message":{"text":"m"}}]}]}"#;
        let (findings, errors, outcome) = parse(log);
        assert_eq!(outcome, Ok(()));
        assert_eq!(findings.len(), 1);
        assert_eq!(errors[0].at, "runs[0].results[0]");

        let (_, _, outcome) = parse(&log[..60]);
        let failure = outcome.expect_err("truncated");
        assert!(failure.at.starts_with("line 2, column"), "{failure:?}");
        let (_, _, outcome) = parse("");
        assert_eq!(
            outcome.map_err(|e| e.message),
            Err("the report is empty".into())
        );
    }

    #[test]
    fn suppressed_results_carry_the_justification() {
        let log = r#"{"runs":[{"tool":{"driver":{"name":"T"}},"results":[
            {"ruleId":"A","message":{"text":"m"},"suppressions":[{"kind":"inSource","justification":"test code"}]},
            {"ruleId":"B","message":{"text":"m"},"suppressions":[{"kind":"external","state":"rejected"}]},
            {"ruleId":"C","message":{"text":"m"},"suppressions":[]}]}]}"#;
        let (findings, _, _) = parse(log);
        let suppressed: Vec<Option<&str>> =
            findings.iter().map(|f| f.suppressed.as_deref()).collect();
        assert_eq!(suppressed, [Some("test code"), None, None]);
    }
}
