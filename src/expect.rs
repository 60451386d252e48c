//! What a program's header says it does when it runs, for the tests and
//! `preempt soak` to check:
//!
//! ```text
//! ; flags: --preempt coop            extra `preempt run` flags
//! ; expect-status: 0                 the exit status (a program without this line is not checked)
//! ; expect-stdout: LINE              stdout is exactly these lines, in order
//! ; expect-stdout-unordered          ... in any order (goroutines print them)
//! ; expect-stderr: TEXT              stderr contains each of these
//! ; jit-only: REASON                 not run on the interpreter
//! ; async-only: REASON               not run under coop, poll, trap or patch
//! ; coop-hangs: REASON               not run under coop (a loop it cannot stop)
//! ```

/// A program's expectations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// Extra `preempt run` flags.
    pub flags: Vec<String>,
    pub status: i32,
    /// The lines of stdout.
    pub stdout: String,
    /// Whether stdout's lines may come in any order.
    pub unordered: bool,
    /// Texts stderr must contain.
    pub stderr: Vec<String>,
    pub jit_only: bool,
    pub async_only: bool,
    pub coop_hangs: bool,
    /// The program fixes its Ps (`set procs`, or `--procs` in its flags).
    pub fixes_procs: bool,
    /// The program fixes its mode (`set preempt`, or `--preempt`).
    pub fixes_mode: bool,
}

impl Expect {
    /// The expectations in `text`'s header; None if it states no exit
    /// status (a program that is not meant to be checked this way).
    pub fn parse(text: &str) -> Option<Expect> {
        let mut e = Expect::default();
        let mut has_status = false;
        for line in text.lines() {
            let l = line.trim();
            if let Some(v) = l.strip_prefix("; flags:") {
                e.flags.extend(v.split_whitespace().map(str::to_string));
            } else if let Some(v) = l.strip_prefix("; expect-status:") {
                e.status = v.trim().parse().ok()?;
                has_status = true;
            } else if let Some(v) = l.strip_prefix("; expect-stdout:") {
                e.stdout.push_str(v.strip_prefix(' ').unwrap_or(v));
                e.stdout.push('\n');
            } else if l.starts_with("; expect-stdout-unordered") {
                e.unordered = true;
            } else if let Some(v) = l.strip_prefix("; expect-stderr:") {
                e.stderr.push(v.trim().to_string());
            } else if l.starts_with("; jit-only:") {
                e.jit_only = true;
            } else if l.starts_with("; async-only:") {
                e.async_only = true;
            } else if l.starts_with("; coop-hangs:") {
                e.coop_hangs = true;
            } else if l.starts_with("set procs") {
                e.fixes_procs = true;
            } else if l.starts_with("set preempt") {
                e.fixes_mode = true;
            }
        }
        e.fixes_procs |= e.has_flag("--procs");
        e.fixes_mode |= e.has_flag("--preempt");
        has_status.then_some(e)
    }

    /// Whether the header's flags include `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// What is wrong with a run that exited with `status` and printed
    /// `stdout` and `stderr`, if anything.
    pub fn check(&self, status: Option<i32>, stdout: &str, stderr: &str) -> Result<(), String> {
        let mut problems = Vec::new();
        if status != Some(self.status) {
            problems.push(format!(
                "exit status {}, expected {}",
                status.map_or("none (killed)".to_string(), |s| s.to_string()),
                self.status
            ));
        }
        let same = if self.unordered {
            sorted_lines(stdout) == sorted_lines(&self.stdout)
        } else {
            stdout == self.stdout
        };
        if !same {
            problems.push(format!("stdout {stdout:?}, expected {:?}", self.stdout));
        }
        for s in &self.stderr {
            if !stderr.contains(s.as_str()) {
                problems.push(format!("stderr lacks {s:?}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "\
; A test program.
; flags: --timeout 1 --preempt coop
; expect-status: 3
; expect-stdout: one
; expect-stdout: two
; expect-stderr: @spin in block loop
; jit-only: no PC to describe
set procs = 1
";

    #[test]
    fn a_header_parses() {
        let e = Expect::parse(HEADER).unwrap();
        assert_eq!(e.flags, ["--timeout", "1", "--preempt", "coop"]);
        assert_eq!(e.status, 3);
        assert_eq!(e.stdout, "one\ntwo\n");
        assert_eq!(e.stderr, ["@spin in block loop"]);
        assert!(e.jit_only && e.fixes_procs && e.fixes_mode);
        assert!(!e.async_only && !e.coop_hangs && !e.unordered);
        assert_eq!(
            Expect::parse("; flags: --procs 2\nfunc @main() {\n    ret\n}\n"),
            None
        );
    }

    #[test]
    fn runs_are_checked_against_it() {
        let e = Expect::parse(HEADER).unwrap();
        assert_eq!(
            e.check(Some(3), "one\ntwo\n", "x @spin in block loop y"),
            Ok(())
        );
        let err = e.check(Some(0), "two\none\n", "").unwrap_err();
        assert!(err.contains("exit status 0, expected 3"), "{err}");
        assert!(err.contains("stdout"), "{err}");
        assert!(err.contains("stderr lacks"), "{err}");
        assert!(e
            .check(None, "one\ntwo\n", "@spin in block loop")
            .unwrap_err()
            .contains("killed"));
        let unordered = Expect {
            unordered: true,
            ..e
        };
        assert_eq!(
            unordered.check(Some(3), "two\none\n", "@spin in block loop"),
            Ok(())
        );
    }
}
