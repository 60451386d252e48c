//! The effect of a stop request: what each mechanism does to make a
//! goroutine feel a request, and undoes once the request is over. The
//! protocol that decides *when* ([`super::request`]) calls it through
//! [`Fx`], always from the one party that owns the effect.
//!
//! In every mode the goroutine's stack guard is poisoned, so that its
//! next function entry calls the runtime (coop's only point, and async's
//! before the signal lands). Then, by mode:
//!
//! - **poll**: sets the goroutine's poll word (`ctx.poll`). The next
//!   back-edge sees it and calls the yield stub.
//! - **trap** (`--trap-arm page`, the default): swaps the goroutine's
//!   poll-page pointer (`ctx.poll_page`) from a readable word to a page
//!   mapped without access, JEP 312's thread-local handshake: only that
//!   goroutine faults. `--trap-arm mprotect`: every goroutine's pointer
//!   names one global page, and arming protects it (`mprotect`, a TLB
//!   shoot-down on every CPU the process ran on): every goroutine in a
//!   loop faults, and those not asked to stop go on at once. The fault
//!   handler ([`trap`](super::trap)) finds the faulting load in the
//!   poll-site table and redirects into the stub, resuming after the load.
//! - **patch**: rewrites every back-edge branch of the function the
//!   goroutine runs (`ctx.func`, stored by every entry and after every
//!   call) to jump to its trampoline, which calls the stub; the branches
//!   are restored once no goroutine's request needs that function
//!   patched. Arming again (a re-request) moves the patch to the function
//!   the goroutine runs now, if it left the first. See [`Patcher`] for the
//!   cross-modifying-code rules.
//! - **async**: nothing more; the requester sends the signal once the
//!   request is in effect.
//!
//! What an owner applied is recorded in the goroutine ([`G::applied`],
//! [`G::patched`]), which only the owner writes, so the undo undoes
//! exactly that: the `mprotect` and patch reference counts balance however
//! requests, re-requests and stops interleave (the request protocol's
//! model checks that property). The costs of arming and disarming are
//! recorded per mode ([`crate::stats::arm_names`]). Nothing here runs in
//! a signal handler, except [`Fx::guard_only`]'s arm (one atomic store),
//! which the stepping harness makes from its trap-flag handler.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use preempt_jit::abi::POLL_PAGE_READY;
use preempt_jit::code::memory::page_size;
use preempt_jit::code::WritableView;
use preempt_jit::ir::PreemptMode;
use preempt_jit::module::{Arch, Module};

use super::request::{Effect, Phase, Request};
use crate::sched::g::{G, NOT_PATCHED};
use crate::sched::{lock, monotonic_nanos};
use crate::stats::{arm_names, Stats};

/// How `--preempt trap` arms a goroutine.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum TrapArm {
    /// Swap the goroutine's poll-page pointer to a page that faults.
    #[default]
    Page,
    /// Protect the one global poll page every goroutine loads from.
    Mprotect,
}

impl TrapArm {
    pub fn name(self) -> &'static str {
        match self {
            TrapArm::Page => "page",
            TrapArm::Mprotect => "mprotect",
        }
    }
}

/// The run's mechanism: its mode and what the mode needs (the trap pages,
/// the patcher).
#[derive(Debug)]
pub struct Arming {
    mode: PreemptMode,
    trap_arm: TrapArm,
    trap: Option<&'static TrapPages>,
    patch: Option<Patcher>,
}

/// Records in [`G::applied`] that the parts `bits` are applied (`on`) or
/// undone. A plain load and store, not a read-modify-write: only the
/// effect's owner writes the word, and ownership passes through the stop
/// request's acquire/release compare-and-swaps, which order these too.
fn note(g: &G, bits: u8, on: bool) {
    let was = g.applied.load(Ordering::Relaxed);
    let now = if on { was | bits } else { was & !bits };
    g.applied.store(now, Ordering::Relaxed);
}

/// [`G::applied`] bits: the parts of the effect an owner applied.
const GUARD: u8 = 1;
/// The poll word (poll), the page pointer (trap page), the global page's
/// count (trap mprotect), the patch of [`G::patched`] (patch).
const MECHANISM: u8 = 2;

impl Arming {
    /// Sets up what `mode` needs for `module`: the trap pages, the patcher.
    pub fn new(
        mode: PreemptMode,
        trap_arm: TrapArm,
        module: Option<&Module>,
    ) -> io::Result<Arming> {
        let trap = match mode {
            PreemptMode::Trap => Some(TrapPages::get()?),
            _ => None,
        };
        let patch = match (mode, module) {
            (PreemptMode::Patch, Some(m)) => Some(Patcher::new(m)?),
            _ => None,
        };
        Ok(Arming {
            mode,
            trap_arm,
            trap,
            patch,
        })
    }

    /// What a fresh goroutine's `ctx.poll_page` points at.
    pub fn initial_poll_page(&self) -> u64 {
        match self.trap {
            Some(t) if self.trap_arm == TrapArm::Mprotect => t.global as u64,
            _ => &POLL_PAGE_READY as *const AtomicU64 as u64,
        }
    }

    /// The effect of a request on `g` in this run's mode.
    pub fn fx<'a>(&'a self, g: &'a G, stats: &'a Stats) -> Fx<'a> {
        Fx {
            arming: Some(self),
            g,
            stats: Some(stats),
        }
    }

    /// The mechanism's part of the effect, applied (or moved, for a
    /// patch the goroutine has left). Returns whether anything was done.
    /// The book-keeping comes before the store that makes the effect
    /// visible: the goroutine reacts within nanoseconds (its stop touches
    /// the same lines), and the arm should not wait on it.
    fn apply(&self, g: &G) -> bool {
        let Some(ctx) = g.jit_context() else {
            return false;
        };
        let first = g.applied.load(Ordering::Relaxed) & MECHANISM == 0;
        let mark = || note(g, MECHANISM, true);
        match self.mode {
            PreemptMode::Poll => {
                mark();
                ctx.poll.store(1, Ordering::Release);
            }
            PreemptMode::Trap => {
                let Some(t) = self.trap else { return false };
                match self.trap_arm {
                    TrapArm::Page => {
                        mark();
                        ctx.poll_page.store(t.armed as u64, Ordering::Release);
                    }
                    TrapArm::Mprotect if first => {
                        mark();
                        t.protect_global(true);
                    }
                    TrapArm::Mprotect => return false,
                }
            }
            PreemptMode::Patch => {
                let Some(p) = &self.patch else { return false };
                let func = ctx.func.load(Ordering::Acquire);
                let old = g.patched.load(Ordering::Acquire);
                if old == func {
                    return false;
                }
                mark();
                g.patched.store(func, Ordering::Release);
                let rewrote = p.patch(func as usize, true);
                if old != NOT_PATCHED {
                    p.patch(old as usize, false);
                }
                if rewrote {
                    p.sync_cores();
                }
            }
            PreemptMode::Coop | PreemptMode::Async => return false,
        }
        true
    }

    /// Undoes [`Arming::apply`]; whether there was anything to undo.
    fn unapply(&self, g: &G) -> bool {
        let Some(ctx) = g.jit_context() else {
            return false;
        };
        if g.applied.load(Ordering::Acquire) & MECHANISM == 0 {
            return false;
        }
        match self.mode {
            PreemptMode::Poll => ctx.poll.store(0, Ordering::Release),
            PreemptMode::Trap => {
                if let Some(t) = self.trap {
                    match self.trap_arm {
                        TrapArm::Page => ctx.poll_page.store(
                            &POLL_PAGE_READY as *const AtomicU64 as u64,
                            Ordering::Release,
                        ),
                        TrapArm::Mprotect => t.protect_global(false),
                    }
                }
            }
            PreemptMode::Patch => {
                let old = g.patched.swap(NOT_PATCHED, Ordering::AcqRel);
                if let (Some(p), true) = (&self.patch, old != NOT_PATCHED) {
                    p.patch(old as usize, false);
                }
            }
            PreemptMode::Coop | PreemptMode::Async => {}
        }
        note(g, MECHANISM, false);
        true
    }

    /// For the hang diagnosis: what the request protocol and the arming
    /// did to `g` in this run's mode (None in `coop` and `async`, which
    /// arm nothing but the guard).
    pub fn describe(&self, g: &G, module: &Module) -> Option<String> {
        let ctx = g.jit_context()?;
        let (phase, _) = g.stop.load();
        let applied = g.applied.load(Ordering::Acquire) & MECHANISM != 0;
        let name = |f: u64| {
            module
                .names
                .functions
                .get(f as usize)
                .map_or_else(|| format!("function {f}"), |n| format!("@{n}"))
        };
        let claimed = match (phase, applied) {
            (Phase::Idle, _) => "no request",
            (Phase::Arming, _) => "a request being armed",
            (Phase::Armed, true) => "armed",
            (Phase::Armed, false) => "armed, but nothing applied (a guard-only request)",
            (Phase::Ending, _) => "a request ending",
        };
        Some(match self.mode {
            PreemptMode::Poll => format!(
                "{claimed}; its poll word is {}",
                if ctx.poll.load(Ordering::Acquire) != 0 {
                    "set: its next back-edge calls the yield stub"
                } else {
                    "clear"
                }
            ),
            PreemptMode::Trap => {
                let t = self.trap?;
                match self.trap_arm {
                    TrapArm::Page => format!(
                        "{claimed}; its poll-page pointer names {}",
                        if ctx.poll_page.load(Ordering::Acquire) == t.armed as u64 {
                            "the page without access: its next back-edge faults"
                        } else {
                            "a readable word"
                        }
                    ),
                    TrapArm::Mprotect => {
                        let n = *lock(&t.global_armed);
                        format!(
                            "{claimed}; the global poll page is {}",
                            if n > 0 {
                                format!("protected ({n} goroutine(s) armed): every looping goroutine's next back-edge faults")
                            } else {
                                "readable".to_string()
                            }
                        )
                    }
                }
            }
            PreemptMode::Patch => {
                let p = self.patch.as_ref()?;
                let runs = name(ctx.func.load(Ordering::Acquire));
                let patched = g.patched.load(Ordering::Acquire);
                if patched == NOT_PATCHED {
                    format!("{claimed}; nothing patched for it; it runs {runs}")
                } else {
                    format!(
                        "{claimed}; the {} back-edge(s) of {} jump to their yield trampolines; it runs {runs}{}",
                        p.sites_of(patched as usize),
                        name(patched),
                        if ctx.func.load(Ordering::Acquire) == patched {
                            ""
                        } else {
                            " (the monitor's re-request moves the patch there)"
                        }
                    )
                }
            }
            PreemptMode::Coop | PreemptMode::Async => return None,
        })
    }
}

/// A request's effect on one goroutine: the [`Effect`] the protocol calls.
#[derive(Debug)]
pub struct Fx<'a> {
    /// None: the guard only.
    arming: Option<&'a Arming>,
    g: &'a G,
    /// Where the costs go (None: not recorded).
    stats: Option<&'a Stats>,
}

impl<'a> Fx<'a> {
    /// The guard alone, whatever the mode: a request made where the
    /// mechanism's part cannot be (the stepping harness's trap-flag
    /// handler), which a later arm completes. Async-signal-safe.
    pub fn guard_only(g: &'a G) -> Fx<'a> {
        Fx {
            arming: None,
            g,
            stats: None,
        }
    }

    fn record(&self, disarm: bool, since: u64) {
        let (Some(a), Some(stats)) = (self.arming, self.stats) else {
            return;
        };
        if let Some((arm, unarm)) = arm_names(a.mode) {
            let name = if disarm { unarm } else { arm };
            stats.record(name, monotonic_nanos().saturating_sub(since));
        }
    }
}

impl Effect for Fx<'_> {
    fn arm(&self, _: Request, _again: bool) {
        // The mechanism first, timed as the arm's cost (coop's and async's
        // guard alone is not timed, as before), then the guard.
        if let Some(a) = self.arming {
            let t0 = if self.stats.is_some() {
                monotonic_nanos()
            } else {
                0
            };
            if a.apply(self.g) {
                self.record(false, t0);
            }
        }
        note(self.g, GUARD, true);
        self.g.poison_guard();
    }

    fn disarm(&self, _: Request) {
        let t0 = if self.stats.is_some() {
            monotonic_nanos()
        } else {
            0
        };
        let undone = self.arming.is_some_and(|a| a.unapply(self.g));
        if undone {
            self.record(true, t0);
        }
        self.g.restore_guard();
        note(self.g, GUARD, false);
    }
}

/// `--preempt trap`'s pages: the process's, shared by every run in it (a
/// goroutine may name one until the process ends, and the fault handler
/// knows one pair).
#[derive(Debug)]
pub struct TrapPages {
    /// A page without access: what an armed goroutine's pointer names.
    pub armed: usize,
    /// The global page (`--trap-arm mprotect`): readable, or protected
    /// while any goroutine is armed.
    pub global: usize,
    /// How many goroutines are armed through the global page.
    global_armed: Mutex<u64>,
}

/// Set once, read without a lock (the fault handler reads it).
static TRAP_PAGES: OnceLock<TrapPages> = OnceLock::new();
/// Serialises the first mapping of the pages.
static TRAP_PAGES_INIT: Mutex<()> = Mutex::new(());

impl TrapPages {
    /// The process's poll pages, mapped by the first call.
    pub fn get() -> io::Result<&'static TrapPages> {
        if let Some(p) = TRAP_PAGES.get() {
            return Ok(p);
        }
        let _init = lock(&TRAP_PAGES_INIT);
        if let Some(p) = TRAP_PAGES.get() {
            return Ok(p);
        }
        let pages = TrapPages {
            armed: map_page(libc::PROT_NONE)?,
            global: map_page(libc::PROT_READ)?,
            global_armed: Mutex::new(0),
        };
        Ok(TRAP_PAGES.get_or_init(|| pages))
    }

    /// The pages, if a trap-mode run mapped them. Async-signal-safe.
    pub fn mapped() -> Option<&'static TrapPages> {
        TRAP_PAGES.get()
    }

    /// Whether `addr` lies in one of the poll pages.
    pub fn contains(&self, addr: usize) -> bool {
        let page = page_size();
        (self.armed..self.armed + page).contains(&addr)
            || (self.global..self.global + page).contains(&addr)
    }

    fn protect_global(&self, arm: bool) {
        let mut n = lock(&self.global_armed);
        let before = *n;
        *n = if arm {
            before + 1
        } else {
            before.saturating_sub(1)
        };
        let prot = match (before, *n) {
            (0, 1) => libc::PROT_NONE,
            (1, 0) => libc::PROT_READ,
            _ => return,
        };
        // SAFETY: the global page is ours (mapped in `new`), one page long;
        // changing its protection affects only loads from it.
        let r = unsafe { libc::mprotect(self.global as *mut libc::c_void, page_size(), prot) };
        debug_assert_eq!(r, 0, "mprotect of the poll page");
    }
}

fn map_page(prot: libc::c_int) -> io::Result<usize> {
    // SAFETY: a fresh private anonymous page; the runtime keeps it for the
    // life of the process (goroutines may point at it until the end).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_size(),
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p as usize)
}

/// `--preempt patch`: rewrites back-edge branches while goroutines run
/// them, through a second, writable mapping of the code's memory (the
/// executable mapping is never writable).
///
/// The cross-modifying-code rules followed:
///
/// - **x86-64**: the branch is a `jmp rel32` whose 4-byte displacement the
///   compiler placed inside one aligned 8-byte word (a NOP before the
///   branch where needed, in 3 loops of 8), so it never crosses a cache
///   line; one aligned 64-bit store of that word replaces it, so a thread
///   fetching the instruction sees the old displacement or the new one,
///   never a mix. Then a serialising
///   event on every core that runs this process: `membarrier` with
///   `MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE`.
/// - **aarch64**: only `B` <-> `B` rewrites (both are single-copy atomic
///   32-bit instructions, a case the architecture allows to be modified
///   while other cores execute it), then `DC CVAU`/`IC IVAU` over the
///   word (cache maintenance to the point of unification, by the
///   executable address) and a context-synchronising event on the other
///   cores: the same `membarrier` command, whose IPI ends in an exception
///   return on each core.
///
/// A restore (the goroutine stopped) is the same store and cache
/// maintenance without the `membarrier`: a core that still runs the
/// patched branch only takes the trampoline, whose stub finds no request
/// and resumes at the branch's target (see [`Patcher::patch`]).
///
/// Where `membarrier` is not available, the next exception return on the
/// executing thread (its next system call, interrupt or signal) does the
/// same, only later; the monitor's follow-up signals nothing, so the stop
/// can take up to a scheduler tick longer. [`Patcher::sync_core`] says
/// which one applies.
#[derive(Debug)]
pub struct Patcher {
    arch: Arch,
    base: usize,
    inner: Mutex<PatchState>,
    /// Whether `membarrier(SYNC_CORE)` was registered for this process.
    sync_core: bool,
    /// Under qemu-user: how to make the emulator see rewritten code.
    emulator: Option<preempt_jit::code::EmulatorRefresh>,
    /// Rewrites done (each one branch), for the stats and tests.
    pub rewrites: AtomicU64,
}

#[derive(Debug)]
struct PatchState {
    view: WritableView,
    /// By function: (offset of the word to rewrite, original, patched).
    sites: Vec<Vec<(usize, u32, u32)>>,
    /// By function: goroutines that need its back-edges patched.
    armed: Vec<u32>,
}

/// `membarrier` commands (linux/membarrier.h).
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 5;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 6;

impl Patcher {
    pub fn new(module: &Module) -> io::Result<Patcher> {
        let base = module.code.base();
        let bytes = module.code.bytes();
        let nfuncs = module.functions.len();
        let mut sites = vec![Vec::new(); nfuncs];
        for s in &module.tables.patch_sites {
            let (word, original, patched) = match module.arch {
                Arch::X86_64 => {
                    // jmp rel32: E9, then the displacement from the end of
                    // the 5-byte instruction.
                    let at = s.pc - base + 1;
                    let original =
                        u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
                    let patched = (s.tramp as i64 - (s.pc as i64 + 5)) as i32 as u32;
                    (at, original, patched)
                }
                Arch::Aarch64 => {
                    // B imm26: 0b000101 then the word offset.
                    let at = s.pc - base;
                    let original =
                        u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
                    let words = (s.tramp as i64 - s.pc as i64) / 4;
                    let patched = 0x1400_0000 | (words as u32 & 0x03ff_ffff);
                    (at, original, patched)
                }
            };
            sites[s.func.index()].push((word, original, patched));
        }
        // SAFETY: membarrier takes no pointers; registering only enables
        // the SYNC_CORE command for this process.
        let sync_core = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
                0,
                0,
            )
        } == 0;
        Ok(Patcher {
            arch: module.arch,
            base,
            inner: Mutex::new(PatchState {
                view: module.code.writable_view()?,
                sites,
                armed: vec![0; nfuncs],
            }),
            sync_core,
            emulator: preempt_jit::code::under_qemu_user().then(|| module.code.emulator_refresh()),
            rewrites: AtomicU64::new(0),
        })
    }

    /// How many patch sites (back-edges) function `func` has.
    pub fn sites_of(&self, func: usize) -> usize {
        lock(&self.inner).sites.get(func).map_or(0, Vec::len)
    }

    /// Whether rewrites are followed by `membarrier(SYNC_CORE)`.
    pub fn sync_core(&self) -> bool {
        self.sync_core
    }

    /// One more (`on`) or one fewer goroutine needs `func`'s back-edges
    /// patched; rewrites them when the count leaves or reaches zero.
    /// Returns whether branches were patched: the caller then owes the
    /// cores a [`Patcher::sync_cores`] (left to it, so that it can drop
    /// its own lock first).
    ///
    /// A restore is not followed by one. A core that still runs a patched
    /// branch after the restore only takes the trampoline, whose stub finds
    /// no request and resumes at the branch's target: the same path as a
    /// goroutine that stopped by itself as it was armed. On x86-64 the
    /// store is seen by the instruction fetch at once in practice; on
    /// aarch64 the next exception return on that core ends it (a system
    /// call, an interrupt, a tick). So a disarm costs a store, not an IPI
    /// to every core.
    pub fn patch(&self, func: usize, on: bool) -> bool {
        let mut st = lock(&self.inner);
        let Some(n) = st.armed.get(func).copied() else {
            return false;
        };
        let (next, rewrite) = match (on, n) {
            (true, 0) => (1, true),
            (true, n) => (n + 1, false),
            (false, 0) => (0, false),
            (false, 1) => (0, true),
            (false, n) => (n - 1, false),
        };
        st.armed[func] = next;
        if !rewrite {
            return false;
        }
        let PatchState { view, sites, .. } = &mut *st;
        for &(word, original, patched) in &sites[func] {
            store_word(self.arch, view, word, if on { patched } else { original });
            self.synchronize(word);
            self.rewrites.fetch_add(1, Ordering::Relaxed);
        }
        drop(st);
        if !on {
            // The emulator has no coherence to rely on: it runs a stale
            // translation forever unless told.
            self.refresh_emulator();
        }
        on
    }

    /// Rewrites one branch, the `index`-th patch site of function `func`,
    /// to its trampoline (`on`) or back, whatever the reference counts say
    /// (for the coherency test).
    pub fn rewrite_site(&self, func: usize, index: usize, on: bool) {
        let mut st = lock(&self.inner);
        let PatchState { view, sites, .. } = &mut *st;
        let Some(&(word, original, patched)) = sites.get(func).and_then(|s| s.get(index)) else {
            return;
        };
        store_word(self.arch, view, word, if on { patched } else { original });
        self.synchronize(word);
        drop(st);
        self.rewrites.fetch_add(1, Ordering::Relaxed);
        self.sync_cores();
    }

    /// Cache maintenance for the word at `offset` (aarch64), by the
    /// executable address.
    fn synchronize(&self, offset: usize) {
        if self.arch == Arch::Aarch64 {
            let addr = self.base + offset;
            // SAFETY: `addr` is 4 bytes of the published code, readable
            // through the executable mapping for the life of the module.
            let word = unsafe { std::slice::from_raw_parts(addr as *const u8, 4) };
            preempt_jit::code::memory::synchronize_icache(word);
        }
    }

    /// Under qemu-user: makes the emulator drop its translations of the
    /// rewritten code.
    fn refresh_emulator(&self) {
        if let Some(e) = &self.emulator {
            // SAFETY: the runtime keeps the module, and so its code, alive
            // for as long as this patcher.
            let r = unsafe { e.refresh() };
            debug_assert!(r.is_ok(), "remapping the code for the emulator: {r:?}");
        }
    }

    /// The cross-modifying-code rule's last step after a rewrite: a
    /// serialising (x86-64) or context-synchronising (aarch64) event on
    /// every core that runs this process.
    pub fn sync_cores(&self) {
        self.refresh_emulator();
        if self.sync_core {
            // SAFETY: registered in `new`; no pointers.
            unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
                    0,
                    0,
                )
            };
        }
    }
}

/// Writes the 4 bytes at `offset` of the writable view (a `B`, or a
/// `jmp rel32`'s displacement) with one aligned store: on aarch64 the
/// instruction word itself (4-aligned); on x86-64 the aligned 8-byte word
/// that holds the displacement (the compiler placed every patchable
/// displacement inside one), read, changed in those 4 bytes and stored
/// whole, under the patcher's lock (the other 4 bytes, code that never
/// changes or another site's displacement, are stored as they are).
fn store_word(arch: Arch, view: &mut WritableView, offset: usize, value: u32) {
    let bytes = view.bytes_mut();
    match arch {
        Arch::Aarch64 => {
            let p = bytes[offset..offset + 4].as_mut_ptr();
            assert_eq!(p as usize % 4, 0, "an instruction word is 4-aligned");
            // SAFETY: `p` is 4 aligned bytes inside the writable view,
            // which lives as long as `view`; other threads only read these
            // bytes (fetching them through the other mapping), so one
            // atomic store is the whole write.
            unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.store(value, Ordering::Release);
        }
        Arch::X86_64 => {
            let word = offset & !7;
            let shift = offset - word;
            assert!(
                shift <= 4,
                "the displacement lies inside one aligned 8-byte word"
            );
            let p = bytes[word..word + 8].as_mut_ptr();
            // SAFETY: as above, 8 aligned bytes (the view is page-aligned
            // and `word` a multiple of 8); only this thread writes them
            // (the patcher's lock is held).
            let cell = unsafe { AtomicU64::from_ptr(p.cast::<u64>()) };
            let mut le = cell.load(Ordering::Acquire).to_le_bytes();
            le[shift..shift + 4].copy_from_slice(&value.to_le_bytes());
            cell.store(u64::from_le_bytes(le), Ordering::Release);
        }
    }
}
