//! The one error type of the model. It carries what failed in the product's own words (the
//! code and message the real service sends); the protocol layer picks status and envelope.

use serde::Serialize;

/// What kind of failure this is; the protocol layer maps it to a status code per product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorKind {
    /// 400: the request is malformed or names something invalid.
    BadRequest,
    /// 401: no token, a bad token, or one for another resource.
    Unauthorized,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 404: the record or resource does not exist.
    NotFound,
    /// 405: the verb is not allowed on this resource.
    MethodNotAllowed,
    /// 409 (or the product's equivalent): the action is not allowed in the current state.
    Conflict,
    /// 412: a key already exists, or an etag does not match.
    PreconditionFailed,
    /// 412 for a duplicate key on create.
    Duplicate,
    /// 429 with Retry-After seconds.
    Throttled(i64),
    /// 500: a write failed inside the product (F&O sends its Infolog this way).
    WriteFailed,
    /// 501: the simulator does not implement this part of the product.
    NotImplemented,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct SimError {
    pub kind: ErrorKind,
    /// The product's error code (Dataverse hex code, Entra `error`, DIPV code, ...), or "".
    pub code: String,
    pub message: String,
}

impl SimError {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        SimError {
            kind,
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, "", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, "", message)
    }
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = code.into();
        self
    }
}

pub type SimResult<T> = Result<T, SimError>;
