//! The kernels written in Rust: the reference the JIT is compared with.
//!
//! rustc would otherwise see through these loops: LLVM turns `sum` into a
//! closed formula and vectorises `nested`. Inputs go through `black_box`,
//! and each loop passes its accumulator through `keep`, an empty `asm!`
//! that LLVM must assume reads and changes the register. That keeps the
//! loop a loop without adding memory traffic, so the comparison is
//! loop against loop, instruction selection and register allocation
//! against rustc's.

use std::hint::black_box;

/// An optimisation barrier on a register value; costs no instruction.
#[inline(always)]
fn keep(x: &mut i64) {
    // SAFETY: an empty assembly block that only claims to read and write
    // `x` in a register; it touches no memory and no other state.
    unsafe {
        std::arch::asm!(
            "/* {0} */",
            inout(reg) * x,
            options(nomem, nostack, preserves_flags)
        )
    }
}

pub fn sum(n: i64) -> i64 {
    let n = black_box(n);
    let mut s = 0i64;
    let mut i = 0i64;
    while i < n {
        s = s.wrapping_add(i);
        keep(&mut s);
        i += 1;
    }
    black_box(s)
}

pub fn nested(n: i64) -> i64 {
    let n = black_box(n);
    let mut s = 0i64;
    for i in 0..n {
        for j in 0..1000i64 {
            s = s.wrapping_add(i.wrapping_mul(j)).wrapping_add(i ^ j);
            keep(&mut s);
        }
    }
    black_box(s)
}

/// A list node, as the PIR kernel builds them.
#[derive(Debug)]
pub struct Node {
    value: i64,
    next: Option<Box<Node>>,
}

pub fn build(len: i64) -> Option<Box<Node>> {
    let mut head = None;
    for i in 0..len {
        head = Some(Box::new(Node {
            value: i,
            next: head,
        }));
    }
    head
}

pub fn heapwalk(n: i64) -> i64 {
    let list = build(black_box(1000));
    let rounds = black_box(n) / 1000;
    let mut s = 0i64;
    for _ in 0..rounds {
        let mut p = list.as_deref();
        while let Some(node) = p {
            s = s.wrapping_add(node.value);
            keep(&mut s);
            p = node.next.as_deref();
        }
    }
    // Drop the list iteratively: a long Box chain would recurse.
    let mut p = list;
    while let Some(mut node) = p {
        p = node.next.take();
    }
    black_box(s)
}

pub fn fib(n: i64) -> i64 {
    fn f(n: i64) -> i64 {
        if n < 2 {
            n
        } else {
            f(n - 1) + f(n - 2)
        }
    }
    f(black_box(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_compute_the_kernels() {
        assert_eq!(sum(10), 45);
        assert_eq!(
            nested(2),
            (0..2i64)
                .flat_map(|i| (0..1000).map(move |j| i * j + (i ^ j)))
                .sum::<i64>()
        );
        assert_eq!(heapwalk(2000), 2 * (0..1000).sum::<i64>());
        assert_eq!(fib(20), 6765);
    }
}
