//! The examples built into the binary (`build.rs` puts every file under
//! `examples/` here): a relative `examples/...` path that is not on disk
//! reads the built-in copy, so `preempt demo` and the examples of `preempt
//! --help` work from any directory and after `cargo install`; `preempt
//! bugs` writes its built-in catalogue out under the cache directory,
//! because the Go twins are built from files.

use std::io;
use std::path::{Component, Path, PathBuf};

mod table {
    include!(concat!(env!("OUT_DIR"), "/examples.rs"));
}

/// The path of `path` inside `examples/` (`hoist.pir`, `bugs/go.mod`), if
/// it is a plain relative path there (no `..`, nothing absolute).
fn key(path: &Path) -> Option<String> {
    let mut words = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(w) => words.push(w.to_str()?),
            _ => return None,
        }
    }
    (words.len() > 1 && words[0] == "examples").then(|| words[1..].join("/"))
}

/// The built-in copy of `path` (`examples/hoist.pir`), if there is one.
pub fn example(path: &Path) -> Option<&'static [u8]> {
    let k = key(path)?;
    table::FILES
        .iter()
        .find(|(name, _)| *name == k)
        .map(|(_, bytes)| *bytes)
}

/// Where preempt keeps files between runs: `$XDG_CACHE_HOME/preempt`,
/// else `~/.cache/preempt`, else under the temporary directory.
pub fn cache_dir() -> PathBuf {
    let from = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    from("XDG_CACHE_HOME")
        .or_else(|| from("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("preempt")
}

/// Writes the built-in `examples/<sub>/` into
/// `<cache>/<sub>-<version>-<digest>` (a file only when it is missing or
/// differs, each by a rename, so that two runs at once do not see half a
/// file) and returns that directory. The digest of the contents names the
/// directory, so a build with other examples never finds stale files.
pub fn write_out(sub: &str) -> io::Result<PathBuf> {
    let dir = cache_dir().join(format!(
        "{sub}-{}-{:016x}",
        env!("CARGO_PKG_VERSION"),
        table::DIGEST
    ));
    let prefix = format!("{sub}/");
    for (name, bytes) in table::FILES {
        let Some(rel) = name.strip_prefix(&prefix) else {
            continue;
        };
        let path = dir.join(rel);
        if std::fs::read(&path).is_ok_and(|old| old == *bytes) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_under_examples_have_a_built_in_copy() {
        let hoist = example(Path::new("examples/hoist.pir")).expect("built in");
        assert!(String::from_utf8_lossy(hoist).contains("@spinner"));
        assert_eq!(example(Path::new("./examples/hoist.pir")), Some(hoist));
        assert!(example(Path::new("examples/bugs/go.mod")).is_some());
        for not in [
            "/examples/hoist.pir",
            "examples/../examples/hoist.pir",
            "hoist.pir",
            "examples",
            "examples/nonexistent.pir",
        ] {
            assert_eq!(example(Path::new(not)), None, "{not}");
        }
    }
}
