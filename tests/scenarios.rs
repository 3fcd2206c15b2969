//! Every scenario file, end to end over real HTTP and in-process: every invariant green, the
//! two transports and two runs with the same seed give identical end states, and the end
//! state is the committed snapshot `snapshots/scenario__<id>.snap`.

use dwsim_harness::runner::{self, Options, ScenarioRun, TransportKind};
use dwsim_harness::scenario::Scenario;
use dwsim_model::Catalogue;
use rstest::rstest;
use serde_json::json;
use std::path::{Path, PathBuf};

fn run(scenario: &Scenario, transport: TransportKind) -> ScenarioRun {
    let data = Catalogue::builtin().expect("catalogue").demo;
    runner::run(
        scenario,
        &Options {
            seed: 1,
            data,
            transport,
        },
    )
    .expect("scenario runs")
}

#[rstest]
fn scenario_end_state_is_green_deterministic_and_snapshotted(
    #[files("scenarios/*.toml")] path: PathBuf,
) {
    // Arrange
    let scenario = Scenario::load(&path).expect("scenario file parses");

    // Act
    let http = run(&scenario, TransportKind::Http);
    let in_process = run(&scenario, TransportKind::InProcess);
    let again = run(&scenario, TransportKind::InProcess);

    // Assert
    for outcome in &http.invariants {
        assert!(
            outcome.passed,
            "{} {}: {}",
            scenario.id, outcome.name, outcome.detail
        );
    }
    assert_eq!(
        dwsim_harness::same_end_state(&http, &in_process),
        Ok(()),
        "HTTP and in-process differ"
    );
    let bytes = |r: &ScenarioRun| serde_json::to_vec(&r.end_state).expect("json");
    assert_eq!(
        bytes(&in_process),
        bytes(&again),
        "same seed twice gave different bytes"
    );

    let snapshot = json!({
        "scenario": scenario.id,
        "title": scenario.title,
        "seed": http.seed,
        "steps": http.steps.iter().map(|s| format!("{} (line {}): {}", s.action, s.line, s.detail)).collect::<Vec<_>>(),
        "invariants": http.invariants.iter().map(|o| (o.name.clone(), if o.passed { "pass" } else { "FAIL" })).collect::<std::collections::BTreeMap<_, _>>(),
        "end_state": http.end_state,
    });
    insta::with_settings!({ snapshot_path => Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots"), prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_json_snapshot!(format!("scenario__{}", scenario.id), snapshot);
    });
}

#[test]
fn the_six_guidance_scenarios_are_all_there() {
    let found = dwsim_harness::scenario::load_dir(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios"
    )))
    .expect("scenarios load");
    let ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, dwsim_harness::scenario::SCENARIO_IDS);
}
