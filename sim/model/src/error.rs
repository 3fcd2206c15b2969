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
    /// A request the server refused before reading it as a product request (too large,
    /// unreadable, too slow, or one that broke a handler); carries the HTTP status (400,
    /// 408, 413, 414, 431, 500).
    Transport(u16),
}

/// What failed, in the product's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct SimError {
    /// The kind, which picks the status per product.
    pub kind: ErrorKind,
    /// The product's error code (Dataverse hex code, Entra `error`, DIPV code, ...), or "".
    pub code: String,
    /// The product's message.
    pub message: String,
}

impl SimError {
    /// An error of this kind with the product's code and message.
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        SimError {
            kind,
            code: code.into(),
            message: message.into(),
        }
    }
    /// A 400 without a product code.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, "", message)
    }
    /// A 404 without a product code.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, "", message)
    }
    /// Not allowed in the current state, without a product code.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, "", message)
    }
    /// A 403 without a product code.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, "", message)
    }
    /// The same error with the product's code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = code.into();
        self
    }
}

/// What every model operation answers.
pub type SimResult<T> = Result<T, SimError>;
