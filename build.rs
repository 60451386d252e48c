//! Compiles `examples/` into the `preempt` binary: the build writes
//! `$OUT_DIR/examples.rs`, a table of every file under `examples/` (its
//! path relative to `examples/` and its bytes, through `include_bytes!`)
//! and a digest of them all, which `src/embedded.rs` includes. So `preempt
//! demo` and `preempt bugs` work from any directory, and after `cargo
//! install`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Every file under `dir`, sorted, hidden ones left out.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

/// FNV-1a, 64 bits: the cache directory's name changes with the contents.
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let examples = root.join("examples");
    println!("cargo:rerun-if-changed=build.rs");
    // A directory: cargo looks at every file under it.
    println!("cargo:rerun-if-changed={}", examples.display());
    let mut all = Vec::new();
    files(&examples, &mut all);
    let mut digest = 0xcbf2_9ce4_8422_2325u64;
    let mut table = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for p in &all {
        let rel = p
            .strip_prefix(&examples)
            .expect("under examples/")
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_str()
                    .expect("UTF-8 file names in examples/")
            })
            .collect::<Vec<_>>()
            .join("/");
        let abs = p.to_str().expect("a UTF-8 path to examples/");
        fnv(&mut digest, rel.as_bytes());
        fnv(&mut digest, &std::fs::read(p).expect("a readable example"));
        writeln!(table, "    ({rel:?}, include_bytes!({abs:?})),").expect("a String");
    }
    table.push_str("];\n");
    writeln!(table, "pub const DIGEST: u64 = {digest:#018x};").expect("a String");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("examples.rs"), table).expect("OUT_DIR is writable");
}
