//! `preempt bench runtime` end to end at tiny sizes, preempt's side only:
//! every program runs under the scheduler and yields a figure. No figure
//! is compared with anything; the suite's purpose is to print them.

use std::path::PathBuf;

use preempt_bench::runtime::{run, Options};

const CLI: &str = env!("CARGO_BIN_EXE_preempt-cli");

#[test]
fn the_runtime_suite_measures_every_preempt_figure_at_tiny_sizes() {
    let mut opts = Options::new(true, Some(PathBuf::from(CLI)));
    opts.go = false;
    let report = run(opts);
    for row in &report.rows {
        let fig = &row.preempt;
        if matches!(fig, Err(e) if preempt_bench::runtime::is_no_twin(e)) {
            continue;
        }
        assert!(
            matches!(fig, Ok(v) if v.is_finite() && *v >= 0.0),
            "{}: {fig:?}\n{}",
            row.name,
            report.text
        );
        assert_eq!(
            row.go.as_ref().err().map(String::as_str),
            Some(preempt_bench::runtime::NO_GO),
            "{}",
            row.name
        );
    }
    assert!(report.text.contains("context switch"), "{}", report.text);
    let json = &report.json;
    assert_eq!(json["suite"], "runtime");
    assert_eq!(
        json["rows"].as_array().map(Vec::len),
        Some(report.rows.len())
    );
}
