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
use std::collections::BTreeMap;

/// Only this many errors are shown for an execution.
pub const SHOWN_ERRORS: usize = 5;

/// One direction for one company, with the counts the initial-sync log reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub direction: String,
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
    /// `Completed` or `Error`.
    pub status: String,
    pub legs: Vec<Leg>,
    /// The first errors (at most five).
    pub errors: Vec<String>,
    pub error_count: usize,
    pub log: String,
    pub at: Instant,
}

pub const TO_DATAVERSE: &str = "FinanceAndOperations to Dataverse";
pub const TO_FNO: &str = "Dataverse to FinanceAndOperations";

impl World {
    /// Runs initial sync of one map for these companies and records the execution.
    pub fn initial_sync(
        &mut self,
        fno_env: &str,
        map_id: &str,
        master: Side,
        companies: &[String],
    ) -> SimResult<Execution> {
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

            let mut leg = Leg {
                direction: TO_DATAVERSE.into(),
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
                direction: TO_FNO.into(),
                company: partition.label(),
                exported: 0,
                inserted: 0,
                updated: 0,
                errors: 0,
            };
            for (id, _) in &dv_rows {
                let Some(row) = dv.get(&map.dv_table, id).cloned() else {
                    continue;
                };
                let Some(key) = transform::dv_key(map, &row) else {
                    continue;
                };
                leg.exported += 1;
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
                        errors.push(format!("{}: {}", key.join(","), e.message));
                    }
                }
            }
            legs.push(leg);
        }
        let error_count = legs.iter().map(|l| l.errors).sum::<usize>();
        let status = if error_count == 0 {
            "Completed"
        } else {
            "Error"
        };
        let dv_set = catalogue
            .dv_tables
            .get(&map.dv_table)
            .map_or(map.dv_table.clone(), |t| t.entity_set.clone());
        let mut log = format!(
            "Dual write Initial Sync completed with status: {status}. Following are the details:\n"
        );
        for leg in &legs {
            let (from, to) = if leg.direction == TO_DATAVERSE {
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
            status: status.into(),
            legs,
            errors,
            error_count,
            log,
            at: now,
        };
        if let Some(c) = self
            .fno
            .get_mut(fno_env)
            .and_then(|e| e.dual_write.as_mut())
        {
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
