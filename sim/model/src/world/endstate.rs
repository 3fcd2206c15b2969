//! The EndState: a sorted, serialisable view of every product after a scenario, which is
//! what the scenario snapshots hold. It leaves out the harness's secrets and tokens.

use super::World;
use crate::dualwrite::{state_text, Execution, HealthCheck};
use crate::store::Row;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndState {
    pub seed: u64,
    pub clock: String,
    pub lcs: Vec<LcsView>,
    pub fno: BTreeMap<String, FnoView>,
    pub dataverse: BTreeMap<String, DvView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LcsView {
    pub name: String,
    pub state: String,
    pub demo_data: bool,
    pub power_platform: Option<String>,
    pub dual_write_application: String,
    pub dual_write_linked: bool,
    /// "operation: status (started → ended)".
    pub history: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FnoView {
    pub companies: Vec<String>,
    pub power_platform_dataverse: Option<String>,
    /// Rows per entity set, in key order, without RecId/RecVersion noise.
    pub rows: BTreeMap<String, Vec<Row>>,
    pub dual_write: Option<ConnectionView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionView {
    pub dataverse: String,
    pub legal_entities: Vec<String>,
    pub health_check: Vec<HealthCheck>,
    /// Map id → "State (master …, initial sync on|off)".
    pub maps: BTreeMap<String, String>,
    pub executions: Vec<ExecutionView>,
    pub queued: usize,
    pub catch_up_errors: usize,
    /// Each map's activity log ("time: event"), from Not running to its state now.
    pub activity: BTreeMap<String, Vec<String>>,
    pub notifications: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionView {
    pub map: String,
    pub status: String,
    /// "direction company: exported N, inserted N, updated N, errors N".
    pub legs: Vec<String>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DvView {
    pub solutions: Vec<String>,
    pub fno_integration: Option<String>,
    pub business_units: Vec<String>,
    /// "team (business unit)".
    pub teams: Vec<String>,
    pub application_users: Vec<String>,
    /// Business rows with lookups shown as `table:name` instead of GUIDs.
    pub rows: BTreeMap<String, Vec<BTreeMap<String, Value>>>,
}

/// Tables whose rows the snapshot shows.
const DV_BUSINESS_TABLES: [&str; 8] = [
    "cdm_company",
    "transactioncurrency",
    "msdyn_paymentterm",
    "msdyn_customergroup",
    "account",
    "contact",
    "msdyn_vendorgroup",
    "msdyn_vendor",
];
/// Columns that only restate what the view shows otherwise.
const DV_HIDDEN: [&str; 4] = [
    "createdon",
    "modifiedon",
    "versionnumber",
    "_createdby_value",
];

impl World {
    pub fn end_state(&self) -> EndState {
        let lcs = self
            .lcs
            .environments
            .values()
            .map(|e| LcsView {
                name: e.name.clone(),
                state: e.state.as_str().to_string(),
                demo_data: e.demo_data,
                power_platform: e.power_platform.as_ref().map(|p| {
                    format!(
                        "{} with {} Dataverse {}: {}",
                        p.template,
                        if p.new_environment { "new" } else { "existing" },
                        p.dataverse_org,
                        p.status.as_str()
                    )
                }),
                dual_write_application: e.dual_write_application.as_str().to_string(),
                dual_write_linked: e.dual_write_linked,
                history: e
                    .history
                    .iter()
                    .map(|h| {
                        format!(
                            "{}: {} ({} → {})",
                            h.name,
                            h.status.as_str(),
                            h.started.iso(),
                            h.ended.map_or("-".into(), |t| t.iso())
                        )
                    })
                    .collect(),
            })
            .collect::<Vec<_>>();
        let mut lcs = lcs;
        lcs.sort_by(|a, b| a.name.cmp(&b.name));
        let fno = self
            .fno
            .iter()
            .map(|(name, env)| {
                let rows = env
                    .store
                    .table_names()
                    .map(|t| {
                        let rows = env
                            .store
                            .rows(t)
                            .map(|(_, r)| {
                                let mut r = r.clone();
                                r.remove("RecId");
                                r.remove("RecVersion");
                                r.remove("ModifiedDateTime");
                                r
                            })
                            .collect();
                        (t.clone(), rows)
                    })
                    .collect();
                let dual_write = self.connections.get(name).map(|c| ConnectionView {
                    dataverse: c.dataverse.clone(),
                    legal_entities: c.legal_entities.clone(),
                    health_check: c.health_check.clone(),
                    maps: c
                        .maps
                        .iter()
                        .map(|(id, m)| {
                            (
                                id.clone(),
                                format!(
                                    "{} (master {:?}, initial sync {})",
                                    state_text(m.state),
                                    m.master,
                                    if m.initial_sync { "on" } else { "off" }
                                ),
                            )
                        })
                        .collect(),
                    executions: c.executions.iter().map(execution_view).collect(),
                    queued: c.queue.len(),
                    catch_up_errors: c.catch_up_errors.len(),
                    activity: c
                        .maps
                        .iter()
                        .map(|(id, m)| {
                            (
                                id.clone(),
                                m.activity
                                    .iter()
                                    .map(|(at, text)| format!("{}: {text}", at.iso()))
                                    .collect(),
                            )
                        })
                        .collect(),
                    notifications: c
                        .notifications
                        .iter()
                        .map(|n| format!("{}: {} ({})", n.at.iso(), n.message, n.recipients))
                        .collect(),
                });
                (
                    name.clone(),
                    FnoView {
                        companies: env.companies(),
                        power_platform_dataverse: env.power_platform_dataverse.clone(),
                        rows,
                        dual_write,
                    },
                )
            })
            .collect();
        let dataverse = self
            .dataverse
            .iter()
            .map(|(org, dv)| {
                let name_of = |table: &str, id: &str| -> String {
                    let t = self.catalogue.dv_tables.get(table);
                    let name = t
                        .and_then(|t| t.primary_name.as_ref())
                        .and_then(|n| {
                            dv.get(table, id)
                                .and_then(|r| r.get(n))
                                .and_then(Value::as_str)
                        })
                        .unwrap_or(id);
                    format!("{table}:{name}")
                };
                let mut solutions: Vec<String> = dv
                    .store
                    .rows("solution")
                    .map(|(_, r)| format!("{} {}", text(r, "uniquename"), text(r, "version")))
                    .collect();
                solutions.sort();
                let mut business_units: Vec<String> = dv
                    .store
                    .rows("businessunit")
                    .map(|(_, r)| text(r, "name"))
                    .collect();
                business_units.sort();
                let mut teams: Vec<String> = dv
                    .store
                    .rows("team")
                    .map(|(_, r)| {
                        format!(
                            "{} ({})",
                            text(r, "name"),
                            name_of("businessunit", &text(r, "_businessunitid_value"))
                        )
                    })
                    .collect();
                teams.sort();
                let mut application_users: Vec<String> = dv
                    .store
                    .rows("systemuser")
                    .filter(|(_, r)| r.get("applicationid").is_some_and(|v| !v.is_null()))
                    .map(|(_, r)| format!("{} ({})", text(r, "fullname"), text(r, "applicationid")))
                    .collect();
                application_users.sort();
                let rows = DV_BUSINESS_TABLES
                    .iter()
                    .map(|table| {
                        let schema = self.catalogue.dv_tables.get(*table);
                        let mut rows: Vec<BTreeMap<String, Value>> = dv
                            .store
                            .rows(table)
                            .map(|(_, r)| {
                                r.iter()
                                    .filter(|(k, _)| !DV_HIDDEN.contains(&k.as_str()))
                                    .filter(|(k, _)| {
                                        Some(k.as_str()) != schema.map(|s| s.primary_id.as_str())
                                    })
                                    .map(|(k, v)| {
                                        let shown = match (
                                            k.strip_prefix('_')
                                                .and_then(|k| k.strip_suffix("_value")),
                                            v.as_str(),
                                        ) {
                                            (Some(nav), Some(id)) => {
                                                let target = schema
                                                    .and_then(|s| s.column(nav))
                                                    .and_then(|c| c.target.clone())
                                                    .unwrap_or_else(|| lookup_target(nav));
                                                Value::from(name_of(&target, id))
                                            }
                                            _ => v.clone(),
                                        };
                                        (k.clone(), shown)
                                    })
                                    .collect()
                            })
                            .collect();
                        rows.sort_by_key(|r| serde_json::to_string(r).unwrap_or_default());
                        (table.to_string(), rows)
                    })
                    .collect();
                (
                    org.clone(),
                    DvView {
                        solutions,
                        fno_integration: dv.fno_integration.clone(),
                        business_units,
                        teams,
                        application_users,
                        rows,
                    },
                )
            })
            .collect();
        EndState {
            seed: self.spec.seed,
            clock: self.clock.now().iso(),
            lcs,
            fno,
            dataverse,
        }
    }
}

/// Targets of the system lookups every owned row has.
fn lookup_target(nav: &str) -> String {
    match nav {
        "ownerid" => "team",
        "owningbusinessunit" => "businessunit",
        _ => "systemuser",
    }
    .to_string()
}

fn text(r: &Row, k: &str) -> String {
    r.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn execution_view(e: &Execution) -> ExecutionView {
    ExecutionView {
        map: e.map.clone(),
        status: e.status.as_str().to_string(),
        legs: e
            .legs
            .iter()
            .map(|l| {
                format!(
                    "{} {}: exported {}, inserted {}, updated {}, errors {}",
                    l.direction.as_str(),
                    l.company,
                    l.exported,
                    l.inserted,
                    l.updated,
                    l.errors
                )
            })
            .collect(),
        errors: e.errors.clone(),
    }
}
