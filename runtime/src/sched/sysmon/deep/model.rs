//! The deep sleep's handshake under loom: a monitor that finds every P
//! idle and sleeps (here until woken, with no timeout, so that a lost
//! wake-up is a deadlock loom reports), and a waker that makes a P active
//! and wakes it if it must. Every interleaving must end with the monitor
//! awake or never asleep; the planted bug must be caught.

use std::sync::atomic::Ordering::SeqCst;

use loom::sync::atomic::AtomicU64;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::{Bug, DeepSleep};
use crate::sync::model::{check, Loom};

struct World {
    deep: DeepSleep<Loom>,
    /// The P's status: 0 idle, 1 active.
    p: AtomicU64,
    woken: Mutex<bool>,
    cv: Condvar,
}

fn scenario(planted: Option<Bug>) {
    check(3, move || {
        let w = Arc::new(World {
            deep: planted.map_or_else(DeepSleep::default, DeepSleep::with_planted),
            p: AtomicU64::new(0),
            woken: Mutex::new(false),
            cv: Condvar::new(),
        });
        let waker = {
            let w = w.clone();
            thread::spawn(move || {
                w.p.store(1, SeqCst);
                if w.deep.must_wake() {
                    *w.woken.lock().unwrap() = true;
                    w.cv.notify_one();
                }
            })
        };
        if w.deep.enter(|| w.p.load(SeqCst) == 0) {
            let mut woken = w.woken.lock().unwrap();
            while !*woken {
                woken = w.cv.wait(woken).unwrap();
            }
            w.deep.leave();
        }
        waker.join().unwrap();
    });
}

#[test]
fn a_p_that_becomes_active_always_finds_the_monitor_awake_or_wakes_it() {
    scenario(None);
}

#[test]
#[should_panic(expected = "deadlock")]
fn planted_check_before_publish_is_caught() {
    scenario(Some(Bug::CheckBeforePublish));
}
