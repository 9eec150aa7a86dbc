//! Service errors become GraphQL errors that always carry `extensions.code`.

use async_graphql::{ErrorExtensions, Response, ServerError};
use herald_platform::{ApiError, ErrorCode};

/// Converts a service error; internal causes are logged here and never shown.
pub fn to_graphql(err: ApiError) -> async_graphql::Error {
    if let ApiError::Unexpected(cause) = &err {
        tracing::error!(error = format!("{cause:#}"), "resolver failed");
    }
    let body = err.body();
    async_graphql::Error::new(body.message).extend_with(|_, ext| {
        ext.set("code", body.code.as_str());
        if let Some(seconds) = body.retry_after {
            ext.set("retryAfter", seconds);
        }
        if let Some(rows) = &body.rows {
            let rows: Vec<async_graphql::Value> = rows
                .iter()
                .map(|row| {
                    let mut fields = async_graphql::indexmap::IndexMap::new();
                    fields.insert(
                        async_graphql::Name::new("index"),
                        async_graphql::Value::from(row.index as u64),
                    );
                    fields.insert(
                        async_graphql::Name::new("message"),
                        async_graphql::Value::from(row.message.clone()),
                    );
                    async_graphql::Value::Object(fields)
                })
                .collect();
            ext.set("rows", rows);
        }
    })
}

pub type GqlResult<T> = Result<T, async_graphql::Error>;

pub trait IntoGql<T> {
    fn gql(self) -> GqlResult<T>;
}

impl<T> IntoGql<T> for Result<T, ApiError> {
    fn gql(self) -> GqlResult<T> {
        self.map_err(to_graphql)
    }
}

pub fn gql_error(code: ErrorCode, message: impl Into<String>) -> async_graphql::Error {
    to_graphql(ApiError::new(code, message))
}

/// Errors raised before any resolver ran (syntax, validation, limits, variables) have no
/// code of their own: they are the client's mistake. Every answer passes here, over HTTP
/// and WebSocket alike ([`crate::operations`]).
pub fn ensure_codes(response: &mut Response) {
    for error in &mut response.errors {
        ensure_code(error);
    }
}

fn ensure_code(error: &mut ServerError) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if !has_code {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", ErrorCode::BadUserInput.as_str());
    }
}
