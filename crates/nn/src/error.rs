//! Errors of the nn crate: a kind (mapped to a status code by the wasm boundary) and a message
//! that names the offending argument.

use core::fmt;

/// What went wrong, coarse enough to map one-to-one onto the ABI's status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An argument is out of its allowed range or has the wrong kind.
    InvalidArgument,
    /// Sizes or lengths disagree.
    ShapeMismatch,
    /// A heap allocation failed.
    OutOfMemory,
    /// The call is not allowed in the object's current state (e.g. training before compile).
    InvalidState,
    /// A NaN or infinity appeared in inputs, loss or gradients.
    NonFinite,
}

/// An error with the argument it concerns spelled out in `message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NnError {
    pub kind: ErrorKind,
    pub message: String,
    /// Where a non-finite value was found: the layer and, when it is a parameter's gradient or
    /// value, the parameter's role. Passed across the boundary as numbers, so callers need not
    /// parse `message`.
    pub at: Option<ErrorAt>,
}

/// The layer (and parameter role) an error concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorAt {
    pub layer: usize,
    pub role: Option<crate::model::Role>,
}

impl NnError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        NnError { kind, message: message.into(), at: None }
    }
    /// The same error, located at `layer` (and the parameter `role`, when there is one).
    pub fn at(mut self, layer: usize, role: Option<crate::model::Role>) -> Self {
        self.at = Some(ErrorAt { layer, role });
        self
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn shape(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ShapeMismatch, message)
    }
    pub fn state(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidState, message)
    }
    pub fn non_finite(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NonFinite, message)
    }
}

impl fmt::Display for NnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NnError {}

pub type Result<T> = core::result::Result<T, NnError>;

/// True while [`alloc_f32`] reserves: a global allocator may then refuse the allocation (a heap
/// limit, see crates/wasm/src/alloc.rs) because this caller turns that into OutOfMemory. Every
/// other allocation must succeed or abort, so a limit must not apply to it.
pub static FALLIBLE_ALLOC: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// A zero-filled f32 buffer, or OutOfMemory instead of aborting when the heap is exhausted.
pub fn alloc_f32(len: usize, what: &str) -> Result<Vec<f32>> {
    use core::sync::atomic::Ordering::Relaxed;
    let mut v: Vec<f32> = Vec::new();
    FALLIBLE_ALLOC.store(true, Relaxed);
    let reserved = v.try_reserve_exact(len);
    FALLIBLE_ALLOC.store(false, Relaxed);
    reserved.map_err(|_| {
        NnError::new(ErrorKind::OutOfMemory, format!("{what}: cannot allocate {len} floats"))
    })?;
    v.resize(len, 0.0);
    Ok(v)
}

/// `a * b` for sizes, or ShapeMismatch naming `what` when it overflows. `what` is formatted
/// only then: pass `format_args!` rather than a `format!` string, which would run (and on a
/// cold start first compile) the formatting code on every call.
pub fn checked_size(a: usize, b: usize, what: impl core::fmt::Display) -> Result<usize> {
    a.checked_mul(b).ok_or_else(|| NnError::shape(format!("{what}: size {a} x {b} overflows")))
}
