//! The one rule for free text that a command (or a query filter) carries:
//! trimmed; required text not empty; at most a field's number of
//! characters; no control characters (C0, DEL and C1), except line feed,
//! carriage return (CRLF line ends, as browsers post them) and tab in
//! long-form text (descriptions, comment bodies, reasons).
//!
//! Every text field of every command goes through [`required_text`] or
//! [`optional_text`] with its [`TextLimit`] from [`limits`], so the table
//! of limits is this module. Pure: no I/O, no clock.

use serde::{Deserialize, Serialize};

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// How long a text field may be, and whether it may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimit {
    /// Most characters (Unicode scalar values) after trimming.
    pub max_chars: usize,
    /// Long-form text: line feeds, carriage returns and tabs allowed.
    pub multiline: bool,
}

impl TextLimit {
    /// One line of at most `max_chars`: no control character at all.
    pub const fn line(max_chars: usize) -> Self {
        Self {
            max_chars,
            multiline: false,
        }
    }

    /// Long-form text of at most `max_chars`: `\n`, `\r` and `\t` allowed.
    pub const fn multiline(max_chars: usize) -> Self {
        Self {
            max_chars,
            multiline: true,
        }
    }

    fn allows(&self, c: char) -> bool {
        !c.is_control() || (self.multiline && matches!(c, '\n' | '\r' | '\t'))
    }
}

/// Every text field's limit (docs/security.md shows this table).
pub mod limits {
    use super::TextLimit;

    // A finding as ingested.
    pub const PRODUCT: TextLimit = TextLimit::line(100);
    pub const CATEGORY: TextLimit = TextLimit::line(100);
    pub const TITLE: TextLimit = TextLimit::line(500);
    pub const DESCRIPTION: TextLimit = TextLimit::multiline(20_000);
    pub const ASSET_IDENTIFIER: TextLimit = TextLimit::line(500);
    pub const CVE: TextLimit = TextLimit::line(50);
    pub const CWE: TextLimit = TextLimit::line(20);
    pub const LOCATION: TextLimit = TextLimit::line(2_000);
    /// Each of `references` (at most [`MAX_LIST_ITEMS`](super::MAX_LIST_ITEMS)).
    pub const REFERENCE: TextLimit = TextLimit::line(2_000);
    /// Each of `tags` (at most [`MAX_LIST_ITEMS`](super::MAX_LIST_ITEMS)).
    pub const TAG: TextLimit = TextLimit::line(100);
    pub const FINGERPRINT: TextLimit = TextLimit::line(200);

    // Triage.
    /// Dismiss, accept risk, reopen, change severity; a tenant's suspension.
    pub const REASON: TextLimit = TextLimit::multiline(2_000);
    pub const ASSIGNEE: TextLimit = TextLimit::line(200);
    pub const TICKET_SYSTEM: TextLimit = TextLimit::line(100);
    pub const TICKET_ID: TextLimit = TextLimit::line(200);
    pub const COMMENT_BODY: TextLimit = TextLimit::multiline(10_000);

    // Tenants and API keys.
    pub const TENANT_NAME: TextLimit = TextLimit::line(100);
    pub const API_KEY_NAME: TextLimit = TextLimit::line(100);
    pub const PRINCIPAL: TextLimit = TextLimit::line(200);

    // A KMS key.
    pub const KEY_NAME: TextLimit = TextLimit::line(128);
    pub const KEY_DESCRIPTION: TextLimit = TextLimit::multiline(2_000);
    /// The application an operation is counted under (`X-Palisade-Application`).
    pub const APPLICATION: TextLimit = TextLimit::line(200);
    /// A KMS alert rule's or migration plan's name.
    pub const KMS_NAME: TextLimit = TextLimit::line(100);

    // Just-in-time access.
    /// A policy's name.
    pub const POLICY_NAME: TextLimit = TextLimit::line(100);
    /// A resource type (`database`), a permission (`read`), a principal.
    pub const ACCESS_TERM: TextLimit = TextLimit::line(64);
    /// What a request is for (`db-prod-1`, an ARN, a path).
    pub const RESOURCE_ID: TextLimit = TextLimit::line(500);
    pub const JUSTIFICATION: TextLimit = TextLimit::multiline(2_000);
    pub const TICKET_REFERENCE: TextLimit = TextLimit::line(200);

    // The secret store.
    /// A `custom_metadata` name and value (Vault's limits).
    pub const SECRET_METADATA_KEY: TextLimit = TextLimit::line(128);
    pub const SECRET_METADATA_VALUE: TextLimit = TextLimit::line(512);
    /// Where a leak was seen (a URL, a repository path, a ticket).
    pub const LEAK_SOURCE: TextLimit = TextLimit::line(200);
    pub const LEAK_LOCATION: TextLimit = TextLimit::line(2_000);

    // Webhooks.
    /// What an endpoint is for (its URL's limit is `webhook::MAX_URL_CHARS`).
    pub const WEBHOOK_DESCRIPTION: TextLimit = TextLimit::line(500);

    /// A free-text query filter (`search`, `tag`, `product`, …, and each
    /// value of a multi-value filter).
    pub const FILTER: TextLimit = TextLimit::line(200);
}

/// Most items in a list field of a command (`references`, `tags`), and most
/// distinct values of a multi-value query filter.
pub const MAX_LIST_ITEMS: usize = 50;

/// `value` trimmed, when it is not empty and keeps to `limit`.
pub fn required_text(field: &str, value: &str, limit: TextLimit) -> Result<String, FieldProblem> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(FieldProblem::new(field, "is required"));
    }
    // Counting stops one past the limit: a huge value costs no more.
    if trimmed.chars().take(limit.max_chars + 1).count() > limit.max_chars {
        return Err(FieldProblem::new(
            field,
            format!("must be at most {} characters", limit.max_chars),
        ));
    }
    if !trimmed.chars().all(|c| limit.allows(c)) {
        return Err(FieldProblem::new(
            field,
            if limit.multiline {
                "must not contain control characters other than line feed, carriage return and tab"
            } else {
                "must not contain control characters"
            },
        ));
    }
    Ok(trimmed.to_string())
}

/// None when `value` is absent or blank; otherwise as [`required_text`].
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    limit: TextLimit,
) -> Result<Option<String>, FieldProblem> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(text) => required_text(field, text, limit).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: TextLimit = TextLimit::line(5);
    const LONG: TextLimit = TextLimit::multiline(5);

    #[test]
    fn given_text_within_the_limit_when_checked_then_it_is_kept_trimmed() {
        assert_eq!(required_text("f", "  abc \n", LINE), Ok("abc".into()));
        assert_eq!(required_text("f", "ééééé", LINE), Ok("ééééé".into()));
        assert_eq!(optional_text("f", Some(" a "), LINE), Ok(Some("a".into())));
    }

    #[test]
    fn given_blank_text_when_required_then_it_is_refused_and_when_optional_then_absent() {
        assert_eq!(
            required_text("reason", " \t ", LINE),
            Err(FieldProblem::new("reason", "is required"))
        );
        assert_eq!(optional_text("reason", Some("  "), LINE), Ok(None));
        assert_eq!(optional_text("reason", None, LINE), Ok(None));
    }

    #[test]
    fn given_text_over_the_limit_when_checked_then_the_field_and_limit_are_named() {
        let refused = FieldProblem::new("title", "must be at most 5 characters");
        assert_eq!(required_text("title", "abcdef", LINE), Err(refused.clone()));
        assert_eq!(
            optional_text("title", Some(&"x".repeat(900_000)), LINE),
            Err(refused)
        );
    }

    #[test]
    fn given_a_control_character_when_checked_then_it_is_refused() {
        for c in ['\0', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}'] {
            let text = format!("a{c}b");
            assert_eq!(
                required_text("body", &text, LONG).map_err(|p| p.field),
                Err("body".into()),
                "{c:?} in long-form text"
            );
            assert!(
                required_text("name", &text, LINE).is_err(),
                "{c:?} in a line"
            );
        }
    }

    #[test]
    fn given_line_feeds_and_tabs_when_checked_then_only_long_form_text_keeps_them() {
        assert_eq!(required_text("body", "a\nb\tc", LONG), Ok("a\nb\tc".into()));
        assert_eq!(required_text("body", "a\r\nb", LONG), Ok("a\r\nb".into()));
        assert!(required_text("name", "a\r\nb", LINE).is_err());
        assert_eq!(
            required_text("name", "a\nb", LINE),
            Err(FieldProblem::new(
                "name",
                "must not contain control characters"
            ))
        );
    }
}
