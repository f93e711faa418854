//! The one error type of the HTTP API: every refusal is a 4xx with an [`ErrorBody`] naming
//! the reason; anything else is a 500 whose cause is logged, never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ingrid_client_sdk::api::ErrorBody;
use ingrid_client_sdk::{SignatureError, UpdateError};
use ingrid_protocol::ProtocolError;
use ingrid_protocol::error::Kind;

/// A refused or failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{message}")]
    BadRequest {
        /// Reason code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The resource does not exist for this caller (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state: stale version, wrong status (409).
    #[error("{message}")]
    Conflict {
        /// Reason code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// Well-formed but refused: bad signature, invalid state, against policy (422).
    #[error("{message}")]
    Unprocessable {
        /// Reason code.
        code: &'static str,
        /// Explanation.
        message: String,
    },
    /// The route exists but not with this method (405).
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// Too many requests (429): a rate or a cap of requests in flight; the client may try
    /// again after `retry_after` seconds (sent as `Retry-After`).
    #[error("{message}")]
    TooManyRequests {
        /// Reason code.
        code: &'static str,
        /// Explanation.
        message: String,
        /// Seconds to wait before trying again.
        retry_after: u64,
    },
    /// A bug or an unavailable dependency (500); the cause is logged only.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }
    /// A 409 with `code`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict { code, message: message.into() }
    }
    /// A 429 with `code`, to try again after `retry_after` seconds.
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        Self::TooManyRequests { code, message: message.into(), retry_after }
    }
    /// A 422 with `code`.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable { code, message: message.into() }
    }

    /// The status code and body of this error.
    pub fn parts(&self) -> (StatusCode, ErrorBody) {
        let (status, code) = match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, *code),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, *code),
            Self::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, *code),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, *code),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = match self {
            Self::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        (status, ErrorBody { error: code.to_string(), message })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        let (status, body) = self.parts();
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::TooManyRequests { retry_after, .. } = self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after.max(1).into());
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// The one place a protocol refusal becomes an HTTP answer: its kind decides the status.
impl From<ProtocolError> for ApiError {
    fn from(e: ProtocolError) -> Self {
        match e.kind {
            Kind::Invalid => Self::Unprocessable { code: e.code, message: e.message },
            Kind::Conflict => Self::Conflict { code: e.code, message: e.message },
            Kind::NotFound => Self::NotFound(e.message),
        }
    }
}

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        ProtocolError::from(e).into()
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        ProtocolError::from(e).into()
    }
}
