//! The EndState: a sorted, serialisable view of every product after a scenario, which is
//! what the scenario snapshots hold. It leaves out the harness's secrets and tokens.

use super::World;
use crate::catalogue::Catalogue;
use crate::dataverse::DvEnv;
use crate::dualwrite::{state_text, Connection, Execution, HealthCheck};
use crate::fno::FnoEnv;
use crate::lcs::LcsEnvironment;
use crate::store::Row;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The end state of a world, as the scenario snapshots hold it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndState {
    /// The world's seed.
    pub seed: u64,
    /// The virtual clock at the end.
    pub clock: String,
    /// LCS environments by name.
    pub lcs: Vec<LcsView>,
    /// F&O environments by name.
    pub fno: BTreeMap<String, FnoView>,
    /// Dataverse environments by organization.
    pub dataverse: BTreeMap<String, DvView>,
}

/// An LCS environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LcsView {
    /// Its name.
    pub name: String,
    /// Its deployment state.
    pub state: String,
    /// Whether it was deployed with demo data.
    pub demo_data: bool,
    /// "template with new|existing Dataverse org: status".
    pub power_platform: Option<String>,
    /// The dual-write application setup state.
    pub dual_write_application: String,
    /// Whether dual-write is linked.
    pub dual_write_linked: bool,
    /// "operation: status (started → ended)".
    pub history: Vec<String>,
}

/// An F&O environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FnoView {
    /// Its legal entities.
    pub companies: Vec<String>,
    /// The Dataverse organization of its Power Platform integration.
    pub power_platform_dataverse: Option<String>,
    /// Rows per entity set, in key order, without RecId/RecVersion noise.
    pub rows: BTreeMap<String, Vec<Row>>,
    /// Its dual-write connection.
    pub dual_write: Option<ConnectionView>,
}

/// A dual-write connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionView {
    /// The linked organization.
    pub dataverse: String,
    /// The connected legal entities, in the order they were added.
    pub legal_entities: Vec<String>,
    /// The health check the link passed.
    pub health_check: Vec<HealthCheck>,
    /// Map id → "State (master …, initial sync on|off)".
    pub maps: BTreeMap<String, String>,
    /// Every initial-sync execution.
    pub executions: Vec<ExecutionView>,
    /// Changes queued for paused maps.
    pub queued: usize,
    /// Queued changes that failed to replay.
    pub catch_up_errors: usize,
    /// Each map's activity log ("time: event"), from Not running to its state now.
    pub activity: BTreeMap<String, Vec<String>>,
    /// "time: message (recipients)" of each alert notification.
    pub notifications: Vec<String>,
}

/// An initial-sync execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionView {
    /// The map.
    pub map: String,
    /// How it ended.
    pub status: String,
    /// "direction company: exported N, inserted N, updated N, errors N".
    pub legs: Vec<String>,
    /// Its first errors.
    pub errors: Vec<String>,
}

/// A Dataverse environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DvView {
    /// "uniquename version" of each installed solution.
    pub solutions: Vec<String>,
    /// The F&O environment of its Power Platform integration.
    pub fno_integration: Option<String>,
    /// Business unit names.
    pub business_units: Vec<String>,
    /// "team (business unit)".
    pub teams: Vec<String>,
    /// "name (application id)" of each application user.
    pub application_users: Vec<String>,
    /// Business rows with lookups shown as `table:name` instead of GUIDs.
    pub rows: BTreeMap<String, Vec<BTreeMap<String, Value>>>,
}

/// Tables whose rows the snapshot shows, besides those of a partner's maps.
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
/// Columns that only restate what the view shows otherwise (the owning team or user is the
/// owner).
const DV_HIDDEN: [&str; 6] = [
    "createdon",
    "modifiedon",
    "versionnumber",
    "_createdby_value",
    "_owningteam_value",
    "_owninguser_value",
];

impl World {
    /// The end state of this world.
    pub fn end_state(&self) -> EndState {
        let mut lcs: Vec<LcsView> = self.lcs.environments.values().map(lcs_view).collect();
        lcs.sort_by(|a, b| a.name.cmp(&b.name));
        EndState {
            seed: self.spec.seed,
            clock: self.clock.now().iso(),
            lcs,
            fno: self
                .fno
                .iter()
                .map(|(name, env)| (name.clone(), fno_view(env, self.connections.get(name))))
                .collect(),
            dataverse: self
                .dataverse
                .iter()
                .map(|(org, dv)| (org.clone(), dv_view(&self.catalogue, dv)))
                .collect(),
        }
    }
}

fn lcs_view(e: &LcsEnvironment) -> LcsView {
    LcsView {
        name: e.name.clone(),
        state: e.state.as_str().to_string(),
        demo_data: e.demo_data,
        power_platform: e.power_platform.as_ref().map(|p| {
            format!(
                "{} with {} Dataverse {}: {}",
                p.template.as_str(),
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
    }
}

fn fno_view(env: &FnoEnv, connection: Option<&Connection>) -> FnoView {
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
    FnoView {
        companies: env.companies(),
        power_platform_dataverse: env.power_platform_dataverse.clone(),
        rows,
        dual_write: connection.map(connection_view),
    }
}

fn connection_view(c: &Connection) -> ConnectionView {
    ConnectionView {
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
    }
}

/// `table:name` for a lookup target, by the table's primary name (the id when it has none).
/// A looked-up row as `table:name`, or `table:COMPANY/name` for a company-striped table,
/// so that a lookup into the wrong company shows in the snapshot (two companies' customer
/// group "10" are different rows).
fn name_of(catalogue: &Catalogue, dv: &DvEnv, table: &str, id: &str) -> String {
    let definition = catalogue.dv_tables.get(table);
    let row = dv.get(table, id);
    let name = definition
        .and_then(|t| t.primary_name.as_ref())
        .and_then(|n| row.and_then(|r| r.get(n)).and_then(Value::as_str))
        .unwrap_or(id);
    let company = definition
        .and_then(|t| t.company_attribute())
        .and_then(|attr| row.and_then(|r| r.get(&attr)).and_then(Value::as_str))
        .and_then(|company| dv.company_code(company));
    match company {
        Some(code) => format!("{table}:{code}/{name}"),
        None => format!("{table}:{name}"),
    }
}

/// Sorted texts of a table's rows.
fn sorted(dv: &DvEnv, table: &str, text_of: impl Fn(&Row) -> String) -> Vec<String> {
    let mut out: Vec<String> = dv.store.rows(table).map(|(_, r)| text_of(r)).collect();
    out.sort();
    out
}

fn dv_view(catalogue: &Catalogue, dv: &DvEnv) -> DvView {
    let solutions = sorted(dv, "solution", |r| {
        format!("{} {}", text(r, "uniquename"), text(r, "version"))
    });
    let business_units = sorted(dv, "businessunit", |r| text(r, "name"));
    let teams = sorted(dv, "team", |r| {
        let bu = text(r, "_businessunitid_value");
        format!(
            "{} ({})",
            text(r, "name"),
            name_of(catalogue, dv, "businessunit", &bu)
        )
    });
    let mut application_users: Vec<String> = dv
        .store
        .rows("systemuser")
        .filter(|(_, r)| r.get("applicationid").is_some_and(|v| !v.is_null()))
        .map(|(_, r)| format!("{} ({})", text(r, "fullname"), text(r, "applicationid")))
        .collect();
    application_users.sort();
    let partner_tables = catalogue
        .maps
        .iter()
        .map(|m| m.dv_table.as_str())
        .filter(|t| !DV_BUSINESS_TABLES.contains(t));
    let rows = DV_BUSINESS_TABLES
        .into_iter()
        .chain(partner_tables)
        .map(|table| (table.to_string(), business_rows(catalogue, dv, table)))
        .collect();
    DvView {
        solutions,
        fno_integration: dv.fno_integration.clone(),
        business_units,
        teams,
        application_users,
        rows,
    }
}

/// A table's rows for review: no primary id or restating system columns, lookups shown
/// as `table:name`, sorted by their JSON text.
fn business_rows(catalogue: &Catalogue, dv: &DvEnv, table: &str) -> Vec<BTreeMap<String, Value>> {
    let schema = catalogue.dv_tables.get(table);
    let shown = |k: &str, v: &Value| -> Value {
        let nav = k.strip_prefix('_').and_then(|k| k.strip_suffix("_value"));
        match (nav, v.as_str()) {
            (Some(nav), Some(id)) => {
                let target = schema
                    .and_then(|s| s.column(nav))
                    .and_then(|c| dv.lookup_target(c, id))
                    .map_or_else(|| lookup_target(nav), str::to_string);
                Value::from(name_of(catalogue, dv, &target, id))
            }
            _ => v.clone(),
        }
    };
    // A column no map touches that still holds the default every create gives it says
    // nothing about dual-write; the state is always shown.
    let mapped: Vec<&str> = catalogue
        .maps
        .iter()
        .filter(|m| m.dv_table == table)
        .flat_map(|m| m.fields.iter().filter_map(|f| f.dv.as_deref()))
        .map(|dv| dv.split('.').next().unwrap_or(dv))
        .collect();
    let default_only = |k: &str, v: &Value| {
        schema
            .and_then(|s| s.column_by_attribute(k))
            .is_some_and(|c| {
                c.name != "statecode"
                    && !mapped.contains(&c.name.as_str())
                    && c.default_value.as_ref() == Some(v)
            })
    };
    let mut rows: Vec<BTreeMap<String, Value>> = dv
        .store
        .rows(table)
        .map(|(_, r)| {
            r.iter()
                .filter(|(k, _)| !DV_HIDDEN.contains(&k.as_str()))
                .filter(|(k, v)| !default_only(k, v))
                .filter(|(k, _)| Some(k.as_str()) != schema.map(|s| s.primary_id.as_str()))
                .map(|(k, v)| (k.to_string(), shown(k, v)))
                .collect()
        })
        .collect();
    rows.sort_by_key(|r| serde_json::to_string(r).unwrap_or_default());
    rows
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
