//! Status codes returned by every fallible export. The TS side keeps the same table in
//! ts/errors.ts; test/abi.test.ts proves they agree through `eg_enum_name`.

use edgegrad_nn::ErrorKind;

#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    InvalidArgument = 1,
    ShapeMismatch = 2,
    DisposedHandle = 3,
    OutOfMemory = 4,
    InvalidState = 5,
    NonFinite = 6,
    Internal = 7,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Ok,
        Status::InvalidArgument,
        Status::ShapeMismatch,
        Status::DisposedHandle,
        Status::OutOfMemory,
        Status::InvalidState,
        Status::NonFinite,
        Status::Internal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::InvalidArgument => "invalidArgument",
            Status::ShapeMismatch => "shapeMismatch",
            Status::DisposedHandle => "disposedHandle",
            Status::OutOfMemory => "outOfMemory",
            Status::InvalidState => "invalidState",
            Status::NonFinite => "nonFinite",
            Status::Internal => "internal",
        }
    }
}

impl From<ErrorKind> for Status {
    fn from(kind: ErrorKind) -> Status {
        match kind {
            ErrorKind::InvalidArgument => Status::InvalidArgument,
            ErrorKind::ShapeMismatch => Status::ShapeMismatch,
            ErrorKind::OutOfMemory => Status::OutOfMemory,
            ErrorKind::InvalidState => Status::InvalidState,
            ErrorKind::NonFinite => Status::NonFinite,
        }
    }
}

/// A failed call: its status and the message the caller reads back.
pub struct Failure {
    pub status: Status,
    pub message: String,
    /// The layer and parameter role the failure concerns, when the model located it.
    pub at: Option<edgegrad_nn::ErrorAt>,
}

impl Failure {
    pub fn new(status: Status, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into(), at: None }
    }
}

impl From<edgegrad_nn::NnError> for Failure {
    fn from(e: edgegrad_nn::NnError) -> Failure {
        Failure { status: e.kind.into(), message: e.message, at: e.at }
    }
}

pub type CallResult<T> = Result<T, Failure>;
