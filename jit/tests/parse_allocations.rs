//! The parser allocates per function and per block, never per token or
//! per instruction: a counting global allocator (this test binary's own)
//! shows the number of allocations made while parsing a straight-line
//! function staying nearly flat as the function grows sixteen-fold. The
//! buffers that grow with the text (the register table, the instruction
//! list) grow by doubling, so they add a handful of allocations per
//! doubling; a `String` per register name or a vector of every token would
//! add thousands.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;

use preempt_jit::ir;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// count is a thread-local `Cell` with a const initialiser, which neither
// allocates nor takes a lock.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// One function of `n` instructions, each defining a new register from
/// earlier ones, with loads, stores and constants among the arithmetic.
fn straight_line(n: usize) -> String {
    let mut s = String::from("global @g: i64 = 1\n\nfunc @main() {\n    %x0 = const 1\n");
    for j in 1..n {
        match j % 5 {
            0 => writeln!(s, "    %x{j} = load @g").unwrap(),
            1 => writeln!(s, "    store @g, %x{}\n    %x{j} = copy %x{}", j - 1, j / 2).unwrap(),
            2 => writeln!(s, "    %x{j} = const {j} ; a comment").unwrap(),
            _ => writeln!(s, "    %x{j} = add %x{}, %x{}", j - 1, j / 2).unwrap(),
        }
    }
    s.push_str("    ret\n}\n");
    s
}

/// Allocations made on this thread while parsing `src`.
fn allocations_to_parse(src: &str) -> (usize, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let prog = ir::parse(src).expect("the program parses");
    let after = ALLOCATIONS.with(Cell::get);
    (after - before, prog.inst_count())
}

#[test]
fn parsing_allocates_per_function_not_per_instruction() {
    let (small, small_insts) = allocations_to_parse(&straight_line(1_000));
    let (large, large_insts) = allocations_to_parse(&straight_line(16_000));
    assert!(
        large_insts >= 16 * small_insts - 16,
        "{small_insts} {large_insts}"
    );
    eprintln!("{small} allocations for {small_insts} instructions, {large} for {large_insts}");
    // Four more doublings of each growing buffer, and then some; a single
    // allocation per instruction would be 15,000 more.
    assert!(
        large <= small + 100,
        "{small} allocations for {small_insts} instructions, {large} for {large_insts}"
    );
}
