//! `DualWriteMapService`: the table maps of the connection — listing them, running,
//! pausing, resuming and stopping them, initial sync's details and reruns, the queue and
//! its catch-up errors, alert rules, and customizing a map's fields.

use super::Operation;
use dwsim_model::dualwrite::runtime::AlertRule;
use dwsim_model::dualwrite::{state_text, MapRun, Side};
use dwsim_model::error::{SimError, SimResult};
use dwsim_model::schema::FieldMap;
use dwsim_model::World;
use serde::Deserialize;
use serde_json::{json, Value};

/// The published maps with their state, in catalogue order (upstream first).
fn maps_json(world: &World, env: &str) -> Value {
    let Some(c) = world.connection_of(env) else {
        return json!([]);
    };
    let maps: Vec<Value> = world
        .catalogue
        .maps
        .iter()
        .filter_map(|m| {
            c.maps.get(&m.id).map(|r| {
                json!({
                    "map": m.id, "name": m.name, "version": m.version,
                    "financeAndOperationsEntity": m.fno_entity, "dataverseTable": m.dv_table,
                    "status": state_text(r.state), "master": r.master, "initialSync": r.initial_sync,
                    "dependsOn": m.depends_on,
                })
            })
        })
        .collect();
    Value::Array(maps)
}

/// `getMaps`: every published map.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetMaps {}

impl Operation for GetMaps {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        Ok(maps_json(world, env))
    }
}

/// `getRelatedMaps`: a map and the maps it needs, upstream first (the Run dialog's list).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetRelatedMaps {
    map: String,
}

impl Operation for GetRelatedMaps {
    fn apply(self, world: &mut World, _env: &str) -> SimResult<Value> {
        let map = self.map;
        if world.catalogue.map(&map).is_none() {
            return Err(SimError::not_found(format!(
                "Table map {map} does not exist."
            )));
        }
        Ok(json!(world.catalogue.related_maps(&map)))
    }
}

/// One entry of `runMaps`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunItem {
    map: String,
    #[serde(default = "yes")]
    initial_sync: bool,
    #[serde(default = "dataverse")]
    master: Side,
}

fn yes() -> bool {
    true
}

fn dataverse() -> Side {
    Side::Dataverse
}

/// `runMaps`: runs maps in the order given, each with or without initial sync and with
/// its master.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RunMaps {
    maps: Vec<RunItem>,
}

impl Operation for RunMaps {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        let runs: Vec<MapRun> = self
            .maps
            .into_iter()
            .map(|i| MapRun {
                map: i.map,
                initial_sync: i.initial_sync,
                master: i.master,
            })
            .collect();
        let executions = world.dual_write(env)?.run(&runs)?;
        Ok(json!({"maps": maps_json(world, env), "executions": executions}))
    }
}

/// `pauseMap`: Running → Paused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseMap {
    map: String,
}

impl Operation for PauseMap {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        world.dual_write(env)?.pause(&self.map)?;
        Ok(maps_json(world, env))
    }
}

/// `resumeMap`: Paused → Running, replaying what was queued.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResumeMap {
    map: String,
}

impl Operation for ResumeMap {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        world.dual_write(env)?.resume(&self.map)?;
        Ok(maps_json(world, env))
    }
}

/// `stopMap`: Running or Paused → Not running.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StopMap {
    map: String,
}

impl Operation for StopMap {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        world.dual_write(env)?.stop(&self.map)?;
        Ok(maps_json(world, env))
    }
}

/// `getInitialSyncDetails`: every initial-sync execution of a map.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetInitialSyncDetails {
    map: String,
}

impl Operation for GetInitialSyncDetails {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        let map = self.map;
        let executions: Vec<Value> = world
            .connection_of(env)
            .map(|c| {
                c.executions
                    .iter()
                    .filter(|e| e.map == map)
                    .map(|e| json!(e))
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!(executions))
    }
}

/// `getQueuedRecords`: what a paused map has queued, and its catch-up errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetQueuedRecords {
    map: String,
}

impl Operation for GetQueuedRecords {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        let map = self.map;
        let c = world.connection_of(env);
        let of_map =
            |list: Option<&Vec<dwsim_model::dualwrite::live_sync::QueuedChange>>| -> Vec<Value> {
                list.map(|l| {
                    l.iter()
                        .filter(|q| q.map == map)
                        .map(|q| json!(q))
                        .collect()
                })
                .unwrap_or_default()
            };
        let queued = of_map(c.map(|c| &c.queue));
        let errors = of_map(c.map(|c| &c.catch_up_errors));
        Ok(
            json!({"totalQueuedRecordCount": queued.len(), "queued": queued, "catchUpErrors": errors}),
        )
    }
}

/// `retryCatchUpErrors`: replays a map's catch-up errors again, all or the named rows.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RetryCatchUpErrors {
    map: String,
    #[serde(default)]
    rows: Option<Vec<String>>,
}

impl Operation for RetryCatchUpErrors {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        let (retried, failing) = world
            .dual_write(env)?
            .retry_catch_up(&self.map, self.rows.as_deref())?;
        Ok(
            json!({"retried": retried, "stillFailing": failing, "retryStatus": if failing == 0 { "Completed" } else { "Failed" }}),
        )
    }
}

/// `setAlertRules`: the connection's alert rules, taken by each map when it next runs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SetAlertRules {
    rules: Vec<AlertRule>,
}

impl Operation for SetAlertRules {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        world.dual_write(env)?.set_alert_rules(self.rules)?;
        Ok(json!({"rules": world.connection_of(env).map(|c| c.alert_rules.clone())}))
    }
}

/// `getAlerts`: the alert rules and the notifications they sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetAlerts {}

impl Operation for GetAlerts {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        let c = world.connection_of(env);
        Ok(
            json!({"rules": c.map(|c| c.alert_rules.clone()), "notifications": c.map(|c| c.notifications.clone())}),
        )
    }
}

/// `rerunExecution`: reruns a map's latest initial sync, with or without its failed rows.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RerunExecution {
    map: String,
    #[serde(default)]
    without_errors: bool,
}

impl Operation for RerunExecution {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        Ok(json!(world
            .dual_write(env)?
            .rerun_execution(&self.map, self.without_errors)?))
    }
}

/// `updateMapFields`: saves a stopped map's field mappings under a publisher and version.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct UpdateMapFields {
    map: String,
    fields: Vec<FieldMap>,
    #[serde(default)]
    publisher: String,
    #[serde(default)]
    version: String,
}

impl Operation for UpdateMapFields {
    fn apply(self, world: &mut World, env: &str) -> SimResult<Value> {
        let saved =
            world.customize_map(env, &self.map, self.fields, &self.publisher, &self.version)?;
        Ok(
            json!({"map": saved.id, "version": saved.version, "publisher": self.publisher, "fields": saved.fields}),
        )
    }
}
