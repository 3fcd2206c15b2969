//! The settings a world runs under, kept apart from its state as turmoil keeps its
//! `Config` apart from the simulation: Dataverse service protection, the dual-write
//! runtime's limits, and the fault plan. The admin verbs read and change these; nothing
//! here is a fact about the simulated products' data.

pub use crate::dualwrite::DualWriteSettings;
use crate::faults::FaultPlan;
use crate::limits::ServiceProtection;
use serde::{Deserialize, Serialize};

/// The settings of one world: what the admin verbs read and change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Dataverse service protection limits (`/_dwsim/limits`).
    pub service_protection: ServiceProtection,
    /// The dual-write runtime's limits (`/_dwsim/dualwrite`).
    pub dual_write: DualWriteSettings,
    /// Faults injected into dual-write's counterpart writes (`/_dwsim/faults`).
    pub faults: FaultPlan,
}
