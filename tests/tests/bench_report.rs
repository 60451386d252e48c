//! `preempt bench --report DIR`: the page of a quick mechanisms run (the
//! suite with plots), rendered by headless Chromium from Debian's packages
//! (`make test`'s set-up installs it): the rendered DOM holds the
//! provenance, the `--quick` mark, the tables and the plots as images,
//! the page fetches nothing, and its screenshot is not blank. Without
//! Chromium the test says so loudly, and fails only when
//! PREEMPT_REQUIRE_CHROMIUM=1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use preempt_tests::run_cli;

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");

/// Chromium's binary, if installed.
fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Headless Chromium on `page` with `what` (`--dump-dom`, or
/// `--screenshot=FILE`): its stdout. The flags keep it off the network
/// and out of any profile but a fresh one.
fn headless(chrome: &Path, profile: &Path, what: &str, page: &Path) -> String {
    let out = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(what)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pixels of a PNG that are not (nearly) white, those of the colour
/// `rgb` (as the plots draw `async`), and all its pixels.
fn inked_pixels(png_file: &Path, rgb: [u8; 3]) -> (usize, usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_file).expect("the screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let inked = px
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|&c| c < 200))
        .count();
    let coloured = px
        .chunks(channels)
        .filter(|p| p.iter().zip(rgb).all(|(&c, want)| c.abs_diff(want) <= 12))
        .count();
    (inked, coloured, px.len() / channels)
}

#[test]
fn the_report_page_renders_its_tables_and_plots_in_chromium() {
    let Some(chrome) = chromium() else {
        let msg = "\n*** SKIPPED the HTML report's rendering test: Chromium is not installed \
                   (apt-get install chromium; `make setup` does) ***\n";
        eprintln!("{msg}");
        assert!(
            std::env::var("PREEMPT_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "PREEMPT_REQUIRE_CHROMIUM=1 and {msg}"
        );
        return;
    };
    if preempt_tests::emulated() {
        eprintln!("SKIPPED under emulation: Chromium renders on the host");
        return;
    }
    let dir = std::env::temp_dir().join(format!("preempt-report-{}", std::process::id()));
    let reports = dir.join("reports");
    let r = run_cli(
        CLI,
        &[
            "bench",
            "--quick",
            "mechanisms",
            "--report",
            reports.to_str().expect("a UTF-8 path"),
        ],
        Duration::from_secs(600),
    );
    assert_eq!(r.status, Some(0), "{}\n{}", r.stdout, r.stderr);
    let pages: Vec<PathBuf> = std::fs::read_dir(&reports)
        .expect("the report folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(pages.len(), 1, "one page per run: {pages:?}");
    let page = &pages[0];
    assert!(
        r.stdout.contains(&format!("wrote {}", page.display())),
        "{}",
        r.stdout
    );
    let html = std::fs::read_to_string(page).expect("the page");
    for external in ["<script", "<link", "href=", "src=\"http", "url("] {
        assert!(
            !html.contains(external),
            "the page fetches something: {external}"
        );
    }

    let profile = dir.join("profile");
    let dom = headless(&chrome, &profile, "--dump-dom", page);
    assert!(dom.contains("<h1>preempt bench</h1>"), "{dom}");
    assert!(
        dom.contains(&format!("preempt {}", env!("CARGO_PKG_VERSION"))),
        "provenance: {dom}"
    );
    assert!(dom.contains("NOT A MEASUREMENT"), "the quick mark: {dom}");
    // Four tables (timed, counted or its reason, time-to-preempt, code).
    assert!(dom.matches("<table>").count() >= 3, "{dom}");
    assert!(
        dom.contains("<th>mode</th>") && dom.contains("signal floor"),
        "{dom}"
    );
    let images = dom.matches("<img ").count();
    assert_eq!(images, 2, "both plots: {dom}");
    assert_eq!(
        dom.matches("src=\"data:image/svg+xml;base64,").count(),
        2,
        "{dom}"
    );

    let shot = dir.join("page.png");
    headless(
        &chrome,
        &profile,
        &format!("--screenshot={}", shot.display()),
        page,
    );
    let async_colour = preempt_bench::plot::colour("async");
    let (inked, coloured, all) =
        inked_pixels(&shot, [async_colour.0, async_colour.1, async_colour.2]);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("screenshot: {inked} of {all} pixels inked, {coloured} in async's colour");
    assert!(all > 1_000_000, "a page-sized screenshot: {all} pixels");
    assert!(
        inked * 100 > all,
        "the screenshot is blank: {inked} of {all} pixels inked"
    );
    // The plots were decoded and drawn: their lines and bars are there.
    assert!(
        coloured > 500,
        "no plot drawn: {coloured} pixels in async's colour"
    );
}
