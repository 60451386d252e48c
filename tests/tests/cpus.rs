//! `--cpus LIST`: every thread of a run is pinned to the CPUs listed, seen
//! from outside in `/proc/PID/task/*/status` while the program runs; a
//! bad list, or a CPU the process may not run on, is exit 2 before
//! anything runs; `preempt bench --cpus` pins every child it starts and
//! passes the list on to `preempt run`.

use std::time::{Duration, Instant};

use preempt_runtime::affinity::CpuList;
use preempt_tests::{cli_command, emulated, run_cli, run_command, temp_pir};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
/// Only keeps a broken build from hanging the suite.
const KILL_AFTER: Duration = Duration::from_secs(120);

/// The last CPU this process may run on: on a machine with more than one,
/// not where an unpinned thread would be confined.
fn last_allowed() -> usize {
    *CpuList::allowed().unwrap().cpus().last().unwrap()
}

/// Each thread of process `pid`: (name, Cpus_allowed_list).
fn threads(pid: u32) -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let t = e.ok()?.path();
        let name = std::fs::read_to_string(t.join("comm")).ok()?;
        let status = std::fs::read_to_string(t.join("status")).ok()?;
        let cpus = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
        Some((name.trim().to_string(), cpus.trim().to_string()))
    })
    .collect()
}

#[test]
fn every_thread_of_a_run_is_pinned() {
    if emulated() {
        // qemu-user's own threads start before the program can pin them.
        eprintln!("skipped under emulation: the threads seen are qemu's");
        return;
    }
    let cpu = last_allowed().to_string();
    // Two spinners at two Ps: two Ms at least, the monitor sending them
    // signals, the timers, the collector; it runs until it is killed.
    let f = temp_pir(
        "cpus-spinners",
        "set procs = 2\n\nfunc @spin() {\n    %x = const 1\nloop:\n    %x = add %x, 1\n    jmp loop\n}\n\nfunc @main() {\n    spawn @spin()\n    spawn @spin()\n    sleep 60000000\n    ret\n}\n",
    );
    let mut cmd = cli_command(
        CLI,
        &[
            "run",
            "--cpus",
            &cpu,
            "--timeout",
            "none",
            f.to_str().unwrap(),
        ],
    );
    let mut child = cmd.spawn().expect("spawn the CLI");
    let pid = child.id();
    let wanted = [
        "preempt-m0",
        "preempt-m1",
        "preempt-sysmon",
        "preempt-timers",
        "preempt-gc",
    ];
    // The threads start within milliseconds; the bound is for a loaded
    // machine, and only ends a broken run.
    let start = Instant::now();
    let seen = loop {
        let t = threads(pid);
        if wanted.iter().all(|w| t.iter().any(|(n, _)| n == w)) {
            break t;
        }
        if start.elapsed() > Duration::from_secs(30) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the run's threads never all started: {t:?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = child.kill();
    let _ = child.wait();
    let unpinned: Vec<_> = seen.iter().filter(|(_, c)| *c != cpu).collect();
    assert!(
        unpinned.is_empty(),
        "threads not pinned to CPU {cpu}: {unpinned:?} (all: {seen:?})"
    );
}

#[test]
fn stats_say_where_the_run_was_pinned_and_the_ps_follow_the_list() {
    let cpu = last_allowed().to_string();
    let f = temp_pir(
        "cpus-hello",
        "func @main() {\n    print \"hello\"\n    ret\n}\n",
    );
    let r = run_cli(
        CLI,
        &["run", "--cpus", &cpu, "--stats", f.to_str().unwrap()],
        KILL_AFTER,
    );
    assert_eq!(r.status, Some(0), "{r:?}");
    assert_eq!(r.stdout, "hello\n");
    assert!(
        r.stderr.contains(&format!("pinned to CPUs {cpu} (--cpus)")),
        "{}",
        r.stderr
    );
    // As Go under taskset: one CPU listed, one P.
    assert!(r.stderr.contains("preempt stats: 1 Ps"), "{}", r.stderr);
}

#[test]
fn a_bad_list_or_a_cpu_not_allowed_is_exit_2_before_the_run() {
    let allowed = CpuList::allowed().unwrap();
    let outside = (0..1024)
        .find(|c| !allowed.cpus().contains(c))
        .expect("a CPU this process may not run on");
    let cases = [
        ("abc".to_string(), "'abc' is not a CPU list".to_string()),
        ("".to_string(), "is not a CPU list".to_string()),
        ("3-1".to_string(), "the range 3-1 runs backwards".to_string()),
        ("0,5000".to_string(), "CPU 5000 is past the last CPU".to_string()),
        (
            outside.to_string(),
            format!("--cpus {outside}: CPU {outside} is not among the CPUs this process may run on ({allowed})"),
        ),
    ];
    for (list, says) in &cases {
        for sub in [
            &["run", "--cpus", list, "examples/sum.pir"][..],
            &["bench", "--cpus", list, "compile"],
        ] {
            let r = run_cli(CLI, sub, KILL_AFTER);
            assert_eq!(r.status, Some(2), "{sub:?}: {r:?}");
            assert!(r.stderr.contains(says.as_str()), "{sub:?}: {}", r.stderr);
            assert_eq!(r.stdout, "", "{sub:?} ran");
        }
    }
}

#[test]
fn bench_pins_every_child_and_passes_the_list_on() {
    if emulated() {
        eprintln!("skipped under emulation: the wrapper below is the run's own");
        return;
    }
    let cpu = last_allowed().to_string();
    let dir = std::env::temp_dir().join(format!("preempt-cpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("children.log");
    let wrapper = dir.join("wrapper.sh");
    // Every `preempt run` the suite starts goes through this script, which
    // writes down where it may run and with what arguments.
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$(grep Cpus_allowed_list /proc/self/status | tr -d '\\t') args: $*\" >> {}\nexec \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cmd = cli_command(
        CLI,
        &["bench", "--cpus", &cpu, "runtime", "--quick", "--no-go"],
    );
    cmd.env("PREEMPT_EXEC_WRAPPER", &wrapper);
    let r = run_command(cmd, Duration::from_secs(600));
    assert_eq!(r.status, Some(0), "{r:?}");
    assert!(
        r.stdout
            .lines()
            .next()
            .is_some_and(|l| l.ends_with(&format!(", pinned to CPUs {cpu} (--cpus)"))),
        "{}",
        r.stdout
    );
    let children = std::fs::read_to_string(&log).unwrap();
    assert!(children.lines().count() >= 5, "{children}");
    for line in children.lines() {
        assert!(
            line.starts_with(&format!("Cpus_allowed_list:{cpu} args: ")),
            "{line}"
        );
        assert!(
            line.contains(" run ") && line.contains(&format!("--cpus {cpu}")),
            "{line}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
