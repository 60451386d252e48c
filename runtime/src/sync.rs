//! The atomics the runtime's shared protocols are written over.
//!
//! The stop request ([`crate::preempt::request`]) and the wake-up rules
//! ([`crate::sched::idle`]) are generic over an [`Atomics`] family: the
//! runtime instantiates them with the standard library's atomics
//! ([`Std`], the default type parameter, so nothing at run time pays for
//! the genericity), and their model-checking tests with `loom`'s, which
//! explore every interleaving of the parties under the C11 memory model.
//!
//! Only acquire/release orderings and read-modify-writes are used by the
//! protocols: loom models those exactly, while it treats `SeqCst` loads
//! and stores as acquire/release (its README), so a protocol that leaned on
//! sequential consistency would be checked against a weaker model than it
//! runs under.

use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning: a thread that panicked holding it has
/// already broken the run, and the threads left (the watchdog, the end of
/// the run, the diagnosis) must still be able to read the state to report
/// it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An atomic 64-bit word.
pub trait AtomicU64Ops: Send + Sync {
    fn new(v: u64) -> Self;
    fn load(&self, order: Ordering) -> u64;
    fn store(&self, v: u64, order: Ordering);
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
    fn fetch_add(&self, v: u64, order: Ordering) -> u64;
    fn fetch_sub(&self, v: u64, order: Ordering) -> u64;
}

/// A family of atomics: the standard library's, or a model checker's.
pub trait Atomics: 'static {
    type U64: AtomicU64Ops;

    /// Waits a moment for another party to make progress (a thread
    /// yield; in a model, a scheduling point).
    fn spin_wait();

    /// A memory fence.
    fn fence(order: Ordering);
}

/// The standard library's atomics: what the runtime runs on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Std;

/// Implements [`AtomicU64Ops`] for an atomic type with the standard
/// library's methods (std's, loom's).
macro_rules! atomic_u64_ops {
    ($t:ty) => {
        impl AtomicU64Ops for $t {
            fn new(v: u64) -> Self {
                <$t>::new(v)
            }
            #[inline]
            fn load(&self, order: Ordering) -> u64 {
                self.load(order)
            }
            #[inline]
            fn store(&self, v: u64, order: Ordering) {
                self.store(v, order)
            }
            #[inline]
            fn compare_exchange(
                &self,
                current: u64,
                new: u64,
                success: Ordering,
                failure: Ordering,
            ) -> Result<u64, u64> {
                self.compare_exchange(current, new, success, failure)
            }
            #[inline]
            fn fetch_add(&self, v: u64, order: Ordering) -> u64 {
                self.fetch_add(v, order)
            }
            #[inline]
            fn fetch_sub(&self, v: u64, order: Ordering) -> u64 {
                self.fetch_sub(v, order)
            }
        }
    };
}

atomic_u64_ops!(std::sync::atomic::AtomicU64);

impl Atomics for Std {
    type U64 = std::sync::atomic::AtomicU64;

    fn spin_wait() {
        std::thread::yield_now();
    }

    fn fence(order: Ordering) {
        std::sync::atomic::fence(order);
    }
}

/// A bug planted in a protocol's transitions, for its model-checking tests
/// to find: the switch exists only in test builds (in the runtime it is a
/// zero-sized nothing, and every check of it is `false`).
#[derive(Debug, Clone, Copy)]
pub struct Planted<B> {
    #[cfg(test)]
    bug: Option<B>,
    _bug: std::marker::PhantomData<B>,
}

impl<B> Default for Planted<B> {
    fn default() -> Self {
        Planted {
            #[cfg(test)]
            bug: None,
            _bug: std::marker::PhantomData,
        }
    }
}

impl<B: PartialEq + Copy> Planted<B> {
    /// `bug`, planted.
    #[cfg(test)]
    pub fn bug(bug: B) -> Self {
        Planted {
            bug: Some(bug),
            _bug: std::marker::PhantomData,
        }
    }

    /// Whether `bug` is the one planted.
    #[inline(always)]
    pub fn is(&self, bug: B) -> bool {
        #[cfg(test)]
        return self.bug == Some(bug);
        #[cfg(not(test))]
        {
            let _ = bug;
            false
        }
    }
}

/// loom's atomics, for the model-checking tests.
#[cfg(test)]
pub mod model {
    use super::{AtomicU64Ops, Atomics, Ordering};

    /// The family whose operations loom schedules and checks.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Loom;

    atomic_u64_ops!(loom::sync::atomic::AtomicU64);

    impl Atomics for Loom {
        type U64 = loom::sync::atomic::AtomicU64;

        fn spin_wait() {
            loom::thread::yield_now();
        }

        fn fence(order: Ordering) {
            loom::sync::atomic::fence(order);
        }
    }

    /// Runs `f` under loom with the bounds every protocol test uses:
    /// preemptions bounded (loom's advice; each test says what its bound
    /// covers), and a branch budget that a lost request, which leaves a
    /// party waiting forever, exhausts, failing the model.
    pub fn check(preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(preemptions);
        b.max_branches = 100_000;
        b.check(f);
    }
}
