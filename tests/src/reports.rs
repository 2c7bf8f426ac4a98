//! Generated scanner reports, for the tests and the bench that need more
//! than the corpus holds.

use std::fmt::Write;

/// A SARIF 2.1.0 report of `results` distinct results (each its own
/// finding: its own `partialFingerprints`) of the tool `tool`, spread over
/// `files` source files and 50 rules whose `security-severity` covers
/// every band. About 330 bytes per result.
pub fn sarif(tool: &str, results: usize, files: usize) -> Vec<u8> {
    let files = files.max(1);
    let mut out = String::with_capacity(results * 340 + 16 * 1024);
    out.push_str(r#"{"version":"2.1.0","$schema":"https://json.schemastore.org/sarif-2.1.0.json","runs":[{"tool":{"driver":{"name":""#);
    out.push_str(tool);
    out.push_str(r#"","rules":["#);
    const RULES: usize = 50;
    for rule in 0..RULES {
        if rule > 0 {
            out.push(',');
        }
        // 0.0 … 9.8: info, low, medium, high and critical rules alike.
        let score = (rule % 50) as f64 / 5.0;
        let _ = write!(
            out,
            r#"{{"id":"GEN{rule:03}","shortDescription":{{"text":"Generated rule {rule}"}},"properties":{{"security-severity":"{score:.1}","tags":["security","external/cwe/cwe-{cwe}"]}}}}"#,
            cwe = 20 + rule
        );
    }
    out.push_str(r#"]}},"results":["#);
    for i in 0..results {
        if i > 0 {
            out.push(',');
        }
        let rule = i % RULES;
        let file = i % files;
        let line = i / files + 1;
        let _ = write!(
            out,
            r#"{{"ruleId":"GEN{rule:03}","message":{{"text":"Generated finding {i} in file {file}"}},"locations":[{{"physicalLocation":{{"artifactLocation":{{"uri":"src/module{file:04}/file{file:04}.rs"}},"region":{{"startLine":{line}}}}}}}],"partialFingerprints":{{"primaryLocationLineHash":"{i:016x}"}}}}"#
        );
    }
    out.push_str("]}]}\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_report_is_json_with_every_result() {
        let report: serde_json::Value =
            serde_json::from_slice(&super::sarif("Gen", 25, 4)).unwrap();
        let run = &report["runs"][0];
        assert_eq!(run["results"].as_array().unwrap().len(), 25);
        assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 50);
    }
}
