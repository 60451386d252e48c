//! Where and how a result was measured: preempt's version and commit, the
//! date, the kernel, the CPU, whether the machine is virtualised, and the
//! settings that move the floor of every timing (the clock source, the
//! timer slack, isolated CPUs), whether the run was `--quick`, and the
//! command line.
//!
//! Everything is read from the running system; a value that cannot be
//! read is `null` in the JSON, never a guess.

use std::path::Path;

use serde_json::{json, Value};

/// preempt's version (the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the build was made from, or `unknown` (see `build.rs`).
pub const COMMIT: &str = env!("PREEMPT_GIT_COMMIT");

/// The environment variable that plants a slowdown in the kernels suite
/// (a test hook: see `docs/results-format.md`).
pub const SLOWDOWN_VAR: &str = "PREEMPT_BENCH_SLOWDOWN";

/// The provenance of one result file.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    pub version: String,
    pub commit: String,
    /// RFC 3339, UTC, to the second.
    pub date: String,
    /// `uname`: system, release, version, machine.
    pub kernel: Option<String>,
    pub arch: String,
    pub cpu_model: Option<String>,
    /// Processors listed in /proc/cpuinfo.
    pub cpus_online: Option<usize>,
    /// The CPUs this process may run on (`available_parallelism`).
    pub available_parallelism: Option<usize>,
    /// The CPU's `hypervisor` flag (x86); None where cpuinfo has no flags.
    pub virtualised: Option<bool>,
    pub clocksource: Option<String>,
    /// This process's timer slack (`prctl(PR_GET_TIMERSLACK)`), in ns.
    pub timer_slack_ns: Option<u64>,
    /// /sys/devices/system/cpu/isolated (`isolcpus`), and nohz_full; an
    /// empty string is "none"; None where the kernel has no such file.
    pub isolated_cpus: Option<String>,
    pub nohz_full: Option<String>,
    /// The CPUs this process pinned itself to (`--cpus`), as a list.
    pub pinned_cpus: Option<String>,
    pub quick: bool,
    pub command_line: Vec<String>,
    /// Test hooks in effect (their variables and values): a result made
    /// with one is not a measurement of preempt.
    pub test_hooks: Vec<(String, String)>,
}

/// A file's contents, trimmed; None when it cannot be read.
fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The first `model name` (x86) or `Hardware`/`CPU part` line, the number
/// of `processor` entries, and whether the `flags` carry `hypervisor`
/// (None when there is no `flags` line, as on aarch64).
pub fn parse_cpuinfo(text: &str) -> (Option<String>, Option<usize>, Option<bool>) {
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let model = value("model name")
        .or_else(|| value("Hardware"))
        .or_else(|| value("CPU part").map(|p| format!("CPU part {p}")))
        .filter(|m| !m.is_empty());
    let count = text
        .lines()
        .filter(|l| l.split(':').next().map(str::trim) == Some("processor"))
        .count();
    let virtualised = value("flags").map(|f| f.split_whitespace().any(|w| w == "hypervisor"));
    (model, (count > 0).then_some(count), virtualised)
}

/// `uname -srvm`.
fn uname() -> Option<String> {
    // SAFETY: utsname is plain bytes; uname fills the struct through a
    // valid pointer and NUL-terminates each field.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c.to_ne_bytes()[0])
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(format!(
        "{} {} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.version),
        field(&u.machine)
    ))
}

/// This process's timer slack in nanoseconds.
fn timer_slack_ns() -> Option<u64> {
    // SAFETY: PR_GET_TIMERSLACK takes no pointer and changes nothing; it
    // returns the slack, or -1 on error.
    let r = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    u64::try_from(r).ok()
}

/// Civil date and time (UTC) of `secs` after the Unix epoch, RFC 3339.
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d, h, mi, sec) = crate::civil(secs);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{sec:02}Z")
}

/// Now, RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

impl Provenance {
    /// This process, now; `quick` as the command line says.
    pub fn here(quick: bool) -> Provenance {
        let (cpu_model, cpus_online, virtualised) = std::fs::read_to_string("/proc/cpuinfo")
            .map(|t| parse_cpuinfo(&t))
            .unwrap_or((None, None, None));
        let sys = Path::new("/sys/devices/system");
        Provenance {
            version: VERSION.to_string(),
            commit: COMMIT.to_string(),
            date: now_rfc3339(),
            kernel: uname(),
            arch: std::env::consts::ARCH.to_string(),
            cpu_model,
            cpus_online,
            available_parallelism: std::thread::available_parallelism().ok().map(|n| n.get()),
            virtualised,
            clocksource: read_trimmed(&sys.join("clocksource/clocksource0/current_clocksource")),
            timer_slack_ns: timer_slack_ns(),
            isolated_cpus: read_trimmed(&sys.join("cpu/isolated")),
            nohz_full: read_trimmed(&sys.join("cpu/nohz_full")),
            pinned_cpus: preempt_runtime::affinity::pinned().map(|c| c.to_string()),
            quick,
            command_line: std::env::args().collect(),
            test_hooks: std::env::var(SLOWDOWN_VAR)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| (SLOWDOWN_VAR.to_string(), v))
                .into_iter()
                .collect(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "preempt_version": self.version,
            "git_commit": self.commit,
            "date": self.date,
            "kernel": self.kernel,
            "arch": self.arch,
            "cpu_model": self.cpu_model,
            "cpus_online": self.cpus_online,
            "available_parallelism": self.available_parallelism,
            "virtualised": self.virtualised,
            "clocksource": self.clocksource,
            "timer_slack_ns": self.timer_slack_ns,
            "isolated_cpus": self.isolated_cpus,
            "nohz_full": self.nohz_full,
            "pinned_cpus": self.pinned_cpus,
            "quick": self.quick,
            "command_line": self.command_line,
            "test_hooks": self.test_hooks.iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<serde_json::Map<String, Value>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_is_read_on_both_architectures() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\
                   flags\t\t: fpu vme hypervisor lahf_lm\n\nprocessor\t: 1\n\
                   model name\t: AMD EPYC 7B13\nflags\t\t: fpu vme hypervisor\n";
        assert_eq!(
            parse_cpuinfo(x86),
            (Some("AMD EPYC 7B13".into()), Some(2), Some(true))
        );
        let bare = "processor\t: 0\nmodel name\t: Intel(R) Core(TM) i7\nflags\t\t: fpu vme\n";
        assert_eq!(parse_cpuinfo(bare).2, Some(false));
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU part\t: 0xd0c\n";
        assert_eq!(
            parse_cpuinfo(arm),
            (Some("CPU part 0xd0c".into()), Some(1), None)
        );
        assert_eq!(parse_cpuinfo(""), (None, None, None));
    }

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn this_machine_is_described() {
        let p = Provenance::here(true);
        assert_eq!(p.version, VERSION);
        assert!(!p.commit.is_empty());
        assert!(p.date.ends_with('Z') && p.date.len() == 20, "{}", p.date);
        // Linux always has uname, cpuinfo and a timer slack (50 us unless
        // changed).
        assert!(p.kernel.as_deref().is_some_and(|k| k.starts_with("Linux ")));
        assert!(p.cpus_online.is_some_and(|n| n >= 1));
        assert!(p.available_parallelism.is_some_and(|n| n >= 1));
        assert!(p.timer_slack_ns.is_some());
        let j = p.to_json();
        assert_eq!(j["quick"], json!(true));
        assert!(j["command_line"].as_array().is_some_and(|a| !a.is_empty()));
    }
}
