use super::*;

#[test]
fn a_freed_stack_is_reused_before_a_fresh_one_is_carved() {
    let pool = StackPool::new(64 * 1024, 0);
    let a = pool.get(STACK_MIN).expect("a stack");
    let lo = a.lo();
    pool.put(a);
    assert_eq!(pool.free_count(STACK_MIN), 1);
    let b = pool.get(STACK_MIN).expect("a stack");
    assert_eq!(b.lo(), lo, "the freed stack comes back");
    assert_eq!(pool.free_count(STACK_MIN), 0);
}

#[test]
fn carved_stacks_are_disjoint_usable_and_span_slabs() {
    let pool = StackPool::new(1 << 20, 0);
    let mut stacks = Vec::new();
    let mut size = STACK_MIN;
    while let Some(next) = pool.grown_size(size) {
        for _ in 0..SLAB_BYTES / size + 2 {
            stacks.push(pool.get(size).expect("a stack"));
        }
        size = next;
    }
    stacks.push(pool.get(size).expect("a stack at the limit"));
    assert_eq!(size, 1 << 20);
    let mut ranges: Vec<(usize, usize)> = stacks.iter().map(|s| (s.lo(), s.hi())).collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].1 <= w[1].0, "stacks overlap: {w:?}");
    }
    for s in &stacks {
        assert_eq!(s.hi() % 16, 0);
        // SAFETY: both words lie in the stack's usable part, which
        // nothing else uses.
        unsafe {
            (s.lo() as *mut u64).write(1);
            ((s.hi() - 8) as *mut u64).write(2);
            assert_eq!((s.lo() as *const u64).read(), 1);
        }
    }
}

#[test]
fn stacks_double_up_to_the_limit_and_no_further() {
    let pool = StackPool::new(100 * 1024, 0);
    let mut sizes = vec![STACK_MIN];
    while let Some(s) = pool.grown_size(*sizes.last().expect("one")) {
        sizes.push(s);
    }
    assert_eq!(
        sizes,
        [1, 2, 4, 8, 16, 32]
            .map(|k| k * STACK_MIN)
            .into_iter()
            .chain([100 * 1024])
            .collect::<Vec<_>>(),
        "doubling, the last step capped at the limit"
    );
    assert_eq!(pool.first_size(0), STACK_MIN);
    assert_eq!(pool.first_size(STACK_MIN), 2 * STACK_MIN);
}

#[test]
fn a_mapped_stack_is_not_kept() {
    let pool = StackPool::new(1 << 20, 0);
    let s = pool.get(SLAB_BYTES).expect("a stack");
    pool.put(s);
    assert_eq!(pool.free_count(SLAB_BYTES), 0);
}

#[test]
fn a_copy_moves_the_used_part_and_rewrites_the_frame_pointer_chain() {
    let pool = StackPool::new(1 << 20, 0);
    let old = pool.get(STACK_MIN).expect("a stack");
    let new = pool.get(2 * STACK_MIN).expect("a stack");
    let hi = old.hi();
    // Three frame records chained from the innermost, the outermost ending
    // the chain with 0 as the goroutine entry stub does, and a value word
    // that happens to look like an address of the stack.
    let (outer, middle, inner) = (hi - 64, hi - 160, hi - 256);
    let sp = inner - 40;
    let words = [
        (outer, 0),
        (outer + 8, 0x1111),
        (middle, outer as u64),
        (middle + 8, 0x2222),
        (middle + 16, (hi - 8) as u64),
        (inner, middle as u64),
        (inner + 8, 0x3333),
        (sp, 0x4444),
    ];
    for &(a, v) in &words {
        // SAFETY: words of a stack nothing else uses.
        unsafe { (a as *mut u64).write(v) };
    }
    // SAFETY: sp lies in `old`, `new` is larger and unused.
    let (nsp, nfp) = unsafe { copy_to(&old, &new, sp, inner) };
    let d = new.hi().wrapping_sub(hi);
    assert_eq!(nsp, sp.wrapping_add(d));
    assert_eq!(nfp, inner.wrapping_add(d));
    let read = |a: usize| {
        // SAFETY: a word of the copied part of `new`.
        unsafe { (a.wrapping_add(d) as *const u64).read() }
    };
    assert_eq!(read(inner), middle.wrapping_add(d) as u64, "rewritten");
    assert_eq!(read(middle), outer.wrapping_add(d) as u64, "rewritten");
    assert_eq!(read(outer), 0, "the end of the chain stays");
    assert_eq!(
        read(middle + 16),
        (hi - 8) as u64,
        "a value is copied as it is"
    );
    for a in [outer + 8, middle + 8, inner + 8, sp] {
        // SAFETY: as above.
        assert_eq!(read(a), unsafe { (a as *const u64).read() });
    }
}

#[test]
fn large_frames_raise_the_guard() {
    let pool = StackPool::new(1 << 20, 4000);
    assert!(pool.first_size(0) >= 4000 + 64);
    let s = pool.get(pool.first_size(0)).expect("a stack");
    assert!(s.guard() >= s.lo() + 4000 + 64);
    assert_eq!(StackPool::new(1 << 20, 100).first_size(0), STACK_MIN);
}

/// Fills the whole stack with `word`.
fn fill(s: &Stack, word: u64) {
    for addr in (s.lo()..s.hi()).step_by(8) {
        // SAFETY: a word of the stack's usable part, which nothing else
        // uses.
        unsafe { (addr as *mut u64).write(word) };
    }
}

/// The stack's words, lowest first.
fn words(s: &Stack) -> Vec<u64> {
    (s.lo()..s.hi())
        .step_by(8)
        // SAFETY: as in `fill`.
        .map(|addr| unsafe { (addr as *const u64).read() })
        .collect()
}

#[test]
fn a_reused_stack_comes_back_zeroed_only_when_the_pool_clears() {
    for clear in [false, true] {
        let pool = StackPool::new(64 * 1024, 0).clearing_reused(clear);
        let a = pool.get(STACK_MIN).expect("a stack");
        fill(&a, 0x5eed);
        pool.put(a);
        let b = pool.get(STACK_MIN).expect("the freed stack");
        let want = if clear { 0 } else { 0x5eed };
        assert!(words(&b).iter().all(|&w| w == want), "clear {clear}");
    }
}

#[test]
fn clearing_below_an_address_zeroes_exactly_the_words_below_it() {
    let pool = StackPool::new(64 * 1024, 0);
    let s = pool.get(STACK_MIN).expect("a stack");
    for cut in [s.lo(), s.lo() + 8, s.lo() + 1000, s.hi() - 8, s.hi()] {
        fill(&s, 0x5eed);
        // SAFETY: nothing runs on the stack.
        unsafe { s.clear_below(cut) };
        let below = (cut - s.lo()) / 8;
        let w = words(&s);
        assert!(w[..below].iter().all(|&x| x == 0), "cut {cut:#x}");
        assert!(w[below..].iter().all(|&x| x == 0x5eed), "cut {cut:#x}");
    }
    // An address outside the stack is clamped to it.
    fill(&s, 0x5eed);
    // SAFETY: as above.
    unsafe { s.clear_below(s.lo() - 64) };
    assert!(words(&s).iter().all(|&x| x == 0x5eed));
    // SAFETY: as above.
    unsafe { s.clear_below(s.hi() + 64) };
    assert!(words(&s).iter().all(|&x| x == 0));
}
