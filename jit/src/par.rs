//! Compiling a large program on several threads.
//!
//! The compiler's work is per function (parsing a body, verifying it,
//! optimising it, allocating its registers) and functions are independent
//! once the program's names are known. A program is cut into contiguous
//! runs of functions of about equal size, a few per thread
//! ([`PIECES_PER_THREAD`]); the threads take the next run not yet taken
//! until none is left, and the results are put back in function order.
//! A thread slowed down (another process, or the hypervisor, taking its
//! CPU for a while) then does fewer runs, rather than holding up the
//! phase with its fixed half of the work. The output never depends on the
//! number of threads: every phase that runs in parallel merges its
//! results (and its errors, the first in the text winning) exactly as one
//! thread would have produced them, and tests compile with one thread and
//! with several and compare.
//!
//! Threads are scoped (`std::thread::scope`): they live for one phase and
//! borrow the program; a panic on one is re-raised on the caller. Small
//! programs, the common case, stay on the calling thread: starting a
//! thread costs tens of microseconds, about what verifying ten thousand
//! instructions costs.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// How many pieces each thread's share of the work is cut into: enough
/// for the threads to even out a slowed one, few enough that a piece's
/// set-up (a parser's tables, a thread's first touch of its data) stays
/// small against its work.
pub const PIECES_PER_THREAD: usize = 4;

/// How many pieces work for `threads` threads is cut into: one for one
/// thread, [`PIECES_PER_THREAD`] per thread otherwise.
pub fn piece_count(threads: usize) -> usize {
    if threads < 2 {
        1
    } else {
        threads * PIECES_PER_THREAD
    }
}

/// Work cut into pieces, and the threads to run them on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pieces {
    /// Contiguous, in order, covering every item.
    pub ranges: Vec<Range<usize>>,
    pub threads: usize,
}

impl Pieces {
    /// Items of `weights` (one each, in order) cut for `threads`
    /// threads: one piece for one thread, [`PIECES_PER_THREAD`] per
    /// thread otherwise (fewer when there are fewer items).
    pub fn cut(weights: &[usize], threads: usize) -> Pieces {
        let ranges = split(weights, piece_count(threads));
        Pieces {
            threads: threads.clamp(1, ranges.len()),
            ranges,
        }
    }
}

/// `funcs` cut into runs of about equal instruction counts, for the
/// threads that `threads` gives a program of their size.
pub fn function_pieces(funcs: &[Function], threads: Threads) -> Pieces {
    let weights: Vec<usize> = funcs.iter().map(|f| f.inst_count() + 1).collect();
    Pieces::cut(&weights, threads.count(weights.iter().sum(), weights.len()))
}

/// Runs `f` on each piece, on the calling thread and `pieces.threads - 1`
/// others, and returns the results in piece order. A panic in any of them
/// is re-raised here once all have ended.
pub fn map<R: Send>(pieces: &Pieces, f: impl Fn(Range<usize>) -> R + Sync) -> Vec<R> {
    run_all(pieces.ranges.clone(), pieces.threads, f)
}

/// Runs `f` on the runs of `items` that `pieces` cut, each with the index
/// of its first item, as [`map`] does: the runs are disjoint, so each may
/// be changed on whichever thread takes it.
pub fn map_mut<T: Send, R: Send>(
    items: &mut [T],
    pieces: &Pieces,
    f: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    let mut runs = Vec::with_capacity(pieces.ranges.len());
    let mut rest = items;
    let mut at = 0;
    for r in &pieces.ranges {
        debug_assert_eq!(r.start, at, "pieces are contiguous and in order");
        let (run, after) = std::mem::take(&mut rest).split_at_mut(r.end - at);
        runs.push((r.start, run));
        rest = after;
        at = r.end;
    }
    run_all(runs, pieces.threads, |(start, run)| f(start, run))
}

/// Runs `f` on each piece of work on the calling thread and up to
/// `threads - 1` others, each taking the next piece not yet taken, and
/// returns the results in order; a panic in any is re-raised here once
/// all have ended. A thread that cannot be started leaves its share to
/// the others.
fn run_all<W: Send, R: Send>(work: Vec<W>, threads: usize, f: impl Fn(W) -> R + Sync) -> Vec<R> {
    let count = work.len();
    if threads < 2 || count < 2 {
        return work.into_iter().map(f).collect();
    }
    // Each piece waits in a slot for the thread that takes it.
    let slots: Vec<Mutex<Option<W>>> = work.into_iter().map(|w| Mutex::new(Some(w))).collect();
    let next = AtomicUsize::new(0);
    let drain = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = slots.get(i) else {
                return done;
            };
            let w = slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .expect("each piece is taken once");
            done.push((i, f(w)));
        }
    };
    let mut results: Vec<Option<R>> = (0..count).map(|_| None).collect();
    std::thread::scope(|s| {
        let drain = &drain;
        let workers: Vec<_> = (1..threads.min(count))
            .filter_map(|_| {
                std::thread::Builder::new()
                    .name("compile".into())
                    .spawn_scoped(s, drain)
                    .ok()
            })
            .collect();
        let mut all = vec![drain()];
        for w in workers {
            all.push(
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        for (i, r) in all.into_iter().flatten() {
            results[i] = Some(r);
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every piece was run"))
        .collect()
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
    fn work_is_cut_into_a_few_pieces_per_thread() {
        let one = Pieces::cut(&[1; 100], 1);
        assert_eq!(
            (one.ranges.len(), one.ranges.first(), one.threads),
            (1, Some(&(0..100)), 1)
        );
        let two = Pieces::cut(&[1; 100], 2);
        assert_eq!(two.ranges.len(), 2 * PIECES_PER_THREAD);
        assert_eq!(two.threads, 2);
        // Fewer items than pieces: a piece each, and no more threads
        // than pieces.
        let few = Pieces::cut(&[1; 3], 4);
        assert_eq!((few.ranges, few.threads), (vec![0..1, 1..2, 2..3], 3));
    }

    #[test]
    fn map_returns_results_in_piece_order_from_several_threads() {
        let pieces = Pieces::cut(&[1; 64], 4);
        let ids = map(&pieces, |r| (r, std::thread::current().id()));
        let got: Vec<Range<usize>> = ids.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(got, pieces.ranges);
        let distinct: std::collections::HashSet<_> = ids.iter().map(|(_, t)| *t).collect();
        assert!(distinct.len() <= 4, "at most the threads asked for");
    }

    #[test]
    fn a_slowed_thread_leaves_the_remaining_pieces_to_the_others() {
        // The first piece taken holds its thread until every other piece
        // is done: with the work shared out in fixed halves, its own
        // other pieces would wait behind it for ever. The watchdog is
        // generous (a loaded machine or an emulator starts a thread
        // slowly) and turns that into a failure.
        let pieces = Pieces::cut(&[1; 8], 2);
        let others = pieces.ranges.len() - 1;
        let done = AtomicUsize::new(0);
        let held = std::sync::atomic::AtomicBool::new(false);
        let threads = map(&pieces, |_| {
            if !held.swap(true, Ordering::SeqCst) {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                while done.load(Ordering::SeqCst) < others {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the other pieces waited behind the held one"
                    );
                    std::thread::yield_now();
                }
            } else {
                done.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::current().id()
        });
        assert_eq!(threads.len(), pieces.ranges.len());
    }

    #[test]
    fn map_mut_gives_each_run_with_its_first_index() {
        let mut items: Vec<usize> = vec![0; 10];
        let pieces = Pieces::cut(&[1; 10], 3);
        let runs = map_mut(&mut items, &pieces, |start, run| {
            for (k, x) in run.iter_mut().enumerate() {
                *x = start + k;
            }
            start..start + run.len()
        });
        assert_eq!(
            items,
            (0..10).collect::<Vec<_>>(),
            "every item once, in place"
        );
        assert_eq!(runs, pieces.ranges);
        // No items: one empty run, here.
        let none = Pieces::cut(&[], 2);
        assert_eq!(
            map_mut(&mut Vec::<u8>::new(), &none, |s, r| (s, r.len())),
            vec![(0, 0)]
        );
    }

    #[test]
    fn a_panic_in_any_piece_reaches_the_caller() {
        let pieces = Pieces::cut(&[1; 4], 2);
        let r = std::panic::catch_unwind(|| {
            map(&pieces, |r| {
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
