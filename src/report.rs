//! The table `dwsim run` prints: scenario × invariant with pass/fail and timing, and the
//! JSON report for CI.

use dwsim_harness::runner::{ScenarioRun, INVARIANTS};
use serde_json::{json, Value};
use std::fmt::Write;

/// One scenario's results: the main run, and whether the other transport agreed.
pub struct Row<'a> {
    pub run: &'a ScenarioRun,
    /// None when only one transport ran.
    pub determinism: Option<Result<(), String>>,
    pub other_ms: Option<f64>,
}

fn mark(passed: bool) -> &'static str {
    if passed {
        "pass"
    } else {
        "FAIL"
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut header = format!("{:<19}", "scenario");
    for name in INVARIANTS {
        let _ = write!(
            header,
            " {:>name_width$}",
            name,
            name_width = name.len().max(4)
        );
    }
    let _ = write!(
        header,
        " {:>11} {:>9} {:>9}",
        "determinism", "http ms", "inproc ms"
    );
    out.push_str(&header);
    out.push('\n');
    for r in rows {
        let mut line = format!("{:<19}", r.run.scenario);
        for name in INVARIANTS {
            let passed = r.run.outcome(name).is_some_and(|o| o.passed);
            let _ = write!(line, " {:>w$}", mark(passed), w = name.len().max(4));
        }
        let det = match &r.determinism {
            None => "-",
            Some(Ok(())) => "pass",
            Some(Err(_)) => "FAIL",
        };
        let ms = r.run.elapsed.as_secs_f64() * 1000.0;
        let (http, inproc) = match r.run.transport {
            dwsim_harness::runner::TransportKind::Http => (Some(ms), r.other_ms),
            dwsim_harness::runner::TransportKind::InProcess => (r.other_ms, Some(ms)),
        };
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let _ = write!(line, " {:>11} {:>9} {:>9}", det, show(http), show(inproc));
        out.push_str(&line);
        out.push('\n');
    }
    let failures: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            let mut v: Vec<String> = r
                .run
                .invariants
                .iter()
                .filter(|o| !o.passed)
                .map(|o| format!("{} {}: {}", r.run.scenario, o.name, o.detail))
                .collect();
            if let Some(Err(e)) = &r.determinism {
                v.push(format!("{} determinism: {e}", r.run.scenario));
            }
            v
        })
        .collect();
    let passed = rows.iter().filter(|r| passed(r)).count();
    let _ = writeln!(out, "\n{passed}/{} scenarios passed", rows.len());
    for f in failures {
        let _ = writeln!(out, "  {f}");
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

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one test suite per scenario, one test case per invariant (and determinism).
pub fn junit(rows: &[Row]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"dwsim\">\n");
    for r in rows {
        let mut cases: Vec<(String, f64, Option<String>)> = r
            .run
            .invariants
            .iter()
            .map(|o| {
                (
                    o.name.clone(),
                    o.elapsed.as_secs_f64(),
                    (!o.passed).then(|| o.detail.clone()),
                )
            })
            .collect();
        if let Some(d) = &r.determinism {
            cases.push(("determinism".into(), 0.0, d.clone().err()));
        }
        let failures = cases.iter().filter(|c| c.2.is_some()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">",
            xml_escape(&r.run.scenario),
            cases.len(),
            r.run.elapsed.as_secs_f64()
        );
        for (name, time, failure) in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\"",
                xml_escape(&r.run.scenario),
                xml_escape(&name)
            );
            match failure {
                Some(f) => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\"/>\n    </testcase>",
                        xml_escape(&f)
                    );
                }
                None => out.push_str("/>\n"),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
