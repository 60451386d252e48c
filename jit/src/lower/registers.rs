//! Register tables: one per architecture, a row per register saying what
//! it is for. The allocator's [`RegisterFile`], the stubs' save and
//! restore lists and the write barrier's are all sets derived from it, so
//! a register changes role in one place and every list follows.

use std::fmt;

/// A set of registers by hardware number (below 64), iterated in
/// ascending order.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RegSet(u64);

impl RegSet {
    pub const EMPTY: RegSet = RegSet(0);

    pub const fn of(regs: &[u8]) -> RegSet {
        let mut bits = 0;
        let mut i = 0;
        while i < regs.len() {
            bits |= 1 << regs[i];
            i += 1;
        }
        RegSet(bits)
    }

    pub const fn contains(self, r: u8) -> bool {
        r < 64 && self.0 & (1 << r) != 0
    }

    pub const fn with(self, r: u8) -> RegSet {
        RegSet(self.0 | 1 << r)
    }

    pub const fn without(self, r: u8) -> RegSet {
        RegSet(self.0 & !(1 << r))
    }

    /// The lowest-numbered register of the set.
    pub const fn first(self) -> Option<u8> {
        if self.0 == 0 {
            None
        } else {
            Some(self.0.trailing_zeros() as u8)
        }
    }

    pub const fn intersection(self, other: RegSet) -> RegSet {
        RegSet(self.0 & other.0)
    }

    pub const fn union(self, other: RegSet) -> RegSet {
        RegSet(self.0 | other.0)
    }

    pub const fn minus(self, other: RegSet) -> RegSet {
        RegSet(self.0 & !other.0)
    }

    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The registers, lowest number first (`.rev()` for the reverse).
    pub fn iter(self) -> impl DoubleEndedIterator<Item = u8> + Clone {
        (0..64u8).filter(move |&r| self.contains(r))
    }

    /// The registers in ascending pairs (for pair loads and stores); the
    /// count must be even.
    pub fn pairs(self) -> impl Iterator<Item = (u8, u8)> {
        assert_eq!(self.len() % 2, 0, "{self:?} does not split into pairs");
        let regs: Vec<u8> = self.iter().collect();
        (0..regs.len() / 2).map(move |k| (regs[2 * k], regs[2 * k + 1]))
    }
}

impl fmt::Debug for RegSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What a register is for in JIT code.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// Allocatable; a PIR `call` clobbers it.
    CallerSaved,
    /// Allocatable; preserved across a PIR `call` (saved in the prologue
    /// of a function that writes it).
    CalleeSaved,
    /// Never allocated; any instruction's lowering may clobber it.
    Scratch,
    /// Holds the running goroutine's context.
    Context,
    FramePointer,
    LinkRegister,
    StackPointer,
    /// Reserved for the runtime's stubs (aarch64 `x16`): no function body
    /// keeps a value in it.
    StubScratch,
    /// Reserved by the platform (aarch64 `x18`): never touched.
    Platform,
}

/// One row of a register table.
#[derive(Clone, Copy, Debug)]
pub struct Register {
    /// The assembler name.
    pub name: &'static str,
    pub role: Role,
    /// Whether the host's C calling convention (SysV, AAPCS64) preserves
    /// it: what `switch_to` saves for the scheduler, and what a C call
    /// from JIT code (the write barrier's) leaves alone.
    pub host_preserved: bool,
}

impl Register {
    pub const fn new(name: &'static str, role: Role, host_preserved: bool) -> Register {
        Register {
            name,
            role,
            host_preserved,
        }
    }
}

/// An architecture's general registers, indexed by hardware number.
#[derive(Clone, Copy, Debug)]
pub struct RegisterTable(pub &'static [Register]);

impl RegisterTable {
    /// Every register of the table.
    pub const fn all(&self) -> RegSet {
        RegSet((1u64 << self.0.len()) - 1)
    }

    pub const fn with_role(&self, role: Role) -> RegSet {
        let mut set = RegSet::EMPTY;
        let mut r = 0;
        while r < self.0.len() {
            // `PartialEq` is not const: compare discriminants.
            if self.0[r].role as u8 == role as u8 {
                set = set.with(r as u8);
            }
            r += 1;
        }
        set
    }

    /// The registers the host's C calling convention preserves.
    pub const fn host_preserved(&self) -> RegSet {
        let mut set = RegSet::EMPTY;
        let mut r = 0;
        while r < self.0.len() {
            if self.0[r].host_preserved {
                set = set.with(r as u8);
            }
            r += 1;
        }
        set
    }

    /// The registers a C call from JIT code may clobber.
    pub const fn host_clobbered(&self) -> RegSet {
        self.all()
            .minus(self.host_preserved())
            .minus(self.with_role(Role::StackPointer))
    }

    /// The allocator's view.
    pub const fn register_file(&self) -> RegisterFile {
        RegisterFile {
            caller_saved: self.with_role(Role::CallerSaved),
            callee_saved: self.with_role(Role::CalleeSaved),
            register_params: 0,
        }
    }

    /// The registers `rt_call` saves in the context and `switch_to`
    /// restores: every allocatable register, and the frame pointer, where
    /// a parked goroutine's traceback starts.
    pub const fn runtime_saved(&self) -> RegSet {
        self.with_role(Role::CallerSaved)
            .union(self.with_role(Role::CalleeSaved))
            .union(self.with_role(Role::FramePointer))
    }

    /// The assembler name of register `r`.
    pub const fn name(&self, r: u8) -> &'static str {
        if (r as usize) < self.0.len() {
            self.0[r as usize].name
        } else {
            "?"
        }
    }
}

/// The registers a backend offers the allocator, by hardware number.
#[derive(Clone, Copy, Debug)]
pub struct RegisterFile {
    /// Clobbered by calls; preferred for values that do not cross one.
    pub caller_saved: RegSet,
    /// Preserved by calls; saved in the prologue of a function using them.
    pub callee_saved: RegSet,
    /// How many leading parameters a PIR `call` passes in registers
    /// ([`Machine::ARG_REGS`](crate::lower::Machine::ARG_REGS)): they have
    /// no incoming stack slot, so one spilled takes a spill slot.
    pub register_params: u32,
}

impl RegisterFile {
    /// This file, with the first `n` parameters passed in registers.
    pub const fn with_register_params(self, n: usize) -> RegisterFile {
        RegisterFile {
            register_params: n as u32,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: RegisterTable = RegisterTable(&[
        Register {
            name: "r0",
            role: Role::Scratch,
            host_preserved: false,
        },
        Register {
            name: "r1",
            role: Role::CallerSaved,
            host_preserved: false,
        },
        Register {
            name: "r2",
            role: Role::CalleeSaved,
            host_preserved: true,
        },
        Register {
            name: "sp",
            role: Role::StackPointer,
            host_preserved: true,
        },
        Register {
            name: "fp",
            role: Role::FramePointer,
            host_preserved: true,
        },
    ]);

    #[test]
    fn sets_iterate_in_ascending_order_and_pair_up() {
        let s = RegSet::of(&[9, 3, 30, 1]);
        assert_eq!(s.iter().collect::<Vec<_>>(), [1, 3, 9, 30]);
        assert_eq!(s.iter().rev().collect::<Vec<_>>(), [30, 9, 3, 1]);
        assert_eq!(s.pairs().collect::<Vec<_>>(), [(1, 3), (9, 30)]);
        assert_eq!(s.len(), 4);
        assert!(s.contains(30) && !s.contains(2) && !s.contains(200));
    }

    #[test]
    fn the_derived_sets_follow_the_roles() {
        assert_eq!(TABLE.all(), RegSet::of(&[0, 1, 2, 3, 4]));
        assert_eq!(TABLE.register_file().caller_saved, RegSet::of(&[1]));
        assert_eq!(TABLE.register_file().callee_saved, RegSet::of(&[2]));
        assert_eq!(TABLE.runtime_saved(), RegSet::of(&[1, 2, 4]));
        assert_eq!(TABLE.host_clobbered(), RegSet::of(&[0, 1]));
        assert_eq!(TABLE.name(4), "fp");
        assert_eq!(TABLE.name(5), "?");
    }
}
