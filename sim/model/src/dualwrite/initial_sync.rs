//! Initial sync ("initial write"): copies existing rows both ways, per company, before a
//! map goes live. Conflicts on rows present on both sides go to the map's master; the
//! master decides values, not direction. Each run is an execution of legs with counts.

use super::transform::{self, Partition};
use super::{DualWrite, Side};
use crate::catalogue::Catalogue;
use crate::clock::Instant;
use crate::dataverse::{DvEnv, PreparedInsert, WriteContext, Writer};
use crate::error::{SimError, SimResult};
use crate::fno::{value_text, FnoEnv, LEGAL_ENTITIES};
use crate::schema::{FnoEntity, TableMap};
use crate::store::Row;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Only this many errors are shown for an execution.
pub const SHOWN_ERRORS: usize = 5;

/// The direction of a leg, in the words of the initial-sync log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LegDirection {
    /// F&O rows exported to Dataverse.
    #[serde(rename = "FinanceAndOperations to Dataverse")]
    ToDataverse,
    /// Dataverse rows exported to F&O.
    #[serde(rename = "Dataverse to FinanceAndOperations")]
    ToFno,
}

impl LegDirection {
    /// The direction as the log writes it.
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
    /// Every leg ran without a failed row.
    Completed,
    /// At least one row (or a whole leg) failed.
    Error,
}

impl ExecutionStatus {
    /// The status as the initial-sync details show it.
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
    /// Which way the rows went.
    pub direction: LegDirection,
    /// The company code, or `global` for a table without companies.
    pub company: String,
    /// Rows the source exported (those with an integration key).
    pub exported: usize,
    /// Counterparts created.
    pub inserted: usize,
    /// Counterparts changed.
    pub updated: usize,
    /// Rows that failed.
    pub errors: usize,
}

/// One initial-sync run of one map: its legs, errors and log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// The execution id.
    pub id: String,
    /// The map it ran.
    pub map: String,
    /// The side whose values won conflicts.
    pub master: Side,
    /// How it ended.
    pub status: ExecutionStatus,
    /// Each direction for each company, in the order they ran.
    pub legs: Vec<Leg>,
    /// The first errors (at most five).
    pub errors: Vec<String>,
    /// All errors, of which `errors` shows the first.
    pub error_count: usize,
    /// Integration keys of the rows that failed, for "Rerun execution without errors".
    #[serde(default)]
    pub error_keys: Vec<String>,
    /// The text of the initial-sync log.
    pub log: String,
    /// When it ran.
    pub at: Instant,
}

/// The partitions a map syncs for these companies: one per company that has a cdm_company
/// for a company-striped table, all of them at once for the legal-entity map, or one
/// global partition.
pub fn partitions(
    catalogue: &Catalogue,
    dv: Option<&DvEnv>,
    map: &TableMap,
    companies: &[String],
) -> Vec<Partition> {
    if transform::is_company_specific(catalogue, map) {
        let Some(dv) = dv else {
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

/// What writing one row's counterpart did.
enum Written {
    Inserted,
    Updated,
    Unchanged,
}

/// Why one row of a leg failed, as the execution's error list shows it.
#[derive(Debug, thiserror::Error)]
enum RowFailure {
    #[error("Couldn't resolve the guid for the field: {}. The lookup wasn't found: {}. Try this URL(s) to check if the reference data exists: /api/data/v9.2/{}", .0.field, .0.value, .0.entity_set)]
    Lookup(transform::LookupFailure),
    /// The destination refused the write; `row` names the row as the log does.
    #[error("{row}: {}", .error.message)]
    Write { row: String, error: SimError },
}

/// One row a leg exports: its integration key and its id on the exporting side (the row
/// is read where it lies, never copied out).
type Exported = (Vec<String>, String);

/// Rows a leg prepares at a time: a batch is prepared on the machine's cores against the
/// destination as it stands, then written row by row, in order.
const BATCH: usize = 4096;

/// Runs one leg: every exported row with a key is counted, rows the rerun skips are left
/// alone, and the counterpart of each other row is upserted in two steps. `prepare` works
/// out the write from the destination `env` as it stands without changing anything (the
/// projection, its lookups, the checks and the row it makes), for a batch of rows at a
/// time and on up to `workers` threads; `write` then does what depends on the rows written
/// before (ids, versions, keys) and stores it, one row at a time in export order. A failed
/// row is counted and its error and key recorded. The outcome is the same for any number of
/// workers: `prepare` only reads what the leg does not write.
#[allow(clippy::too_many_arguments)]
fn run_leg<E: Sync, P: Send>(
    direction: LegDirection,
    partition: &Partition,
    exported: Vec<Exported>,
    skip: &BTreeSet<String>,
    report: &mut Report,
    env: &mut E,
    workers: usize,
    prepare: impl Fn(&E, &[String], &str) -> P + Sync,
    mut write: impl FnMut(&mut E, &[String], &str, P) -> Result<Written, RowFailure>,
) -> Leg {
    let mut leg = Leg {
        direction,
        company: partition.label(),
        exported: exported.len(),
        inserted: 0,
        updated: 0,
        errors: 0,
    };
    let rows: Vec<Exported> = exported
        .into_iter()
        .filter(|(key, _)| skip.is_empty() || !skip.contains(&key.join(",")))
        .collect();
    for batch in rows.chunks(BATCH) {
        let prepared = prepare_batch(&*env, batch, workers, &prepare);
        for ((key, id), prepared) in batch.iter().zip(prepared) {
            match write(env, key, id, prepared) {
                Ok(Written::Inserted) => leg.inserted += 1,
                Ok(Written::Updated) => leg.updated += 1,
                Ok(Written::Unchanged) => {}
                Err(failure) => {
                    leg.errors += 1;
                    report.error_keys.push(key.join(","));
                    report.errors.push(failure.to_string());
                }
            }
        }
    }
    leg
}

/// `prepare` for every row of a batch, in order: the batch split evenly between this thread
/// and `workers - 1` others. A panic on another thread goes on here.
fn prepare_batch<E: Sync, P: Send>(
    env: &E,
    batch: &[Exported],
    workers: usize,
    prepare: &(impl Fn(&E, &[String], &str) -> P + Sync),
) -> Vec<P> {
    let run = |rows: &[Exported]| -> Vec<P> {
        rows.iter().map(|(key, id)| prepare(env, key, id)).collect()
    };
    // Below a few hundred rows a thread costs more than it saves.
    if workers < 2 || batch.len() < 512 {
        return run(batch);
    }
    let share = batch.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let mut parts = batch.chunks(share);
        let mine = parts.next().unwrap_or_default();
        let others: Vec<_> = parts.map(|part| scope.spawn(move || run(part))).collect();
        let mut all = run(mine);
        for other in others {
            match other.join() {
                Ok(prepared) => all.extend(prepared),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    })
}

/// Threads that prepare a leg's rows; 0 (the default) means the machine's cores, at most
/// four. The outcome never depends on it (see [`run_leg`]): tests set it to show that.
pub static PREPARE_THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many threads prepare a leg's rows (see [`PREPARE_THREADS`]).
fn workers() -> usize {
    match PREPARE_THREADS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        n => n,
    }
}

/// What the F&O-to-Dataverse leg prepares for one row.
enum ToDataverseRow<'c> {
    /// The F&O row is gone.
    Gone,
    /// A lookup found nothing.
    Failed(RowFailure),
    /// The counterpart exists: its id and the attributes to write.
    Update(&'c String, Row),
    /// A create, or why it cannot be made.
    Create(SimResult<PreparedInsert<'c>>),
}

/// The errors of an execution, as they are collected leg by leg.
#[derive(Default)]
struct Report {
    errors: Vec<String>,
    error_keys: Vec<String>,
}

/// Why the Dataverse leg cannot run: the documented limits of initial sync from Dataverse
/// (maps with 10 or more lookups, single-threaded tables past the 24-hour window).
fn dataverse_leg_blocked(
    limits: &InitialSyncLimits,
    catalogue: &Catalogue,
    map: &TableMap,
    entity: &FnoEntity,
    org: &str,
    dv_rows: usize,
) -> Option<String> {
    let lookups = map
        .fields
        .iter()
        .filter(|f| f.dv_lookup().is_some())
        .count();
    if dv_rows > 0 && lookups >= limits.max_lookups {
        let set = catalogue
            .dv_tables
            .get(&map.dv_table)
            .map_or(map.dv_table.as_str(), |t| t.entity_set.as_str());
        let order_by = map
            .key
            .first()
            .and_then(|k| map.field_for_fno(k))
            .and_then(|f| f.dv.clone())
            .unwrap_or_default();
        return Some(format!(
            "CRMExport: Package execution complete. Error Description 5 Attempts to get data from https://{org}/datasets/default/tables/{set}/items?$select=...(msdyn_company/cdm_companyid eq 'ID')&$orderby={order_by} asc failed."
        ));
    }
    if map.single_threaded && dv_rows > limits.single_threaded_rows {
        return Some(format!(
            "The import of {dv_rows} rows into {} didn't come back within 24 hours; the initial sync from Dataverse timed out. Don't run initial sync from Dataverse for single-threaded tables with more than {} rows.",
            entity.label, limits.single_threaded_rows
        ));
    }
    None
}

/// The initial-sync log text of an execution.
fn execution_log(
    status: ExecutionStatus,
    legs: &[Leg],
    errors: &[String],
    entity: &FnoEntity,
    dv_set: &str,
) -> String {
    let mut log = format!(
        "Dual write Initial Sync completed with status: {}. Following are the details:\n",
        status.as_str()
    );
    for leg in legs {
        let (from, to) = match leg.direction {
            LegDirection::ToDataverse => (format!("AX {}", entity.label), format!("CRM {dv_set}")),
            LegDirection::ToFno => (format!("CRM {dv_set}"), format!("AX {}", entity.label)),
        };
        log.push_str(&format!(
            "Executed leg: From {from} to {to} ({}) with exported records count: {}, ImportRecordsErrorCount: {}, ImportRecordsInsertedCount: {} and ImportRecordsUpdatedCount: {}\n",
            leg.company, leg.exported, leg.errors, leg.inserted, leg.updated
        ));
    }
    if !errors.is_empty() {
        log.push_str(&format!(
            "ErrorsDetails: Dual write Initial sync failed\nMessage: {}\n",
            errors.join("\n")
        ));
    }
    log
}

impl DualWrite<'_> {
    /// "Re-run execution" (everything again) or "Rerun execution without errors" (leaving
    /// the rows that failed last time alone) for a map's latest execution. The map stays in
    /// its state; once the execution completes, the map can be run.
    pub fn rerun_execution(&mut self, map_id: &str, without_errors: bool) -> SimResult<Execution> {
        let last = self
            .conn
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
        let companies = self.conn.legal_entities.clone();
        let skip: BTreeSet<String> = if without_errors {
            last.error_keys.iter().cloned().collect()
        } else {
            BTreeSet::new()
        };
        self.initial_sync(map_id, last.master, &companies, &skip)
    }

    /// Initial sync of one map for these companies, leaving the rows with the integration
    /// keys in `skip` alone ("Rerun execution without errors"); records the execution.
    pub fn initial_sync(
        &mut self,
        map_id: &str,
        master: Side,
        companies: &[String],
        skip: &BTreeSet<String>,
    ) -> SimResult<Execution> {
        let catalogue = self.catalogue;
        let map = catalogue
            .map(map_id)
            .ok_or_else(|| SimError::not_found(format!("Table map {map_id} does not exist.")))?;
        let entity = catalogue
            .fno_entities
            .get(&map.fno_entity)
            .ok_or_else(|| SimError::not_found(map.fno_entity.clone()))?;
        let mut legs = Vec::new();
        let mut report = Report::default();
        for partition in partitions(catalogue, Some(self.dv), map, companies) {
            self.sync_partition(
                map,
                entity,
                master,
                &partition,
                skip,
                &mut legs,
                &mut report,
            );
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
        let mut errors = report.errors;
        errors.truncate(SHOWN_ERRORS);
        let log = execution_log(status, &legs, &errors, entity, &dv_set);
        let execution = Execution {
            id: self.ids.guid(),
            map: map_id.to_string(),
            master,
            status,
            legs,
            errors,
            error_count,
            error_keys: report.error_keys,
            log,
            at: self.clock.now(),
        };
        self.conn.executions.push(execution.clone());
        Ok(execution)
    }

    /// Both legs of one partition: F&O to Dataverse, then Dataverse to F&O, unless the
    /// partition is over the documented rows-per-legal-entity limit or the Dataverse leg
    /// is blocked by one of its limits.
    #[allow(clippy::too_many_arguments)]
    fn sync_partition(
        &mut self,
        map: &TableMap,
        entity: &FnoEntity,
        master: Side,
        partition: &Partition,
        skip: &BTreeSet<String>,
        legs: &mut Vec<Leg>,
        report: &mut Report,
    ) {
        let catalogue = self.catalogue;
        let limits = &self.settings.initial_sync;
        let master = if crate::mutants::active("master-ignored") {
            Side::Dataverse
        } else {
            master
        };
        // One pass over each side: what it exports (after its filter), and every row of
        // the partition by integration key, as an upsert would find its counterpart.
        let mut dv = Scan {
            exported_ids: Some(Vec::new()),
            index_all: true,
            ..Scan::default()
        };
        for (id, row) in transform::dv_partition(catalogue, map, self.dv, partition) {
            let key = transform::dv_key(map, row);
            dv.add(id, key, transform::passes_dv_filter(map, row));
        }
        // F&O rows are only looked up as counterparts of the Dataverse leg's rows.
        let mut fno = Scan {
            index_all: dv.exported > 0,
            ..Scan::default()
        };
        for (id, row) in transform::fno_partition(map, self.fno, partition) {
            let key = transform::fno_key(map, row);
            fno.add(id, key, transform::passes_fno_filter(map, row));
        }
        if fno.exported.max(dv.exported) > limits.rows_per_legal_entity {
            report.errors.push(format!(
                "{}: we currently limit project executions to {} rows per execution per project.",
                partition.label(),
                limits.rows_per_legal_entity
            ));
            legs.push(failed_leg(
                LegDirection::ToDataverse,
                partition,
                fno.exported,
            ));
            return;
        }
        let dv_exported_ids = dv.exported_ids;
        let fno_rows = fno.keyed;
        // A side's exported keys only matter where that side is the master (a conflict it
        // wins writes only the other side's one-way fields).
        let counterparts = Counterparts {
            dv: dv.all,
            fno: fno.all,
            dv_exported: match master {
                Side::Dataverse => dv.keyed.into_iter().map(|(k, _)| (k, ())).collect(),
                Side::Fno => KeyMap::default(),
            },
            fno_exported: match master {
                Side::Fno if dv.exported > 0 => {
                    fno_rows.iter().map(|(k, _)| (k.clone(), ())).collect()
                }
                _ => KeyMap::default(),
            },
        };
        let dv_blocked =
            dataverse_leg_blocked(limits, catalogue, map, entity, &self.dv.org, dv.exported);
        legs.push(self.leg_to_dataverse(
            map,
            master,
            partition,
            fno_rows,
            &counterparts,
            skip,
            report,
        ));
        if let Some(message) = dv_blocked {
            report.errors.push(message);
            legs.push(failed_leg(LegDirection::ToFno, partition, dv.exported));
            return;
        }
        // The rows as the first leg left them.
        let dv_rows: Vec<Exported> = dv_exported_ids
            .into_iter()
            .flatten()
            .filter_map(|id| {
                let row = self.dv.get(&map.dv_table, &id)?;
                Some((transform::dv_key(map, row)?, id))
            })
            .collect();
        legs.push(self.leg_to_fno(
            map,
            entity,
            master,
            partition,
            dv_rows,
            &counterparts,
            skip,
            report,
        ));
    }

    #[allow(clippy::too_many_arguments)]
    fn leg_to_dataverse(
        &mut self,
        map: &TableMap,
        master: Side,
        partition: &Partition,
        rows: Vec<Exported>,
        counterparts: &Counterparts,
        skip: &BTreeSet<String>,
        report: &mut Report,
    ) -> Leg {
        let catalogue = self.catalogue;
        let owner = owner_team(self.dv, partition);
        let caller = self.writer();
        let now = self.clock.now();
        let (dv, ids, fno) = (&mut *self.dv, &mut *self.ids, &*self.fno);
        let projection = transform::ToDataverse::new(catalogue, map, partition);
        // A create of a company runs a plug-in that writes business units and teams, a
        // create reads the owner's team, and a lookup into the table being written reads
        // rows this leg writes: maps to those tables are prepared one row at a time.
        let reads_itself = matches!(
            map.dv_table.as_str(),
            "cdm_company" | "businessunit" | "team"
        ) || transform::looks_up_itself(catalogue, map);
        let workers = if reads_itself { 1 } else { workers() };
        let writer = Writer {
            now,
            caller: &caller,
            owner: owner.as_deref(),
        };
        let label = |id: &str| {
            value_text(
                fno.get(&map.fno_entity, id)
                    .and_then(|r| r.get(&map.key[0])),
            )
        };
        run_leg(
            LegDirection::ToDataverse,
            partition,
            rows,
            skip,
            report,
            dv,
            workers,
            |dv: &DvEnv, key, id| {
                let Some(row) = fno.get(&map.fno_entity, id) else {
                    return ToDataverseRow::Gone;
                };
                let existing = counterparts.dv.get(key);
                let one_way = existing.is_some()
                    && master == Side::Dataverse
                    && counterparts.dv_exported.contains_key(key);
                let attrs = match projection.project(dv, row, existing.is_none(), one_way) {
                    Ok(attrs) => attrs,
                    Err(failure) => return ToDataverseRow::Failed(RowFailure::Lookup(failure)),
                };
                match existing {
                    Some(existing) => ToDataverseRow::Update(existing, attrs),
                    None => ToDataverseRow::Create(dv.prepare_insert(
                        catalogue,
                        &writer,
                        &map.dv_table,
                        attrs,
                    )),
                }
            },
            |dv, _, id, prepared| {
                let mut cx = WriteContext {
                    catalogue,
                    ids,
                    now,
                    caller: caller.clone(),
                    owner: owner.clone(),
                };
                let written = match prepared {
                    ToDataverseRow::Gone => return Ok(Written::Unchanged),
                    ToDataverseRow::Failed(failure) => return Err(failure),
                    ToDataverseRow::Update(existing, attrs) => {
                        update_dataverse(dv, &mut cx, map, existing, attrs)
                    }
                    ToDataverseRow::Create(prepared) => prepared
                        .and_then(|p| dv.finish_insert(&mut cx, &map.dv_table, p))
                        .map(|_| Written::Inserted),
                };
                written.map_err(|error| RowFailure::Write {
                    row: label(id),
                    error,
                })
            },
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn leg_to_fno(
        &mut self,
        map: &TableMap,
        entity: &FnoEntity,
        master: Side,
        partition: &Partition,
        rows: Vec<Exported>,
        counterparts: &Counterparts,
        skip: &BTreeSet<String>,
        report: &mut Report,
    ) -> Leg {
        let catalogue = self.catalogue;
        let now = self.clock.now();
        let (dv, fno) = (&*self.dv, &mut *self.fno);
        // The projection reads Dataverse, which this leg does not write.
        run_leg(
            LegDirection::ToFno,
            partition,
            rows,
            skip,
            report,
            fno,
            workers(),
            |_: &FnoEnv, key, id| {
                let row = dv.get(&map.dv_table, id)?;
                let existing = counterparts.fno.get(key);
                let one_way = existing.is_some()
                    && master == Side::Fno
                    && counterparts.fno_exported.contains_key(key);
                let attrs = transform::to_fno(
                    catalogue,
                    map,
                    dv,
                    row,
                    partition,
                    existing.is_none(),
                    one_way,
                );
                Some((existing, attrs))
            },
            |fno, key, _, prepared| {
                let Some((existing, attrs)) = prepared else {
                    return Ok(Written::Unchanged);
                };
                upsert_fno(fno, catalogue, entity, existing, &attrs, now).map_err(|error| {
                    RowFailure::Write {
                        row: key.join(","),
                        error,
                    }
                })
            },
        )
    }
}

/// What both legs of a partition look up: each side's rows by integration key, among all
/// rows as an upsert would find them, and the keys each side exports after the filters. A
/// key in both exports is a conflict, which the master decides; a counterpart outside the
/// other side's export is simply upserted.
/// Hashed: they are only looked up, never walked.
struct Counterparts {
    dv: KeyMap<String>,
    fno: KeyMap<String>,
    dv_exported: KeyMap<()>,
    fno_exported: KeyMap<()>,
}

type KeyMap<V> = std::collections::HashMap<Vec<String>, V, foldhash::fast::FixedState>;

/// One side's rows of a partition, gathered in one pass for [`Counterparts`] and the leg.
#[derive(Default)]
struct Scan {
    /// How many rows pass the side's filter (with a key or not).
    exported: usize,
    /// The ids of those rows, when asked for (the Dataverse leg reads them again).
    exported_ids: Option<Vec<String>>,
    /// Those of them with an integration key.
    keyed: Vec<Exported>,
    /// Every row with a key, filter or not; a later row with the same key wins. Only
    /// filled with `index_all`.
    all: KeyMap<String>,
    index_all: bool,
}

impl Scan {
    fn add(&mut self, id: &str, key: Option<Vec<String>>, passes: bool) {
        if passes {
            self.exported += 1;
            if let Some(ids) = &mut self.exported_ids {
                ids.push(id.to_string());
            }
        }
        let Some(key) = key else { return };
        if !self.index_all {
            if passes {
                self.keyed.push((key, id.to_string()));
            }
            return;
        }
        if passes {
            self.keyed.push((key.clone(), id.to_string()));
        }
        self.all.insert(key, id.to_string());
    }
}

/// A leg that did not run: everything it would have exported, and one error.
fn failed_leg(direction: LegDirection, partition: &Partition, exported: usize) -> Leg {
    Leg {
        direction,
        company: partition.label(),
        exported,
        inserted: 0,
        updated: 0,
        errors: 1,
    }
}

/// Updates the fields of the Dataverse counterpart that differ. The owner is set when a
/// row is dual-written, even if it existed.
fn update_dataverse(
    dv: &mut DvEnv,
    cx: &mut WriteContext,
    map: &TableMap,
    id: &str,
    attrs: Row,
) -> SimResult<Written> {
    let empty = Row::new();
    let current = dv.get(&map.dv_table, id).unwrap_or(&empty);
    let patch = transform::changed(&attrs, current);
    let owned = cx
        .catalogue
        .dv_tables
        .get(&map.dv_table)
        .is_some_and(|t| t.owned);
    let reown = owned
        && cx.owner.is_some()
        && current.get("_ownerid_value").and_then(|v| v.as_str()) != cx.owner.as_deref();
    if patch.is_empty() && !reown {
        return Ok(Written::Unchanged);
    }
    dv.update(cx, &map.dv_table, id, patch)
        .map(|_| Written::Updated)
}

/// Inserts the F&O counterpart, or updates the fields that differ.
fn upsert_fno(
    fno: &mut FnoEnv,
    catalogue: &Catalogue,
    entity: &FnoEntity,
    existing: Option<&String>,
    attrs: &Row,
    now: Instant,
) -> SimResult<Written> {
    let Some(id) = existing else {
        return fno
            .insert_row(catalogue, entity, attrs.clone(), now)
            .map(|_| Written::Inserted);
    };
    let empty = Row::new();
    let current = fno.get(&entity.entity_set, id).unwrap_or(&empty);
    let patch = transform::changed(attrs, current);
    if patch.is_empty() {
        return Ok(Written::Unchanged);
    }
    fno.update(catalogue, entity, id, &patch, now)
        .map(|_| Written::Updated)
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
#[serde(default, deny_unknown_fields)]
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
