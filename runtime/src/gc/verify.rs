//! `--gc-verify`: an independent check of each cycle's marking.
//!
//! At mark termination, with the world stopped and marking finished, a
//! plain depth-first walk from the same roots (every root class, whatever
//! fault is injected into the marker) visits every reachable object, with
//! its own visited set, and checks that each one is marked: an unmarked
//! reachable object is one the sweep is about to free while the program
//! can still use it. The walk also checks that every ref it follows
//! (precise ones: ref globals and ref slots) leads to an object, not to a
//! freed one. It is the marking a stop-the-world collector would do, so it
//! finds exactly what concurrency broke: a barrier that did not shade, a
//! root class the scan missed.
//!
//! The other half of verification is in the sweep ([`super::heap`]):
//! freed objects are poisoned and quarantined for a cycle.

use std::collections::HashSet;
use std::fmt::Write;

use preempt_jit::abi::TAG_REF;

use super::mark::MarkState;
use super::roots::{self, Root, Roots};

/// How many problems a report lists.
const SHOWN: usize = 5;

enum Problem {
    /// A reachable object the sweep would free.
    Unmarked { obj: usize, root: Root, depth: u32 },
    /// A ref leading nowhere (to a freed object, or no object at all).
    Dangling {
        from: Option<usize>,
        root: Root,
        target: u64,
        freed: bool,
    },
}

/// Checks cycle `cycle` (heap epoch `epoch`); the report of what is wrong
/// otherwise. The world must be stopped.
pub fn check(roots: &Roots<'_>, mark: &MarkState, epoch: u64, cycle: u64) -> Result<(), String> {
    let heap = &mark.heap;
    let mut seen: HashSet<usize> = HashSet::new();
    let mut stack: Vec<(usize, Root, u32)> = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    // The precise roots are walked first, so that an object the heap
    // still leads to is reported with that path, not with a stack word
    // that happens to hold it too: a path from a global through ref slots
    // is a ref the program holds for certain, a conservative word may be
    // a dead one.
    let mut conservative: Vec<(usize, Root)> = Vec::new();
    roots::scan(roots, roots::Classes::default(), |root, v| {
        if let Some(o) = heap.find_object(v as usize) {
            if !root.is_precise() {
                conservative.push((o, root));
            } else if seen.insert(o) {
                stack.push((o, root, 0));
            }
        } else if root.is_precise() && v != 0 {
            problems.push(Problem::Dangling {
                from: None,
                root,
                target: v,
                freed: heap.freed_object(v as usize).is_some(),
            });
        }
    });
    conservative.reverse();
    let mut walked = 0u64;
    while let Some((obj, root, depth)) = stack.pop().or_else(|| {
        std::iter::from_fn(|| conservative.pop())
            .find(|(o, _)| seen.insert(*o))
            .map(|(o, root)| (o, root, 0))
    }) {
        walked += 1;
        if !heap.is_marked(obj, epoch) {
            problems.push(Problem::Unmarked { obj, root, depth });
        }
        for i in 0..heap.slots(obj) {
            let (tag, v) = heap.slot(obj, i);
            if tag != TAG_REF || v == 0 {
                continue;
            }
            match heap.find_object(v as usize) {
                Some(o) => {
                    if seen.insert(o) {
                        stack.push((o, root, depth + 1));
                    }
                }
                None => problems.push(Problem::Dangling {
                    from: Some(obj),
                    root,
                    target: v,
                    freed: heap.freed_object(v as usize).is_some(),
                }),
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut out = String::new();
    for (k, p) in problems.iter().take(SHOWN).enumerate() {
        let line = match p {
            Problem::Unmarked { obj, root, depth } => format!(
                "object {obj:#x} ({} slots) is reachable but was not marked in GC cycle {cycle}: the sweep would free it\n\treached from {}{}",
                heap.slots(*obj),
                root.describe(roots.module),
                match depth {
                    0 => String::new(),
                    1 => " through 1 ref".to_string(),
                    d => format!(" through {d} refs"),
                },
            ),
            Problem::Dangling {
                from,
                root,
                target,
                freed,
            } => {
                let what = if *freed { "a freed object" } else { "no object" };
                let holder = match from {
                    Some(o) => format!("object {o:#x} (reached from {})", root.describe(roots.module)),
                    None => root.describe(roots.module),
                };
                format!("{holder} holds a ref to {target:#x}, which is {what}")
            }
        };
        if k == 0 {
            writeln!(out, "fatal error: gc-verify: {line}").unwrap();
        } else {
            writeln!(out, "gc-verify: {line}").unwrap();
        }
    }
    if problems.len() > SHOWN {
        writeln!(out, "gc-verify: ... and {} more", problems.len() - SHOWN).unwrap();
    }
    writeln!(
        out,
        "gc-verify: {} problems in GC cycle {cycle}; {walked} reachable objects walked",
        problems.len()
    )
    .unwrap();
    Err(out)
}
