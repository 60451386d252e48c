//! Channels with Go's semantics.
//!
//! A channel is a buffer of `cap` values (0: unbuffered, every send meets a
//! receive), a closed flag, and queues of parked senders and receivers. As
//! in Go, a send to a parked receiver (or a receive from a parked sender)
//! hands the value over directly and wakes the other goroutine; a receive
//! on a closed, drained channel gives 0; a send on a closed channel, or a
//! second close, panics.
//!
//! The functions here never wake anything themselves: they say what
//! happened ([`Step`]) and which goroutines to wake with what ([`Wake`]),
//! and the scheduler does it after the channel locks are released. When
//! the goroutine must wait, they call the scheduler's `park` while still
//! holding the locks, after enqueuing it: as with Go's `gopark` and its
//! unlock function, no waker can see the goroutine before it is marked
//! waiting. `select` follows Go's `selectgo`: lock every channel involved
//! in address order, poll the arms in a random order, take the first ready
//! one (or `default`); otherwise enqueue a waiter on every channel, all
//! sharing one token, so that exactly one channel operation wins the
//! goroutine.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use preempt_jit::fault::Fault;

use crate::g::{Resume, G};

/// A parked goroutine on a channel queue.
#[derive(Debug)]
struct Waiter {
    g: Arc<G>,
    /// For a sender, the value it sends.
    value: i64,
    /// For a select, the arm this waiter stands for and the shared token.
    select: Option<(usize, Arc<AtomicBool>)>,
}

impl Waiter {
    /// Claims the goroutine for this channel operation; false if another
    /// arm of its select already won it.
    fn claim(&self) -> bool {
        match &self.select {
            None => true,
            Some((_, token)) => !token.swap(true, Ordering::AcqRel),
        }
    }

    fn wake(self, value: Option<u64>) -> Wake {
        let arm = self.select.as_ref().map(|s| s.0 as u32);
        Wake {
            g: self.g,
            value: value.unwrap_or(0),
            arm: arm.unwrap_or(0),
            flags: if value.is_some() { Wake::HAS_VALUE } else { 0 }
                | if arm.is_some() { Wake::HAS_ARM } else { 0 },
        }
    }
}

#[derive(Debug, Default)]
struct State {
    buf: VecDeque<i64>,
    closed: bool,
    recvq: VecDeque<Waiter>,
    sendq: VecDeque<Waiter>,
}

/// A channel.
#[derive(Debug)]
pub struct Chan {
    pub id: u32,
    pub cap: usize,
    state: Mutex<State>,
}

/// A goroutine to wake, and what it finds when it resumes. Small (24
/// bytes: the options packed into flags) and without destructor work
/// beyond the `Arc`: every hand-over makes one and moves it twice.
#[derive(Debug)]
pub struct Wake {
    pub g: Arc<G>,
    value: u64,
    arm: u32,
    flags: u32,
}

impl Wake {
    const HAS_VALUE: u32 = 1;
    const HAS_ARM: u32 = 2;
    const CLOSED: u32 = 4;

    /// The value it receives.
    pub fn value(&self) -> Option<u64> {
        (self.flags & Wake::HAS_VALUE != 0).then_some(self.value)
    }

    /// The select arm that won it.
    pub fn arm(&self) -> Option<u32> {
        (self.flags & Wake::HAS_ARM != 0).then_some(self.arm)
    }

    /// It was sending on a channel that got closed: it panics.
    pub fn closed(&self) -> bool {
        self.flags & Wake::CLOSED != 0
    }

    pub fn resume(&self) -> Resume {
        Resume {
            value: self.value(),
            arm: self.arm().map(|a| a as usize),
            fault: self.closed().then_some(Fault::SendOnClosedChannel),
        }
    }
}

/// The outcome of a channel operation for the goroutine making it.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Done; the value received (or 0 for a send).
    Done(i64),
    /// The goroutine was enqueued and must park.
    Park,
    /// The operation panics.
    Panic(Fault),
}

/// One case of a select, resolved to its channel.
#[derive(Debug, Clone)]
pub enum Case {
    Recv(Arc<Chan>),
    Send(Arc<Chan>, i64),
    Default,
}

/// The outcome of a select.
#[derive(Debug, PartialEq, Eq)]
pub enum SelectStep {
    /// Case `arm` (its index) was taken; `value` is what a receive got.
    Done {
        arm: usize,
        value: i64,
    },
    /// Waiters were enqueued on every channel; park.
    Park,
    Panic(Fault),
}

impl Chan {
    pub fn new(id: u32, cap: usize) -> Chan {
        Chan {
            id,
            cap,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `send ch, v` by `g`.
    pub fn send(&self, g: &Arc<G>, v: i64, wakes: &mut Vec<Wake>, park: impl FnOnce()) -> Step {
        let mut st = self.lock();
        match self.try_send(&mut st, v, wakes) {
            Some(step) => step,
            None => {
                st.sendq.push_back(Waiter {
                    g: g.clone(),
                    value: v,
                    select: None,
                });
                park();
                Step::Park
            }
        }
    }

    /// A send that does not park: `Some` unless it would block.
    fn try_send(&self, st: &mut State, v: i64, wakes: &mut Vec<Wake>) -> Option<Step> {
        if st.closed {
            return Some(Step::Panic(Fault::SendOnClosedChannel));
        }
        while let Some(w) = st.recvq.pop_front() {
            if w.claim() {
                wakes.push(w.wake(Some(v as u64)));
                return Some(Step::Done(0));
            }
        }
        if st.buf.len() < self.cap {
            st.buf.push_back(v);
            return Some(Step::Done(0));
        }
        None
    }

    /// `recv ch` by `g`.
    pub fn recv(&self, g: &Arc<G>, wakes: &mut Vec<Wake>, park: impl FnOnce()) -> Step {
        let mut st = self.lock();
        match self.try_recv(&mut st, wakes) {
            Some(v) => Step::Done(v),
            None => {
                st.recvq.push_back(Waiter {
                    g: g.clone(),
                    value: 0,
                    select: None,
                });
                park();
                Step::Park
            }
        }
    }

    /// A receive that does not park: the value, unless it would block.
    fn try_recv(&self, st: &mut State, wakes: &mut Vec<Wake>) -> Option<i64> {
        while let Some(w) = st.sendq.pop_front() {
            if !w.claim() {
                continue;
            }
            let v = if self.cap == 0 {
                w.value
            } else {
                // A full buffer: take its head, and the sender's value joins
                // the tail.
                let head = st.buf.pop_front().unwrap_or(w.value);
                st.buf.push_back(w.value);
                head
            };
            wakes.push(w.wake(None));
            return Some(v);
        }
        if let Some(v) = st.buf.pop_front() {
            return Some(v);
        }
        if st.closed {
            return Some(0);
        }
        None
    }

    /// A send that never parks (the runtime's own, e.g. for `after`):
    /// whether it was delivered or buffered.
    pub fn offer(&self, v: i64, wakes: &mut Vec<Wake>) -> bool {
        let mut st = self.lock();
        matches!(self.try_send(&mut st, v, wakes), Some(Step::Done(_)))
    }

    /// `close ch`.
    pub fn close(&self, wakes: &mut Vec<Wake>) -> Step {
        let mut st = self.lock();
        if st.closed {
            return Step::Panic(Fault::CloseOfClosedChannel);
        }
        st.closed = true;
        for w in st.recvq.drain(..) {
            if w.claim() {
                wakes.push(w.wake(Some(0)));
            }
        }
        for w in st.sendq.drain(..) {
            if w.claim() {
                let mut wake = w.wake(None);
                wake.flags |= Wake::CLOSED;
                wakes.push(wake);
            }
        }
        Step::Done(0)
    }

    /// Removes the waiters of a finished select (those with `token`).
    pub fn forget(&self, token: &Arc<AtomicBool>) {
        let mut st = self.lock();
        let mine = |w: &Waiter| {
            w.select
                .as_ref()
                .is_some_and(|(_, t)| Arc::ptr_eq(t, token))
        };
        st.recvq.retain(|w| !mine(w));
        st.sendq.retain(|w| !mine(w));
    }

    /// Parked senders and receivers (for diagnoses and tests).
    pub fn waiting(&self) -> (usize, usize) {
        let st = self.lock();
        (st.sendq.len(), st.recvq.len())
    }
}

/// `select` by `g` over `arms`, polling in the order `order` (a permutation
/// of the arm indices: Go picks among ready arms at random). `park` gets
/// the token the waiters share.
pub fn select(
    g: &Arc<G>,
    arms: &[Case],
    order: &[usize],
    wakes: &mut Vec<Wake>,
    park: impl FnOnce(Arc<AtomicBool>),
) -> SelectStep {
    // Lock every distinct channel once, in id order, so two selects over the
    // same channels cannot deadlock.
    let mut chans: Vec<&Arc<Chan>> = arms
        .iter()
        .filter_map(|a| match a {
            Case::Recv(c) | Case::Send(c, _) => Some(c),
            Case::Default => None,
        })
        .collect();
    chans.sort_by_key(|c| c.id);
    chans.dedup_by_key(|c| c.id);
    let mut guards: Vec<(u32, MutexGuard<'_, State>)> =
        chans.iter().map(|c| (c.id, c.lock())).collect();
    let slot = |guards: &[(u32, MutexGuard<'_, State>)], id: u32| {
        guards
            .iter()
            .position(|(gid, _)| *gid == id)
            .expect("locked above")
    };
    for &i in order {
        match &arms[i] {
            Case::Recv(c) => {
                let k = slot(&guards, c.id);
                if let Some(v) = c.try_recv(&mut guards[k].1, wakes) {
                    return SelectStep::Done { arm: i, value: v };
                }
            }
            Case::Send(c, v) => {
                let k = slot(&guards, c.id);
                match c.try_send(&mut guards[k].1, *v, wakes) {
                    Some(Step::Panic(f)) => return SelectStep::Panic(f),
                    Some(_) => return SelectStep::Done { arm: i, value: 0 },
                    None => {}
                }
            }
            Case::Default => {}
        }
    }
    if let Some(d) = arms.iter().position(|a| matches!(a, Case::Default)) {
        return SelectStep::Done { arm: d, value: 0 };
    }
    let token = Arc::new(AtomicBool::new(false));
    for (i, arm) in arms.iter().enumerate() {
        let (c, value, send) = match arm {
            Case::Recv(c) => (c, 0, false),
            Case::Send(c, v) => (c, *v, true),
            Case::Default => continue,
        };
        let k = slot(&guards, c.id);
        let st = &mut guards[k].1;
        let w = Waiter {
            g: g.clone(),
            value,
            select: Some((i, token.clone())),
        };
        if send {
            st.sendq.push_back(w);
        } else {
            st.recvq.push_back(w);
        }
    }
    park(token);
    SelectStep::Park
}

/// Every channel of a run, by id, for the runtime calls that name one.
///
/// Lookups are on the path of every channel operation, so they take no
/// lock and touch no reference count: ids index segments that double in
/// size and never move once published (a channel lives as long as the
/// run). Only creation locks.
pub struct ChanTable {
    /// Channels published so far; ids below it are readable.
    len: AtomicUsize,
    /// Segment `k` holds ids `BASE*(2^k - 1) .. BASE*(2^(k+1) - 1)`.
    segs: [AtomicPtr<OnceLock<Arc<Chan>>>; SEGMENTS],
    grow: Mutex<()>,
}

const BASE: usize = 64;
const SEGMENTS: usize = 26;

impl Default for ChanTable {
    fn default() -> Self {
        ChanTable {
            len: AtomicUsize::new(0),
            segs: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            grow: Mutex::new(()),
        }
    }
}

impl std::fmt::Debug for ChanTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ChanTable({} channels)",
            self.len.load(Ordering::Acquire)
        )
    }
}

/// Segment and offset of id `i`.
fn locate(i: usize) -> (usize, usize) {
    let j = i / BASE + 1;
    let k = (usize::BITS - 1 - j.leading_zeros()) as usize;
    (k, i - BASE * ((1 << k) - 1))
}

fn segment_len(k: usize) -> usize {
    BASE << k
}

impl ChanTable {
    /// Makes a channel of capacity `cap`; None once ids run out.
    pub fn make(&self, cap: usize) -> Option<(u32, &Arc<Chan>)> {
        let _g = self.grow.lock().unwrap_or_else(|e| e.into_inner());
        let i = self.len.load(Ordering::Relaxed);
        let id = u32::try_from(i).ok()?;
        let (k, off) = locate(i);
        if k >= SEGMENTS {
            return None;
        }
        let mut seg = self.segs[k].load(Ordering::Acquire);
        if seg.is_null() {
            let fresh: Box<[OnceLock<Arc<Chan>>]> =
                (0..segment_len(k)).map(|_| OnceLock::new()).collect();
            seg = Box::into_raw(fresh).cast::<OnceLock<Arc<Chan>>>();
            self.segs[k].store(seg, Ordering::Release);
        }
        // SAFETY: `seg` is segment k, `segment_len(k)` slots long, and
        // `off` is below that; slots are never freed before the table.
        let slot = unsafe { &*seg.add(off) };
        let ch = slot.get_or_init(|| Arc::new(Chan::new(id, cap)));
        self.len.store(i + 1, Ordering::Release);
        Some((id, ch))
    }

    /// Channel `id`, if it exists.
    #[inline]
    pub fn get(&self, id: u32) -> Option<&Arc<Chan>> {
        let i = id as usize;
        if i >= self.len.load(Ordering::Acquire) {
            return None;
        }
        let (k, off) = locate(i);
        let seg = self.segs[k].load(Ordering::Acquire);
        // SAFETY: id i was published after its segment was (Release on
        // `len` after the segment store), so `seg` is non-null and holds
        // slot `off`; slots live as long as the table.
        unsafe { (*seg.add(off)).get() }
    }
}

impl Drop for ChanTable {
    fn drop(&mut self) {
        for (k, seg) in self.segs.iter().enumerate() {
            let p = seg.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: made by `Box::into_raw` of a slice of exactly
                // `segment_len(k)` slots in `make`, and freed only here.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, segment_len(k)))
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::g::{Exec, Status};
    use preempt_jit::ir::FuncId;

    fn g(id: u64) -> Arc<G> {
        let ig = preempt_jit::interp::Goroutine::detached(id);
        let g = Arc::new(G::new(
            id,
            FuncId(0),
            Exec::Interp {
                g: Box::new(ig),
                pending: false,
            },
        ));
        g.set_status(Status::Running);
        g
    }

    /// What the scheduler does with a select's token when it parks.
    fn park(me: &G) -> impl FnOnce(Arc<AtomicBool>) + '_ {
        |t| me.wait.lock().unwrap().select_token = Some(t)
    }

    #[test]
    fn unbuffered_send_meets_a_parked_receiver() {
        let c = Chan::new(1, 0);
        let (r, s) = (g(1), g(2));
        let mut wakes = Vec::new();
        assert_eq!(c.recv(&r, &mut wakes, || {}), Step::Park);
        assert_eq!(c.send(&s, 42, &mut wakes, || {}), Step::Done(0));
        assert_eq!(wakes.len(), 1);
        assert_eq!(wakes[0].g.id, 1);
        assert_eq!(wakes[0].resume().value, Some(42));
    }

    #[test]
    fn buffered_channels_queue_and_hand_over_in_order() {
        let c = Chan::new(1, 2);
        let s = g(1);
        let mut wakes = Vec::new();
        assert_eq!(c.send(&s, 1, &mut wakes, || {}), Step::Done(0));
        assert_eq!(c.send(&s, 2, &mut wakes, || {}), Step::Done(0));
        let blocked = g(2);
        assert_eq!(c.send(&blocked, 3, &mut wakes, || {}), Step::Park);
        let r = g(3);
        assert_eq!(c.recv(&r, &mut wakes, || {}), Step::Done(1));
        assert_eq!(
            wakes.len(),
            1,
            "the blocked sender's value joins the buffer"
        );
        assert_eq!(c.recv(&r, &mut wakes, || {}), Step::Done(2));
        assert_eq!(c.recv(&r, &mut wakes, || {}), Step::Done(3));
        assert_eq!(c.recv(&r, &mut wakes, || {}), Step::Park);
    }

    #[test]
    fn close_wakes_receivers_with_zero_and_senders_with_a_panic() {
        let c = Chan::new(1, 0);
        let mut wakes = Vec::new();
        assert_eq!(c.recv(&g(1), &mut wakes, || {}), Step::Park);
        let c2 = Chan::new(2, 0);
        assert_eq!(c2.send(&g(2), 5, &mut wakes, || {}), Step::Park);
        assert_eq!(c.close(&mut wakes), Step::Done(0));
        assert_eq!(c2.close(&mut wakes), Step::Done(0));
        assert_eq!(wakes[0].resume().value, Some(0));
        assert_eq!(wakes[1].resume().fault, Some(Fault::SendOnClosedChannel));
        assert_eq!(
            c.close(&mut wakes),
            Step::Panic(Fault::CloseOfClosedChannel)
        );
        assert_eq!(
            c.send(&g(3), 1, &mut wakes, || {}),
            Step::Panic(Fault::SendOnClosedChannel)
        );
        assert_eq!(
            c.recv(&g(4), &mut wakes, || {}),
            Step::Done(0),
            "closed and drained"
        );
    }

    #[test]
    fn select_takes_a_ready_arm_or_default_or_parks_once() {
        let (a, b) = (Arc::new(Chan::new(1, 1)), Arc::new(Chan::new(2, 0)));
        let mut wakes = Vec::new();
        let me = g(1);
        let arms = vec![Case::Recv(a.clone()), Case::Recv(b.clone()), Case::Default];
        assert_eq!(
            select(&me, &arms, &[0, 1], &mut wakes, park(&me)),
            SelectStep::Done { arm: 2, value: 0 }
        );
        assert!(a.offer(7, &mut wakes));
        assert_eq!(
            select(&me, &arms, &[1, 0], &mut wakes, park(&me)),
            SelectStep::Done { arm: 0, value: 7 }
        );
        let arms = vec![Case::Recv(a.clone()), Case::Recv(b.clone())];
        assert_eq!(
            select(&me, &arms, &[0, 1], &mut wakes, park(&me)),
            SelectStep::Park
        );
        assert_eq!((a.waiting(), b.waiting()), ((0, 1), (0, 1)));
        // A send on b wins the goroutine; a later send on a must not.
        assert_eq!(b.send(&g(2), 9, &mut wakes, || {}), Step::Done(0));
        assert_eq!(wakes.len(), 1);
        assert_eq!(wakes[0].resume().arm, Some(1));
        assert_eq!(wakes[0].resume().value, Some(9));
        assert!(
            a.offer(8, &mut wakes),
            "buffered: the stale waiter is skipped"
        );
        assert_eq!(wakes.len(), 1);
        let token = me.wait.lock().unwrap().select_token.clone().unwrap();
        a.forget(&token);
        assert_eq!(a.waiting(), (0, 0));
    }

    #[test]
    fn the_table_finds_every_channel_across_segments() {
        let t = ChanTable::default();
        assert!(t.get(0).is_none());
        let n = BASE * 7 + 5; // segments 0, 1 and 2, and into 3
        for i in 0..n {
            let (id, ch) = t.make(i % 3).expect("room");
            assert_eq!(id as usize, i);
            assert_eq!((ch.id, ch.cap), (id, i % 3));
        }
        for i in 0..n {
            let ch = t.get(i as u32).expect("made");
            assert_eq!((ch.id as usize, ch.cap), (i, i % 3));
        }
        assert!(t.get(n as u32).is_none());
        assert!(t.get(u32::MAX).is_none());
        assert_eq!(locate(BASE - 1), (0, BASE - 1));
        assert_eq!(locate(BASE), (1, 0));
        assert_eq!(locate(3 * BASE), (2, 0));
    }
}
