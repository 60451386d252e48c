//! Compiling a large program on several threads.
//!
//! The compiler's work is per function (parsing a body, verifying it,
//! optimising it, allocating its registers) and functions are independent
//! once the program's names are known. A program is cut into contiguous
//! runs of functions of about equal size, one per thread, each run is
//! processed on its own thread, and the results are put back in function
//! order. The output never depends on the number of threads: every phase
//! that runs in parallel merges its results (and its errors, the first in
//! the text winning) exactly as one thread would have produced them, and
//! tests compile with one thread and with several and compare.
//!
//! Threads are scoped (`std::thread::scope`): they live for one phase and
//! borrow the program; a panic on one is re-raised on the caller. Small
//! programs, the common case, stay on the calling thread: starting a
//! thread costs tens of microseconds, about what verifying ten thousand
//! instructions costs.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use crate::ir::Function;

/// How many threads a compilation may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Threads {
    /// One per CPU the process may run on, when the program is large
    /// enough to give each of them [`Threads::MIN_WORK`] instructions.
    #[default]
    Auto,
    /// Exactly this many (fewer only when there are fewer functions).
    Fixed(NonZeroUsize),
}

impl Threads {
    /// The instructions that make a thread worth starting (see the
    /// module documentation).
    pub const MIN_WORK: usize = 20_000;

    /// One thread: the calling one.
    pub const ONE: Threads = Threads::Fixed(NonZeroUsize::MIN);

    /// Exactly `n` threads (`n` = 0 means one).
    pub fn fixed(n: usize) -> Threads {
        Threads::Fixed(NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN))
    }

    /// The threads to use for `work` instructions in `items` independent
    /// items.
    pub fn count(self, work: usize, items: usize) -> usize {
        let n = match self {
            Threads::Auto => {
                let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
                cpus.min(work / Threads::MIN_WORK)
            }
            Threads::Fixed(n) => n.get(),
        };
        n.min(items).max(1)
    }
}

/// Cuts `weights` (one per item, in order) into at most `n` contiguous
/// ranges of about equal total weight, none empty (one empty range when
/// there are no items).
pub fn split(weights: &[usize], n: usize) -> Vec<Range<usize>> {
    let n = n.min(weights.len()).max(1);
    let total: usize = weights.iter().sum();
    let mut ranges = Vec::with_capacity(n);
    let (mut start, mut sum) = (0, 0);
    for (i, &w) in weights.iter().enumerate() {
        // The range being filled is number `k` of `n`; it should end where
        // the running sum reaches `k / n` of the total (scaled by `n`).
        let k = ranges.len() + 1;
        if k < n && i > start {
            let target = total * k;
            let (before, after) = (sum * n, (sum + w) * n);
            let closer_before =
                before >= target || (after > target && target - before <= after - target);
            // Each range still to come needs an item.
            let must = weights.len() - i == n - k;
            if closer_before || must {
                ranges.push(start..i);
                start = i;
            }
        }
        sum += w;
    }
    ranges.push(start..weights.len());
    ranges
}

/// `funcs` cut into runs of about equal instruction counts, one per
/// thread that `threads` gives a program of their size.
pub fn function_ranges(funcs: &[Function], threads: Threads) -> Vec<Range<usize>> {
    let weights: Vec<usize> = funcs.iter().map(|f| f.inst_count() + 1).collect();
    split(&weights, threads.count(weights.iter().sum(), weights.len()))
}

/// Runs `f` on each range, the first on the calling thread and each other
/// on a thread of its own, and returns the results in range order. A
/// panic in any of them is re-raised here once all have ended.
pub fn map<R: Send>(ranges: &[Range<usize>], f: impl Fn(Range<usize>) -> R + Sync) -> Vec<R> {
    run_all(ranges.to_vec(), f)
}

/// Runs `f` on the runs of `items` that `ranges` (contiguous, in order,
/// covering `items`) cut, each with the index of its first item, as
/// [`map`] does: the runs are disjoint, so each thread may change its own.
pub fn map_mut<T: Send, R: Send>(
    items: &mut [T],
    ranges: &[Range<usize>],
    f: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    let mut runs = Vec::with_capacity(ranges.len());
    let mut rest = items;
    let mut at = 0;
    for r in ranges {
        let (run, after) = std::mem::take(&mut rest).split_at_mut(r.end - at);
        runs.push((r.start, run));
        rest = after;
        at = r.end;
    }
    run_all(runs, |(start, run)| f(start, run))
}

/// Runs `f` on each piece of work, the first on the calling thread and
/// each other on a thread of its own (or here, when no thread can be had),
/// and returns the results in order; a panic in any is re-raised here
/// once all have ended.
fn run_all<W: Send, R: Send>(work: Vec<W>, f: impl Fn(W) -> R + Sync) -> Vec<R> {
    let mut work = work.into_iter();
    let Some(first) = work.next() else {
        return Vec::new();
    };
    // Each other piece waits in a slot for the thread that takes it, or
    // for this one if the thread cannot be started.
    let rest: Vec<Mutex<Option<W>>> = work.map(|w| Mutex::new(Some(w))).collect();
    if rest.is_empty() {
        return vec![f(first)];
    }
    let take = |slot: &Mutex<Option<W>>| {
        slot.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .expect("each piece of work is taken once")
    };
    std::thread::scope(|s| {
        let (f, take) = (&f, &take);
        let handles: Vec<_> = rest
            .iter()
            .map(|slot| {
                std::thread::Builder::new()
                    .name("compile".into())
                    .spawn_scoped(s, move || f(take(slot)))
            })
            .collect();
        let mut out = Vec::with_capacity(rest.len() + 1);
        out.push(f(first));
        for (h, slot) in handles.into_iter().zip(&rest) {
            out.push(match h {
                Ok(h) => h
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                // No thread to be had: the work is done here instead.
                Err(_) => f(take(slot)),
            });
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_every_item_once_in_order_and_balances_the_weight() {
        for (weights, n) in [
            (vec![1; 10], 2),
            (vec![1; 10], 3),
            (vec![5, 1, 1, 1, 1, 1], 2),
            (vec![1, 1, 1, 1, 1, 100], 2),
            (vec![3], 4),
            (vec![], 2),
            (vec![0, 0, 0], 2),
        ] {
            let ranges = split(&weights, n);
            assert!(ranges.len() <= n.max(1), "{weights:?} {n}: {ranges:?}");
            assert!(ranges.iter().all(|r| !r.is_empty()) || weights.is_empty());
            let flat: Vec<usize> = ranges.iter().flat_map(Clone::clone).collect();
            assert_eq!(flat, (0..weights.len()).collect::<Vec<_>>(), "{ranges:?}");
        }
        let ranges = split(&[1; 10], 2);
        assert_eq!(ranges, vec![0..5, 5..10]);
        // The heavy item alone is half the work: the rest goes beside it.
        assert_eq!(split(&[1, 1, 1, 1, 1, 100], 2), vec![0..5, 5..6]);
        assert_eq!(split(&[1; 9], 3), vec![0..3, 3..6, 6..9]);
    }

    #[test]
    fn map_returns_results_in_range_order_from_several_threads() {
        let ranges = split(&[1; 8], 4);
        let ids = map(&ranges, |r| (r, std::thread::current().id()));
        let got: Vec<Range<usize>> = ids.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(got, ranges);
        let distinct: std::collections::HashSet<_> = ids.iter().map(|(_, t)| *t).collect();
        assert_eq!(distinct.len(), 4, "each range ran on its own thread");
        assert_eq!(ids[0].1, std::thread::current().id(), "the first ran here");
    }

    #[test]
    fn map_mut_gives_each_thread_its_own_run_with_its_first_index() {
        let mut items: Vec<usize> = vec![0; 10];
        let ranges = split(&[1; 10], 3);
        let starts = map_mut(&mut items, &ranges, |start, run| {
            for (k, x) in run.iter_mut().enumerate() {
                *x = start + k;
            }
            (start, run.len(), std::thread::current().id())
        });
        assert_eq!(
            items,
            (0..10).collect::<Vec<_>>(),
            "every item once, in place"
        );
        let got: Vec<Range<usize>> = starts.iter().map(|&(s, n, _)| s..s + n).collect();
        assert_eq!(got, ranges);
        let distinct: std::collections::HashSet<_> = starts.iter().map(|&(.., t)| t).collect();
        assert_eq!(distinct.len(), 3, "each run on its own thread");
        // No items: one empty run, here.
        assert_eq!(
            map_mut(&mut Vec::<u8>::new(), &split(&[], 2), |s, r| (s, r.len())),
            vec![(0, 0)]
        );
    }

    #[test]
    fn a_panic_on_a_worker_reaches_the_caller() {
        let ranges = split(&[1; 4], 2);
        let r = std::panic::catch_unwind(|| {
            map(&ranges, |r| {
                assert!(r.start == 0, "worker fails");
                r.len()
            })
        });
        assert!(r.is_err());
    }

    #[test]
    fn auto_stays_on_one_thread_for_small_programs() {
        assert_eq!(Threads::Auto.count(Threads::MIN_WORK - 1, 100), 1);
        assert_eq!(Threads::fixed(3).count(10, 100), 3);
        assert_eq!(Threads::fixed(3).count(10, 2), 2);
        assert_eq!(Threads::fixed(0).count(10, 2), 1);
    }
}
