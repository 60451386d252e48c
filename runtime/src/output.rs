//! Program output: every `print` writes whole lines under one lock, so
//! lines from different goroutines never interleave.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// A shared, line-atomic sink for program output.
#[derive(Clone)]
pub struct Output {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
    /// Flush after every print (when a person is watching).
    eager: bool,
    /// The first write that failed: the program goes on (as Go's
    /// `fmt.Println`, whose error is usually ignored), and whoever ran it
    /// decides what a lost output means (`preempt run` ends with status 1,
    /// or quietly for a closed pipe).
    failed: Arc<OnceLock<(std::io::ErrorKind, String)>>,
    /// Set when the watchdog ends the program: from then on a flush waits
    /// at most [`ABANDONED_FLUSH`] (see [`Output::abandon`]).
    abandoned: Arc<std::sync::atomic::AtomicBool>,
    /// An abandoned flush did not finish in time.
    flush_stuck: Arc<std::sync::atomic::AtomicBool>,
}

/// How long a flush waits once the output is abandoned.
pub const ABANDONED_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("eager", &self.eager)
            .finish()
    }
}

impl Output {
    pub fn new(sink: Box<dyn Write + Send>, eager: bool) -> Output {
        Output {
            sink: Arc::new(Mutex::new(sink)),
            eager,
            failed: Arc::default(),
            abandoned: Arc::default(),
            flush_stuck: Arc::default(),
        }
    }

    /// The watchdog is ending the program: a goroutine may be blocked in a
    /// write holding the output (its reader stopped reading, so the pipe
    /// is full), and a flush would then wait with it for ever, keeping
    /// the watchdog from ending anything. From now on a flush runs on a
    /// thread of its own and is waited for [`ABANDONED_FLUSH`] at most;
    /// what it could not write is lost with the process.
    pub fn abandon(&self) {
        self.abandoned
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The process's stdout: buffered, and flushed per line when it is a
    /// terminal.
    pub fn stdout() -> Output {
        use std::io::IsTerminal;
        let tty = std::io::stdout().is_terminal();
        Output::new(
            Box::new(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            )),
            tty,
        )
    }

    /// A buffer, for tests and benchmarks; returns the reader side.
    pub fn capture() -> (Output, Captured) {
        let buf = Captured::default();
        (Output::new(Box::new(buf.clone()), false), buf)
    }

    /// Writes `text` and a newline, atomically with respect to other prints.
    pub fn print_line(&self, text: &str) {
        let mut s = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let r = s
            .write_all(text.as_bytes())
            .and_then(|()| s.write_all(b"\n"));
        self.note(r);
        if self.eager {
            let r = s.flush();
            self.note(r);
        }
    }

    /// Writes `bytes` as they are, atomically with respect to other writes.
    pub fn write_bytes(&self, bytes: &[u8]) {
        let mut s = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let r = s.write_all(bytes);
        self.note(r);
        if self.eager {
            let r = s.flush();
            self.note(r);
        }
    }

    pub fn flush(&self) {
        if !self.abandoned.load(std::sync::atomic::Ordering::Acquire) {
            return self.flush_now();
        }
        if self.flush_stuck.load(std::sync::atomic::Ordering::Acquire) {
            // An earlier flush is still waiting: this one would too.
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let out = self.clone();
        let spawned = std::thread::Builder::new()
            .name("preempt-flush".into())
            .spawn(move || {
                out.flush_now();
                let _ = tx.send(());
            });
        if spawned.is_ok() && rx.recv_timeout(ABANDONED_FLUSH).is_err() {
            self.flush_stuck
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    fn flush_now(&self) {
        let mut s = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let r = s.flush();
        self.note(r);
    }

    fn note(&self, r: std::io::Result<()>) {
        if let Err(e) = r {
            let _ = self.failed.set((e.kind(), e.to_string()));
        }
    }

    /// The first write error, if a write failed: its kind and message.
    pub fn failure(&self) -> Option<(std::io::ErrorKind, String)> {
        self.failed.get().cloned()
    }

    /// Whether the reader of the output went away (a closed pipe).
    pub fn closed(&self) -> bool {
        self.failed
            .get()
            .is_some_and(|(k, _)| *k == std::io::ErrorKind::BrokenPipe)
    }
}

/// Writes a diagnosis to stderr, best effort: a run goes on when its
/// stderr cannot be written (its exit status still says what happened).
pub fn diagnose(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The bytes written to a captured [`Output`].
#[derive(Clone, Default, Debug)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.contents()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
