//! The idle-goroutine memory figure of `preempt bench runtime` is the
//! program's own peak RSS: the bench's measurement of the idle program
//! with 20,000 parked goroutines agrees with `/usr/bin/time -f %M` on the
//! same program within 5%, even from a process whose own peak is larger
//! than the program's (as `preempt bench`'s is after the compile suite:
//! every child used to report the bench's 512 MiB).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use preempt_bench::runtime::{idle_peak_rss_kib, with_sizes, Options, IDLE};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
const N: u64 = 20_000;

/// Peak RSS (KiB) of `preempt run FILE` as `/usr/bin/time -f %M` reports
/// it; without /usr/bin/time, the `wait4` rusage of a child forked from
/// this process (said on stderr).
fn reference_kib(file: &std::path::Path) -> i64 {
    let args = ["run", "--timeout", "100", "--hang-threshold", "0"];
    if std::path::Path::new("/usr/bin/time").exists() {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "maxrss=%M", CLI])
            .args(args)
            .arg(file)
            .output()
            .expect("run /usr/bin/time");
        assert!(out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        return err
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("maxrss=")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no %M in {err}"));
    }
    eprintln!("/usr/bin/time is not installed: reading wait4's rusage of a forked child instead");
    let mut cmd = Command::new(CLI);
    cmd.args(args).arg(file);
    // SAFETY: an empty pre_exec hook (it makes std fork rather than
    // posix_spawn, so the child does not start in this process's memory).
    unsafe { cmd.pre_exec(|| Ok(())) };
    // The child is reaped by wait4 below, which also reads its rusage
    // (Child::wait would reap it without).
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("spawn");
    let (mut status, pid) = (0, child.id() as libc::pid_t);
    // SAFETY: an all-zero rusage is valid for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: our own unreaped child; pointers to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    usage.ru_maxrss
}

#[test]
fn idle_goroutines_rss_matches_usr_bin_time() {
    if preempt_tests::emulated() {
        eprintln!("skipped under emulation: qemu's RSS is not the program's");
        return;
    }
    // Raise this process's peak well above the program's, as the compile
    // suite does in `preempt bench`, then give the memory back.
    let big: Vec<u8> = vec![1; 600 << 20];
    let touched = big.iter().step_by(4096).map(|&b| b as usize).sum::<usize>();
    assert!(touched > 0);
    drop(big);

    let dir = std::env::temp_dir().join(format!("preempt-bench-rss-{}", std::process::id()));
    let mut opts = Options::new(true, Some(PathBuf::from(CLI)));
    opts.paths.target = dir.clone();
    let measured = idle_peak_rss_kib(opts.clone(), N).expect("the bench measures the idle run");
    let empty = idle_peak_rss_kib(opts, 0).expect("the bench measures the empty run");

    let file = dir.join("idle-reference.pir");
    std::fs::write(&file, with_sizes(IDLE, N, None)).expect("write the program");
    let reference = reference_kib(&file);
    let _ = std::fs::remove_dir_all(&dir);

    let per_goroutine = (measured - empty) as f64 * 1024.0 / N as f64;
    eprintln!(
        "idle, {N} goroutines: bench {measured} KiB, /usr/bin/time {reference} KiB; \
         with none {empty} KiB; {per_goroutine:.0} bytes per goroutine"
    );
    let diff = (measured - reference).abs() as f64 / reference as f64;
    assert!(
        diff <= 0.05,
        "bench {measured} KiB against /usr/bin/time {reference} KiB: {:.1}% apart",
        diff * 100.0
    );
    // Each parked goroutine costs at least its first stack: a figure
    // below it measured something else.
    assert!(
        per_goroutine >= preempt_runtime::stack::STACK_MIN as f64,
        "{per_goroutine} bytes per goroutine"
    );
    assert!(
        measured < 600 << 10,
        "not this process's peak: {measured} KiB"
    );
}
