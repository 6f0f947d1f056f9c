//! Shared byte buffers: the storage of strings and datablocks.
//!
//! Strings are byte sequences (CGPL.md §4: `Length` counts bytes and
//! `Substring` may split a UTF-8 character), so both kinds share this type.
//! A buffer is shared by reference count and copied on write; when a
//! variable holds the only reference, `s = s + x` appends in place, which
//! turns the usual quadratic string building into a linear one.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::meter;

/// The heap part: the bytes, counted by the meter.
struct Buffer {
    bytes: Vec<u8>,
}

impl Buffer {
    fn new(bytes: Vec<u8>) -> Buffer {
        meter::charge(bytes.capacity());
        Buffer { bytes }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        meter::release(self.bytes.capacity());
    }
}

/// An immutable, cheaply cloned byte string. Thread-safe, so compiled
/// programs can hold constants that every task shares.
#[derive(Clone)]
pub struct Bytes(Arc<Buffer>);

impl Bytes {
    /// Takes ownership of `bytes`.
    pub fn from_vec(bytes: Vec<u8>) -> Bytes {
        Bytes(Arc::new(Buffer::new(bytes)))
    }

    /// Copies `bytes`.
    pub fn copy_from(bytes: &[u8]) -> Bytes {
        Bytes::from_vec(bytes.to_vec())
    }

    /// The empty string.
    pub fn empty() -> Bytes {
        Bytes::from_vec(Vec::new())
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.0.bytes
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }

    /// The text, with invalid UTF-8 replaced.
    pub fn to_str_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0.bytes)
    }

    /// The text, if it is valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0.bytes).ok()
    }

    /// Appends `tail`, in place when this is the only reference.
    pub fn append(&mut self, tail: &[u8]) {
        if let Some(buffer) = Arc::get_mut(&mut self.0) {
            let before = buffer.bytes.capacity();
            buffer.bytes.extend_from_slice(tail);
            meter::charge(buffer.bytes.capacity() - before);
            return;
        }
        let mut bytes = Vec::with_capacity(self.len() + tail.len());
        bytes.extend_from_slice(self.as_slice());
        bytes.extend_from_slice(tail);
        *self = Bytes::from_vec(bytes);
    }

    /// Whether both are the same buffer (not just equal bytes).
    pub fn same(&self, other: &Bytes) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Bytes {}

impl Hash for Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_str_lossy())
    }
}

impl From<&str> for Bytes {
    fn from(text: &str) -> Bytes {
        Bytes::copy_from(text.as_bytes())
    }
}

impl From<String> for Bytes {
    fn from(text: String) -> Bytes {
        Bytes::from_vec(text.into_bytes())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Bytes {
        Bytes::from_vec(bytes)
    }
}
