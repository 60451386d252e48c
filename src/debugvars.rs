//! `PREEMPTDEBUG`: preempt's `GODEBUG`, comma-separated `key=value`
//! settings read from the environment.
//!
//! | key | what it does |
//! |---|---|
//! | `asyncpreemptoff=1` | `coop` instead of the default mode, unless `--preempt` is given (the flag wins, and a line says so) |
//! | `schedtrace=MS` | Go's scheduler trace: a `SCHED` line on stderr every MS milliseconds |
//! | `scheddetail=1` | with `schedtrace`, Go's per-P, per-M and per-G lines too |
//!
//! Nothing is ignored silently: an unknown key, a value that is not one,
//! or a setting that does nothing is named on stderr.

use std::time::Duration;

use preempt_jit::ir::PreemptMode;

/// What `PREEMPTDEBUG` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DebugVars {
    /// `asyncpreemptoff=1`, when no flag beats it.
    pub coop: bool,
    pub schedtrace: Option<Duration>,
    pub scheddetail: bool,
}

/// Reads `text` (the variable's value); `flag` is the `--preempt` given,
/// if any. Returns the settings and a line for each thing it ignored or
/// overrode.
pub fn parse(text: &str, flag: Option<PreemptMode>) -> (DebugVars, Vec<String>) {
    let mut v = DebugVars::default();
    let mut said = Vec::new();
    const KNOWN: &str = "asyncpreemptoff=0|1, schedtrace=MS, scheddetail=0|1";
    for kv in text.split(',').map(str::trim).filter(|kv| !kv.is_empty()) {
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        match (key, value) {
            ("asyncpreemptoff", "1") => match flag {
                Some(mode) => said.push(format!(
                    "preempt: PREEMPTDEBUG=asyncpreemptoff=1 ignored: --preempt {mode} was given, and the flag wins"
                )),
                None => v.coop = true,
            },
            ("asyncpreemptoff", "0") => v.coop = false,
            ("schedtrace", ms) => match ms.parse::<u64>() {
                // Go's schedtrace=0 is off.
                Ok(0) => v.schedtrace = None,
                Ok(ms) if ms <= 3_600_000 => v.schedtrace = Some(Duration::from_millis(ms)),
                _ => said.push(format!(
                    "preempt: PREEMPTDEBUG: '{kv}' ignored: schedtrace takes milliseconds, 0 to 3600000"
                )),
            },
            ("scheddetail", "1") => v.scheddetail = true,
            ("scheddetail", "0") => v.scheddetail = false,
            _ => said.push(format!(
                "preempt: PREEMPTDEBUG: '{kv}' is not supported and is ignored (known: {KNOWN})"
            )),
        }
    }
    if v.scheddetail && v.schedtrace.is_none() {
        said.push(
            "preempt: PREEMPTDEBUG: scheddetail=1 does nothing without schedtrace=MS (as in Go)"
                .into(),
        );
    }
    (v, said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_read_and_nothing_is_ignored_silently() {
        let (v, said) = parse("schedtrace=1000, scheddetail=1,asyncpreemptoff=1", None);
        assert_eq!(
            v,
            DebugVars {
                coop: true,
                schedtrace: Some(Duration::from_millis(1000)),
                scheddetail: true,
            }
        );
        assert!(said.is_empty(), "{said:?}");
        let (v, said) = parse("asyncpreemptoff=1", Some(PreemptMode::Poll));
        assert!(!v.coop);
        assert_eq!(
            said,
            ["preempt: PREEMPTDEBUG=asyncpreemptoff=1 ignored: --preempt poll was given, and the flag wins"]
        );
        let (v, said) = parse("gctrace=1,schedtrace=soon,schedtrace=0,scheddetail=1", None);
        assert_eq!(v.schedtrace, None);
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0].contains("'gctrace=1' is not supported"), "{said:?}");
        assert!(said[1].contains("'schedtrace=soon' ignored"), "{said:?}");
        assert!(said[2].contains("scheddetail=1 does nothing"), "{said:?}");
        assert_eq!(parse("", None), (DebugVars::default(), Vec::new()));
    }
}
