//! Pinning to CPUs (`--cpus LIST`), as `taskset -c LIST` would: on bare
//! metal with isolated CPUs, the measurement then runs where nothing else
//! does. A run pins each of its threads (the Ms, the monitor, the timers,
//! the collector) as it starts ([`RunConfig::cpus`](crate::RunConfig));
//! a command pins itself first ([`pin_process`]), so that what it starts
//! afterwards, threads and child processes, inherits the CPUs, and says
//! so ([`pinned`], for the results' provenance).

use std::fmt;
use std::io;
use std::sync::OnceLock;

/// CPUs by number, as `taskset -c` and `/proc`'s `Cpus_allowed_list`
/// write them (`0`, `0-1`, `0,2-3`): sorted, no repeats, never empty.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CpuList(Vec<usize>);

/// The CPUs a `cpu_set_t` holds (`CPU_SETSIZE`): the most preempt pins.
const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;

impl CpuList {
    /// `0`, `0-3`, `0,2-3`; an error says what is wrong with the list.
    pub fn parse(s: &str) -> Result<CpuList, String> {
        let bad = || format!("'{s}' is not a CPU list (such as 0, 0-1 or 0,2-3)");
        let number = |w: &str| -> Result<usize, String> {
            let n: usize = w.trim().parse().map_err(|_| bad())?;
            if n >= MAX_CPUS {
                return Err(format!(
                    "'{s}': CPU {n} is past the last CPU preempt can pin ({})",
                    MAX_CPUS - 1
                ));
            }
            Ok(n)
        };
        let mut cpus = Vec::new();
        for part in s.split(',') {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err(format!("'{s}': the range {a}-{b} runs backwards"));
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(number(part)?),
            }
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuList(cpus))
    }

    /// The CPUs, in increasing order.
    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    /// The CPUs the calling thread may run on now (`sched_getaffinity`).
    pub fn allowed() -> io::Result<CpuList> {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a live cpu_set_t of the size passed.
        let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: CPU_ISSET reads bit `c` of `set`, and c < CPU_SETSIZE.
        let cpus = (0..MAX_CPUS).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) });
        Ok(CpuList(cpus.collect()))
    }

    /// Ok if this thread may run on every CPU of the list; else an error
    /// naming the CPUs it may not run on and those it may.
    pub fn check_allowed(&self) -> Result<(), String> {
        let allowed =
            CpuList::allowed().map_err(|e| format!("cannot read the allowed CPUs: {e}"))?;
        let missing: Vec<String> = self
            .0
            .iter()
            .filter(|c| !allowed.0.contains(c))
            .map(usize::to_string)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "CPU {} {} not among the CPUs this process may run on ({allowed})",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        ))
    }

    fn set(&self) -> libc::cpu_set_t {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in &self.0 {
            // SAFETY: CPU_SET writes bit `c` of `set`; `parse` keeps every
            // CPU below CPU_SETSIZE.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        set
    }

    /// Pins the calling thread to these CPUs.
    pub fn pin_thread(&self) -> io::Result<()> {
        let set = self.set();
        // SAFETY: `set` is a live cpu_set_t of the size passed; pid 0 is
        // the calling thread.
        let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Pins a thread already started (one whose code this crate does not
    /// run at its start).
    pub fn pin_started<T>(&self, thread: &std::thread::JoinHandle<T>) -> io::Result<()> {
        use std::os::unix::thread::JoinHandleExt;
        let set = self.set();
        // SAFETY: the handle keeps the thread joinable, so its pthread_t
        // is valid; `set` is a live cpu_set_t of the size passed.
        let r = unsafe {
            libc::pthread_setaffinity_np(thread.as_pthread_t(), std::mem::size_of_val(&set), &set)
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    }

    /// Pins the process `cmd` starts, between fork and exec, as
    /// `taskset -c` would.
    pub fn pin_children(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let set = self.set();
        let pin = move || {
            // SAFETY: `set` is a cpu_set_t of the size passed, copied into
            // the closure before the fork; pid 0 is the child.
            let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        // SAFETY: the closure runs in the child between fork and exec; it
        // makes one system call (async-signal-safe) on memory it owns and
        // allocates nothing (an OS error is a code, not a heap value).
        unsafe { cmd.pre_exec(pin) };
    }
}

impl fmt::Display for CpuList {
    /// Ranges folded: `0,2-3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut groups: Vec<(usize, usize)> = Vec::new();
        for &c in &self.0 {
            match groups.last_mut() {
                Some((_, end)) if *end + 1 == c => *end = c,
                _ => groups.push((c, c)),
            }
        }
        for (i, (start, end)) in groups.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            if start == end {
                write!(f, "{sep}{start}")?;
            } else {
                write!(f, "{sep}{start}-{end}")?;
            }
        }
        Ok(())
    }
}

static PINNED: OnceLock<CpuList> = OnceLock::new();

/// Checks that the process may run on `cpus`, pins the calling thread to
/// them and records them for [`pinned`]. Call it first, from the main
/// thread: the threads and child processes it starts afterwards inherit
/// the CPUs, those already running do not.
pub fn pin_process(cpus: &CpuList) -> Result<(), String> {
    cpus.check_allowed()?;
    cpus.pin_thread()
        .map_err(|e| format!("cannot pin to CPUs {cpus}: {e}"))?;
    // A command pins once; were it to pin again, the first list would
    // stay the recorded one.
    let _ = PINNED.set(cpus.clone());
    Ok(())
}

/// The CPUs this process pinned itself to (`--cpus`), for the results'
/// provenance; None when it was not pinned by [`pin_process`] (it may
/// still run under `taskset`: [`CpuList::allowed`] says where it may run).
pub fn pinned() -> Option<&'static CpuList> {
    PINNED.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_taskset_writes_them_and_print_folded() {
        let l = |s: &str| CpuList::parse(s).map(|c| (c.cpus().to_vec(), c.to_string()));
        assert_eq!(l("0"), Ok((vec![0], "0".into())));
        assert_eq!(l("0-1"), Ok((vec![0, 1], "0-1".into())));
        assert_eq!(l("0,2-3"), Ok((vec![0, 2, 3], "0,2-3".into())));
        assert_eq!(l("3,1,2,1"), Ok((vec![1, 2, 3], "1-3".into())));
        assert_eq!(l(" 5 , 7-8"), Ok((vec![5, 7, 8], "5,7-8".into())));
        for bad in ["", "a", "1-", "-1", "0,,1", "1.5", "0-1-2"] {
            let e = CpuList::parse(bad).unwrap_err();
            assert!(e.contains("is not a CPU list"), "{bad:?}: {e}");
        }
        assert!(CpuList::parse("3-1")
            .unwrap_err()
            .contains("runs backwards"));
        let e = CpuList::parse("0,5000").unwrap_err();
        assert!(e.contains("CPU 5000 is past the last CPU"), "{e}");
    }

    #[test]
    fn the_allowed_cpus_are_this_threads() {
        let allowed = CpuList::allowed().unwrap();
        assert!(!allowed.cpus().is_empty());
        assert_eq!(allowed.check_allowed(), Ok(()));
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        let listed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim();
        assert_eq!(CpuList::parse(listed), Ok(allowed.clone()));
        let outside = (0..MAX_CPUS).find(|c| !allowed.cpus().contains(c)).unwrap();
        let e = CpuList(vec![outside]).check_allowed().unwrap_err();
        assert!(e.contains(&format!("CPU {outside} is not among")), "{e}");
    }

    #[test]
    fn a_pinned_thread_runs_on_the_list() {
        // A thread of its own: pinning it leaves the test runner alone.
        let first = CpuList::allowed().unwrap().cpus()[0];
        let mine = std::thread::spawn(move || {
            CpuList(vec![first]).pin_thread().unwrap();
            CpuList::allowed().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(mine.cpus(), &[first]);
    }

    #[test]
    fn a_child_is_pinned_between_fork_and_exec() {
        let allowed = CpuList::allowed().unwrap();
        // The last allowed CPU: on a machine with more than one, not what
        // the child would inherit.
        let last = *allowed.cpus().last().unwrap();
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "grep Cpus_allowed_list /proc/self/status"]);
        CpuList(vec![last]).pin_children(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.split_whitespace().nth(1), Some(&*last.to_string()));
    }
}
