//! Installed and run anywhere: the examples `preempt demo` and `preempt
//! bugs` need are built into the binary, so both work from a directory
//! with no checkout in it (as after `cargo install`), and a file on disk
//! still wins over the built-in copy.

use std::path::PathBuf;
use std::time::Duration;

use preempt_tests::{cli_command, run_command, Run};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");
/// Only keeps a broken build from hanging the suite: these runs take a
/// second or less.
const KILL_AFTER: Duration = Duration::from_secs(120);

/// A fresh, empty directory under the temporary directory.
fn empty_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("preempt-install-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `preempt ARGS` run from `dir`, with `$XDG_CACHE_HOME` at `dir/cache`.
fn cli_in(dir: &PathBuf, args: &[&str]) -> Run {
    let mut cmd = cli_command(CLI, args);
    cmd.current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("cache"));
    run_command(cmd, KILL_AFTER)
}

#[test]
fn the_demo_and_the_examples_run_outside_the_checkout() {
    let dir = empty_dir("demo");
    let r = cli_in(&dir, &["demo"]);
    assert_eq!(r.status, Some(0), "{r:?}");
    assert!(
        r.stdout
            .starts_with("The register-hoisted load (examples/hoist.pir"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("-O1 @spinner"), "{}", r.stdout);
    assert!(r.stdout.contains("HOISTED"), "{}", r.stdout);
    // The examples of `preempt --help` too.
    let r = cli_in(&dir, &["run", "examples/sum.pir"]);
    assert_eq!(r.status, Some(0), "{r:?}");
    assert_eq!(r.stdout, "sum: 4999999950000000\n");
    // A path that is in neither place is still an error.
    let r = cli_in(&dir, &["run", "examples/nonexistent.pir"]);
    assert_eq!(r.status, Some(2), "{r:?}");
    assert!(
        r.stderr.contains("cannot read examples/nonexistent.pir"),
        "{}",
        r.stderr
    );
    // A file on disk wins over the built-in copy of the same name.
    std::fs::create_dir_all(dir.join("examples")).unwrap();
    std::fs::write(
        dir.join("examples/hoist.pir"),
        "func @mine() {\n    ret\n}\n\nfunc @main() {\n    ret\n}\n",
    )
    .unwrap();
    let r = cli_in(&dir, &["demo"]);
    assert_eq!(r.status, Some(0), "{r:?}");
    assert!(r.stdout.contains("-O1 @mine"), "{}", r.stdout);
    assert!(!r.stdout.contains("@spinner"), "{}", r.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_catalogue_is_written_out_and_runs_outside_the_checkout() {
    let dir = empty_dir("bugs");
    let r = cli_in(&dir, &["bugs"]);
    assert_eq!(r.status, Some(0), "{r:?}");
    assert!(r.stdout.contains("The classic hang"), "{}", r.stdout);
    let r = cli_in(
        &dir,
        &["bugs", "8", "--side", "preempt", "--quick", "--no-predict"],
    );
    assert_eq!(r.status, Some(0), "{r:?}");
    let cache = dir.join("cache").join("preempt");
    let written = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("{}: {e}", cache.display()))
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("bugs-")
        })
        .expect("a bugs-VERSION-DIGEST directory");
    assert!(
        r.stdout.contains(&format!(
            "the catalogue built into preempt, written out to {}",
            written.display()
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("==== Bug 8: Misbelief about runtime.Gosched ordering ===="),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("preempt one_p run 1/"), "{}", r.stdout);
    // Everything the Go twins build from is there, the module included.
    for f in [
        "go.mod",
        "08-gosched-ordering/bug.toml",
        "08-gosched-ordering/main.go",
        "08-gosched-ordering/gosched-ordering.pir",
        "16-select-only-default/bug.toml",
    ] {
        assert!(
            written.join(f).is_file(),
            "{f} missing in {}",
            written.display()
        );
    }
    // A file changed since is put back by the next run.
    let toml = written.join("08-gosched-ordering/bug.toml");
    let original = std::fs::read(&toml).unwrap();
    std::fs::write(&toml, "number = 8\n").unwrap();
    let r = cli_in(
        &dir,
        &["bugs", "8", "--side", "preempt", "--quick", "--no-predict"],
    );
    assert_eq!(r.status, Some(0), "{r:?}");
    assert_eq!(std::fs::read(&toml).unwrap(), original);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether `tool` runs here (`tool --version`).
fn have(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `tool ARGS FILE` exits 0 with nothing on stderr; false if `tool` is not
/// installed.
fn checks_clean(tool: &str, args: &[&str], file: &std::path::Path) -> bool {
    if !have(tool) {
        eprintln!(
            "{tool} is not installed: {} not checked with it",
            file.display()
        );
        return false;
    }
    let o = std::process::Command::new(tool)
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{tool} {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    true
}

#[test]
fn completions_and_man_pages_are_generated_for_every_subcommand() {
    let dir = empty_dir("dist-docs");
    let help = cli_in(&dir, &["--help"]);
    let subcommands: Vec<String> = help
        .stdout
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|s| s != "help")
        .collect();
    for s in ["run", "demo", "bench", "bugs", "dist-docs", "disasm"] {
        assert!(subcommands.iter().any(|c| c == s), "{s}: {}", help.stdout);
    }
    let out = dir.join("out");
    let r = cli_in(&dir, &["dist-docs", out.to_str().unwrap()]);
    assert_eq!(r.status, Some(0), "{r:?}");
    let completions = out.join("completions");
    let (bash, zsh, fish) = (
        completions.join("preempt.bash"),
        completions.join("_preempt"),
        completions.join("preempt.fish"),
    );
    for f in [&bash, &zsh, &fish] {
        assert!(r.stdout.contains(&*f.display().to_string()), "{}", r.stdout);
    }
    let read =
        |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let (bash_text, zsh_text, fish_text) = (read(&bash), read(&zsh), read(&fish));
    assert!(checks_clean("bash", &["-n"], &bash));
    checks_clean("zsh", &["-n"], &zsh);
    checks_clean("fish", &["-n"], &fish);
    // Every subcommand is completed, and its options with it.
    for s in &subcommands {
        assert!(bash_text.contains(&format!("preempt,{s})")), "bash: {s}");
        assert!(zsh_text.contains(&format!("'{s}:")), "zsh: {s}");
        assert!(fish_text.contains(&format!("-a \"{s}\"")), "fish: {s}");
    }
    assert!(bash_text.contains("--no-predict"), "bash: bugs' options");
    // A page for preempt and one per subcommand, each a man page.
    let pages = ["preempt".to_string()]
        .into_iter()
        .chain(subcommands.iter().map(|s| format!("preempt-{s}")));
    let groff = have("groff");
    for page in pages {
        let file = out.join("man").join(format!("{page}.1"));
        let text = read(&file);
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!(".TH {page} 1"))),
            "{}: no .TH line:\n{text}",
            file.display()
        );
        if groff {
            checks_clean("groff", &["-man", "-Tutf8", "-ww", "-z"], &file);
        }
    }
    let run_page = read(&out.join("man/preempt-run.1"));
    assert!(run_page.contains("\\-\\-timeout"), "{run_page}");
    let _ = std::fs::remove_dir_all(&dir);
}
