//! The dual-write runtime between one F&O environment and one Dataverse environment: the
//! connection (legal entities, table maps and their states), health check, initial sync and
//! live sync. It lives in the model because a dual-write is one transaction across both.

pub mod customize;
pub mod initial_sync;
pub mod live_sync;
pub mod runtime;
pub mod transform;

use crate::catalogue::Catalogue;
use crate::clock::Instant;
use crate::config::DualWriteSettings;
use crate::dataverse::DvEnv;
use crate::entra;
use crate::error::{ErrorKind, SimError, SimResult};
use crate::fno::FnoEnv;
use crate::ids::Ids;
use crate::world::{obj, World};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub use initial_sync::{Execution, ExecutionStatus, Leg, LegDirection};

/// Initial writes are processed for at most this many legal entities.
pub const INITIAL_SYNC_LEGAL_ENTITY_LIMIT: usize = 40;
/// Records one F&O transaction may send to Dataverse.
pub const RECORDS_PER_TRANSACTION: usize = 1000;
/// Live sync supports this many legal entities.
pub const LIVE_SYNC_LEGAL_ENTITY_LIMIT: usize = 250;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    #[serde(rename = "FinanceAndOperations")]
    Fno,
    Dataverse,
}

/// The states of a table map (`enable-entity-map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapState {
    #[serde(rename = "Not running")]
    NotRunning,
    Initializing,
    Running,
    Paused,
    Resuming,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapRuntime {
    pub state: MapState,
    pub master: Side,
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
    pub map: String,
    pub initial_sync: bool,
    pub master: Side,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub name: String,
    pub passed: bool,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub dataverse: String,
    /// Legal entities in the connection, in the order they were added (upper case).
    pub legal_entities: Vec<String>,
    pub maps: BTreeMap<String, MapRuntime>,
    pub health_check: Vec<HealthCheck>,
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
    #[serde(default)]
    pub notifications: Vec<runtime::Notification>,
    pub linked_at: Instant,
}

impl Connection {
    pub fn is_connected(&self, company: &str) -> bool {
        self.legal_entities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(company))
    }
}

/// The dual-write runtime of one linked F&O environment: its connection and the two stores
/// it spans, borrowed from the world for one operation, with what the runtime reads from
/// the world around them (catalogue, settings, ids, the virtual clock's now).
pub struct DualWrite<'w> {
    pub(crate) catalogue: &'w Catalogue,
    pub(crate) settings: &'w DualWriteSettings,
    pub(crate) ids: &'w mut Ids,
    pub(crate) now: Instant,
    pub(crate) fno: &'w mut FnoEnv,
    pub(crate) dv: &'w mut DvEnv,
    pub(crate) conn: &'w mut Connection,
}

impl DualWrite<'_> {
    /// The systemuserid dual-write writes to Dataverse as (Modified by).
    pub(crate) fn writer(&self) -> String {
        self.dv
            .application_user(entra::DUAL_WRITE_RUNTIME_APP)
            .unwrap_or_default()
    }
}

impl World {
    /// The dual-write runtime of a linked F&O environment, over its two stores.
    pub fn dual_write(&mut self, fno_env: &str) -> SimResult<DualWrite<'_>> {
        let World {
            catalogue,
            config,
            ids,
            clock,
            fno,
            dataverse,
            connections,
            ..
        } = self;
        let fno = fno
            .get_mut(fno_env)
            .ok_or_else(|| SimError::not_found(format!("Environment {fno_env} does not exist.")))?;
        let conn = connections
            .get_mut(fno_env)
            .ok_or_else(|| SimError::conflict("Dual-write is not linked for this environment."))?;
        let dv = dataverse
            .get_mut(&conn.dataverse)
            .ok_or_else(|| SimError::not_found(conn.dataverse.clone()))?;
        Ok(DualWrite {
            catalogue,
            settings: &config.dual_write,
            ids,
            now: clock.now(),
            fno,
            dv,
            conn,
        })
    }
}

/// "Saving connection set failed!": duplicate or blank company names.
const SAVE_CONNECTION_FAILED: &str =
    "Saving connection set failed! An item with the same key has already been added.";

impl World {
    fn connection(&self, fno_env: &str) -> SimResult<&Connection> {
        if !self.fno.contains_key(fno_env) {
            return Err(SimError::not_found(format!(
                "Environment {fno_env} does not exist."
            )));
        }
        self.connections.get(fno_env).ok_or_else(|| {
                SimError::conflict("Dual-write is not linked for this environment. Link to a Dataverse environment first.")
            })
    }

    fn connection_mut(&mut self, fno_env: &str) -> SimResult<&mut Connection> {
        self.connections
            .get_mut(fno_env)
            .ok_or_else(|| SimError::conflict("Dual-write is not linked for this environment."))
    }

    /// The prerequisite health check the link wizard runs, with the documented result texts.
    pub fn dw_health_check(&self, fno_env: &str, org: &str) -> SimResult<Vec<HealthCheck>> {
        let fno = self
            .fno
            .get(fno_env)
            .ok_or_else(|| SimError::not_found(format!("Environment {fno_env} does not exist.")))?;
        let dv = self.dataverse.get(org).ok_or_else(|| {
            SimError::not_found(format!("Dataverse environment {org} does not exist."))
        })?;
        let check = |name: &str, passed: bool, ok: String, fail: String| HealthCheck {
            name: name.into(),
            passed,
            message: if passed { ok } else { fail },
        };
        let app_users = [entra::DUAL_WRITE_RUNTIME_APP, entra::DUAL_WRITE_APP];
        let missing_user = app_users.iter().find(|a| dv.application_user(a).is_none());
        let fo_apps = [entra::DUAL_WRITE_DV_TO_FNO_APP, entra::DUAL_WRITE_APP];
        let missing_app = fo_apps.iter().find(|a| !fno.entra_apps.contains(**a));
        Ok(vec![
            check(
                "ApplicationVersion",
                fno.platform_update >= 33,
                "App version is up to date".into(),
                "Dual Write is supported on finance and operations app environments with Platform Update PU 33 (App version 10.0.9) or above".into(),
            ),
            check(
                "CoreSolution",
                dv.has_solution("DualWriteCore"),
                "The dual-write core solution was found".into(),
                "The entity with a name 'msdyn_dualwriteentitymap' with namemapping='Logical' was not found in the MetadataCache.".into(),
            ),
            check(
                "DataverseToFinanceAndOperations",
                missing_app.is_none(),
                "The Dataverse can connect to the finance and operations app".into(),
                format!("App user with id {} does not exist in the finance and operations app", missing_app.copied().unwrap_or_default()),
            ),
            check(
                "FinanceAndOperationsToDataverse",
                missing_user.is_none(),
                "The finance and operations app can connect to the Dataverse".into(),
                format!("App user with id {} does not exist in Dataverse", missing_user.copied().unwrap_or_default()),
            ),
            check(
                "Plugins",
                dv.dual_write_plugins_enabled,
                "The dual-write registration and runtime plugins are enabled".into(),
                "To ensure listening into CRUD operations on the Dataverse, the dual-write plugins need to be enabled".into(),
            ),
            check(
                "SameTenant",
                dv.tenant_id == fno.tenant_id,
                "Apps in tenant".into(),
                "The finance and operations app and Dataverse must be in the same tenant.".into(),
            ),
        ])
    }

    /// Links F&O to Dataverse with these legal entities: 1:1, only when every health check
    /// passes, and only when the companies' names are unique and not blank.
    pub fn dw_link(
        &mut self,
        fno_env: &str,
        org: &str,
        legal_entities: &[String],
    ) -> SimResult<()> {
        let checks = self.dw_health_check(fno_env, org)?;
        if let Some(existing) = self.linked_dataverse(fno_env) {
            return Err(SimError::conflict(format!(
                "This finance and operations environment is already linked to Dataverse environment {existing}. One finance and operations environment links to one Dataverse environment."
            )));
        }
        if let Some(other) = self.linked_fno(org) {
            return Err(SimError::conflict(format!(
                "Dataverse environment {org} is already linked to finance and operations environment {other}. One finance and operations environment links to one Dataverse environment."
            )));
        }
        if let Some(failed) = checks.iter().find(|c| !c.passed) {
            let message = format!(
                "You can't link dual-write unless the whole health check passes. {}: {}",
                failed.name, failed.message
            );
            self.connections.remove(fno_env);
            return Err(SimError::new(
                ErrorKind::Conflict,
                "HealthCheckFailed",
                message,
            ));
        }
        self.check_companies(fno_env, org, legal_entities)?;
        let now = self.clock.now();
        let has_maps = self
            .dataverse
            .get(org)
            .is_some_and(|d| d.has_solution("msdyn_Dynamics365FinanceExtendedMaps"));
        let maps = if has_maps {
            self.catalogue
                .maps
                .iter()
                .map(|m| {
                    (
                        m.id.clone(),
                        MapRuntime {
                            state: MapState::NotRunning,
                            master: Side::Dataverse,
                            initial_sync: true,
                            activity: vec![(now, "Map published".into())],
                            paused_at: None,
                            active_alerts: Vec::new(),
                            errors: Vec::new(),
                        },
                    )
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        if self.fno.contains_key(fno_env) {
            self.connections.insert(
                fno_env.to_string(),
                Connection {
                    dataverse: org.to_string(),
                    legal_entities: Vec::new(),
                    maps,
                    health_check: checks,
                    executions: Vec::new(),
                    queue: Vec::new(),
                    catch_up_errors: Vec::new(),
                    removed_legal_entities: Vec::new(),
                    alert_rules: Vec::new(),
                    notifications: Vec::new(),
                    linked_at: now,
                },
            );
        }
        for code in legal_entities {
            self.register_company(fno_env, code)?;
        }
        Ok(())
    }

    /// Every company must exist in F&O, and the connection's cdm_company names must be
    /// unique and non-blank.
    fn check_companies(&self, fno_env: &str, org: &str, adding: &[String]) -> SimResult<()> {
        let fno = &self.fno[fno_env];
        let mut names: Vec<String> = Vec::new();
        if let Some(dv) = self.dataverse.get(org) {
            names.extend(dv.store.rows("cdm_company").map(|(_, r)| {
                r.get("cdm_name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            }));
        }
        for code in adding {
            let Some(le) = fno.get(crate::fno::LEGAL_ENTITIES, &code.to_lowercase()) else {
                return Err(SimError::not_found(format!(
                    "Legal entity {code} does not exist."
                )));
            };
            let exists_in_dv = self
                .dataverse
                .get(org)
                .is_some_and(|d| d.company_by_code(code).is_some());
            if !exists_in_dv {
                names.push(
                    le.get("Name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for n in &names {
            if n.trim().is_empty() || !seen.insert(n.to_lowercase()) {
                return Err(SimError::new(
                    ErrorKind::Conflict,
                    "",
                    SAVE_CONNECTION_FAILED,
                ));
            }
        }
        Ok(())
    }

    /// Adds a legal entity to the connection and makes sure its cdm_company exists (the
    /// plug-in then creates its business unit and owner team).
    fn register_company(&mut self, fno_env: &str, code: &str) -> SimResult<()> {
        let org = self.connection(fno_env)?.dataverse.clone();
        let name = self.fno[fno_env]
            .get(crate::fno::LEGAL_ENTITIES, &code.to_lowercase())
            .and_then(|r| r.get("Name").cloned())
            .unwrap_or(Value::Null);
        let code_upper = code.to_uppercase();
        let exists = self.dataverse[&org].company_by_code(&code_upper).is_some();
        if !exists {
            let caller = self.dual_write_user(&org);
            let catalogue = self.catalogue.clone();
            let now = self.clock.now();
            let dv = self
                .dataverse
                .get_mut(&org)
                .ok_or_else(|| SimError::not_found(org.clone()))?;
            let mut cx = crate::dataverse::WriteContext {
                catalogue: &catalogue,
                ids: &mut self.ids,
                now,
                caller,
                owner: None,
            };
            dv.create(
                &mut cx,
                "cdm_company",
                obj(json!({"cdm_companycode": code_upper, "cdm_name": name})),
            )?;
        }
        let connection = self.connection_mut(fno_env)?;
        if !connection.is_connected(&code_upper) {
            connection.legal_entities.push(code_upper);
        }
        Ok(())
    }

    /// The systemuserid dual-write writes to Dataverse as (Modified by).
    pub fn dual_write_user(&self, org: &str) -> String {
        self.dataverse
            .get(org)
            .and_then(|d| d.application_user(entra::DUAL_WRITE_RUNTIME_APP))
            .unwrap_or_default()
    }

    /// Creates the dual-write application users in Dataverse if they are missing.
    pub fn ensure_dual_write_app_users(&mut self, org: &str) -> SimResult<()> {
        for (app, name) in [
            (entra::DUAL_WRITE_RUNTIME_APP, "Dual-write runtime"),
            (entra::DUAL_WRITE_APP, "Dual-write"),
        ] {
            let dv = self
                .dataverse
                .get_mut(org)
                .ok_or_else(|| SimError::not_found(org.to_string()))?;
            if dv.application_user(app).is_some() {
                continue;
            }
            let id = self.ids.guid();
            let mut row = obj(
                json!({"systemuserid": id, "fullname": name, "applicationid": app, "isdisabled": false}),
            );
            row.insert(
                "_businessunitid_value".into(),
                json!(dv.root_business_unit.clone()),
            );
            dv.store.put("systemuser", &id, row);
        }
        Ok(())
    }

    /// Adds legal entities to a live connection. Running and paused maps go through initial
    /// writes for them unless `skip_initial_writes`, or the connection would exceed 40.
    pub fn dw_add_legal_entities(
        &mut self,
        fno_env: &str,
        codes: &[String],
        skip_initial_writes: bool,
    ) -> SimResult<Vec<Execution>> {
        let connection = self.connection(fno_env)?;
        if connection
            .maps
            .values()
            .any(|m| m.state == MapState::Initializing)
        {
            return Err(SimError::conflict(
                "Legal entities can't be added while a table map is in the initial writes state.",
            ));
        }
        let total = connection.legal_entities.len() + codes.len();
        if total > LIVE_SYNC_LEGAL_ENTITY_LIMIT {
            return Err(SimError::conflict(format!(
                "Dual-write supports at most {LIVE_SYNC_LEGAL_ENTITY_LIMIT} legal entities."
            )));
        }
        let org = connection.dataverse.clone();
        let new: Vec<String> = codes
            .iter()
            .map(|c| c.to_uppercase())
            .filter(|c| !connection.is_connected(c))
            .collect();
        self.check_companies(fno_env, &org, &new)?;
        for code in &new {
            self.register_company(fno_env, code)?;
        }
        let mut executions = Vec::new();
        if skip_initial_writes
            || total > self.config.dual_write.initial_sync.legal_entities
            || new.is_empty()
        {
            return Ok(executions);
        }
        let running: Vec<(String, Side)> = self
            .connection(fno_env)?
            .maps
            .iter()
            .filter(|(_, m)| matches!(m.state, MapState::Running | MapState::Paused))
            .map(|(id, m)| (id.clone(), m.master))
            .collect();
        let ordered = self.order_upstream_first(
            running
                .iter()
                .map(|(id, master)| MapRun {
                    map: id.clone(),
                    initial_sync: true,
                    master: *master,
                })
                .collect(),
        );
        for run in ordered {
            let execution = self.initial_sync(fno_env, &run.map, run.master, &new)?;
            executions.push(execution);
        }
        Ok(executions)
    }

    /// Removes a legal entity; refused while any map is initializing or paused.
    pub fn dw_remove_legal_entity(&mut self, fno_env: &str, code: &str) -> SimResult<()> {
        let connection = self.connection(fno_env)?;
        if connection
            .maps
            .values()
            .any(|m| matches!(m.state, MapState::Initializing | MapState::Paused))
        {
            return Err(SimError::conflict(
                "Legal entities can't be removed while a table map is initializing or paused.",
            ));
        }
        if !connection.is_connected(code) {
            return Err(SimError::not_found(format!(
                "Legal entity {code} is not in the dual-write connection."
            )));
        }
        let connection = self.connection_mut(fno_env)?;
        connection
            .legal_entities
            .retain(|c| !c.eq_ignore_ascii_case(code));
        connection.removed_legal_entities.push(code.to_uppercase());
        Ok(())
    }

    /// Sorts runs so that each map comes after the maps it depends on.
    pub fn order_upstream_first(&self, runs: Vec<MapRun>) -> Vec<MapRun> {
        let mut ordered: Vec<MapRun> = Vec::new();
        for m in &self.catalogue.maps {
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

    /// Runs maps in the given order. Each map must be Not running (or Paused, which
    /// resumes it); its dependencies must be running or earlier in the list.
    pub fn dw_run(&mut self, fno_env: &str, runs: &[MapRun]) -> SimResult<Vec<Execution>> {
        let connection = self.connection(fno_env)?;
        for (i, run) in runs.iter().enumerate() {
            let map = self.catalogue.map(&run.map).ok_or_else(|| {
                SimError::not_found(format!("Table map {} does not exist.", run.map))
            })?;
            let state = connection
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
                let dep_running = connection
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
        let companies = self.connection(fno_env)?.legal_entities.len();
        if companies > self.config.dual_write.initial_sync.legal_entities
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
        let mut executions = Vec::new();
        for run in runs {
            let state = self.connection(fno_env)?.maps[&run.map].state;
            if state == MapState::Paused {
                self.dw_resume(fno_env, &run.map)?;
                continue;
            }
            self.set_state(fno_env, &run.map, MapState::Initializing, "Initializing")?;
            if let Some(m) = self.connection_mut(fno_env)?.maps.get_mut(&run.map) {
                m.master = run.master;
                m.initial_sync = run.initial_sync;
            }
            if !run.initial_sync {
                self.set_state(
                    fno_env,
                    &run.map,
                    MapState::Running,
                    "Running (initial sync skipped)",
                )?;
                self.activate_alerts(fno_env, &run.map)?;
                continue;
            }
            let companies = self.connection(fno_env)?.legal_entities.clone();
            let execution = self.initial_sync(fno_env, &run.map, run.master, &companies)?;
            let (state, text) = if execution.status == ExecutionStatus::Completed {
                (MapState::Running, "Running")
            } else {
                (
                    MapState::NotRunning,
                    "Not running: initial sync completed with errors",
                )
            };
            self.set_state(fno_env, &run.map, state, text)?;
            self.activate_alerts(fno_env, &run.map)?;
            executions.push(execution);
        }
        Ok(executions)
    }

    /// New alert settings take effect when a map (re)starts.
    fn activate_alerts(&mut self, fno_env: &str, map: &str) -> SimResult<()> {
        let connection = self.connection_mut(fno_env)?;
        let rules = connection.alert_rules.clone();
        if let Some(m) = connection.maps.get_mut(map) {
            m.active_alerts = rules;
            m.errors.clear();
        }
        Ok(())
    }

    fn set_state(
        &mut self,
        fno_env: &str,
        map: &str,
        state: MapState,
        text: &str,
    ) -> SimResult<()> {
        let now = self.clock.now();
        let m = self
            .connection_mut(fno_env)?
            .maps
            .get_mut(map)
            .ok_or_else(|| SimError::not_found(format!("Table map {map} does not exist.")))?;
        m.state = state;
        m.activity.push((now, text.to_string()));
        Ok(())
    }

    fn map_state(&self, fno_env: &str, map: &str) -> SimResult<MapState> {
        self.connection(fno_env)?
            .maps
            .get(map)
            .map(|m| m.state)
            .ok_or_else(|| SimError::not_found(format!("Table map {map} does not exist.")))
    }

    /// Running → Paused.
    pub fn dw_pause(&mut self, fno_env: &str, map: &str) -> SimResult<()> {
        let state = self.map_state(fno_env, map)?;
        if state != MapState::Running {
            return Err(refused("Pause", map, state));
        }
        self.set_state(fno_env, map, MapState::Paused, "Paused")?;
        let now = self.clock.now();
        if let Some(m) = self.connection_mut(fno_env)?.maps.get_mut(map) {
            m.paused_at = Some(now);
        }
        Ok(())
    }

    /// Paused → Resuming → Running.
    pub fn dw_resume(&mut self, fno_env: &str, map: &str) -> SimResult<()> {
        let state = self.map_state(fno_env, map)?;
        if state != MapState::Paused {
            return Err(refused("Run", map, state));
        }
        self.set_state(fno_env, map, MapState::Resuming, "Resuming")?;
        let purged = self.purge_expired(fno_env, map);
        if purged > 0 {
            let text = format!("Resuming: {purged} queued records older than 24 hours were purged");
            self.set_state(fno_env, map, MapState::Resuming, &text)?;
        }
        let replayed = self.replay_queue(fno_env, map)?;
        self.set_state(
            fno_env,
            map,
            MapState::Running,
            &format!("Running ({replayed} queued changes replayed)"),
        )
    }

    /// Running or Paused → Not running.
    pub fn dw_stop(&mut self, fno_env: &str, map: &str) -> SimResult<()> {
        let state = self.map_state(fno_env, map)?;
        if !matches!(state, MapState::Running | MapState::Paused) {
            return Err(refused("Stop", map, state));
        }
        self.set_state(fno_env, map, MapState::NotRunning, "Not running (stopped)")
    }

    /// Reset link: all maps must be stopped unless forced. Clears the connection.
    pub fn dw_reset(&mut self, fno_env: &str, force: bool) -> SimResult<()> {
        let connection = self.connection(fno_env)?;
        if !force
            && connection
                .maps
                .values()
                .any(|m| m.state != MapState::NotRunning)
        {
            return Err(SimError::conflict(
                "You must stop all dual-write maps before you use the Reset link button.",
            ));
        }
        self.connections.remove(fno_env);
        Ok(())
    }
}

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
