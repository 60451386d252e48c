//! `preempt dist-docs [DIR]` (`make dist-docs`): shell completions
//! for bash, zsh and fish, and a man page for `preempt` and for each of its
//! subcommands, generated from the command-line definition itself, so that
//! they never disagree with `--help`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

/// Writes `DIR/completions/{preempt.bash,_preempt,preempt.fish}` and
/// `DIR/man/preempt.1`, `DIR/man/preempt-SUBCOMMAND.1`; returns the files
/// written.
pub fn write(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = crate::Cli::command();
        written.push(clap_complete::generate_to(
            shell,
            &mut cmd,
            "preempt",
            &completions,
        )?);
    }
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    clap_mangen::generate_to(crate::Cli::command(), &man)?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&man)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    written.extend(pages);
    Ok(written)
}
