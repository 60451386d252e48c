//! The function's register names to their indices, looked up once per
//! register operand: the parser's most frequent table access.
//!
//! Nearly every register name is at most seven bytes (`%x`, `%i12`,
//! `%sum`), so such a name is packed with its length into one `u64` key,
//! read from the source with one load, and looked up in an open-addressing
//! table by an integer compare: no string hashing and no byte-by-byte
//! comparison. Longer names go to an ordinary map.

use super::HashMap;
use crate::ir::Reg;

/// The longest name packed into a key.
const PACKED: usize = 7;

/// Register names of one function to their indices (see the module
/// documentation). Cleared between functions, keeping its capacity.
#[derive(Default)]
pub(super) struct RegIds<'a> {
    /// The source text every name borrows from, for the one-load read.
    text: &'a str,
    /// `(key, register index)`, key 0 for an empty slot (a packed key
    /// holds a nonzero length in its top byte); a power-of-two length.
    slots: Vec<(u64, u32)>,
    /// Occupied slots.
    len: usize,
    /// Names longer than [`PACKED`] bytes.
    long: HashMap<&'a str, Reg>,
}

impl<'a> RegIds<'a> {
    pub(super) fn new(text: &'a str) -> RegIds<'a> {
        RegIds {
            text,
            slots: Vec::new(),
            len: 0,
            long: HashMap::default(),
        }
    }

    /// Empties the table. A table sized for a large function is dropped
    /// once a function fills only a small part of it, so that each of many
    /// small functions after a large one does not clear the large table.
    pub(super) fn clear(&mut self) {
        if self.slots.len() > 1024 && self.len * 8 < self.slots.len() {
            self.slots = Vec::new();
        } else if self.len > 0 {
            self.slots.fill((0, 0));
        }
        self.len = 0;
        self.long.clear();
    }

    /// `name`'s bytes and length as one key (`name` is 1 to [`PACKED`]
    /// bytes): the length in the top byte, the bytes below it.
    #[inline]
    fn key(&self, name: &str) -> u64 {
        let n = name.len();
        let b = self.text.as_bytes();
        let offset = (name.as_ptr() as usize).wrapping_sub(b.as_ptr() as usize);
        let word = match offset.checked_add(8).and_then(|end| b.get(offset..end)) {
            // The name is part of the text and eight bytes follow its start:
            // one load, the bytes past the name masked off.
            Some(eight) => {
                let w = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
                w & ((1u64 << (8 * n)) - 1)
            }
            _ => name
                .bytes()
                .rev()
                .fold(0u64, |w, c| (w << 8) | u64::from(c)),
        };
        word | ((n as u64) << 56)
    }

    #[inline]
    fn slot(&self, key: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        // Fibonacci hashing: the product's high bits depend on every byte.
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
    }

    /// Whether `name` has an index.
    pub(super) fn contains(&self, name: &str) -> bool {
        if name.len() > PACKED || name.is_empty() {
            return self.long.contains_key(name);
        }
        if self.slots.is_empty() {
            return false;
        }
        let key = self.key(name);
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key);
        loop {
            match self.slots[i].0 {
                0 => return false,
                k if k == key => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// `name`'s index, or `next` (then recorded as its index) if it has
    /// none; whether it was new.
    #[inline]
    pub(super) fn get_or_insert(&mut self, name: &'a str, next: Reg) -> (Reg, bool) {
        if name.len() > PACKED || name.is_empty() {
            let r = *self.long.entry(name).or_insert(next);
            return (r, r == next);
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let key = self.key(name);
        let mask = self.slots.len() - 1;
        let mut i = self.slot(key);
        loop {
            let (k, r) = self.slots[i];
            if k == key {
                return (Reg(r), false);
            }
            if k == 0 {
                self.slots[i] = (key, next.0);
                self.len += 1;
                return (next, true);
            }
            i = (i + 1) & mask;
        }
    }

    #[cold]
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.slots = vec![(0, 0); (old.len() * 2).max(64)];
        let mask = self.slots.len() - 1;
        for (k, r) in old {
            if k != 0 {
                let mut i = self.slot(k);
                while self.slots[i].0 != 0 {
                    i = (i + 1) & mask;
                }
                self.slots[i] = (k, r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names of every length around the packing limit, inside the text
    /// (the one-load read), at its very end (the byte loop) and outside it,
    /// keep distinct indices, also across growth and clearing.
    #[test]
    fn names_map_to_their_first_index() {
        let text = "a ab abc abcd abcde abcdef abcdefg abcdefgh abcdefghi b ba";
        let names: Vec<&str> = text.split(' ').collect();
        let mut ids = RegIds::new(text);
        for round in 0..2 {
            for (i, &n) in names.iter().enumerate() {
                assert!(!ids.contains(n));
                assert_eq!(ids.get_or_insert(n, Reg::new(i)), (Reg::new(i), true));
            }
            // Many more, to force growth; copies outside the text.
            let owned: Vec<String> = (0..500).map(|k| format!("r{k}")).collect();
            for (k, n) in owned.iter().enumerate() {
                let leaked: &'static str = Box::leak(n.clone().into_boxed_str());
                let r = Reg::new(names.len() + k);
                assert_eq!(ids.get_or_insert(leaked, r), (r, true));
            }
            for (i, &n) in names.iter().enumerate() {
                assert!(ids.contains(n), "{n} in round {round}");
                let other = Reg::new(9999);
                assert_eq!(ids.get_or_insert(n, other), (Reg::new(i), false));
                // The same name read from another place of memory.
                let copy: &'static str = Box::leak(n.to_string().into_boxed_str());
                assert_eq!(ids.get_or_insert(copy, other), (Reg::new(i), false));
            }
            ids.clear();
        }
    }

    /// After a large function the table keeps its size for the next one
    /// only while that one fills a fair part of it.
    #[test]
    fn a_large_table_is_dropped_after_a_small_function() {
        let owned: Vec<&'static str> = (0..5000)
            .map(|k| &*Box::leak(format!("r{k}").into_boxed_str()))
            .collect();
        let mut ids = RegIds::new("");
        for (k, &n) in owned.iter().enumerate() {
            ids.get_or_insert(n, Reg::new(k));
        }
        let large = ids.slots.len();
        assert!(large >= 10_000, "{large}");
        ids.clear();
        assert_eq!(ids.slots.len(), large);
        assert!(!ids.contains("r1"));
        ids.get_or_insert("x", Reg::new(0));
        ids.clear();
        assert!(ids.slots.is_empty());
        assert_eq!(ids.get_or_insert("x", Reg::new(3)), (Reg::new(3), true));
        assert!(ids.contains("x") && !ids.contains("r1"));
    }
}
