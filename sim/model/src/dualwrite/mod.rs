//! The dual-write runtime between one F&O environment and one Dataverse environment: the
//! connection (legal entities, table maps and their states), health check, initial sync and
//! live sync. It lives in the model because a dual-write is one transaction across both.
//!
//! [`DualWrite`] is the runtime of one linked F&O environment for the length of one
//! operation: its [`Connection`] and the two stores it spans, borrowed from the world. It is
//! the only place that opens a transaction across both products. The world builds it
//! (`world.dual_write(env)?`) and delegates its dual-write verbs to it; nothing here knows
//! the world.

pub mod customize;
pub mod initial_sync;
mod lifecycle;
pub mod link;
pub mod live_sync;
pub mod runtime;
pub mod settings;
pub mod transform;

use crate::catalogue::Catalogue;
use crate::clock::{Clock, Instant};
use crate::dataverse::DvEnv;
use crate::error::SimError;
use crate::faults::FaultPlan;
use crate::fno::FnoEnv;
use crate::ids::Ids;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::schema::Side;
pub use initial_sync::{Execution, ExecutionStatus, Leg, LegDirection};
pub use settings::DualWriteSettings;

/// Initial writes are processed for at most this many legal entities.
pub const INITIAL_SYNC_LEGAL_ENTITY_LIMIT: usize = 40;
/// Records one F&O transaction may send to Dataverse.
pub const RECORDS_PER_TRANSACTION: usize = 1000;
/// Live sync supports this many legal entities.
pub const LIVE_SYNC_LEGAL_ENTITY_LIMIT: usize = 250;

/// The states of a table map (`enable-entity-map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapState {
    /// Published but not syncing.
    #[serde(rename = "Not running")]
    NotRunning,
    /// Running its initial sync.
    Initializing,
    /// Live: every write is dual-written.
    Running,
    /// Writes are queued until the map resumes.
    Paused,
    /// Replaying the queue before it runs again.
    Resuming,
}

/// A table map as one connection runs it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapRuntime {
    /// Where the map stands.
    pub state: MapState,
    /// The side that wins initial-sync conflicts, chosen when the map was run.
    pub master: Side,
    /// Whether the map last ran with initial sync.
    pub initial_sync: bool,
    /// Chronological activity log: (time, text).
    pub activity: Vec<(Instant, String)>,
    /// When the map was last paused (for the queue's retention).
    #[serde(default)]
    pub paused_at: Option<Instant>,
    /// Alert rules in force, taken from the connection when the map last started.
    #[serde(default)]
    pub active_alerts: Vec<runtime::AlertRule>,
    /// Recent live-sync errors: (time, error type).
    #[serde(default)]
    pub errors: Vec<(Instant, runtime::LiveSyncErrorType)>,
}

/// One map to run, as the Run dialog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRun {
    /// The map's id.
    pub map: String,
    /// Copy existing rows first (initial sync) or only go live.
    pub initial_sync: bool,
    /// The side that wins conflicts in initial sync.
    pub master: Side,
}

impl MapRun {
    /// Runs `map`, with or without initial sync, `master` winning its conflicts.
    pub fn new(map: impl Into<String>, initial_sync: bool, master: Side) -> MapRun {
        MapRun {
            map: map.into(),
            initial_sync,
            master,
        }
    }
}

/// One prerequisite the link wizard checks, with its result text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// The check's name (`CoreSolution`, `SameTenant`, …).
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// The documented text of its result.
    pub message: String,
}

/// The dual-write link of one F&O environment to one Dataverse environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    /// The linked Dataverse organization.
    pub dataverse: String,
    /// Legal entities in the connection, in the order they were added (upper case).
    pub legal_entities: Vec<String>,
    /// The published maps by id, with their runtime state.
    pub maps: BTreeMap<String, MapRuntime>,
    /// The health check the link passed.
    pub health_check: Vec<HealthCheck>,
    /// Every initial-sync execution, oldest first.
    pub executions: Vec<Execution>,
    /// Changes recorded while their map was paused, in order.
    pub queue: Vec<live_sync::QueuedChange>,
    /// Queued changes that failed to replay (the Catch-up errors tab).
    pub catch_up_errors: Vec<live_sync::QueuedChange>,
    /// Legal entities taken out of the connection; rows that crossed while they were in stay.
    #[serde(default)]
    pub removed_legal_entities: Vec<String>,
    /// Alert rules; a map takes them when it next starts.
    #[serde(default)]
    pub alert_rules: Vec<runtime::AlertRule>,
    /// Notifications the alert rules sent.
    #[serde(default)]
    pub notifications: Vec<runtime::Notification>,
    /// When the link was made.
    pub linked_at: Instant,
}

impl Connection {
    /// Whether a legal entity (any letter case) is in the connection.
    pub fn is_connected(&self, company: &str) -> bool {
        self.legal_entities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(company))
    }
}

/// The transaction in flight, between the calls that make it up: the records an F&O
/// `$batch` change set has dual-written so far (counted against the per-transaction limit)
/// and the virtual time the outermost dual-write transaction has taken.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    /// Records an F&O change set has dual-written so far, while one is open.
    pub records: Option<usize>,
    /// Virtual milliseconds the outermost dual-write transaction has taken so far.
    pub timer_ms: Option<i64>,
}

/// The dual-write runtime of one linked F&O environment: its connection and the two stores
/// it spans, borrowed from the world for one operation, with what the runtime reads from
/// the world around them (catalogue, settings, fault plan, ids, the virtual clock).
pub struct DualWrite<'w> {
    pub(crate) catalogue: &'w Catalogue,
    pub(crate) settings: &'w DualWriteSettings,
    pub(crate) faults: &'w mut FaultPlan,
    pub(crate) in_flight: &'w mut InFlight,
    pub(crate) ids: &'w mut Ids,
    pub(crate) clock: &'w mut Clock,
    pub(crate) fno: &'w mut FnoEnv,
    pub(crate) dv: &'w mut DvEnv,
    pub(crate) conn: &'w mut Connection,
}

impl DualWrite<'_> {
    /// The systemuserid dual-write writes to Dataverse as (Modified by).
    pub(crate) fn writer(&self) -> String {
        self.dv.dual_write_user()
    }

    /// The connection this runtime works on.
    pub fn connection(&self) -> &Connection {
        self.conn
    }
}

/// A map state as the dual-write workspace shows it.
pub fn state_text(state: MapState) -> &'static str {
    match state {
        MapState::NotRunning => "Not running",
        MapState::Initializing => "Initializing",
        MapState::Running => "Running",
        MapState::Paused => "Paused",
        MapState::Resuming => "Resuming",
    }
}

fn refused(action: &str, map: &str, state: MapState) -> SimError {
    SimError::conflict(format!(
        "The action {action} isn't available for table map {map} in state {}.",
        state_text(state)
    ))
}
