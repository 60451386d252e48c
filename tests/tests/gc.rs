//! The JIT heap's collector, end to end: `--gc-verify` passes on correct
//! runs and catches each injected collector bug (so the verifier is known
//! to be able to fail), a use of a freed object is a clear fatal error,
//! the write barrier shows as an unsafe region in `preempt disasm` on both
//! architectures, `--stats` reports cycles and stop-the-world latency,
//! `setgcpercent` steers automatic cycles, and the heap limit still ends a
//! program that keeps too much alive.
//!
//! The concurrent programs themselves (`tests/programs/concurrent/gc-*`)
//! also run in the concurrency suite, on both engines. No test here
//! depends on timing for its verdict; kill timers only keep a broken build
//! from hanging the suite.

use std::sync::Arc;
use std::time::Duration;

use preempt_jit::ir;
use preempt_jit::module::Module;
use preempt_runtime::{Observers, Outcome, Output, RunConfig};
use preempt_tests::{run_cli, temp_pir, Run};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
const KILL_AFTER: Duration = Duration::from_secs(300);
const FLIP: &str = "tests/programs/concurrent/gc-barrier-flip.pir";
const CHURN: &str = "tests/programs/concurrent/gc-churn.pir";
const DEAD_FRAMES: &str = "tests/programs/concurrent/gc-dead-frames.pir";

fn run(args: &[&str]) -> Run {
    run_cli(CLI, args, KILL_AFTER)
}

/// `preempt run --gc-verify --gc-inject FAULT FLAGS... FILE`: exits 1.
fn run_injected(fault: &str, flags: &[&str], file: &str) -> Run {
    let mut args = vec!["run", "--gc-verify", "--gc-inject", fault];
    args.extend_from_slice(flags);
    args.push(file);
    let r = run(&args);
    assert_eq!(r.status, Some(1), "{fault} {flags:?}: {r:?}");
    r
}

fn stat(r: &Run, name: &str) -> u64 {
    r.stderr
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l[name.len()..].split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A list of 100 nodes whose only ref is @keep, built in a function whose
/// registers are then overwritten, so that no stale register or stack word
/// keeps the list alive by accident: only the global root does.
fn only_a_global_keeps_it() -> String {
    let mut s = String::from(
        "global @keep: ref

func @fill() {
    %head = copy nil
    %i = const 0
loop:
    %node = new 2
    set %node, 0, %i
    setref %node, 1, %head
    %head = copy %node
    %i = add %i, 1
    %more = lt %i, 100
    br %more, loop, done
done:
    store @keep, %head
    ret
}

func @scrub(%x: i64) -> i64 {
",
    );
    for i in 0..24 {
        s.push_str(&format!("    %a{i} = add %x, {i}\n"));
    }
    s.push_str("    %s = const 0\n");
    for i in 0..24 {
        s.push_str(&format!("    %s = xor %s, %a{i}\n    %s = add %s, %a{i}\n"));
    }
    s.push_str(
        "    ret %s
}

func @main() {
    call @fill()
    %z = call @scrub(7)
    gc
    %l = load @keep
    %v = get %l, 0
    print \"head {}\", %v
    ret
}
",
    );
    s
}

/// [`only_a_global_keeps_it`] with the list held only by the argument of
/// a goroutine that has not run yet: such a goroutine has no stack, its
/// arguments wait in its record, and the collector must find them there.
/// On one P, @main spawns the walker, then a spinner (which takes the
/// `runnext` slot, pushing the walker into the queue), and parks in `gc`:
/// the spinner holds the P until the world stops, so the roots are taken
/// while the walker waits unstarted (it could only start first if the
/// spinner's quantum ran out before the stop request came).
fn only_an_unstarted_goroutine_keeps_it() -> String {
    only_a_global_keeps_it()
        .replace("global @keep: ref\n", "global @sum: i64 = -1\n")
        .replace(
            "    store @keep, %head\n",
            "    spawn @walk(%head)\n    spawn @spin()\n",
        )
        .replace(
            "    %l = load @keep\n    %v = get %l, 0\n    print \"head {}\", %v\n",
            "wait:\n    %v = load.atomic @sum\n    %ready = ge %v, 0\n    br %ready, done, again\nagain:\n    yield\n    jmp wait\ndone:\n    print \"sum {}\", %v\n",
        )
        + "
func @walk(%n: ref) {
    %s = const 0
loop:
    %nil = eq %n, nil
    br %nil, done, next
next:
    %v = get %n, 0
    %s = add %s, %v
    %n = getref %n, 1
    jmp loop
done:
    store.atomic @sum, %s
    ret
}

func @spin() {
loop:
    %v = load.atomic @sum
    %done = ge %v, 0
    br %done, out, loop
out:
    ret
}
"
}

#[test]
fn an_unstarted_goroutines_arguments_are_roots() {
    let src = only_an_unstarted_goroutine_keeps_it();
    let file = temp_pir("gc-argument-root", &src);
    // Several runs: with the argument roots left out, two runs in three
    // failed ("use of freed object"), the others started the walker
    // before the collection.
    for _ in 0..6 {
        let r = run(&["run", "--gc-verify", "--procs", "1", file.to_str().unwrap()]);
        assert_eq!(r.status, Some(0), "{src}\n{r:?}");
        assert_eq!(r.stdout, "sum 4950\n");
    }
}

#[test]
fn correct_collections_pass_gc_verify() {
    let global = temp_pir("gc-global-root", &only_a_global_keeps_it());
    let global = global.to_str().unwrap();
    // The flip program also with every move landing between the marker's
    // scans (the barrier's test, below, without the injected bug).
    for (file, procs, interleave, want) in [
        (FLIP, "1", false, "objects 64 sum 2016 chains 3199960000\n"),
        (FLIP, "1", true, "objects 64 sum 2016 chains 3199960000\n"),
        (FLIP, "2", false, "objects 64 sum 2016 chains 3199960000\n"),
        (FLIP, "2", true, "objects 64 sum 2016 chains 3199960000\n"),
        (CHURN, "2", false, "nodes 159200\n"),
        (global, "1", false, "head 99\n"),
    ] {
        let mut args = vec!["run", "--gc-verify", "--procs", procs, file];
        if interleave {
            // Interleaved cycles wait on the program 64 times each: under
            // qemu on a loaded host the run took up to 5 s, so the
            // watchdog gets more room than its 10 s default.
            args.splice(2..2, ["--gc-interleave", "--timeout", "60"]);
        }
        let r = run(&args);
        assert_eq!(
            r.status,
            Some(0),
            "{file} at {procs} P, interleave {interleave}: {r:?}"
        );
        assert_eq!(r.stdout, want, "{file}");
    }
}

#[test]
fn gc_verify_catches_a_barrier_that_does_not_shade() {
    // The flip program moves objects between holders while the marker
    // runs. --gc-interleave makes the marker wait for one of its stores
    // 64 times a phase (every 1,250 objects here), so moves land between
    // the scans of the holders in every cycle however the OS schedules
    // the two threads (without it, a loaded machine could run a whole
    // mark phase while the program's thread waited for a CPU, and on CI
    // one did). Without the barrier's shading an object that sits
    // elsewhere whenever a holder is scanned is reachable but unmarked at
    // mark termination: with interleaving, in the first cycle of each of
    // 60 runs on two CPUs kept busy by three spinning shells, and of 20
    // under qemu with two. The watchdog gets 60 s, as in the test above.
    for procs in ["1", "2"] {
        let r = run_injected(
            "skip-barrier",
            &["--gc-interleave", "--timeout", "60", "--procs", procs],
            FLIP,
        );
        assert!(
            r.stderr.starts_with("fatal error: gc-verify: object 0x")
                && r.stderr
                    .contains("is reachable but was not marked in GC cycle")
                && r.stderr.contains("the sweep would free it"),
            "{}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "the program never got to its report");
    }
}

#[test]
fn gc_verify_catches_a_root_class_left_out() {
    let path = temp_pir("gc-skip-globals", &only_a_global_keeps_it());
    let r = run_injected("skip-global-roots", &[], path.to_str().unwrap());
    assert!(
        r.stderr.starts_with("fatal error: gc-verify: object 0x")
            && r.stderr.contains("reached from global @keep"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("100 problems in GC cycle 1"),
        "{}",
        r.stderr
    );
}

#[test]
fn words_of_returned_frames_are_not_reported_as_lost_objects() {
    // See the program's header: a goroutine recurses, during marking, over
    // frames it returned from before mark start, and stops at mark
    // termination with their words in its new frames' unwritten slots.
    let file = DEAD_FRAMES;
    let flags = ["--gc-verify", "--gc-interleave", "--procs", "1"];
    let r = run(&[&["run"], &flags[..], &[file]].concat());
    assert_eq!(r.status, Some(0), "{r:?}");
    assert_eq!(
        r.stdout,
        "500500 1000
"
    );
    // Without the zeroing the verifier reports them: so the program does
    // reach the case. Its order (mark start before the starter's 50 ms
    // sleep ends) is up to the OS, so a run on a loaded machine may miss
    // it; five tries, of which the first has always sufficed (50 runs
    // natively and under qemu).
    let mut runs = Vec::new();
    for _ in 0..5 {
        let r = run(&[
            &["run", "--gc-inject", "keep-dead-stack-words"],
            &flags[..],
            &[file],
        ]
        .concat());
        let reported = r.status == Some(1)
            && r.stderr.starts_with("fatal error: gc-verify: object 0x")
            && r.stderr.contains("reached from the stack of goroutine 2");
        runs.push(r);
        if reported {
            return;
        }
    }
    panic!("the dead words were never reported: {runs:#?}");
}

#[test]
fn a_use_of_a_freed_object_is_a_fatal_error_not_a_crash() {
    // The injected sweep frees live objects; --gc-verify's poison turns
    // the program's next read of one into a report with a traceback.
    let path = temp_pir(
        "gc-use-after-free",
        "global @keep: ref
func @main() {
    %o = new 2
    set %o, 0, 41
    setref %o, 1, %o
    store @keep, %o
    gc
    %p = load @keep
    %q = getref %p, 1
    print \"unreachable {}\", %q
    ret
}
",
    );
    for opt in ["-O0", "-O1"] {
        let r = run_injected("free-marked", &[opt], path.to_str().unwrap());
        assert!(
            r.stderr.starts_with("fatal error: use of freed object 0x")
                && r.stderr
                    .contains("(gc-verify)\n\ngoroutine 1 [running]:\n@main in block entry"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn a_write_into_a_freed_object_is_caught_by_the_next_sweep() {
    let path = temp_pir(
        "gc-write-after-free",
        "global @keep: ref
func @main() {
    %o = new 2
    store @keep, %o
    gc
    %p = load @keep
    set %p, 1, 7
    store @keep, nil
    gc
    print \"unreachable\"
    ret
}
",
    );
    let r = run_injected("free-marked", &[], path.to_str().unwrap());
    assert!(
        r.stderr
            .starts_with("fatal error: gc-verify: freed object 0x")
            && r.stderr
                .contains("was written after it was freed (slot 1 holds tag 0x1, value 0x7)"),
        "{}",
        r.stderr
    );
}

#[test]
fn disasm_marks_the_write_barrier_as_an_unsafe_region_on_both_architectures() {
    let path = temp_pir(
        "gc-disasm",
        "global @root: ref
global @n: i64
func @main() {
    %o = new 2
    set %o, 0, 5
    setref %o, 1, %o
    store @root, %o
    store @n, 3
    ret
}
",
    );
    for (arch, flag_test, call) in [
        (
            "x86_64",
            "cmp     qword ptr [rdx], 0",
            "call    qword ptr [rdi+8]",
        ),
        ("aarch64", "ldr x1, [x1]", "blr x17"),
    ] {
        let r = run(&["disasm", "--arch", arch, path.to_str().unwrap()]);
        assert_eq!(r.status, Some(0), "{r:?}");
        let lines: Vec<&str> = r.stdout.lines().collect();
        let barrier: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.contains("[wb]"))
            .collect();
        // One fast path per store that may overwrite a ref: `set`,
        // `setref`, the ref global's `store`; none for the i64 global.
        assert_eq!(
            barrier.iter().filter(|l| l.contains(flag_test)).count(),
            3,
            "{arch}:\n{}",
            r.stdout
        );
        assert_eq!(
            barrier.iter().filter(|l| l.contains(call)).count(),
            3,
            "{arch}: each slow path's call is inside the region\n{}",
            r.stdout
        );
        // The region runs from the flag load through the store.
        let store_line = lines
            .iter()
            .position(|l| l.contains("; store @root"))
            .expect("the ref store");
        let region: Vec<&&str> = lines[store_line..]
            .iter()
            .skip_while(|l| !l.contains("[wb]"))
            .take_while(|l| l.contains("[wb]"))
            .collect();
        assert!(region.len() >= 4, "{arch}: {region:?}");
        let i64_store = lines
            .iter()
            .position(|l| l.contains("; store @n"))
            .expect("the i64 store");
        assert!(!lines[i64_store].contains("[wb]"), "{arch}");
        if arch == "aarch64" {
            let uses_x16 = |l: &&str| {
                l.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| w == "x16")
            };
            // (The slow path clears it after its call, as it clears every
            // register the collector's code may leave a stale word in.)
            let clears = |l: &&str| l.contains("xzr");
            assert!(
                !barrier.iter().any(|l| uses_x16(l) && !clears(l)),
                "the barrier leaves x16 to the stubs"
            );
        }
    }
}

#[test]
fn stats_report_cycles_and_stop_the_world_latency() {
    let r = run(&["run", "--stats", "--procs", "2", CHURN]);
    assert_eq!(r.status, Some(0), "{r:?}");
    // Ten `gc` calls, each a whole cycle of its own, and maybe automatic
    // ones; two stops per cycle.
    let cycles = stat(&r, "gc cycles");
    assert!(cycles >= 10, "{}", r.stderr);
    let row = r
        .stderr
        .lines()
        .find(|l| l.starts_with("stop-the-world latency"))
        .unwrap_or_else(|| panic!("no latency row:\n{}", r.stderr));
    let count: u64 = row
        .split_whitespace()
        .nth(2)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    // Two stops per swept cycle; an automatic cycle still running when
    // @main returns may add one or two.
    assert!((2 * cycles..=2 * cycles + 2).contains(&count), "{row}");
    assert!(r.stderr.contains("stop-the-world pause"), "{}", r.stderr);
}

/// A program that keeps `n` objects of `slots` slots alive from @keep,
/// after `setgcpercent {percent}`, then runs `then` (which ends the
/// function).
fn keeper(percent: i64, n: usize, slots: usize, then: &str) -> String {
    format!(
        "global @keep: ref
func @main() {{
    setgcpercent {percent}
    %k = new {n}
    store @keep, %k
    %i = const 0
fill:
    %o = new {slots}
    setref %k, %i, %o
    %i = add %i, 1
    %m = lt %i, {n}
    br %m, fill, then
then:
{then}}}
"
    )
}

/// `setgcpercent P`, then 8 MiB kept live and 64 MiB of 1 KiB garbage.
fn pacing_program(percent: i64) -> String {
    keeper(
        percent,
        128,
        4096,
        "    %j = const 0
loop:
    %g = new 63
    %j = add %j, 1
    %more = lt %j, 65536
    br %more, loop, done
done:
    print \"done\"
    ret
",
    )
}

#[test]
fn setgcpercent_steers_automatic_cycles() {
    let off = temp_pir("gc-percent-off", &pacing_program(-1));
    let r = run(&["run", "--stats", off.to_str().unwrap()]);
    assert_eq!((r.status, r.stdout.as_str()), (Some(0), "done\n"), "{r:?}");
    assert_eq!(stat(&r, "gc cycles"), 0, "{}", r.stderr);
    // At GOGC=1 the trigger is 1% over the 8 MiB live: a cycle is due
    // every 80 KiB, and an allocation past twice the trigger waits for the
    // running cycle, so 64 MiB of garbage takes several cycles however
    // fast the program allocates.
    let tight = temp_pir("gc-percent-one", &pacing_program(1));
    let r = run(&["run", "--stats", tight.to_str().unwrap()]);
    assert_eq!((r.status, r.stdout.as_str()), (Some(0), "done\n"), "{r:?}");
    assert!(stat(&r, "gc cycles") >= 4, "{}", r.stderr);
}

fn run_in_process(text: &str, cfg: RunConfig) -> (Outcome, String) {
    let mut p = ir::parse(text).expect("parses");
    ir::verify(&mut p).expect("verifies");
    let m = Module::compile(&p).expect("compiles");
    let (out, captured) = Output::capture();
    let o = preempt_runtime::run(Arc::new(m), &cfg, &Observers::default(), out);
    (o, captured.text())
}

#[test]
fn the_heap_limit_collects_first_and_then_is_out_of_memory() {
    let cfg = RunConfig {
        heap_limit: 64 << 20,
        timeout: Some(Duration::from_secs(120)),
        ..RunConfig::default()
    };
    // 512 MiB of garbage through a 64 MiB heap, automatic cycles off:
    // every allocation that does not fit waits for a collection and fits.
    let churn = "func @main() {
    setgcpercent -1
    %i = const 0
loop:
    %g = new 4095
    %i = add %i, 1
    %more = lt %i, 8192
    br %more, loop, done
done:
    print \"survived\"
    ret
}
";
    let (o, out) = run_in_process(churn, cfg.clone());
    assert_eq!((o.status, out.as_str()), (0, "survived\n"), "{}", o.stderr);
    // 80 MiB kept alive does not fit, collection or not.
    let keep = keeper(100, 1280, 4095, "    print \"unreachable\"\n    ret\n");
    let (o, out) = run_in_process(&keep, cfg);
    assert_eq!(o.status, 1, "{}", o.stderr);
    assert!(out.is_empty());
    assert!(
        o.stderr.starts_with(
            "fatal error: runtime: out of memory\n\ngoroutine 1 [running]:\n@main in block fill"
        ),
        "{}",
        o.stderr
    );
}

#[test]
fn the_interpreter_accepts_gc_verify_and_keeps_its_own_heap() {
    let r = run(&["run", "--engine", "interp", "--gc-verify", CHURN]);
    assert_eq!(
        (r.status, r.stdout.as_str()),
        (Some(0), "nodes 159200\n"),
        "{r:?}"
    );
}

/// The stop-the-world benchmark's program with `spinners` call-free loops
/// holding the Ps while @main calls `gc` `n` times, keeping a list of
/// 100,000 objects alive first, so that each mark lasts long enough (a
/// cycle takes about 1.6 ms natively, request to swept, against 60 us
/// without them) for a spinner to be running when mark termination stops
/// the world. With the benchmark's empty heap the mark
/// is over in microseconds: at one P its termination was posted while the
/// P's thread was still between goroutines, and taken there unasked: on a
/// loaded machine, every one of 40 stops once. With three spinning shells
/// on two CPUs, 30 runs at one P asked in 2 to 40 of the 40 stops without
/// the list, 10 to 40 with it.
fn spinners_and_gc(procs: usize, spinners: usize, n: usize) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(preempt_tests::repo_root().join("bench/src/preempt/stw.pir"))
            .expect("bench/src/preempt/stw.pir")
            .replace("set procs = 2", &format!("set procs = {procs}"))
            .replace(
                "global @spinners: i64 = 1",
                &format!("global @spinners: i64 = {spinners}"),
            )
            .replace("global @n: i64 = 200", &format!("global @n: i64 = {n}\nglobal @keep: ref"))
            .replace(
                "collect:\n",
                "collect:\n    %list = copy nil\n    %f = const 0\nfill:\n    %node = new 1\n    setref %node, 0, %list\n    %list = copy %node\n    %f = add %f, 1\n    %filling = lt %f, 100000\n    br %filling, fill, filled\nfilled:\n    store @keep, %list\n",
            );
    temp_pir(&format!("stw-{procs}-{spinners}"), &text)
}

#[test]
fn the_stopper_gets_a_p_of_its_own_from_call_free_spinners() {
    // Every P runs a call-free loop and @main waits for its collection:
    // no P is idle, so each stop of the world first gets a spinner's P
    // (the stopper's own), then stops the rest. At one P
    // that ask is the whole stop; at two Ps with four spinners both
    // halves run. Every stop must complete, once, with the world stopped.
    let n = 20;
    for (procs, spinners) in [(1, 1), (2, 4)] {
        let file = spinners_and_gc(procs, spinners, n);
        let json = file.with_extension("json");
        let r = run(&[
            "run",
            "--stats-json",
            json.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        assert_eq!(r.status, Some(0), "procs {procs}: {r:?}");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("stats json"))
                .expect("stats json parses");
        let stats = &doc["details"];
        let count = |h: &str| stats["histograms"][h]["count"].as_u64().unwrap_or(0);
        let stops = 2 * n as u64;
        assert_eq!(
            stats["counts"]["gc_cycles"].as_u64(),
            Some(n as u64),
            "{stats}"
        );
        assert_eq!(count("stop_the_world_the_stoppers_own_p"), stops, "{stats}");
        assert_eq!(count("stop_the_world_latency"), stops, "{stats}");
        let asked = stats["preempt_requests"]["by_kind"]["stop_the_world"]
            .as_u64()
            .unwrap_or(0);
        // A stop posted while the P passes a scheduling point takes it
        // there, unasked; but the spinners run through whole marks (see
        // `spinners_and_gc`).
        assert!(asked > 0, "procs {procs}: no stop request in {stops} stops");
    }
}
