//! Values as the interpreter holds them: a type and 64 bits.
//!
//! Every register slot carries its [`Type`], so the interpreter needs no
//! type table to print a value or to find the refs a collection must keep
//! (registers are precise roots), and it never trusts the bits of one type
//! as another. The bits are what a JIT register would hold: the integer, the
//! object's identity (0 for `nil`), or the channel's id.

use std::fmt;

use crate::ir::Type;

/// The identity of a channel, assigned by whoever runs channels (the
/// scheduler); the interpreter only carries it around.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ChanId(pub u32);

/// One PIR value: an `i64`, a `ref` (possibly `nil`) or a `chan`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Value {
    /// For `i64` the integer; for `ref` the object's handle (0 for `nil`,
    /// see [`Heap`](super::Heap)); for `chan` the [`ChanId`].
    pub(crate) bits: i64,
    pub(crate) ty: Type,
}

impl Value {
    /// The `nil` ref.
    pub const NIL: Value = Value {
        bits: 0,
        ty: Type::Ref,
    };

    /// An `i64`.
    pub const fn int(v: i64) -> Value {
        Value {
            bits: v,
            ty: Type::I64,
        }
    }

    /// A channel.
    pub const fn chan(id: ChanId) -> Value {
        Value {
            bits: id.0 as i64,
            ty: Type::Chan,
        }
    }

    /// A ref from an object handle (0 is `nil`).
    pub(crate) const fn from_handle(handle: i64) -> Value {
        Value {
            bits: handle,
            ty: Type::Ref,
        }
    }

    pub fn ty(self) -> Type {
        self.ty
    }

    /// The integer, if this is an `i64`.
    pub fn as_int(self) -> Option<i64> {
        (self.ty == Type::I64).then_some(self.bits)
    }

    /// The channel, if this is a `chan`.
    pub fn as_chan(self) -> Option<ChanId> {
        (self.ty == Type::Chan).then_some(ChanId(self.bits as u32))
    }

    /// Whether this is the `nil` ref.
    pub fn is_nil(self) -> bool {
        self.ty == Type::Ref && self.bits == 0
    }
}

impl Default for Value {
    fn default() -> Value {
        Value::int(0)
    }
}

impl fmt::Display for Value {
    /// As `print` shows it: an i64 in decimal, a ref as `nil` or `<ref>`, a
    /// channel as `<chan>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            Type::I64 => write!(f, "{}", self.bits),
            Type::Ref if self.bits == 0 => f.write_str("nil"),
            Type::Ref => f.write_str("<ref>"),
            Type::Chan => f.write_str("<chan>"),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            Type::I64 => write!(f, "{}", self.bits),
            Type::Ref if self.bits == 0 => f.write_str("nil"),
            Type::Ref => write!(f, "ref#{}", self.bits),
            Type::Chan => write!(f, "chan#{}", self.bits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_print_does() {
        assert_eq!(Value::int(-7).to_string(), "-7");
        assert_eq!(Value::NIL.to_string(), "nil");
        assert_eq!(Value::from_handle(3).to_string(), "<ref>");
        assert_eq!(Value::chan(ChanId(0)).to_string(), "<chan>");
        assert_eq!(Value::int(i64::MIN).to_string(), "-9223372036854775808");
    }

    #[test]
    fn accessors_check_the_type() {
        assert_eq!(Value::int(5).as_int(), Some(5));
        assert_eq!(Value::NIL.as_int(), None);
        assert_eq!(Value::chan(ChanId(9)).as_chan(), Some(ChanId(9)));
        assert!(Value::NIL.is_nil());
        assert!(!Value::int(0).is_nil());
        assert_eq!(std::mem::size_of::<Value>(), 16);
    }
}
