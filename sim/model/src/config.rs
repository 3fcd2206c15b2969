//! The settings a world runs under, kept apart from its state as turmoil keeps its
//! `Config` apart from the simulation: Dataverse service protection, the dual-write
//! runtime's limits, and the fault plan. The admin verbs read and change these; nothing
//! here is a fact about the simulated products' data.

use crate::dualwrite::initial_sync::InitialSyncLimits;
use crate::dualwrite::runtime::LiveSyncSettings;
use crate::dualwrite::RECORDS_PER_TRANSACTION;
use crate::faults::FaultPlan;
use crate::limits::ServiceProtection;
use serde::{Deserialize, Serialize};

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

/// The dual-write runtime's limits, the documented ones by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DualWriteSettings {
    /// Most records one F&O transaction may dual-write (the documented 1,000).
    pub records_per_transaction: usize,
    /// Initial-sync limits (rows per legal entity, lookups, the 24-hour window, 40 companies).
    pub initial_sync: InitialSyncLimits,
    /// Live-sync limits: payload, the transaction window, queue retention.
    pub live_sync: LiveSyncSettings,
}

impl Default for DualWriteSettings {
    fn default() -> Self {
        DualWriteSettings {
            records_per_transaction: RECORDS_PER_TRANSACTION,
            initial_sync: InitialSyncLimits::default(),
            live_sync: LiveSyncSettings::default(),
        }
    }
}
