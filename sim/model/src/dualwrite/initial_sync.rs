//! Initial sync ("initial write"): copies existing rows both ways, per company, before a
//! map goes live. Conflicts on rows present on both sides go to the map's master; the
//! master decides values, not direction. Each run is an execution of legs with counts.

use super::transform::{self, Partition};
use super::Side;
use crate::clock::Instant;
use crate::dataverse::WriteContext;
use crate::error::{SimError, SimResult};
use crate::fno::{value_text, LEGAL_ENTITIES};
use crate::world::World;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Only this many errors are shown for an execution.
pub const SHOWN_ERRORS: usize = 5;

/// The direction of a leg, in the words of the initial-sync log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LegDirection {
    #[serde(rename = "FinanceAndOperations to Dataverse")]
    ToDataverse,
    #[serde(rename = "Dataverse to FinanceAndOperations")]
    ToFno,
}

impl LegDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            LegDirection::ToDataverse => "FinanceAndOperations to Dataverse",
            LegDirection::ToFno => "Dataverse to FinanceAndOperations",
        }
    }
}

/// How an initial-sync execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    Completed,
    Error,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Completed => "Completed",
            ExecutionStatus::Error => "Error",
        }
    }
}

/// One direction for one company, with the counts the initial-sync log reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub direction: LegDirection,
    pub company: String,
    pub exported: usize,
    pub inserted: usize,
    pub updated: usize,
    pub errors: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub id: String,
    pub map: String,
    pub master: Side,
    pub status: ExecutionStatus,
    pub legs: Vec<Leg>,
    /// The first errors (at most five).
    pub errors: Vec<String>,
    pub error_count: usize,
    /// Integration keys of the rows that failed, for "Rerun execution without errors".
    #[serde(default)]
    pub error_keys: Vec<String>,
    pub log: String,
    pub at: Instant,
}

impl World {
    /// Runs initial sync of one map for these companies and records the execution.
    pub fn initial_sync(
        &mut self,
        fno_env: &str,
        map_id: &str,
        master: Side,
        companies: &[String],
    ) -> SimResult<Execution> {
        self.initial_sync_skipping(fno_env, map_id, master, companies, &BTreeSet::new())
    }

    /// Initial sync that leaves the rows with these integration keys alone ("Rerun execution
    /// without errors").
    pub fn initial_sync_skipping(
        &mut self,
        fno_env: &str,
        map_id: &str,
        master: Side,
        companies: &[String],
        skip: &BTreeSet<String>,
    ) -> SimResult<Execution> {
        let limits = self.config.dual_write.initial_sync.clone();
        let catalogue = self.catalogue.clone();
        let map = catalogue
            .map(map_id)
            .ok_or_else(|| SimError::not_found(format!("Table map {map_id} does not exist.")))?;
        let entity = catalogue
            .fno_entities
            .get(&map.fno_entity)
            .ok_or_else(|| SimError::not_found(map.fno_entity.clone()))?;
        let org = self
            .linked_dataverse(fno_env)
            .ok_or_else(|| SimError::conflict("Dual-write is not linked for this environment."))?;
        let writer = self.dual_write_user(&org);
        let partitions = self.partitions(&org, map, companies);
        let now = self.clock.now();
        let World {
            fno,
            dataverse,
            ids,
            ..
        } = self;
        let fno = fno
            .get_mut(fno_env)
            .ok_or_else(|| SimError::not_found(fno_env.to_string()))?;
        let dv = dataverse
            .get_mut(&org)
            .ok_or_else(|| SimError::not_found(org.clone()))?;
        let mut legs = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        let mut error_keys: Vec<String> = Vec::new();
        for partition in &partitions {
            let owner = owner_team(dv, partition);
            let fno_rows = transform::fno_rows(map, fno, partition);
            let dv_rows = transform::dv_rows(&catalogue, map, dv, partition);
            // Counterparts are found by integration key among all rows, as an upsert would.
            let dv_index: BTreeMap<Vec<String>, String> =
                transform::dv_rows_where(&catalogue, map, dv, partition, false)
                    .iter()
                    .filter_map(|(id, r)| transform::dv_key(map, r).map(|k| (k, id.clone())))
                    .collect();
            let fno_index: BTreeMap<Vec<String>, String> =
                transform::fno_rows_where(map, fno, partition, false)
                    .iter()
                    .filter_map(|(id, r)| transform::fno_key(map, r).map(|k| (k, id.clone())))
                    .collect();
            // A conflict is a key present in both exports (after the filters); a counterpart
            // outside the other side's export is simply upserted.
            let dv_exported: std::collections::BTreeSet<Vec<String>> = dv_rows
                .iter()
                .filter_map(|(_, r)| transform::dv_key(map, r))
                .collect();
            let fno_exported: std::collections::BTreeSet<Vec<String>> = fno_rows
                .iter()
                .filter_map(|(_, r)| transform::fno_key(map, r))
                .collect();
            // The documented limits: rows per legal entity per run; from Dataverse, maps with
            // 10 or more lookups, and single-threaded tables past the 24-hour window.
            let over = fno_rows.len().max(dv_rows.len()) > limits.rows_per_legal_entity;
            let lookups = map
                .fields
                .iter()
                .filter(|f| f.dv_lookup().is_some())
                .count();
            let dv_blocked = if over {
                None
            } else if !dv_rows.is_empty() && lookups >= limits.max_lookups {
                let set = catalogue
                    .dv_tables
                    .get(&map.dv_table)
                    .map_or(map.dv_table.as_str(), |t| t.entity_set.as_str());
                Some(format!(
                    "CRMExport: Package execution complete. Error Description 5 Attempts to get data from https://{}/datasets/default/tables/{set}/items?$select=...(msdyn_company/cdm_companyid eq 'ID')&$orderby={} asc failed.",
                    dv.org,
                    map.key.first().and_then(|k| map.field_for_fno(k)).and_then(|f| f.dv.clone()).unwrap_or_default()
                ))
            } else if map.single_threaded && dv_rows.len() > limits.single_threaded_rows {
                Some(format!(
                    "The import of {} rows into {} didn't come back within 24 hours; the initial sync from Dataverse timed out. Don't run initial sync from Dataverse for single-threaded tables with more than {} rows.",
                    dv_rows.len(),
                    entity.label,
                    limits.single_threaded_rows
                ))
            } else {
                None
            };
            if over {
                errors.push(format!(
                    "{}: we currently limit project executions to {} rows per execution per project.",
                    partition.label(),
                    limits.rows_per_legal_entity
                ));
                legs.push(Leg {
                    direction: LegDirection::ToDataverse,
                    company: partition.label(),
                    exported: fno_rows.len(),
                    inserted: 0,
                    updated: 0,
                    errors: 1,
                });
                continue;
            }

            let mut leg = Leg {
                direction: LegDirection::ToDataverse,
                company: partition.label(),
                exported: 0,
                inserted: 0,
                updated: 0,
                errors: 0,
            };
            for (_, row) in &fno_rows {
                let Some(key) = transform::fno_key(map, row) else {
                    continue;
                };
                leg.exported += 1;
                if skip.contains(&key.join(",")) {
                    continue;
                }
                let existing = dv_index.get(&key).cloned();
                let projected = transform::to_dataverse(
                    &catalogue,
                    map,
                    dv,
                    row,
                    partition,
                    existing.is_none(),
                    existing.is_some() && master == Side::Dataverse && dv_exported.contains(&key),
                );
                let attrs = match projected {
                    Ok(a) => a,
                    Err(f) => {
                        leg.errors += 1;
                        error_keys.push(key.join(","));
                        errors.push(format!(
                            "Couldn't resolve the guid for the field: {}. The lookup wasn't found: {}. Try this URL(s) to check if the reference data exists: /api/data/v9.2/{}",
                            f.field, f.value, f.entity_set
                        ));
                        continue;
                    }
                };
                let mut cx = WriteContext {
                    catalogue: &catalogue,
                    ids,
                    now,
                    caller: writer.clone(),
                    owner: owner.clone(),
                };
                let result = match &existing {
                    None => dv.create(&mut cx, &map.dv_table, attrs).map(|_| true),
                    Some(id) => {
                        let current = dv.get(&map.dv_table, id).cloned().unwrap_or_default();
                        let patch = transform::changed(&attrs, &current);
                        // The owner is set when a row is dual-written, even if it existed.
                        let owned = catalogue
                            .dv_tables
                            .get(&map.dv_table)
                            .is_some_and(|t| t.owned);
                        let reown = owned
                            && owner.is_some()
                            && current.get("_ownerid_value").and_then(|v| v.as_str())
                                != owner.as_deref();
                        if patch.is_empty() && !reown {
                            Ok(false)
                        } else {
                            dv.update(&mut cx, &map.dv_table, id, patch).map(|_| true)
                        }
                    }
                };
                match result {
                    Ok(true) if existing.is_none() => leg.inserted += 1,
                    Ok(true) => leg.updated += 1,
                    Ok(false) => {}
                    Err(e) => {
                        leg.errors += 1;
                        error_keys.push(key.join(","));
                        errors.push(format!(
                            "{}: {}",
                            value_text(row.get(&map.key[0])),
                            e.message
                        ));
                    }
                }
            }
            legs.push(leg);

            let mut leg = Leg {
                direction: LegDirection::ToFno,
                company: partition.label(),
                exported: 0,
                inserted: 0,
                updated: 0,
                errors: 0,
            };
            if let Some(message) = dv_blocked {
                leg.exported = dv_rows.len();
                leg.errors = 1;
                errors.push(message);
                legs.push(leg);
                continue;
            }
            for (id, _) in &dv_rows {
                let Some(row) = dv.get(&map.dv_table, id).cloned() else {
                    continue;
                };
                let Some(key) = transform::dv_key(map, &row) else {
                    continue;
                };
                leg.exported += 1;
                if skip.contains(&key.join(",")) {
                    continue;
                }
                let existing = fno_index.get(&key).cloned();
                let attrs = transform::to_fno(
                    &catalogue,
                    map,
                    dv,
                    &row,
                    partition,
                    existing.is_none(),
                    existing.is_some() && master == Side::Fno && fno_exported.contains(&key),
                );
                let result = match &existing {
                    None => fno.insert(&catalogue, entity, attrs, now).map(|_| true),
                    Some(fid) => {
                        let current = fno.get(&map.fno_entity, fid).cloned().unwrap_or_default();
                        let patch = transform::changed(&attrs, &current);
                        if patch.is_empty() {
                            Ok(false)
                        } else {
                            fno.update(&catalogue, entity, fid, &patch, now)
                                .map(|_| true)
                        }
                    }
                };
                match result {
                    Ok(true) if existing.is_none() => leg.inserted += 1,
                    Ok(true) => leg.updated += 1,
                    Ok(false) => {}
                    Err(e) => {
                        leg.errors += 1;
                        error_keys.push(key.join(","));
                        errors.push(format!("{}: {}", key.join(","), e.message));
                    }
                }
            }
            legs.push(leg);
        }
        let error_count = legs.iter().map(|l| l.errors).sum::<usize>();
        let status = if error_count == 0 {
            ExecutionStatus::Completed
        } else {
            ExecutionStatus::Error
        };
        let dv_set = catalogue
            .dv_tables
            .get(&map.dv_table)
            .map_or(map.dv_table.clone(), |t| t.entity_set.clone());
        let mut log = format!(
            "Dual write Initial Sync completed with status: {}. Following are the details:\n",
            status.as_str()
        );
        for leg in &legs {
            let (from, to) = if leg.direction == LegDirection::ToDataverse {
                (format!("AX {}", entity.label), format!("CRM {dv_set}"))
            } else {
                (format!("CRM {dv_set}"), format!("AX {}", entity.label))
            };
            log.push_str(&format!(
                "Executed leg: From {from} to {to} ({}) with exported records count: {}, ImportRecordsErrorCount: {}, ImportRecordsInsertedCount: {} and ImportRecordsUpdatedCount: {}\n",
                leg.company, leg.exported, leg.errors, leg.inserted, leg.updated
            ));
        }
        errors.truncate(SHOWN_ERRORS);
        if !errors.is_empty() {
            log.push_str(&format!(
                "ErrorsDetails: Dual write Initial sync failed\nMessage: {}\n",
                errors.join("\n")
            ));
        }
        let execution = Execution {
            id: self.ids.guid(),
            map: map_id.to_string(),
            master,
            status,
            legs,
            errors,
            error_count,
            error_keys,
            log,
            at: now,
        };
        if let Some(c) = self.connections.get_mut(fno_env) {
            c.executions.push(execution.clone());
        }
        Ok(execution)
    }

    /// The partitions a map syncs for these companies.
    pub fn partitions(
        &self,
        org: &str,
        map: &crate::schema::TableMap,
        companies: &[String],
    ) -> Vec<Partition> {
        if transform::is_company_specific(&self.catalogue, map) {
            let Some(dv) = self.dataverse.get(org) else {
                return Vec::new();
            };
            companies
                .iter()
                .filter_map(|code| {
                    dv.company_by_code(code).map(|(id, _)| Partition::Company {
                        code: code.to_uppercase(),
                        dv_company_id: id,
                    })
                })
                .collect()
        } else if map.fno_entity == LEGAL_ENTITIES {
            vec![Partition::LegalEntities {
                codes: companies.to_vec(),
            }]
        } else {
            vec![Partition::Global]
        }
    }
}

/// Dual-write owns what it writes by the company's default owning team, or the root
/// business unit's default team for global tables.
pub fn owner_team(dv: &crate::dataverse::DvEnv, partition: &Partition) -> Option<String> {
    match partition {
        Partition::Company { dv_company_id, .. } => dv
            .get("cdm_company", dv_company_id)
            .and_then(|r| r.get("_cdm_defaultowningteam_value"))
            .and_then(|v| v.as_str())
            .map(str::to_string),
        _ => dv.default_team(&dv.root_business_unit),
    }
}

/// The initial-sync limits, configurable so tests can use small numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct InitialSyncLimits {
    /// Rows per legal entity per run (the documented 500,000).
    pub rows_per_legal_entity: usize,
    /// From Dataverse, maps with this many lookups or more fail (the docs: "10 or more").
    pub max_lookups: usize,
    /// From Dataverse to single-threaded F&O tables, more rows than this miss the 24-hour
    /// window (the guidance's 70,000).
    pub single_threaded_rows: usize,
    /// Initial writes are processed for at most this many legal entities (40).
    pub legal_entities: usize,
}

impl Default for InitialSyncLimits {
    fn default() -> Self {
        InitialSyncLimits {
            rows_per_legal_entity: 500_000,
            max_lookups: 10,
            single_threaded_rows: 70_000,
            legal_entities: super::INITIAL_SYNC_LEGAL_ENTITY_LIMIT,
        }
    }
}

impl World {
    /// "Re-run execution" (everything again) or "Rerun execution without errors" (leaving
    /// the rows that failed last time alone) for a map's latest execution. The map stays in
    /// its state; once the execution completes, the map can be run.
    pub fn dw_rerun_execution(
        &mut self,
        fno_env: &str,
        map_id: &str,
        without_errors: bool,
    ) -> SimResult<Execution> {
        let connection = self
            .connections
            .get(fno_env)
            .ok_or_else(|| SimError::conflict("Dual-write is not linked for this environment."))?;
        let last = connection
            .executions
            .iter()
            .rev()
            .find(|e| e.map == map_id)
            .cloned()
            .ok_or_else(|| {
                SimError::not_found(format!(
                    "Table map {map_id} has no initial sync execution to rerun."
                ))
            })?;
        let companies = connection.legal_entities.clone();
        let skip: BTreeSet<String> = if without_errors {
            last.error_keys.iter().cloned().collect()
        } else {
            BTreeSet::new()
        };
        self.initial_sync_skipping(fno_env, map_id, last.master, &companies, &skip)
    }
}
