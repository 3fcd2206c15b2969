//! The `dwsim` command as a user meets it: its help, the lines `run` prints, and its error
//! cases with their exit codes, snapshotted (timings masked) so a change shows as a diff.

use std::path::Path;
use std::process::{Command, Output};

fn dwsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dwsim"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("dwsim runs")
}

/// Stdout, stderr and the exit code, with every `[  0.123s]` and `in 0.123s` masked.
fn transcript(out: &Output) -> String {
    let text = format!(
        "exit code: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    mask_seconds(&text)
}

/// Replaces each number directly followed by `s` (a duration) with `N.NNN`.
fn mask_seconds(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        if i > start {
            let number: String = chars[start..i].iter().collect();
            let is_duration = number.contains('.') && chars.get(i) == Some(&'s');
            out.push_str(if is_duration { "N.NNN" } else { &number });
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn snapshot(name: &str, value: String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    insta::with_settings!({ snapshot_path => dir, prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(format!("cli__{name}"), value);
    });
}

#[test]
fn help_lists_the_commands_and_exit_codes() {
    snapshot("help", transcript(&dwsim(&["--help"])));
    snapshot("run_help", transcript(&dwsim(&["run", "--help"])));
}

#[test]
fn run_prints_a_line_per_scenario_and_a_summary() {
    let out = dwsim(&["run", "--scenario", "new-new", "--transport", "in-process"]);
    assert_eq!(out.status.code(), Some(0));
    snapshot("run_new_new", transcript(&out));
}

#[test]
fn an_unknown_scenario_is_a_usage_error_that_lists_the_known_ones() {
    let out = dwsim(&["run", "--scenario", "neww-new"]);
    assert_eq!(out.status.code(), Some(2));
    snapshot("run_unknown_scenario", transcript(&out));
    let out = dwsim(&["serve", "--scenario", "neww-new"]);
    assert_eq!(out.status.code(), Some(2));
    snapshot("serve_unknown_scenario", transcript(&out));
}

#[test]
fn a_report_that_cannot_be_written_does_not_hide_the_result() {
    let out = dwsim(&[
        "run",
        "--scenario",
        "new-new",
        "--transport",
        "in-process",
        "--json",
        "/nonexistent/dwsim/report.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    snapshot("run_unwritable_report", transcript(&out));
}

#[test]
fn json_format_puts_the_report_on_stdout() {
    let out = dwsim(&[
        "run",
        "--scenario",
        "new-new",
        "--transport",
        "in-process",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(report[0]["scenario"], "new-new");
    assert_eq!(report[0]["passed"], true);
}

/// A failed step stops its scenario: the report names that step and judges no invariant
/// on the half-set-up world (which would fail for reasons the step already explains).
#[test]
fn a_failed_step_stops_the_scenario_without_cascading() {
    let dir = std::env::temp_dir().join(format!("dwsim-failing-step-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("half-done.toml"),
        "id = \"half-done\"\ntitle = \"t\"\nguidance = \"g\"\n\n[start]\nfno = \"existing\"\ndataverse = \"existing\"\n\n[[step]]\naction = \"dual-write.health-check\"\nexpect = { health_check = true }\n",
    )
    .expect("write");
    let out = dwsim(&[
        "run",
        "--scenarios-dir",
        dir.to_str().unwrap_or_default(),
        "--transport",
        "in-process",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let names: Vec<&str> = report[0]["invariants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, ["steps"], "{report}");
    assert!(report[0]["invariants"][0]["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("half-done.toml:9 dual-write.health-check"));
}

/// `run --check-snapshots` holds each scenario to its committed insta snapshot outside
/// cargo: the seed the snapshots were taken with passes, another seed does not.
#[test]
fn check_snapshots_compares_with_the_committed_ones() {
    let args = [
        "run",
        "--check-snapshots",
        "--transport",
        "in-process",
        "--scenario",
        "new-new",
    ];
    assert_eq!(dwsim(&args).status.code(), Some(0));
    let other = dwsim(&[&args[..], &["--seed", "2"]].concat());
    assert_eq!(other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&other.stdout)
        .contains("the run differs from snapshots/scenario__new-new.snap"));
}

/// `run --snapshots DIR` writes a missing snapshot, and a run that matches it removes a
/// `.json.new` an earlier, differing run left beside it.
#[test]
fn a_matching_run_removes_a_stale_difference() {
    let dir = std::env::temp_dir().join(format!("dwsim-snapshots-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir_arg = dir.to_string_lossy().to_string();
    let args = [
        "run",
        "--scenario",
        "new-new",
        "--transport",
        "in-process",
        "--snapshots",
        dir_arg.as_str(),
    ];
    assert!(dwsim(&args).status.success(), "the first run writes it");
    assert!(dir.join("new-new.json").exists());
    let stale = dir.join("new-new.json.new");
    std::fs::write(&stale, "{}").expect("stale file");
    let out = dwsim(&args);
    assert!(out.status.success(), "{}", transcript(&out));
    assert!(!stale.exists(), "the stale difference is gone");
    let _ = std::fs::remove_dir_all(&dir);
}
