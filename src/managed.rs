//! [`ManagedSlice`]: storage a structure uses without owning it inline, borrowed from the caller
//! (a [`Resources`](crate::resources::Resources) in a `static`) or, with the `std` feature,
//! allocated on the heap at a size chosen at run time. The same idea as smoltcp's
//! `ManagedSlice`: one type for both, so the code over it is compiled once.

use core::fmt;
use core::ops::{Deref, DerefMut};

/// A slice that is borrowed (`&'a mut [T]`) or, with the `std` feature, owned (`Box<[T]>`).
pub enum ManagedSlice<'a, T> {
    /// Borrowed from the caller.
    Borrowed(&'a mut [T]),
    /// Owned, on the heap.
    #[cfg(feature = "std")]
    Owned(std::boxed::Box<[T]>),
}

impl<T: Clone> ManagedSlice<'_, T> {
    /// `len` copies of `fill` on the heap, allocated directly (never built on the stack).
    #[cfg(feature = "std")]
    #[must_use]
    pub fn owned(fill: T, len: usize) -> ManagedSlice<'static, T> {
        ManagedSlice::Owned(std::vec![fill; len].into_boxed_slice())
    }
}

impl<T> Deref for ManagedSlice<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Self::Borrowed(s) => s,
            #[cfg(feature = "std")]
            Self::Owned(b) => b,
        }
    }
}

impl<T> DerefMut for ManagedSlice<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Self::Borrowed(s) => s,
            #[cfg(feature = "std")]
            Self::Owned(b) => b,
        }
    }
}

impl<T> AsRef<[T]> for ManagedSlice<'_, T> {
    fn as_ref(&self) -> &[T] {
        self
    }
}

impl<T> AsMut<[T]> for ManagedSlice<'_, T> {
    fn as_mut(&mut self) -> &mut [T] {
        self
    }
}

impl<'a, T> From<&'a mut [T]> for ManagedSlice<'a, T> {
    fn from(s: &'a mut [T]) -> Self {
        Self::Borrowed(s)
    }
}

impl<T> fmt::Debug for ManagedSlice<'_, T> {
    /// Only the length: the contents are storage, not state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManagedSlice(len {})", self.len())
    }
}

/// A vector over a [`ManagedSlice`]: the live prefix of a fixed buffer, with the methods of
/// `heapless::Vec` the crate needs. Pushing past the buffer fails (never panics).
pub(crate) struct SliceVec<'a, T> {
    buf: ManagedSlice<'a, T>,
    len: usize,
}

impl<'a, T: Copy> SliceVec<'a, T> {
    /// An empty vector over `buf`.
    pub(crate) const fn new(buf: ManagedSlice<'a, T>) -> Self {
        Self { buf, len: 0 }
    }

    /// The buffer's length.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn push(&mut self, v: T) -> Result<(), T> {
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = v;
                self.len += 1;
                Ok(())
            }
            None => Err(v),
        }
    }

    pub(crate) fn extend_from_slice(&mut self, s: &[T]) -> Result<(), ()> {
        let end = self.len.checked_add(s.len()).ok_or(())?;
        let dst = self.buf.get_mut(self.len..end).ok_or(())?;
        dst.copy_from_slice(s);
        self.len = end;
        Ok(())
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// The unused part of the buffer (all of it when empty).
    pub(crate) fn spare(&mut self) -> &mut [T] {
        let n = self.len;
        self.buf.get_mut(n..).unwrap_or_default()
    }

    pub(crate) fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }
}

impl<T> Deref for SliceVec<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl<T> DerefMut for SliceVec<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let n = self.len;
        self.buf.get_mut(..n).unwrap_or_default()
    }
}

impl<T> fmt::Debug for SliceVec<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SliceVec({} of {})", self.len, self.buf.len())
    }
}

/// A string that is borrowed (`&'a str`: on a device, a constant in flash) or, with the `std`
/// feature, owned (`Box<str>`): how a client keeps its keys without storing them inline.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum ManagedStr<'a> {
    /// Borrowed from the caller.
    Borrowed(&'a str),
    /// Owned, on the heap.
    #[cfg(feature = "std")]
    Owned(std::boxed::Box<str>),
}

impl<'a> ManagedStr<'a> {
    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Borrowed(s) => s,
            #[cfg(feature = "std")]
            Self::Owned(s) => s,
        }
    }

    /// The text, borrowed for `'s` without borrowing `self`: copied into `scratch` only when it
    /// is owned (`None` when it does not fit `scratch`).
    pub(crate) fn copy_out<'s>(&self, scratch: &'s mut [u8]) -> Option<&'s str>
    where
        'a: 's,
    {
        #[cfg(not(feature = "std"))]
        let _ = scratch;
        match self {
            Self::Borrowed(s) => Some(s),
            #[cfg(feature = "std")]
            Self::Owned(s) => {
                let dst = scratch.get_mut(..s.len())?;
                dst.copy_from_slice(s.as_bytes());
                core::str::from_utf8(dst).ok()
            }
        }
    }

    /// An owned copy of `s`.
    #[cfg(feature = "std")]
    pub(crate) fn owned(s: &str) -> ManagedStr<'static> {
        ManagedStr::Owned(s.into())
    }
}
