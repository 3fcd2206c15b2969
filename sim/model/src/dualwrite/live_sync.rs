//! Live sync: every write through F&O OData or the Dataverse Web API is one transaction
//! across both products. The originating write and the dual-written counterpart commit
//! together; if the other side fails, both stores roll back to their savepoints and the
//! caller gets the documented error. Counterpart writes go straight to the other store, so
//! they never trigger dual-write back (echo suppression).

use super::initial_sync::{owner_team, partitions};
use super::transform::{self, Partition};
use super::{DualWrite, MapState, Side};
use crate::dataverse::WriteContext;
use crate::error::{ErrorKind, SimError, SimResult};
use crate::fno::{value_text, LEGAL_ENTITIES};
use crate::schema::TableMap;
use crate::store::Row;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A change recorded while its map was paused, replayed in order on resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedChange {
    /// The map the change was recorded for.
    pub map: String,
    /// The side the change was made on.
    pub origin: Side,
    /// Store id of the origin row (F&O key or Dataverse GUID).
    pub row: String,
    /// The company code of the row, or `global`.
    pub company: String,
    /// When it was queued (for the retention limits).
    #[serde(default)]
    pub at: crate::clock::Instant,
    /// Size of the queued record.
    #[serde(default)]
    pub bytes: u64,
    /// For a delete, the row as it was, so that the replay can find its counterpart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Row>,
}

/// A write on one side, as the runtime sees it.
struct Change<'a> {
    table: &'a str,
    before: Option<Row>,
    after: Option<Row>,
}

impl DualWrite<'_> {
    /// Runs `write` and the dual-write it triggers as one transaction on both stores.
    /// `origin` is the side `write` starts on.
    fn transaction<T>(
        &mut self,
        origin: Side,
        write: impl FnOnce(&mut Self) -> SimResult<T>,
    ) -> SimResult<T> {
        let fno_sp = self.fno.store.begin();
        let dv_sp = self.dv.store.begin();
        let timed = self.start_timer();
        let mut result = write(self);
        if timed {
            result = self.stop_timer(origin, result);
        }
        if result.is_ok() || keep_on_failure(origin, Side::Fno) {
            self.fno.store.commit(fno_sp)
        } else {
            self.fno.store.rollback(fno_sp)
        }
        if result.is_ok() || keep_on_failure(origin, Side::Dataverse) {
            self.dv.store.commit(dv_sp)
        } else {
            self.dv.store.rollback(dv_sp)
        }
        result
    }

    /// F&O OData create.
    pub fn fno_create(&mut self, entity_set: &str, row: Row) -> SimResult<Row> {
        self.transaction(Side::Fno, |dw| {
            let entity = fno_entity(dw.catalogue, entity_set)?;
            let created = dw.fno.insert(dw.catalogue, entity, row, dw.clock.now())?;
            dw.propagate(
                Side::Fno,
                Change {
                    table: entity_set,
                    before: None,
                    after: Some(created.clone()),
                },
            )?;
            Ok(created)
        })
    }

    /// F&O OData update of the row with store id `id`.
    pub fn fno_update(&mut self, entity_set: &str, id: &str, changes: Row) -> SimResult<Row> {
        self.transaction(Side::Fno, |dw| {
            let entity = fno_entity(dw.catalogue, entity_set)?;
            let before = dw.fno.get(entity_set, id).cloned();
            let updated = dw
                .fno
                .update(dw.catalogue, entity, id, &changes, dw.clock.now())?;
            dw.propagate(
                Side::Fno,
                Change {
                    table: entity_set,
                    before,
                    after: Some(updated.clone()),
                },
            )?;
            Ok(updated)
        })
    }

    /// F&O OData delete.
    pub fn fno_delete(&mut self, entity_set: &str, id: &str) -> SimResult<()> {
        self.transaction(Side::Fno, |dw| {
            let entity = fno_entity(dw.catalogue, entity_set)?;
            let before = dw.fno.delete(entity, id)?;
            dw.propagate(
                Side::Fno,
                Change {
                    table: entity_set,
                    before: Some(before),
                    after: None,
                },
            )
        })
    }

    /// Dataverse create as `caller` (a systemuserid). Answers the new id and row.
    pub fn dv_create(&mut self, table: &str, attrs: Row, caller: &str) -> SimResult<(String, Row)> {
        self.transaction(Side::Dataverse, |dw| {
            let created = dw.dv_write(caller, |dv, cx| dv.create(cx, table, attrs))?;
            dw.propagate(
                Side::Dataverse,
                Change {
                    table,
                    before: None,
                    after: Some(created.1.clone()),
                },
            )?;
            Ok(created)
        })
    }

    /// Dataverse update.
    pub fn dv_update(&mut self, table: &str, id: &str, attrs: Row, caller: &str) -> SimResult<Row> {
        self.transaction(Side::Dataverse, |dw| {
            let before = dw.dv.get(table, id).cloned();
            let updated = dw.dv_write(caller, |dv, cx| dv.update(cx, table, id, attrs))?;
            dw.propagate(
                Side::Dataverse,
                Change {
                    table,
                    before,
                    after: Some(updated.clone()),
                },
            )?;
            Ok(updated)
        })
    }

    /// Dataverse delete.
    pub fn dv_delete(&mut self, table: &str, id: &str) -> SimResult<()> {
        self.transaction(Side::Dataverse, |dw| {
            let before = dw.dv.delete(dw.catalogue, table, id)?;
            dw.propagate(
                Side::Dataverse,
                Change {
                    table,
                    before: Some(before),
                    after: None,
                },
            )
        })
    }

    fn dv_write<T>(
        &mut self,
        caller: &str,
        f: impl FnOnce(&mut crate::dataverse::DvEnv, &mut WriteContext) -> SimResult<T>,
    ) -> SimResult<T> {
        let mut cx = WriteContext {
            catalogue: self.catalogue,
            ids: self.ids,
            now: self.clock.now(),
            caller: caller.to_string(),
            owner: None,
        };
        f(self.dv, &mut cx)
    }

    /// Maps whose state lets writes through, with their state.
    fn live_maps(&self, pick: impl Fn(&TableMap) -> bool) -> Vec<(TableMap, MapState)> {
        self.catalogue
            .maps
            .iter()
            .filter(|m| pick(m))
            .filter_map(|m| self.conn.maps.get(&m.id).map(|r| (m.clone(), r.state)))
            .filter(|(_, s)| matches!(s, MapState::Running | MapState::Paused | MapState::Resuming))
            .collect()
    }

    /// The partition of one connected company (none when the company has no cdm_company).
    fn company_partition(&self, map: &TableMap, code: &str) -> Option<Partition> {
        partitions(self.catalogue, Some(self.dv), map, &[code.to_uppercase()])
            .into_iter()
            .next()
    }

    /// The partition an F&O row belongs to, if its company is in the connection.
    fn fno_partition(&self, map: &TableMap, row: &Row) -> Option<Partition> {
        let company = if map.fno_entity == LEGAL_ENTITIES {
            value_text(row.get("LegalEntityId"))
        } else {
            value_text(row.get("dataAreaId"))
        };
        if !transform::is_company_specific(self.catalogue, map) && map.fno_entity != LEGAL_ENTITIES
        {
            return Some(Partition::Global);
        }
        if !self.conn.is_connected(&company)
            && !crate::mutants::active("company-membership-ignored")
        {
            return None;
        }
        self.company_partition(map, &company)
    }

    /// The partition a Dataverse row belongs to: its company must be in the connection.
    fn dv_partition(&self, map: &TableMap, row: &Row) -> Option<Partition> {
        let table = self.catalogue.dv_tables.get(&map.dv_table)?;
        let code = match table.company_attribute() {
            Some(attr) => self
                .dv
                .company_code(row.get(&attr).and_then(Value::as_str)?)?,
            None if map.fno_entity == LEGAL_ENTITIES => value_text(row.get("cdm_companycode")),
            None => return Some(Partition::Global),
        };
        if !self.conn.is_connected(&code) && !crate::mutants::active("company-membership-ignored") {
            return None;
        }
        self.company_partition(map, &code)
    }

    /// Dual-writes a change that started on `origin` through every live map of its table:
    /// a paused map queues it, a running one writes the counterpart in this transaction.
    /// A counterpart that fails fails the whole transaction with the error the originating
    /// caller sees.
    fn propagate(&mut self, origin: Side, change: Change) -> SimResult<()> {
        let catalogue = self.catalogue;
        let entity = match origin {
            Side::Fno => Some(fno_entity(catalogue, change.table)?),
            Side::Dataverse => None,
        };
        let on_table = |m: &TableMap| match origin {
            Side::Fno => m.fno_entity == change.table,
            Side::Dataverse => m.dv_table == change.table,
        };
        for (map, state) in self.live_maps(on_table) {
            let Some(sample) = change.after.as_ref().or(change.before.as_ref()) else {
                continue;
            };
            let partition = match origin {
                Side::Fno => self.fno_partition(&map, sample),
                Side::Dataverse => self.dv_partition(&map, sample),
            };
            let Some(partition) = partition else {
                continue;
            };
            if state == MapState::Paused {
                // A row outside the map's source filter is not the map's (a person customer
                // on the accounts map): live sync would write nothing for it, so nothing is
                // queued. Deletes queue as they are, as live sync deletes by key.
                let passes = change.after.as_ref().is_none_or(|r| match origin {
                    Side::Fno => transform::passes_fno_filter(&map, r),
                    Side::Dataverse => transform::passes_dv_filter(&map, r),
                });
                if !passes {
                    continue;
                }
                let row = match entity {
                    Some(entity) => crate::fno::row_id(entity, sample),
                    None => value_text(sample.get(&catalogue.dv_tables[&map.dv_table].primary_id)),
                };
                let bytes = serde_json::to_vec(sample).map_or(0, |b| b.len() as u64);
                self.enqueue(
                    origin,
                    QueuedChange {
                        map: map.id.clone(),
                        origin,
                        row,
                        company: partition.label(),
                        at: crate::clock::Instant::default(),
                        bytes,
                        deleted: change.after.is_none().then(|| sample.clone()),
                    },
                )?;
                continue;
            }
            // The limits a transaction is admitted under: F&O's records per transaction,
            // Dataverse's payload size (which counts as a map error).
            match (entity, change.after.as_ref()) {
                (Some(entity), _) => {
                    self.count_transaction_record(&map, entity.entity_class.as_str())?
                }
                (None, Some(after)) => {
                    if let Err(e) = self.check_payload(after) {
                        self.record_map_error(&map.id, &e);
                        return Err(e);
                    }
                }
                (None, None) => {}
            }
            self.charge_record(&map.dv_table);
            let (before, after) = (change.before.as_ref(), change.after.as_ref());
            let applied = match origin {
                Side::Fno => self.apply_to_dataverse(&map, &partition, before, after),
                Side::Dataverse => self.apply_to_fno(&map, &partition, before, after),
            };
            if let Err(detail) = applied {
                let error = match entity {
                    Some(entity) => fno_failure(&entity.entity_class, catalogue, &map, detail),
                    None => dv_failure(&map, detail),
                };
                self.record_map_error(&map.id, &error);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Writes the Dataverse counterpart of an F&O change.
    fn apply_to_dataverse(
        &mut self,
        map: &TableMap,
        partition: &Partition,
        before: Option<&Row>,
        after: Option<&Row>,
    ) -> Result<(), CounterpartError> {
        let key = after.or(before).map(|r| transform::fno_key(map, r));
        let passes = after.is_some_and(|r| transform::passes_fno_filter(map, r));
        let caller = self.writer();
        let owner = owner_team(self.dv, partition);
        let mut dest = ToDataverse {
            map,
            partition,
            dv: &mut *self.dv,
            cx: WriteContext {
                catalogue: self.catalogue,
                ids: &mut *self.ids,
                now: self.clock.now(),
                caller,
                owner,
            },
        };
        write_counterpart(&mut dest, self.faults, key, passes, before, after)
    }

    /// Writes the F&O counterpart of a Dataverse change.
    fn apply_to_fno(
        &mut self,
        map: &TableMap,
        partition: &Partition,
        before: Option<&Row>,
        after: Option<&Row>,
    ) -> Result<(), CounterpartError> {
        let entity = fno_entity(self.catalogue, &map.fno_entity)
            .map_err(|e| CounterpartError::Refused(e.message))?;
        let key = after.or(before).map(|r| transform::dv_key(map, r));
        let passes = after.is_some_and(|r| transform::passes_dv_filter(map, r));
        let mut dest = ToFno {
            catalogue: self.catalogue,
            map,
            entity,
            partition,
            dv: &*self.dv,
            fno: &mut *self.fno,
            now: self.clock.now(),
        };
        write_counterpart(&mut dest, self.faults, key, passes, before, after)
    }

    /// Replays the changes queued while `map` was paused, oldest first. A change that fails
    /// stays in the queue as a catch-up error.
    pub fn replay_queue(&mut self, map_id: &str) -> SimResult<usize> {
        let (mut mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.conn.queue)
            .into_iter()
            .partition(|q| q.map == map_id);
        self.conn.queue = rest;
        if crate::mutants::active("queue-replayed-in-reverse") {
            mine.reverse();
        }
        let catalogue = self.catalogue;
        let Some(map) = catalogue.map(map_id) else {
            return Ok(0);
        };
        let mut failed = Vec::new();
        let mut replayed = 0;
        for q in mine {
            let partitions = partitions(
                catalogue,
                Some(self.dv),
                map,
                std::slice::from_ref(&q.company),
            );
            let Some(partition) = partitions
                .first()
                .cloned()
                .or_else(|| (q.company == "global").then_some(Partition::Global))
            else {
                continue;
            };
            // The origin row as it is now; for a delete, the row as it was.
            let row = match q.origin {
                Side::Fno => self.fno.get(&map.fno_entity, &q.row).cloned(),
                Side::Dataverse => self.dv.get(&map.dv_table, &q.row).cloned(),
            };
            let before = if row.is_none() {
                q.deleted.clone()
            } else {
                None
            };
            let result = self.transaction(q.origin, |dw| {
                let applied = match q.origin {
                    Side::Fno => {
                        dw.apply_to_dataverse(map, &partition, before.as_ref(), row.as_ref())
                    }
                    Side::Dataverse => {
                        dw.apply_to_fno(map, &partition, before.as_ref(), row.as_ref())
                    }
                };
                applied.map_err(|e| SimError::bad_request(e.to_string()))
            });
            match result {
                Ok(()) => replayed += 1,
                Err(_) => failed.push(q),
            }
        }
        self.conn.catch_up_errors.extend(failed);
        Ok(replayed)
    }

    /// Counts one record of the open F&O transaction; over the limit, the transaction fails.
    fn count_transaction_record(&mut self, map: &TableMap, entity_class: &str) -> SimResult<()> {
        let Some(count) = self.in_flight.records.as_mut() else {
            return Ok(());
        };
        *count += 1;
        let limit = self.settings.records_per_transaction;
        if *count > limit {
            return Err(fno_failure(
                entity_class,
                self.catalogue,
                map,
                CounterpartError::Refused(format!("the transaction has more than {limit} records; dual-write sends at most {limit} records per transaction.")),
            ));
        }
        Ok(())
    }
}

/// Whether a failed transaction keeps `store`'s writes: only in the deliberately broken
/// runtime of the `broken-rollback` feature, which keeps the originating write so that the
/// model-based test has a real atomicity bug to find.
fn keep_on_failure(origin: Side, store: Side) -> bool {
    cfg!(feature = "broken-rollback") && origin == store
}

pub(crate) fn fno_entity<'c>(
    catalogue: &'c crate::catalogue::Catalogue,
    entity_set: &str,
) -> SimResult<&'c crate::schema::FnoEntity> {
    catalogue
        .fno_entities
        .get(entity_set)
        .ok_or_else(|| SimError::not_found(format!("Entity set {entity_set} does not exist.")))
}

/// What an F&O caller sees when the Dataverse side of its write fails.
fn fno_failure(
    entity_class: &str,
    catalogue: &crate::catalogue::Catalogue,
    map: &TableMap,
    detail: CounterpartError,
) -> SimError {
    let dv_set = catalogue
        .dv_tables
        .get(&map.dv_table)
        .map_or(map.dv_table.as_str(), |t| t.entity_set.as_str());
    SimError::new(
        ErrorKind::WriteFailed,
        "",
        format!(
            "Write failed for table row of type '{entity_class}'. Infolog: Error: Cannot save the changes to the database. Unit of Work can not commit transaction. Unable to write data to entity {dv_set}. Writes to {entity_class} failed with error message {detail}"
        ),
    )
}

/// What a Dataverse caller sees when the F&O side of its write fails (the dual-write
/// runtime plug-in throws).
fn dv_failure(map: &TableMap, detail: CounterpartError) -> SimError {
    SimError::new(
        ErrorKind::BadRequest,
        "0x80040265",
        format!(
            "Unexpected exception from plug-in (Execute): Microsoft.Dynamics.Integrator.DualWriteRuntime.Plugins.PostCommitPlugin: System.Exception: failed to process entity {} - (Unable to write data to entity {}. {detail})",
            map.dv_table, map.fno_entity
        ),
    )
}

/// Why a counterpart could not be written, in the words that go into the originating
/// caller's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CounterpartError {
    /// The change carried neither the row before nor after it.
    #[error("")]
    NoRow,
    /// A lookup of the projected row found no target.
    #[error("Unable to lookup {entity_set} with values {{{value}}}.")]
    Lookup { entity_set: String, value: String },
    /// The destination refused the write, as its own error reads there.
    #[error("{0}")]
    Refused(String),
}

/// The side a live change's counterpart is written to, and how writing there goes.
trait Destination {
    /// The side, and the names its tables go by, for the fault plan.
    fn side(&self) -> Side;
    fn names(&self) -> [&str; 2];
    /// The destination row with this integration key in the partition (filter or not, as
    /// an upsert finds it).
    fn find(&self, key: &[String]) -> Option<String>;
    /// A source row as the destination's fields.
    fn project(&self, row: &Row, creating: bool) -> Result<Row, CounterpartError>;
    /// Whether a source change touches a field the map writes here, before transforms.
    fn source_changed(&self, before: &Row, after: &Row) -> bool;
    fn current(&self, id: &str) -> Row;
    fn create(&mut self, attrs: Row) -> SimResult<()>;
    fn update(&mut self, id: &str, patch: Row) -> SimResult<()>;
    fn delete(&mut self, id: &str) -> SimResult<()>;
    /// How a failed create or update reads inside the originating caller's error.
    fn describe(&self, e: SimError) -> CounterpartError;
}

/// Writes the counterpart of one change: creates or patches it when the changed row
/// passes the source filter and a mapped field changed, deletes it when the row was
/// deleted. Each real write may be failed by the fault plan first.
fn write_counterpart(
    dest: &mut impl Destination,
    faults: &mut crate::faults::FaultPlan,
    key: Option<Option<Vec<String>>>,
    passes_filter: bool,
    before: Option<&Row>,
    after: Option<&Row>,
) -> Result<(), CounterpartError> {
    let Some(key) = key.ok_or(CounterpartError::NoRow)? else {
        return Ok(());
    };
    let target = dest.find(&key);
    let (side, names) = (dest.side(), dest.names());
    match after {
        Some(row) if passes_filter => {
            if let (Some(b), Some(_)) = (before, &target) {
                let unchanged = match (dest.project(b, false), dest.project(row, false)) {
                    (Ok(b), Ok(a)) => b == a,
                    // A lookup finds nothing (the same failure on both sides is no sign that
                    // nothing changed): read the mapped fields from the rows themselves.
                    _ => !dest.source_changed(b, row),
                };
                if unchanged {
                    return Ok(()); // no mapped field changed: the change does not trigger
                }
            }
            let attrs = dest.project(row, target.is_none())?;
            let written = match &target {
                None => faults.check(side, &names).and_then(|()| dest.create(attrs)),
                Some(id) => {
                    let patch = transform::changed(&attrs, &dest.current(id));
                    if patch.is_empty() {
                        Ok(())
                    } else {
                        faults
                            .check(side, &names)
                            .and_then(|()| dest.update(id, patch))
                    }
                }
            };
            written.map_err(|e| dest.describe(e))
        }
        Some(_) => Ok(()),
        None => {
            if let Some(id) = target {
                faults
                    .check(side, &names)
                    .and_then(|()| dest.delete(&id))
                    .map_err(|e| CounterpartError::Refused(e.message))?;
            }
            Ok(())
        }
    }
}

/// Dataverse, written as the dual-write runtime user, owned by the company's team.
struct ToDataverse<'a> {
    map: &'a TableMap,
    partition: &'a Partition,
    dv: &'a mut crate::dataverse::DvEnv,
    cx: WriteContext<'a>,
}

impl Destination for ToDataverse<'_> {
    fn side(&self) -> Side {
        Side::Dataverse
    }
    fn names(&self) -> [&str; 2] {
        let set = self
            .cx
            .catalogue
            .dv_tables
            .get(&self.map.dv_table)
            .map_or("", |t| t.entity_set.as_str());
        [self.map.dv_table.as_str(), set]
    }
    fn find(&self, key: &[String]) -> Option<String> {
        transform::find_dv(self.cx.catalogue, self.map, self.dv, self.partition, key)
    }
    fn project(&self, row: &Row, creating: bool) -> Result<Row, CounterpartError> {
        let (catalogue, map) = (self.cx.catalogue, self.map);
        transform::to_dataverse(
            catalogue,
            map,
            self.dv,
            row,
            self.partition,
            creating,
            false,
        )
        .map_err(|f| CounterpartError::Lookup {
            entity_set: f.entity_set,
            value: f.value,
        })
    }
    fn source_changed(&self, before: &Row, after: &Row) -> bool {
        transform::source_changed(self.map, true, before, after)
    }
    fn current(&self, id: &str) -> Row {
        self.dv
            .get(&self.map.dv_table, id)
            .cloned()
            .unwrap_or_default()
    }
    fn create(&mut self, attrs: Row) -> SimResult<()> {
        self.dv
            .insert(&mut self.cx, &self.map.dv_table, attrs)
            .map(|_| ())
    }
    fn update(&mut self, id: &str, patch: Row) -> SimResult<()> {
        self.dv
            .update(&mut self.cx, &self.map.dv_table, id, patch)
            .map(|_| ())
    }
    fn delete(&mut self, id: &str) -> SimResult<()> {
        self.dv
            .delete(self.cx.catalogue, &self.map.dv_table, id)
            .map(|_| ())
    }
    fn describe(&self, e: SimError) -> CounterpartError {
        let status = if matches!(e.kind, ErrorKind::Throttled(_)) {
            "TooManyRequests"
        } else {
            "BadRequest"
        };
        CounterpartError::Refused(format!(
            "Request failed with status code {status} and CDS error code : {} response message: {}",
            e.code, e.message
        ))
    }
}

/// F&O, through the entity's own validations.
struct ToFno<'a> {
    catalogue: &'a crate::catalogue::Catalogue,
    map: &'a TableMap,
    entity: &'a crate::schema::FnoEntity,
    partition: &'a Partition,
    dv: &'a crate::dataverse::DvEnv,
    fno: &'a mut crate::fno::FnoEnv,
    now: crate::clock::Instant,
}

impl Destination for ToFno<'_> {
    fn side(&self) -> Side {
        Side::Fno
    }
    fn names(&self) -> [&str; 2] {
        [
            self.map.fno_entity.as_str(),
            self.entity.entity_class.as_str(),
        ]
    }
    fn find(&self, key: &[String]) -> Option<String> {
        transform::find_fno(self.map, self.fno, self.partition, key)
    }
    fn project(&self, row: &Row, creating: bool) -> Result<Row, CounterpartError> {
        let (catalogue, map) = (self.catalogue, self.map);
        Ok(transform::to_fno(
            catalogue,
            map,
            self.dv,
            row,
            self.partition,
            creating,
            false,
        ))
    }
    fn source_changed(&self, before: &Row, after: &Row) -> bool {
        transform::source_changed(self.map, false, before, after)
    }
    fn current(&self, id: &str) -> Row {
        self.fno
            .get(&self.map.fno_entity, id)
            .cloned()
            .unwrap_or_default()
    }
    fn create(&mut self, attrs: Row) -> SimResult<()> {
        self.fno
            .insert(self.catalogue, self.entity, attrs, self.now)
            .map(|_| ())
    }
    fn update(&mut self, id: &str, patch: Row) -> SimResult<()> {
        self.fno
            .update(self.catalogue, self.entity, id, &patch, self.now)
            .map(|_| ())
    }
    fn delete(&mut self, id: &str) -> SimResult<()> {
        self.fno.delete(self.entity, id).map(|_| ())
    }
    fn describe(&self, e: SimError) -> CounterpartError {
        CounterpartError::Refused(e.message)
    }
}
