//! What `dwsim run` reports: a line per scenario as it finishes and a summary for people,
//! and the JSON and JUnit reports for CI.

use dwsim_harness::runner::ScenarioRun;
use serde_json::{json, Value};
use std::fmt::Write;

/// One scenario's results: the main run, and whether the other transport agreed.
pub struct Row<'a> {
    pub run: &'a ScenarioRun,
    /// None when only one transport ran.
    pub determinism: Option<Result<(), String>>,
    pub other_ms: Option<f64>,
}

/// The line `dwsim run` prints as a scenario finishes, as cargo-nextest prints a test:
/// `    PASS [   0.112s] new-new`, and under a failure the checks that failed. The word is
/// styled; print it through `anstream`, which drops the style where the terminal has none.
pub fn scenario_line(r: &Row) -> String {
    let ok = passed(r);
    let (style, word) = if ok {
        (anstyle::AnsiColor::Green.on_default().bold(), "PASS")
    } else {
        (anstyle::AnsiColor::Red.on_default().bold(), "FAIL")
    };
    let secs = r.run.elapsed.as_secs_f64() + r.other_ms.unwrap_or(0.0) / 1000.0;
    let mut out = format!(
        "    {style}{word}{style:#} [{secs:>8.3}s] {}\n",
        r.run.scenario
    );
    for f in failures(r) {
        let _ = writeln!(out, "         {f}");
    }
    out
}

/// What failed in a scenario: each failed check with its detail.
fn failures(r: &Row) -> Vec<String> {
    let mut v: Vec<String> = r
        .run
        .invariants
        .iter()
        .filter(|o| !o.passed)
        .map(|o| format!("{}: {}", o.name, o.detail))
        .collect();
    if let Some(Err(e)) = &r.determinism {
        v.push(format!("determinism: {e}"));
    }
    v
}

/// The closing summary: how many scenarios passed and failed, and which failed.
pub fn summary(rows: &[Row], elapsed_secs: f64) -> String {
    let passed_count = rows.iter().filter(|r| passed(r)).count();
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !passed(r))
        .map(|r| r.run.scenario.as_str())
        .collect();
    let noun = if rows.len() == 1 {
        "scenario"
    } else {
        "scenarios"
    };
    let mut out = format!(
        "{} {noun} run in {elapsed_secs:.3}s: {passed_count} passed, {} failed\n",
        rows.len(),
        failed.len()
    );
    if !failed.is_empty() {
        let _ = writeln!(out, "failed: {}", failed.join(", "));
    }
    out
}

pub fn passed(r: &Row) -> bool {
    r.run.passed() && !matches!(r.determinism, Some(Err(_)))
}

pub fn json_report(rows: &[Row]) -> Value {
    json!(rows
        .iter()
        .map(|r| json!({
            "scenario": r.run.scenario,
            "seed": r.run.seed,
            "passed": passed(r),
            "invariants": r.run.invariants.iter().map(|o| json!({"name": o.name, "passed": o.passed, "detail": o.detail, "ms": o.elapsed.as_secs_f64() * 1000.0})).collect::<Vec<_>>(),
            "determinism": r.determinism.as_ref().map(|d| d.clone().err().unwrap_or_default()),
            "steps": r.run.steps,
            "ms": r.run.elapsed.as_secs_f64() * 1000.0,
        }))
        .collect::<Vec<_>>())
}

/// JUnit XML (through quick-junit): one test suite per scenario, one test case per check
/// (and determinism, when both transports ran).
pub fn junit(rows: &[Row]) -> Result<String, quick_junit::SerializeError> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    use std::time::Duration;
    let mut report = Report::new("dwsim");
    for r in rows {
        let mut suite = TestSuite::new(r.run.scenario.as_str());
        suite.set_time(r.run.elapsed);
        let mut cases: Vec<(String, Duration, Option<String>)> = r
            .run
            .invariants
            .iter()
            .map(|o| {
                (
                    o.name.clone(),
                    o.elapsed,
                    (!o.passed).then(|| o.detail.clone()),
                )
            })
            .collect();
        if let Some(d) = &r.determinism {
            cases.push(("determinism".into(), Duration::ZERO, d.clone().err()));
        }
        for (name, time, failure) in cases {
            let status = match failure {
                None => TestCaseStatus::success(),
                Some(message) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(message);
                    status
                }
            };
            let mut case = TestCase::new(name, status);
            case.set_classname(r.run.scenario.as_str());
            case.set_time(time);
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string()
}
