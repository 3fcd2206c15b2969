//! Live-sync supervision: the limits a dual-write transaction runs under (payload size,
//! the 2-minute window on the virtual clock), the pause queue's retention, catch-up retries,
//! and alert rules that notify and can pause or stop a map.

use super::live_sync::QueuedChange;
use super::{state_text, DualWrite, MapState, Side};
use crate::clock::Instant;
use crate::error::{ErrorKind, SimError, SimResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a paused map's queue is kept (the docs disagree: 7 days and 1 GB, or 24 hours).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueRetention {
    /// At most 7 days paused and 1 GB queued; past either, further records are blocked.
    #[default]
    #[serde(rename = "7d-1gb")]
    Week,
    /// Queued records older than 24 hours are purged when the map resumes.
    #[serde(rename = "24h")]
    Day,
}

/// The live-sync limits, the documented ones by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveSyncSettings {
    /// Dataverse → F&O payload limit per transaction (the docs' 116.85 MB).
    pub payload_limit_bytes: u64,
    /// The transaction window in minutes (2).
    pub transaction_minutes: i64,
    /// The optional 5-minute window for Dataverse → F&O transactions.
    pub five_minute_mode: bool,
    /// Virtual time each dual-written record takes (0: writes are instant unless a test says
    /// otherwise).
    pub record_cost_ms: i64,
    /// Virtual time custom plug-ins add per write, by Dataverse table.
    pub plugin_delay_ms: BTreeMap<String, i64>,
    /// Which of the documented retention rules the pause queue follows.
    pub queue_retention: QueueRetention,
    /// Bytes a paused map may queue under the 7-day rule (1 GB).
    pub queue_bytes_limit: u64,
}

impl Default for LiveSyncSettings {
    fn default() -> Self {
        LiveSyncSettings {
            payload_limit_bytes: 116_850_000,
            transaction_minutes: 2,
            five_minute_mode: false,
            record_cost_ms: 0,
            plugin_delay_ms: BTreeMap::new(),
            queue_retention: QueueRetention::Week,
            queue_bytes_limit: 1 << 30,
        }
    }
}

/// What an alert rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertAction {
    /// Only notify the recipients.
    Notify,
    /// Notify and pause the map.
    Pause,
    /// Notify and stop the map.
    Stop,
}

/// The two kinds of live-sync error an alert rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LiveSyncErrorType {
    /// A write the other side rejects.
    ApplicationError,
    /// Throttling, or the other side unreachable or too slow.
    NetworkError,
}

impl LiveSyncErrorType {
    /// The error type as alert rules and notifications name it.
    pub fn as_str(self) -> &'static str {
        match self {
            LiveSyncErrorType::ApplicationError => "ApplicationError",
            LiveSyncErrorType::NetworkError => "NetworkError",
        }
    }
}

/// "N errors of type T within W minutes": notify the recipients, and pause or stop the map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRule {
    /// The kind of error the rule counts.
    pub error_type: LiveSyncErrorType,
    /// How many within the window fire it.
    pub count: usize,
    /// The window, in minutes.
    pub window_minutes: i64,
    /// Who is notified (free text, as the workspace takes it).
    #[serde(default)]
    pub recipients: String,
    /// What the rule does besides notifying.
    pub action: AlertAction,
}

/// A notification an alert rule sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// When it was sent.
    pub at: Instant,
    /// The map whose errors fired it.
    pub map: String,
    /// Who it went to.
    pub recipients: String,
    /// What it said.
    pub message: String,
}

/// A runtime refusal as the originating side's caller sees it: an F&O write failure, or
/// the dual-write plug-in's error in Dataverse.
fn refused_for(origin: Side, message: String) -> SimError {
    match origin {
        Side::Fno => SimError::new(ErrorKind::WriteFailed, "", message),
        Side::Dataverse => SimError::new(ErrorKind::BadRequest, "0x80040265", message),
    }
}

/// Paused for longer than this blocks further records (with the 7-day retention).
const PAUSE_DAYS: i64 = 7;

impl DualWrite<'_> {
    fn transaction_limit_ms(&self, origin: Side) -> i64 {
        let minutes = if origin == Side::Dataverse && self.settings.live_sync.five_minute_mode {
            5
        } else {
            self.settings.live_sync.transaction_minutes
        };
        minutes * 60_000
    }

    /// Opens the virtual timer of a dual-write transaction (the outermost one only).
    pub(crate) fn start_timer(&mut self) -> bool {
        if self.in_flight.timer_ms.is_some() {
            return false;
        }
        self.in_flight.timer_ms = Some(0);
        true
    }

    /// Closes the timer: the clock moves on by the transaction's virtual duration, and a
    /// transaction over the window fails (and so rolls back on both sides).
    pub(crate) fn stop_timer<T>(&mut self, origin: Side, result: SimResult<T>) -> SimResult<T> {
        let elapsed = self.in_flight.timer_ms.take().unwrap_or(0);
        self.clock.advance_ms(elapsed);
        if result.is_ok() && elapsed > self.transaction_limit_ms(origin) {
            let minutes = self.transaction_limit_ms(origin) / 60_000;
            let message = format!(
                "The dual-write transaction took {} seconds and didn't complete within the {minutes}-minute limit, so it was rolled back in finance and operations and in Dataverse.",
                elapsed / 1000
            );
            return Err(refused_for(origin, message));
        }
        result
    }

    /// Charges one dual-written record of `dv_table` to the open transaction's timer.
    pub(crate) fn charge_record(&mut self, dv_table: &str) {
        let cost = self.settings.live_sync.record_cost_ms
            + self
                .settings
                .live_sync
                .plugin_delay_ms
                .get(dv_table)
                .copied()
                .unwrap_or(0);
        if let Some(t) = self.in_flight.timer_ms.as_mut() {
            *t += cost;
        }
    }

    /// The Dataverse → F&O payload limit: `-2147220970` "Message size exceeded …".
    pub(crate) fn check_payload(&self, row: &crate::store::Row) -> SimResult<()> {
        let size = serde_json::to_vec(row).map_or(0, |b| b.len() as u64);
        if size > self.settings.live_sync.payload_limit_bytes {
            return Err(SimError::new(
                ErrorKind::BadRequest,
                "0x80040216",
                format!(
                    "Error Code: -2147220970 Error Message: Message size exceeded when sending context to Sandbox. Message size: {:.2} MB",
                    size as f64 / 1_000_000.0
                ),
            ));
        }
        Ok(())
    }

    /// Queues a change for a paused map, unless the queue is past its retention limits.
    pub(crate) fn enqueue(&mut self, origin: Side, mut change: QueuedChange) -> SimResult<()> {
        let now = self.clock.now();
        change.at = now;
        let settings = &self.settings.live_sync;
        let c = &mut *self.conn;
        if settings.queue_retention == QueueRetention::Week {
            let paused_at = c
                .maps
                .get(&change.map)
                .and_then(|m| m.paused_at)
                .unwrap_or(now);
            let queued: u64 = c
                .queue
                .iter()
                .filter(|q| q.map == change.map)
                .map(|q| q.bytes)
                .sum();
            if now.0 - paused_at.0 >= PAUSE_DAYS * 86_400_000
                || queued + change.bytes > settings.queue_bytes_limit
            {
                let message = format!(
                    "Table map {} has been paused for {PAUSE_DAYS} days or holds {} bytes of queued records; further records are blocked until the map is resumed.",
                    change.map, settings.queue_bytes_limit
                );
                return Err(refused_for(origin, message));
            }
        }
        c.queue.push(change);
        Ok(())
    }

    /// With the 24-hour retention, drops queued records older than a day; answers how many.
    pub(crate) fn purge_expired(&mut self, map: &str) -> usize {
        if self.settings.live_sync.queue_retention != QueueRetention::Day {
            return 0;
        }
        let now = self.clock.now();
        let c = &mut *self.conn;
        let before = c.queue.len();
        c.queue
            .retain(|q| q.map != map || now.0 - q.at.0 < 86_400_000);
        before - c.queue.len()
    }

    /// Retry selected (by row id) or all catch-up errors of a map; answers (retried, still failing).
    pub fn retry_catch_up(
        &mut self,
        map: &str,
        rows: Option<&[String]>,
    ) -> SimResult<(usize, usize)> {
        let c = &mut *self.conn;
        if c.maps.get(map).map(|m| m.state) != Some(MapState::Running) {
            return Err(SimError::conflict(format!(
                "Table map {map} must be running to retry its catch-up errors."
            )));
        }
        let (picked, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut c.catch_up_errors)
            .into_iter()
            .partition(|q| q.map == map && rows.is_none_or(|r| r.contains(&q.row)));
        c.catch_up_errors = kept;
        let count = picked.len();
        c.queue.extend(picked);
        let replayed = self.replay_queue(map)?;
        Ok((replayed, count - replayed))
    }

    /// Replaces the connection's alert rules; they apply to a map from its next run.
    pub fn set_alert_rules(&mut self, rules: Vec<AlertRule>) -> SimResult<()> {
        validate_alert_rules(&rules)?;
        self.conn.alert_rules = rules;
        Ok(())
    }

    /// Records a live-sync error of a map and fires the map's active alert rules.
    pub(crate) fn record_map_error(&mut self, map: &str, error: &SimError) {
        let error_type = match error.kind {
            ErrorKind::Throttled(_) => LiveSyncErrorType::NetworkError,
            _ if error.code.starts_with("0x8007232") || error.message.contains("0x8007232") => {
                LiveSyncErrorType::NetworkError
            }
            _ => LiveSyncErrorType::ApplicationError,
        };
        let now = self.clock.now();
        let c = &mut *self.conn;
        let Some(m) = c.maps.get_mut(map) else { return };
        m.errors.push((now, error_type));
        for rule in m.active_alerts.clone() {
            if rule.error_type != error_type {
                continue;
            }
            let recent = m
                .errors
                .iter()
                .filter(|(at, t)| *t == error_type && now.0 - at.0 <= rule.window_minutes * 60_000)
                .count();
            if recent < rule.count {
                continue;
            }
            let state = match rule.action {
                AlertAction::Pause if m.state == MapState::Running => Some(MapState::Paused),
                AlertAction::Stop => Some(MapState::NotRunning),
                _ => None,
            };
            if let Some(s) = state {
                m.state = s;
                if s == MapState::Paused {
                    m.paused_at = Some(now);
                }
                m.activity
                    .push((now, format!("{} by an alert rule", state_text(s))));
            }
            m.errors.clear();
            c.notifications.push(Notification {
                at: now,
                map: map.to_string(),
                recipients: rule.recipients.clone(),
                message: format!(
                    "{} {} errors within {} minutes on table map {map}; action: {:?}.",
                    recent,
                    error_type.as_str(),
                    rule.window_minutes,
                    rule.action
                ),
            });
            break;
        }
    }
}

/// An alert rule needs a count and a window.
pub(crate) fn validate_alert_rules(rules: &[AlertRule]) -> SimResult<()> {
    for r in rules {
        if r.count == 0 || r.window_minutes <= 0 {
            return Err(SimError::bad_request(
                "An alert rule needs a count of at least 1 and a window of at least 1 minute.",
            ));
        }
    }
    Ok(())
}
