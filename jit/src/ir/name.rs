//! [`Name`]: the text of a register's name, kept without an allocation of
//! its own when it is short (nearly always: `%x`, `%i12`, `%sum`), so that
//! parsing a program does not allocate once per register, in 16 bytes, so
//! that a register's record is 24 (a large program has about as many
//! registers as instructions, and its records are written once, to fresh
//! memory).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest name stored inline: 16 bytes, less a length byte that is
/// also the tag.
const INLINE: usize = 14;

/// An immutable string, inline up to 14 bytes, on the heap beyond. It
/// reads as a `&str` (`Deref`), compares, hashes and prints as one. It is
/// 16 bytes: a register's record is 24.
#[derive(Clone)]
pub struct Name(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: Len,
        bytes: [u8; INLINE],
    },
    /// A thin pointer, so that it fits beside the length byte.
    Heap(Box<Box<str>>),
}

/// Declares [`Len`] with one variant per inline length, and `Len::ALL`,
/// each length's variant at its index.
macro_rules! lengths {
    ($($variant:ident),*) => {
        /// The length of an inline name, 0 to [`INLINE`]. As an enum, the
        /// byte's other values are free for the compiler to tell `Heap`
        /// from `Inline` with, so `Repr` needs no tag of its own.
        #[derive(Clone, Copy)]
        #[repr(u8)]
        enum Len {
            $($variant),*
        }

        impl Len {
            const ALL: [Len; INLINE + 1] = [$(Len::$variant),*];
        }
    };
}

lengths!(L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14);

impl Name {
    pub fn new(s: &str) -> Name {
        if s.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Name(Repr::Inline {
                len: Len::ALL[s.len()],
                bytes,
            })
        } else {
            Name(Repr::Heap(Box::new(s.into())))
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            // SAFETY: `bytes[..len]` is a copy of a whole `&str` (`new`),
            // so it is UTF-8.
            Repr::Inline { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..*len as usize])
            },
            Repr::Heap(s) => s,
        }
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name::new(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Name {
        if s.len() <= INLINE {
            Name::new(&s)
        } else {
            Name(Repr::Heap(Box::new(s.into_boxed_str())))
        }
    }
}

impl From<Name> for String {
    fn from(n: Name) -> String {
        n.as_str().to_string()
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}
impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names_read_back() {
        assert_eq!(std::mem::size_of::<Name>(), 16);
        assert_eq!(std::mem::size_of::<crate::ir::RegInfo>(), 24);
        for s in ["", "x", "i12", &"a".repeat(14), &"b".repeat(15), "é€"] {
            let n = Name::new(s);
            assert_eq!(n.as_str(), s);
            assert_eq!(Name::from(s.to_string()), n);
            assert_eq!(n.clone(), s);
            assert_eq!(format!("{n}"), s);
        }
        assert!(matches!(Name::new("abc").0, Repr::Inline { .. }));
        assert!(matches!(Name::new(&"c".repeat(40)).0, Repr::Heap(_)));
    }
}
