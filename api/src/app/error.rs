//! The application layer's one error type: a variant per error code that a
//! use case can end in. The adapters map it once each (`rest::error` to the
//! envelope and an HTTP status, `graphql::error` to `extensions.code`);
//! nothing here knows HTTP.
//!
//! Store, read-model and domain errors convert with `From`, so `?` works in
//! every use case. A cause that says the database could not be reached is
//! [`Error::Unavailable`] (a retry may succeed); any other internal cause is
//! logged where it is converted and becomes a bare [`Error::Internal`].

use std::fmt::Display;

use palisade_domain::finding::FindingError;
use palisade_domain::tenant::TenantError;
use palisade_domain::FieldProblem;
use palisade_infra::CommandError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `validation_error`: one item per offending field.
    #[error("{}", validation_message(.0))]
    Validation(Vec<FieldProblem>),
    /// `bad_request`: the request cannot be read at all.
    #[error("{0}")]
    BadRequest(String),
    /// `missing_api_key`: no credential was presented.
    #[error("{0}")]
    MissingApiKey(String),
    /// `invalid_api_key`: unknown, revoked or expired.
    #[error("The API key is not valid (unknown, revoked or expired)")]
    InvalidApiKey,
    /// `forbidden`: the credential may not do this (a missing scope, …).
    #[error("{0}")]
    Forbidden(String),
    /// `tenant_suspended`.
    #[error("This tenant is suspended")]
    TenantSuspended,
    /// `not_found`, naming what.
    #[error("{0}")]
    NotFound(String),
    /// `conflict`: changed concurrently, or in progress; a retry may pass.
    #[error("{0}")]
    Conflict(String),
    /// `invalid_transition`: the aggregate's state does not allow it.
    #[error("{0}")]
    InvalidTransition(String),
    /// `precondition_failed`: the expected version is not the current one.
    #[error("{0}")]
    PreconditionFailed(String),
    /// `quota_exceeded`: this month's quota is spent.
    #[error("{0}")]
    QuotaExceeded(String),
    /// `rate_limit_exceeded`, and when a retry may pass.
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    /// `too_many_streams`: a stream cap is reached.
    #[error("{0}")]
    TooManyStreams(String),
    /// `consistency_timeout`: a strong read's views did not catch up.
    #[error("{0}")]
    ConsistencyTimeout(String),
    /// `unavailable`, with a message: recorded but not yet in effect.
    #[error("{0}")]
    NotInEffect(String),
    /// `unavailable`: the database does not answer; retry shortly.
    #[error("The database does not answer; retry shortly")]
    Unavailable,
    /// `key_disabled` (409).
    #[error("{0}")]
    KeyDisabled(String),
    /// `key_pending_deletion` (409).
    #[error("{0}")]
    KeyPendingDeletion(String),
    /// `key_destroyed` (410).
    #[error("{0}")]
    KeyDestroyed(String),
    /// `key_version_too_old` (422): below the key's minimum decryption version.
    #[error("{0}")]
    KeyVersionTooOld(String),
    /// `key_version_unknown` (422): above the latest version.
    #[error("{0}")]
    KeyVersionUnknown(String),
    /// `decryption_failed` (422): tampered, another key's, or another
    /// context; one code and no detail, so the answer is no oracle.
    #[error("The ciphertext does not decrypt with this key and context")]
    DecryptionFailed,
    /// `unsupported_operation` (422): the key's algorithm cannot do it.
    #[error("{0}")]
    UnsupportedOperation(String),
    /// `cas_mismatch` (409): a check-and-set named another version.
    #[error("{message}")]
    CasMismatch { message: String, current: u32 },
    /// `cas_required` (422): the secret takes writes with `cas` only.
    #[error("{message}")]
    CasRequired { message: String, current: u32 },
    /// `not_found` (404) for a secret version that is deleted or
    /// destroyed, naming its state (and when it was deleted).
    #[error("{message}")]
    VersionGone {
        message: String,
        state: String,
        deletion_time: Option<String>,
    },
    /// `payload_too_large` (413): a value over its limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// `self_review` (403): a requester reviewed their own access request.
    #[error("{0}")]
    SelfReview(String),
    /// `no_policy` (422): no enabled access policy covers the resource type.
    #[error("{0}")]
    NoPolicy(String),
    /// `unsafe_webhook_url` (422): the URL points at, or resolves to, an
    /// address webhooks may not reach.
    #[error("{0}")]
    UnsafeWebhookUrl(String),
    /// `internal_error`: the cause was logged where it happened.
    #[error("An internal error occurred; quote the request id when reporting it")]
    Internal,
}

fn validation_message(problems: &[FieldProblem]) -> String {
    match problems {
        [one] => format!("{}: {}", one.field, one.message),
        _ => "The request has invalid fields".to_string(),
    }
}

/// The result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The one code a client sees for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "validation_error",
            Error::BadRequest(_) => "bad_request",
            Error::MissingApiKey(_) => "missing_api_key",
            Error::InvalidApiKey => "invalid_api_key",
            Error::Forbidden(_) => "forbidden",
            Error::TenantSuspended => "tenant_suspended",
            Error::NotFound(_) => "not_found",
            Error::Conflict(_) => "conflict",
            Error::InvalidTransition(_) => "invalid_transition",
            Error::PreconditionFailed(_) => "precondition_failed",
            Error::QuotaExceeded(_) => "quota_exceeded",
            Error::RateLimited { .. } => "rate_limit_exceeded",
            Error::TooManyStreams(_) => "too_many_streams",
            Error::ConsistencyTimeout(_) => "consistency_timeout",
            Error::NotInEffect(_) | Error::Unavailable => "unavailable",
            Error::KeyDisabled(_) => "key_disabled",
            Error::KeyPendingDeletion(_) => "key_pending_deletion",
            Error::KeyDestroyed(_) => "key_destroyed",
            Error::KeyVersionTooOld(_) => "key_version_too_old",
            Error::KeyVersionUnknown(_) => "key_version_unknown",
            Error::DecryptionFailed => "decryption_failed",
            Error::UnsupportedOperation(_) => "unsupported_operation",
            Error::CasMismatch { .. } => "cas_mismatch",
            Error::CasRequired { .. } => "cas_required",
            Error::VersionGone { .. } => "not_found",
            Error::PayloadTooLarge(_) => "payload_too_large",
            Error::SelfReview(_) => "self_review",
            Error::NoPolicy(_) => "no_policy",
            Error::UnsafeWebhookUrl(_) => "unsafe_webhook_url",
            Error::Internal => "internal_error",
        }
    }

    /// Seconds until a retry may pass, where the error says.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after, .. } => Some(*retry_after),
            Error::TooManyStreams(_) | Error::Unavailable => Some(1),
            _ => None,
        }
    }

    /// The details a client sees: the fields at fault of a validation
    /// error, the current version of a failed check-and-set, the state of
    /// a secret version that is gone.
    pub fn problems(&self) -> Vec<FieldProblem> {
        match self {
            Error::Validation(problems) => problems.clone(),
            Error::CasMismatch { current, .. } | Error::CasRequired { current, .. } => {
                vec![FieldProblem::new(
                    "cas",
                    format!("the current version is {current}"),
                )]
            }
            Error::VersionGone {
                state,
                deletion_time,
                ..
            } => {
                let mut details = vec![FieldProblem::new("state", state.clone())];
                if let Some(at) = deletion_time {
                    details.push(FieldProblem::new("deletion_time", at.clone()));
                }
                details
            }
            _ => Vec::new(),
        }
    }

    /// A validation error about one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldProblem::new(field, message)])
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict(message.into())
    }

    /// An internal failure: logged here; the client learns nothing internal.
    /// A cause that says the database could not be reached (see
    /// [`palisade_infra::store::is_transient_cause`]) is
    /// [`Error::Unavailable`] instead.
    pub fn internal<E: Display + 'static>(cause: E) -> Self {
        if palisade_infra::store::is_transient_cause(&cause) {
            return Self::unavailable(cause);
        }
        tracing::error!(error = %cause, "internal error");
        Error::Internal
    }

    /// [`Error::Unavailable`], the cause logged.
    pub fn unavailable(cause: impl Display) -> Self {
        tracing::warn!(error = %cause, "the database could not be reached");
        Error::Unavailable
    }

    /// A command's failure other than the aggregate's own refusal.
    pub(super) fn command<E: std::error::Error>(error: CommandError<E>, what: &str) -> Self {
        match error {
            CommandError::Rejected(error) => Error::internal(error.to_string()),
            CommandError::Conflict => {
                Error::conflict(format!("The {what} was changed concurrently; retry"))
            }
            CommandError::VersionMismatch { current } => Error::PreconditionFailed(format!(
                "If-Match does not match; the {what} is at version \"{current}\""
            )),
            CommandError::Store(cause) => Error::internal(cause),
            CommandError::Unavailable(cause) => Error::unavailable(cause),
        }
    }
}

/// Causes that are internal (or say the database is away): logged, then
/// [`Error::Internal`] or [`Error::Unavailable`].
macro_rules! internal_causes {
    ($($cause:ty),* $(,)?) => {$(
        impl From<$cause> for Error {
            fn from(error: $cause) -> Self {
                Error::internal(error)
            }
        }
    )*};
}

internal_causes!(
    sqlx::Error,
    palisade_infra::StoreError,
    palisade_projections::StoreError,
    palisade_projections::ProjectionError,
    palisade_infra::projection::RunnerError,
);

impl From<FieldProblem> for Error {
    fn from(problem: FieldProblem) -> Self {
        Error::Validation(vec![problem])
    }
}

impl From<FindingError> for Error {
    fn from(error: FindingError) -> Self {
        match error {
            FindingError::NotFound => Error::not_found("Finding not found"),
            FindingError::AlreadyExists => {
                Error::conflict("The finding was changed concurrently; retry")
            }
            error @ FindingError::InvalidTransition { .. } => {
                let text = error.to_string();
                let text = text
                    .strip_prefix("cannot ")
                    .map(str::to_string)
                    .unwrap_or(text);
                Error::InvalidTransition(format!("Cannot {text}"))
            }
            FindingError::Invalid(problems) => Error::Validation(problems),
        }
    }
}

impl From<CommandError<FindingError>> for Error {
    fn from(error: CommandError<FindingError>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            other => Error::command(other, "finding"),
        }
    }
}

impl From<TenantError> for Error {
    fn from(error: TenantError) -> Self {
        match error {
            TenantError::NotFound => Error::not_found("Tenant not found"),
            TenantError::UnknownApiKey => Error::not_found("API key not found"),
            TenantError::AlreadyExists | TenantError::ApiKeyExists => {
                Error::conflict("The tenant was changed concurrently; retry")
            }
            TenantError::InvalidName(message) => Error::invalid("name", message),
            TenantError::Invalid { field, message } => Error::invalid(field, message),
            TenantError::Suspended => Error::TenantSuspended,
        }
    }
}

impl From<CommandError<TenantError>> for Error {
    fn from(error: CommandError<TenantError>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            other => Error::command(other, "tenant"),
        }
    }
}
