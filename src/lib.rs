//! dwsim: the Dynamics 365 dual-write simulator's command line. This crate is the thin
//! outer layer: the CLI and its reports. The simulated behaviour lives in `sim/` (model,
//! protocol, HTTP shell); the scenarios, runner and checks in `sim/harness`.

pub mod report;
