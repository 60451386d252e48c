//! `--preempt patch`: a request rewrites the back-edge branches of the
//! function the goroutine runs so that they jump to trampolines that call
//! the preemption stub; the branches are put back once no request needs
//! that function patched.
//!
//! **What it is.** Code patching, as HotSpot's nmethod patching and the
//! self-modifying safepoints of some JVMs: the loop carries no poll at
//! all, only its ordinary branch, so while no stop is wanted it costs
//! nothing (every `bench mechanisms` overhead figure is against `coop`).
//! Which function to patch comes from `ctx.func`, which every JIT entry
//! and every return from a call stores.
//!
//! **What it costs.** A stop: a rewrite of every back-edge of the function
//! through a second, writable mapping of the code (the executable mapping
//! is never writable), then a serialising event on every core that runs
//! the process (`membarrier(SYNC_CORE)`), whose IPIs are most of the
//! arm's microseconds. The stop itself is a branch to the trampoline, a
//! call into the stub and a runtime call, as under `poll`. A restore is
//! the store and cache maintenance alone (see [`Patcher::patch`]).
//!
//! **What it cannot stop.** A loop in another function than the one
//! patched (the goroutine returned or called elsewhere since): the
//! request's owner moves the patch when it re-requests (the protocol's
//! R4, `Again::Follow`); a goroutine in foreign code or in a runtime call
//! (which honours the request when it returns); straight-line code that
//! never reaches a back-edge (it reaches a function entry or its end).
//! Patching is per function, so every goroutine running the patched
//! function takes the trampoline; those not asked to stop find no request
//! in the stub and resume at the branch's target at once.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

use preempt_jit::abi::GoroutineContext;
use preempt_jit::code::WritableView;
use preempt_jit::module::Module;

use crate::g::{G, NOT_PATCHED};
use crate::sync::lock;

/// Applies `g`'s patch: the back-edges of the function it runs now (and,
/// on a re-request after it left the function patched for it, moves the
/// patch there). Returns whether anything was done.
pub(super) fn apply(p: &Patcher, g: &G, ctx: &GoroutineContext, mark: impl FnOnce()) -> bool {
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
    true
}

/// Undoes [`apply`].
pub(super) fn unapply(p: &Patcher, g: &G) {
    let old = g.patched.swap(NOT_PATCHED, Ordering::AcqRel);
    if old != NOT_PATCHED {
        p.patch(old as usize, false);
    }
}

/// For the hang diagnosis: what is patched for `g`, and what it runs.
pub(super) fn describe(
    p: &Patcher,
    claimed: &str,
    g: &G,
    ctx: &GoroutineContext,
    module: &Module,
) -> String {
    let name = |f: u64| {
        module
            .names
            .functions
            .get(f as usize)
            .map_or_else(|| format!("function {f}"), |n| format!("@{n}"))
    };
    let runs = name(ctx.func.load(Ordering::Acquire));
    let patched = g.patched.load(Ordering::Acquire);
    if patched == NOT_PATCHED {
        return format!("{claimed}; nothing patched for it; it runs {runs}");
    }
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

/// `--preempt patch`: rewrites back-edge branches while goroutines run
/// them, through a second, writable mapping of the code's memory (the
/// executable mapping is never writable).
///
/// The cross-modifying-code rules followed. Which word to store and its
/// value come from the backend (`preempt_jit::isa::patch_branch`, whose
/// documentation is the contract: one 32-bit word inside one aligned
/// 8-byte word, so never across a cache line; on x86-64 a `jmp rel32`'s
/// displacement, on aarch64 a whole `B`, a B-to-B rewrite the architecture
/// allows while other cores execute it). Here:
///
/// - one store replaces the word ([`store_word`]), so a thread fetching
///   the instruction sees the old word or the new one, never a mix;
/// - cache maintenance to the point of unification over the word, by the
///   executable address (`DC CVAU`/`IC IVAU` on aarch64, nothing on
///   x86-64, whose instruction fetch snoops stores);
/// - a serialising (x86-64) or context-synchronising (aarch64) event on
///   every core that runs this process: `membarrier` with
///   `MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE`, whose IPI ends in an
///   exception return on each core.
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
            // The backend says which 32-bit word to store, and what.
            let patch = preempt_jit::isa::patch_branch(module.arch, s.pc, s.tramp);
            let word = s.pc - base + patch.offset;
            let original = u32::from_le_bytes(bytes[word..word + 4].try_into().expect("4 bytes"));
            let patched = patch.word;
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
            base,
            inner: Mutex::new(PatchState {
                view: module.code.writable_view()?,
                sites,
                armed: vec![0; nfuncs],
            }),
            sync_core,
            emulator: match preempt_jit::code::under_qemu_user() {
                true => Some(module.code.emulator_refresh()?),
                false => None,
            },
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
            store_word(view, word, if on { patched } else { original });
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
        store_word(view, word, if on { patched } else { original });
        self.synchronize(word);
        drop(st);
        self.rewrites.fetch_add(1, Ordering::Relaxed);
        self.sync_cores();
    }

    /// Cache maintenance for the word at `offset`, by the executable
    /// address (a no-op where instruction fetch snoops stores: x86-64).
    fn synchronize(&self, offset: usize) {
        let addr = self.base + offset;
        // SAFETY: `addr` is 4 bytes of the published code, readable
        // through the executable mapping for the life of the module.
        let word = unsafe { std::slice::from_raw_parts(addr as *const u8, 4) };
        preempt_jit::code::memory::synchronize_icache(word);
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
/// `jmp rel32`'s displacement) with one aligned store: a 4-aligned word
/// alone (every aarch64 instruction), else the aligned 8-byte word that
/// holds it (the backend places every patchable word inside one), read,
/// changed in those 4 bytes and stored whole, under the patcher's lock
/// (the other 4 bytes, code that never changes or another site's
/// displacement, are stored as they are).
fn store_word(view: &mut WritableView, offset: usize, value: u32) {
    let bytes = view.bytes_mut();
    if offset.is_multiple_of(4) {
        let p = bytes[offset..offset + 4].as_mut_ptr();
        // SAFETY: `p` is 4 aligned bytes inside the writable view (the
        // view is page-aligned), which lives as long as `view`; other
        // threads only read these bytes (fetching them through the other
        // mapping), so one atomic store is the whole write.
        unsafe { AtomicU32::from_ptr(p.cast::<u32>()) }.store(value, Ordering::Release);
        return;
    }
    let word = offset & !7;
    let shift = offset - word;
    assert!(
        shift <= 4,
        "the patched word lies inside one aligned 8-byte word"
    );
    let p = bytes[word..word + 8].as_mut_ptr();
    // SAFETY: as above, 8 aligned bytes; only this thread writes them (the
    // patcher's lock is held).
    let cell = unsafe { AtomicU64::from_ptr(p.cast::<u64>()) };
    let mut le = cell.load(Ordering::Acquire).to_le_bytes();
    le[shift..shift + 4].copy_from_slice(&value.to_le_bytes());
    cell.store(u64::from_le_bytes(le), Ordering::Release);
}
