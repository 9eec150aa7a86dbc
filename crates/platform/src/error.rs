//! One table maps every public error to its code and HTTP status. Services answer with
//! `ApiError`; the gateway turns the same code into GraphQL `extensions.code`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadUserInput,
    Conflict,
    RateLimited,
    InsufficientStock,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::BadUserInput => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InsufficientStock => StatusCode::CONFLICT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code of an HTTP client error that came without one.
    pub fn for_status(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::CONFLICT => ErrorCode::Conflict,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
            s if s.is_client_error() => ErrorCode::BadUserInput,
            _ => ErrorCode::Internal,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::InsufficientStock => "INSUFFICIENT_STOCK",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// The error body every service answers with: `{"code": "...", "message": "..."}`, and
/// `"retryAfter": seconds` when it is worth trying again later.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(
        default,
        rename = "retryAfter",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after: Option<u64>,
    /// BAD_USER_INPUT for a list: every row that is wrong, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<RowProblem>>,
}

/// One row of a list that cannot be taken, by its index in the list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RowProblem {
    pub index: usize,
    pub message: String,
}

/// A public error: what the client sees. Internal causes are logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Public { code: ErrorCode, message: String },
    /// RATE_LIMITED, and when to try again.
    #[error("{message}")]
    Throttled {
        message: String,
        retry_after: std::time::Duration,
    },
    /// BAD_USER_INPUT naming each wrong row of a list (nothing of it was taken).
    #[error("{message}")]
    InvalidRows {
        message: String,
        rows: Vec<RowProblem>,
    },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Public {
            code,
            message: message.into(),
        }
    }
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadUserInput, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// Too many attempts: try again after `retry_after`.
    pub fn throttled(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        ApiError::Throttled {
            message: message.into(),
            retry_after,
        }
    }

    /// BAD_USER_INPUT for the wrong `rows` of `list` (a few named in the message, all in
    /// the body's `rows`).
    pub fn invalid_rows(list: &str, rows: Vec<RowProblem>) -> Self {
        const NAMED: usize = 5;
        let mut message = match rows.len() {
            1 => format!("1 row of {list} is invalid: "),
            n => format!("{n} rows of {list} are invalid: "),
        };
        let named: Vec<String> = rows
            .iter()
            .take(NAMED)
            .map(|row| format!("{list}[{}]: {}", row.index, row.message))
            .collect();
        message.push_str(&named.join("; "));
        if rows.len() > NAMED {
            message.push_str(&format!("; and {} more", rows.len() - NAMED));
        }
        ApiError::InvalidRows { message, rows }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::InvalidRows { .. } => ErrorCode::BadUserInput,
            ApiError::Public { code, .. } => *code,
            ApiError::Throttled { .. } => ErrorCode::RateLimited,
            ApiError::Unexpected(_) => ErrorCode::Internal,
        }
    }

    /// The body a client may see: internal causes are replaced by a generic message.
    pub fn body(&self) -> ErrorBody {
        match self {
            ApiError::Public { code, message } => ErrorBody {
                code: *code,
                message: message.clone(),
                retry_after: None,
                rows: None,
            },
            ApiError::InvalidRows { message, rows } => ErrorBody {
                code: ErrorCode::BadUserInput,
                message: message.clone(),
                retry_after: None,
                rows: Some(rows.clone()),
            },
            ApiError::Throttled {
                message,
                retry_after,
            } => ErrorBody {
                code: ErrorCode::RateLimited,
                message: message.clone(),
                // Whole seconds, rounded up: never an invitation to come back too early.
                retry_after: Some(
                    retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
                ),
                rows: None,
            },
            ApiError::Unexpected(_) => ErrorBody {
                code: ErrorCode::Internal,
                message: "internal error".to_owned(),
                retry_after: None,
                rows: None,
            },
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Unexpected(anyhow::Error::new(e))
    }
}

impl From<ErrorBody> for ApiError {
    fn from(b: ErrorBody) -> Self {
        if let (Some(rows), ErrorCode::BadUserInput) = (b.rows, b.code) {
            return ApiError::InvalidRows {
                message: b.message,
                rows,
            };
        }
        match b.retry_after {
            Some(seconds) if b.code == ErrorCode::RateLimited => ApiError::Throttled {
                message: b.message,
                retry_after: std::time::Duration::from_secs(seconds),
            },
            _ => ApiError::Public {
                code: b.code,
                message: b.message,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Unexpected(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let body = self.body();
        let retry_after = body.retry_after;
        let mut response = (body.code.status(), Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_are_not_shown() {
        let e = ApiError::Unexpected(anyhow::anyhow!("password=hunter2 in connection string"));
        assert_eq!(e.body().message, "internal error");
        assert_eq!(e.body().code, ErrorCode::Internal);
    }

    #[test]
    fn codes_serialize_as_contract_names() {
        for code in [
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::BadUserInput,
            ErrorCode::Conflict,
            ErrorCode::RateLimited,
            ErrorCode::InsufficientStock,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
    }
}
