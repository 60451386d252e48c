//! The values of the command line's flags: signals, durations, the
//! watchdog's timeout, sizes. Each parser's error names the value and what
//! is accepted (clap prints it; exit 2).

use std::time::Duration;

/// Signals the runtime may use for preemption: not those the kernel
/// sends for faults, not SIGKILL/SIGSTOP, not the profiler's SIGPROF.
const SIGNALS: &[(&str, libc::c_int)] = &[
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
];

/// `SIGURG`, `URG`, `usr1`, or a number (a real-time signal, or one of
/// the names above).
pub(crate) fn parse_signal(s: &str) -> Result<libc::c_int, String> {
    let t = s.trim().to_ascii_uppercase();
    let name = t.strip_prefix("SIG").unwrap_or(&t);
    if let Some((_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
        return Ok(*n);
    }
    let allowed = || {
        let names: Vec<String> = SIGNALS.iter().map(|(k, _)| format!("SIG{k}")).collect();
        format!(
            "{} or a real-time signal {}..{}",
            names.join(", "),
            libc::SIGRTMIN(),
            libc::SIGRTMAX()
        )
    };
    match name.parse::<libc::c_int>() {
        Ok(n) if SIGNALS.iter().any(|(_, v)| *v == n) => Ok(n),
        Ok(n) if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{s}' cannot be the preemption signal: use {}",
            allowed()
        )),
    }
}

/// `--timeout`: the watchdog's bound, or none.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Timeout(pub Option<Duration>);

/// `--timeout`: a bare number is seconds (the flag's old form); a unit
/// says otherwise (`2s`, `500ms`); `none` (or `0`) turns the watchdog off.
pub(crate) fn parse_timeout(s: &str) -> Result<Timeout, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(Timeout(None));
    }
    let d = match t.parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..1e9).contains(&secs) => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("'{s}' is out of range")),
        Err(_) => parse_duration(t).map_err(|_| {
            format!("'{s}' is not a timeout (seconds, a duration such as 2s or 500ms, or none)")
        })?,
    };
    Ok(Timeout((!d.is_zero()).then_some(d)))
}

/// `10ms`, `500us`, `2s`, `1500ns`, or a bare number of microseconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 10ms, 500us)"))?;
    let scale = match unit {
        "" | "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (ns, us, ms, s)")),
    };
    let secs = v * scale;
    if !(0.0..1e6).contains(&secs) {
        return Err(format!("'{s}' is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--stack-size`: bytes, with a k, m or g suffix, 64k to 64g.
pub(crate) fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim().to_ascii_lowercase();
    let (digits, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1usize << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (&t[..], 1),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| (64 << 10..=(64usize << 30)).contains(&n))
        .ok_or_else(|| format!("'{s}' is not a stack size between 64k and 64g"))
}
