//! Errors as GraphQL shows them: the message, `extensions.code` (the REST
//! error codes) and, for validation errors, `extensions.details`. An
//! [`app::Error`] is mapped here once; the few refusals of the GraphQL
//! endpoint itself (a batch, too many root fields) come as the REST
//! [`ApiError`] they also are over HTTP.

use async_graphql::ErrorExtensions;

use crate::app;
use crate::rest::{ApiError, FieldError};

/// An application error as a GraphQL one.
pub(crate) fn graphql_error(error: app::Error) -> async_graphql::Error {
    let details = error.problems().iter().map(FieldError::from).collect();
    coded(error.code(), error.to_string(), details)
}

/// A filter's validation error with its fields named as GraphQL names the
/// arguments (`min_risk` → `minRisk`): the use cases name them as REST does.
pub(crate) fn argument_names(error: app::Error) -> app::Error {
    match error {
        app::Error::Validation(problems) => app::Error::Validation(
            problems
                .into_iter()
                .map(|mut problem| {
                    problem.field = camel_case(&problem.field);
                    problem
                })
                .collect(),
        ),
        other => other,
    }
}

fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// A refusal of the HTTP layer as a GraphQL error.
pub(crate) fn http_error(error: ApiError) -> async_graphql::Error {
    coded(error.code, error.message, error.details)
}

fn coded(code: &'static str, message: String, details: Vec<FieldError>) -> async_graphql::Error {
    let details: Vec<serde_json::Value> = details
        .iter()
        .map(|d| serde_json::json!({"field": d.field, "message": d.message}))
        .collect();
    async_graphql::Error::new(message).extend_with(|_, extensions| {
        extensions.set("code", code);
        if !details.is_empty() {
            if let Ok(value) =
                async_graphql::Value::from_json(serde_json::Value::Array(details.clone()))
            {
                extensions.set("details", value);
            }
        }
    })
}

/// The graphql-transport-ws close code for a refused key: 4401 when the
/// key is not valid, 4403 when its tenant is suspended.
pub(crate) fn close_code(error: &app::Error) -> Option<u16> {
    match error {
        app::Error::MissingApiKey(_) | app::Error::InvalidApiKey => Some(4401),
        app::Error::Forbidden(_) | app::Error::TenantSuspended => Some(4403),
        _ => None,
    }
}

/// `?` on a use case's result, in a resolver.
pub(crate) trait GraphqlResult<T> {
    /// The result, its error as GraphQL shows it ([`graphql_error`]).
    fn graphql(self) -> async_graphql::Result<T>;
}

impl<T> GraphqlResult<T> for app::Result<T> {
    fn graphql(self) -> async_graphql::Result<T> {
        self.map_err(graphql_error)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn argument_names_are_camel_case() {
        assert_eq!(super::camel_case("event_type"), "eventType");
        assert_eq!(super::camel_case("min_risk"), "minRisk");
        assert_eq!(super::camel_case("search"), "search");
    }
}
