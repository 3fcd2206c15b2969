//! The life of a connection's table maps: adding and removing legal entities, running maps
//! (with or without initial sync), pause, resume with catch-up, and stop. Each map's
//! activity log records every state it enters.

use super::link::check_companies;
use super::{
    refused, state_text, DualWrite, Execution, ExecutionStatus, MapRun, MapState,
    LIVE_SYNC_LEGAL_ENTITY_LIMIT,
};
use crate::catalogue::Catalogue;
use crate::error::{ErrorKind, SimError, SimResult};
use std::collections::BTreeSet;

impl Catalogue {
    /// Sorts runs so that each map comes after the maps it depends on (catalogue order).
    pub fn order_upstream_first(&self, runs: Vec<MapRun>) -> Vec<MapRun> {
        let mut ordered: Vec<MapRun> = Vec::new();
        for m in &self.maps {
            if let Some(r) = runs.iter().find(|r| r.map == m.id) {
                ordered.push(r.clone());
            }
        }
        for r in runs {
            if !ordered.iter().any(|o| o.map == r.map) {
                ordered.push(r);
            }
        }
        ordered
    }
}

impl DualWrite<'_> {
    /// Adds legal entities to a live connection. Running and paused maps go through initial
    /// writes for them unless `skip_initial_writes`, or the connection would exceed 40.
    pub fn add_legal_entities(
        &mut self,
        codes: &[String],
        skip_initial_writes: bool,
    ) -> SimResult<Vec<Execution>> {
        if self
            .conn
            .maps
            .values()
            .any(|m| m.state == MapState::Initializing)
        {
            return Err(SimError::conflict(
                "Legal entities can't be added while a table map is in the initial writes state.",
            ));
        }
        let total = self.conn.legal_entities.len() + codes.len();
        if total > LIVE_SYNC_LEGAL_ENTITY_LIMIT {
            return Err(SimError::conflict(format!(
                "Dual-write supports at most {LIVE_SYNC_LEGAL_ENTITY_LIMIT} legal entities."
            )));
        }
        let new: Vec<String> = codes
            .iter()
            .map(|c| c.to_uppercase())
            .filter(|c| !self.conn.is_connected(c))
            .collect();
        check_companies(self.fno, Some(self.dv), &new)?;
        for code in &new {
            self.register_company(code)?;
        }
        let mut executions = Vec::new();
        if skip_initial_writes
            || total > self.settings.initial_sync.legal_entities
            || new.is_empty()
        {
            return Ok(executions);
        }
        let running: Vec<MapRun> = self
            .conn
            .maps
            .iter()
            .filter(|(_, m)| matches!(m.state, MapState::Running | MapState::Paused))
            .map(|(id, m)| MapRun {
                map: id.clone(),
                initial_sync: true,
                master: m.master,
            })
            .collect();
        for run in self.catalogue.order_upstream_first(running) {
            let execution = self.initial_sync(&run.map, run.master, &new, &BTreeSet::new())?;
            executions.push(execution);
        }
        Ok(executions)
    }

    /// Removes a legal entity; refused while any map is initializing or paused.
    pub fn remove_legal_entity(&mut self, code: &str) -> SimResult<()> {
        if self
            .conn
            .maps
            .values()
            .any(|m| matches!(m.state, MapState::Initializing | MapState::Paused))
        {
            return Err(SimError::conflict(
                "Legal entities can't be removed while a table map is initializing or paused.",
            ));
        }
        if !self.conn.is_connected(code) {
            return Err(SimError::not_found(format!(
                "Legal entity {code} is not in the dual-write connection."
            )));
        }
        self.conn
            .legal_entities
            .retain(|c| !c.eq_ignore_ascii_case(code));
        self.conn.removed_legal_entities.push(code.to_uppercase());
        Ok(())
    }

    /// Each map must be Not running (or Paused, which resumes it); its dependencies must be
    /// running or earlier in the list; initial sync needs at most 40 connected companies.
    fn check_runnable(&mut self, runs: &[MapRun]) -> SimResult<()> {
        for (i, run) in runs.iter().enumerate() {
            let map = self.catalogue.map(&run.map).ok_or_else(|| {
                SimError::not_found(format!("Table map {} does not exist.", run.map))
            })?;
            let state = self
                .conn
                .maps
                .get(&run.map)
                .map(|m| m.state)
                .ok_or_else(|| {
                    SimError::not_found(format!(
                        "Table map {} is not published. Apply the dual-write solutions first.",
                        map.name
                    ))
                })?;
            if !matches!(state, MapState::NotRunning | MapState::Paused) {
                return Err(SimError::conflict(format!(
                    "Table map {} is {} and can't be run.",
                    map.name,
                    state_text(state)
                )));
            }
            for dep in &map.depends_on {
                let dep_running = self
                    .conn
                    .maps
                    .get(dep)
                    .is_some_and(|m| matches!(m.state, MapState::Running | MapState::Paused));
                if !dep_running && !runs[..i].iter().any(|r| &r.map == dep) {
                    return Err(SimError::new(
                        ErrorKind::Conflict,
                        "",
                        format!(
                            "Unable to complete initial data sync. Error: dual-write failure - plugin registration failed: Unable to build dual-write lookup metadata. Error object reference not set to an instance of an object. ({} needs {} running)",
                            map.name, dep
                        ),
                    ));
                }
            }
        }
        let companies = self.conn.legal_entities.len();
        if companies > self.settings.initial_sync.legal_entities
            && runs.iter().any(|r| r.initial_sync)
        {
            let project = format!("DWM-{}-{}", self.ids.guid(), self.ids.guid());
            return Err(SimError::new(
                ErrorKind::Conflict,
                "",
                format!(
                    "Dual write failure - Plugin registration failed: [(Unable to get partition map for project {project}. Error Exceeds the maximum partitions allowed for mapping {project})], One or more errors occurred."
                ),
            ));
        }
        Ok(())
    }

    /// Runs maps in the given order, once `check_runnable` accepts them all.
    pub fn run(&mut self, runs: &[MapRun]) -> SimResult<Vec<Execution>> {
        self.check_runnable(runs)?;
        let mut executions = Vec::new();
        for run in runs {
            if self.conn.maps[&run.map].state == MapState::Paused {
                self.resume(&run.map)?;
                continue;
            }
            self.set_state(&run.map, MapState::Initializing, "Initializing")?;
            if let Some(m) = self.conn.maps.get_mut(&run.map) {
                m.master = run.master;
                m.initial_sync = run.initial_sync;
            }
            if !run.initial_sync {
                self.set_state(
                    &run.map,
                    MapState::Running,
                    "Running (initial sync skipped)",
                )?;
                self.activate_alerts(&run.map);
                continue;
            }
            let companies = self.conn.legal_entities.clone();
            let execution =
                self.initial_sync(&run.map, run.master, &companies, &BTreeSet::new())?;
            let (state, text) = if execution.status == ExecutionStatus::Completed {
                (MapState::Running, "Running")
            } else {
                (
                    MapState::NotRunning,
                    "Not running: initial sync completed with errors",
                )
            };
            self.set_state(&run.map, state, text)?;
            self.activate_alerts(&run.map);
            executions.push(execution);
        }
        Ok(executions)
    }

    /// New alert settings take effect when a map (re)starts.
    fn activate_alerts(&mut self, map: &str) {
        let rules = self.conn.alert_rules.clone();
        if let Some(m) = self.conn.maps.get_mut(map) {
            m.active_alerts = rules;
            m.errors.clear();
        }
    }

    fn set_state(&mut self, map: &str, state: MapState, text: &str) -> SimResult<()> {
        let now = self.clock.now();
        let m = self
            .conn
            .maps
            .get_mut(map)
            .ok_or_else(|| SimError::not_found(format!("Table map {map} does not exist.")))?;
        m.state = state;
        m.activity.push((now, text.to_string()));
        Ok(())
    }

    fn map_state(&self, map: &str) -> SimResult<MapState> {
        self.conn
            .maps
            .get(map)
            .map(|m| m.state)
            .ok_or_else(|| SimError::not_found(format!("Table map {map} does not exist.")))
    }

    /// Running → Paused.
    pub fn pause(&mut self, map: &str) -> SimResult<()> {
        let state = self.map_state(map)?;
        if state != MapState::Running {
            return Err(refused("Pause", map, state));
        }
        self.set_state(map, MapState::Paused, "Paused")?;
        let now = self.clock.now();
        if let Some(m) = self.conn.maps.get_mut(map) {
            m.paused_at = Some(now);
        }
        Ok(())
    }

    /// Paused → Resuming → Running, replaying what was queued meanwhile.
    pub fn resume(&mut self, map: &str) -> SimResult<()> {
        let state = self.map_state(map)?;
        if state != MapState::Paused {
            return Err(refused("Run", map, state));
        }
        self.set_state(map, MapState::Resuming, "Resuming")?;
        let purged = self.purge_expired(map);
        if purged > 0 {
            let text = format!("Resuming: {purged} queued records older than 24 hours were purged");
            self.set_state(map, MapState::Resuming, &text)?;
        }
        let replayed = self.replay_queue(map)?;
        self.set_state(
            map,
            MapState::Running,
            &format!("Running ({replayed} queued changes replayed)"),
        )
    }

    /// Running or Paused → Not running.
    pub fn stop(&mut self, map: &str) -> SimResult<()> {
        let state = self.map_state(map)?;
        if !matches!(state, MapState::Running | MapState::Paused) {
            return Err(refused("Stop", map, state));
        }
        self.set_state(map, MapState::NotRunning, "Not running (stopped)")
    }
}
