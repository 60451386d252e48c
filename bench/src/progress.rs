//! Progress on stderr while a suite runs (a `preempt bench` suite, a
//! `preempt stress` run): a spinner naming it, the time it has taken and
//! the step it is on (`preempt run sleeper`, `Go idle`, `sum on jit`,
//! `boundary 812 of 1..=2000`), redrawn in place. Only a terminal gets it: when
//! stderr is a pipe or a file the draw target is hidden, so logs and
//! captured output hold the figures alone.
//!
//! One suite runs at a time; the steps are named from wherever the suite
//! is (a child process about to start, a kernel about to run) through
//! [`step`], which does nothing outside a suite.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The running suite's spinner.
static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Where progress is drawn: stderr when it is a terminal, else nowhere.
pub fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// Runs `f` (`label`: `bench kernels`, `stress FILE`) with its spinner
/// on stderr; the spinner is cleared before `f`'s result is returned (and
/// printed).
pub fn suite<T>(label: &str, f: impl FnOnce() -> T) -> T {
    let bar = ProgressBar::with_draw_target(None, draw_target());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] step {pos}: {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(label.to_string());
    bar.set_message("starting");
    // Off a terminal, no ticker thread either.
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
    let r = f();
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = None;
    bar.finish_and_clear();
    r
}

/// The running suite is now doing `what`.
pub fn step(what: &str) {
    if let Some(bar) = &*CURRENT.lock().unwrap_or_else(|e| e.into_inner()) {
        bar.inc(1);
        bar.set_message(what.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_count_inside_a_suite_only() {
        step("outside: ignored");
        let pos = suite("test", || {
            step("one");
            step("two");
            CURRENT
                .lock()
                .unwrap()
                .as_ref()
                .map(|b| (b.position(), b.message()))
        });
        assert_eq!(pos, Some((2, "two".to_string())));
        assert!(CURRENT.lock().unwrap().is_none());
    }
}
