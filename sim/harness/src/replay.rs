//! `dwsim replay BUNDLE`: re-runs a failed model-based case from its bundle (world seed and
//! operations) through the same code as `tests/model_based.rs`, prints the transcript, and
//! says whether the servers diverge from the reference model again.

use crate::model_based::{run_case, Bundle, Carrier, CaseOutcome};
use anyhow::Result;
use std::path::Path;

/// A bundle re-run: what was recorded, and what happened this time.
pub struct Replay {
    /// The failed case as recorded.
    pub bundle: Bundle,
    /// The case run again.
    pub outcome: CaseOutcome,
}

impl Replay {
    /// A deterministic replay gives the bundle's transcript exchange for exchange (as long
    /// as the runtime is the one that recorded it).
    pub fn same_transcript(&self) -> bool {
        self.bundle.transcript == self.outcome.transcript
    }
}

/// Replays the bundle at `path`, over its own transport unless `carrier` says otherwise.
pub fn replay(path: &Path, carrier: Option<Carrier>) -> Result<Replay> {
    let bundle = Bundle::read(path)?;
    let outcome = run_case(
        bundle.seed,
        &bundle.ops,
        carrier.unwrap_or(bundle.transport),
        None,
    )?;
    Ok(Replay { bundle, outcome })
}

/// The CLI: prints the steps and the transcript; Ok(false) when the replay diverges from
/// the model (the bug is still there).
pub fn run(path: &Path, carrier: Option<Carrier>) -> Result<bool> {
    let r = replay(path, carrier)?;
    println!(
        "replaying {} (seed {}, {} steps)",
        r.bundle.name,
        r.bundle.seed,
        r.bundle.ops.len()
    );
    for (i, step) in r.bundle.steps.iter().enumerate() {
        println!("step {i}: {step}");
        for x in r.outcome.transcript.iter().filter(|x| x.step == i) {
            println!("    {} -> {}", x.request, x.status);
            if !x.request_body.is_empty() {
                println!("        sent {}", x.request_body);
            }
            if !x.response_body.is_empty() {
                println!("        got  {}", x.response_body);
            }
        }
    }
    if r.same_transcript() {
        println!("transcript identical to the bundle's");
    } else {
        println!("transcript differs from the bundle's (a changed runtime, or nondeterminism)");
    }
    match &r.outcome.failure {
        Some(f) => {
            println!("diverges from the reference model: {f}");
            Ok(false)
        }
        None => {
            println!("matches the reference model at every step");
            Ok(true)
        }
    }
}
