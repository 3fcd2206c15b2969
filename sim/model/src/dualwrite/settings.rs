//! The dual-write runtime's limits: records per F&O transaction, initial sync's documented
//! limits and live sync's, each configurable so tests can use small numbers.

pub use super::initial_sync::InitialSyncLimits;
pub use super::runtime::LiveSyncSettings;
use super::RECORDS_PER_TRANSACTION;
use serde::{Deserialize, Serialize};

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
