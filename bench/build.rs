//! Embeds the git commit the build was made from, for the provenance of
//! every result file (`PREEMPT_GIT_COMMIT`): `git rev-parse HEAD` when the
//! sources are a git checkout with git installed, else `unknown` (a build
//! from a packaged source, or `cargo install` from a copy).

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&dir);
    let commit = git(dir, &["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PREEMPT_GIT_COMMIT={commit}");
    // Built again when HEAD moves: HEAD itself (a checkout or a new
    // branch), the branch it names (a commit), and packed refs. Each path
    // comes from git, so a worktree's own HEAD is the one watched.
    // Uncommitted changes are not recorded: the commit is the one the
    // build started from.
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(r);
    }
    for w in watched {
        if let Some(p) = git(dir, &["rev-parse", "--git-path", &w]) {
            let p = if Path::new(&p).is_absolute() {
                Path::new(&p).to_path_buf()
            } else {
                dir.join(p)
            };
            // A path that does not exist would make every build run this
            // script again.
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
