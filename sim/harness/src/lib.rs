//! The dwsim harness: what drives the simulated products from outside, through their
//! public HTTP surface only, and judges what it sees. The scenario files and their parser,
//! the runner, the client and the two transports (real HTTP, in-process), the
//! cross-system invariants, and the model-based test with its replay. The CLI and the
//! tests use it; nothing here is simulated behaviour (that lives in `dwsim-model`).

pub mod client;
pub mod invariants;
pub mod model_based;
pub mod replay;
pub mod runner;
pub mod scenario;
pub mod transport;

use anyhow::Result;
use std::path::Path;

/// The six scenario files, built in so `dwsim run` works from any directory.
pub const BUILTIN_SCENARIOS: [(&str, &str); 6] = [
    ("new-new", include_str!("../../../scenarios/new-new.toml")),
    (
        "new-existing",
        include_str!("../../../scenarios/new-existing.toml"),
    ),
    (
        "new-demo-new",
        include_str!("../../../scenarios/new-demo-new.toml"),
    ),
    (
        "new-demo-existing",
        include_str!("../../../scenarios/new-demo-existing.toml"),
    ),
    (
        "existing-new",
        include_str!("../../../scenarios/existing-new.toml"),
    ),
    (
        "existing-existing",
        include_str!("../../../scenarios/existing-existing.toml"),
    ),
];

/// Scenarios from `dir` if given, else `./scenarios` if present, else the built-in ones.
pub fn load_scenarios(dir: Option<&Path>) -> Result<Vec<scenario::Scenario>> {
    match dir {
        Some(d) => scenario::load_dir(d),
        None if Path::new("scenarios").is_dir() => scenario::load_dir(Path::new("scenarios")),
        None => BUILTIN_SCENARIOS
            .iter()
            .map(|(id, text)| {
                scenario::Scenario::parse(Path::new(&format!("scenarios/{id}.toml")), text)
            })
            .collect(),
    }
}

/// Compares the end states of two runs of one scenario.
pub fn same_end_state(
    a: &runner::ScenarioRun,
    b: &runner::ScenarioRun,
) -> std::result::Result<(), String> {
    if a.end_state == b.end_state {
        return Ok(());
    }
    let (x, y) = (
        serde_json::to_string_pretty(&a.end_state).unwrap_or_default(),
        serde_json::to_string_pretty(&b.end_state).unwrap_or_default(),
    );
    let line = x
        .lines()
        .zip(y.lines())
        .position(|(p, q)| p != q)
        .unwrap_or(0);
    Err(format!(
        "end states differ from line {}: {:?} vs {:?}",
        line + 1,
        x.lines().nth(line).unwrap_or(""),
        y.lines().nth(line).unwrap_or("")
    ))
}
