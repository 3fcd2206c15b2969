//! Model-based testing of live sync for one company-specific map family: F&O
//! `CustomerGroups` ↔ Dataverse `msdyn_customergroups`. A small reference model of both
//! sides (rows, the map's state, the pause queue, injected faults) predicts what each
//! operation answers and leaves behind; [`run_case`] drives the real servers through their
//! HTTP surface and compares after every step. `tests/model_based.rs` generates and shrinks
//! operation sequences; `dwsim replay` re-runs a failure's bundle through the same code.
//!
//! The model is written from the documented behaviour (live sync is one transaction across
//! both sides, paused maps queue and replay in order, initial sync merges by key with the
//! master deciding conflicts) and from the runtime's recorded choices (docs/choices.md),
//! never from the runtime's code.

use crate::client::Client;
use crate::invariants;
use crate::transport::{Http, InProcess, Reply, Transport};
use anyhow::{anyhow, bail, Context, Result};
use dwsim_model::dualwrite::Side;
use dwsim_model::faults::{Fault, FaultKind, FaultPlan};
use dwsim_model::world::{EXISTING_DATAVERSE, EXISTING_FNO};
use dwsim_model::{Catalogue, Start, WorldSpec};
use dwsim_protocol::{Endpoints, Server, Sim};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The map under test and the maps the setup runs (upstream first).
pub const MAP: &str = "customergroups";
/// Every map the setup runs, upstream first.
pub const MAPS: [&str; 6] = [
    "legalentities-companies",
    "currencies",
    "paymentterms",
    "customergroups",
    "customersv3-accounts",
    "customersv3-contacts",
];
/// Companies the operations write in (both connected by the setup).
pub const COMPANIES: [&str; 2] = ["USMF", "DEMF"];
/// Customer group ids the operations use. The seeded data has none of them, so customers
/// never reference them and deletes are always allowed.
pub const GROUPS: [&str; 3] = ["MB1", "MB2", "MB3"];
/// Descriptions the operations write.
pub const DESCRIPTIONS: [&str; 3] = ["Alpha", "Beta", "Gamma"];

const FNO_NAMES: [&str; 2] = ["CustomerGroups", "CustCustomerGroupEntity"];
const DV_NAMES: [&str; 2] = ["msdyn_customergroup", "msdyn_customergroups"];

/// One step of a case, as generated, shrunk, stored in a bundle and replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Op {
    /// An OData create of a customer group in F&O.
    FnoCreate {
        /// The legal entity (upper case).
        company: String,
        /// The customer group id.
        group: String,
        /// The description written.
        description: String,
    },
    /// An OData update of a customer group's description in F&O.
    FnoUpdate {
        /// The legal entity (upper case).
        company: String,
        /// The customer group id.
        group: String,
        /// The description written.
        description: String,
    },
    /// An OData delete of a customer group in F&O.
    FnoDelete {
        /// The legal entity (upper case).
        company: String,
        /// The customer group id.
        group: String,
    },
    /// A Web API create of a customer group in Dataverse, bound to its company.
    DvCreate {
        /// The company code.
        company: String,
        /// The customer group id.
        group: String,
        /// The description written.
        description: String,
    },
    /// A Web API update of a customer group's description in Dataverse.
    DvUpdate {
        /// The company code.
        company: String,
        /// The customer group id.
        group: String,
        /// The description written.
        description: String,
    },
    /// A Web API delete of a customer group in Dataverse.
    DvDelete {
        /// The company code.
        company: String,
        /// The customer group id.
        group: String,
    },
    /// `pauseMap` on the map under test.
    Pause,
    /// `resumeMap` on the map under test.
    Resume,
    /// `stopMap` on the map under test.
    Stop,
    /// `runMaps` with initial sync (a paused map resumes instead).
    Run {
        /// The side that wins conflicts.
        master: Side,
    },
    /// Adds a fault to the plan through `PUT /_dwsim/faults`.
    InjectFault {
        /// The side whose writes fail.
        side: Side,
        /// The table the fault is limited to, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<String>,
        /// How many writes fail.
        count: u32,
        /// How they fail.
        kind: FaultKind,
    },
    /// Moves the virtual clock on (`POST /_dwsim/clock`).
    AdvanceClock {
        /// Minutes to advance.
        minutes: i64,
    },
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Fno => "F&O",
        Side::Dataverse => "Dataverse",
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Op::FnoCreate {
                company,
                group,
                description,
            } => write!(
                f,
                "create group {group} ({description}) in {company} on F&O"
            ),
            Op::FnoUpdate {
                company,
                group,
                description,
            } => write!(
                f,
                "update group {group} to {description} in {company} on F&O"
            ),
            Op::FnoDelete { company, group } => {
                write!(f, "delete group {group} in {company} on F&O")
            }
            Op::DvCreate {
                company,
                group,
                description,
            } => write!(
                f,
                "create group {group} ({description}) in {company} on Dataverse"
            ),
            Op::DvUpdate {
                company,
                group,
                description,
            } => write!(
                f,
                "update group {group} to {description} in {company} on Dataverse"
            ),
            Op::DvDelete { company, group } => {
                write!(f, "delete group {group} in {company} on Dataverse")
            }
            Op::Pause => write!(f, "pause {MAP}"),
            Op::Resume => write!(f, "resume {MAP}"),
            Op::Stop => write!(f, "stop {MAP}"),
            Op::Run { master } => write!(
                f,
                "run {MAP} with initial sync, {} master",
                side_name(*master)
            ),
            Op::InjectFault {
                side,
                table,
                count,
                kind,
            } => write!(
                f,
                "inject {} fault {kind:?} x{count}{}",
                side_name(*side),
                table
                    .as_ref()
                    .map(|t| format!(" on {t}"))
                    .unwrap_or_default()
            ),
            Op::AdvanceClock { minutes } => write!(f, "advance the clock {minutes} min"),
        }
    }
}

/// The map states the model tracks (Initializing and Resuming never outlive a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MapState {
    /// Changes flow both ways.
    Running,
    /// Changes queue until the map resumes.
    Paused,
    /// Stopped: changes do not flow.
    NotRunning,
}

impl MapState {
    fn text(self) -> &'static str {
        match self {
            MapState::Running => "Running",
            MapState::Paused => "Paused",
            MapState::NotRunning => "Not running",
        }
    }
}

/// A change queued while the map was paused: the origin row, by F&O key or by the
/// identity of the Dataverse row (a recreated Dataverse row is another row).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Queued {
    Fno(Key),
    Dv(u64),
}

type Key = (String, String);

#[derive(Debug, Clone, PartialEq, Eq)]
struct DvRow {
    /// Stands for the row's GUID.
    rid: u64,
    description: String,
}

/// The reference model: customer groups of the pool on both sides, and the runtime state
/// that decides what a write does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The world seed the case runs on.
    pub seed: u64,
    fno: BTreeMap<Key, String>,
    dv: BTreeMap<Key, DvRow>,
    next_rid: u64,
    map: MapState,
    queue: Vec<Queued>,
    catch_up_errors: usize,
    faults: Vec<Fault>,
    connected: BTreeSet<String>,
}

/// Why a counterpart write failed (the fault that fired).
struct Failed;

impl Model {
    /// The state after setup: every legal entity connected, every map running, none of the
    /// pool's groups on either side.
    pub fn new(seed: u64) -> Model {
        Model {
            seed,
            fno: BTreeMap::new(),
            dv: BTreeMap::new(),
            next_rid: 0,
            map: MapState::Running,
            queue: Vec::new(),
            catch_up_errors: 0,
            faults: Vec::new(),
            connected: ["DAT", "DEMF", "USMF", "USRT"]
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    /// The state of the map under test.
    pub fn map_state(&self) -> MapState {
        self.map
    }

    /// Dataverse groups of the pool, for choosing update and delete targets.
    pub fn dv_keys(&self) -> Vec<(String, String)> {
        self.dv.keys().cloned().collect()
    }

    /// Whether `op` may be generated here. Dataverse updates and deletes need the row (they
    /// address it by id); no deletes while paused: the runtime queues a delete by the row's
    /// id, and by replay time the row is gone, so the delete never reaches the other side
    /// and the map diverges (a documented gap: the docs only say creates and updates queue).
    pub fn allows(&self, op: &Op) -> bool {
        match op {
            Op::DvUpdate { company, group, .. } => {
                self.dv.contains_key(&(company.clone(), group.clone()))
            }
            Op::DvDelete { company, group } => {
                self.map != MapState::Paused
                    && self.dv.contains_key(&(company.clone(), group.clone()))
            }
            Op::FnoDelete { .. } => self.map != MapState::Paused,
            Op::InjectFault {
                side, kind, count, ..
            } => *count > 0 && kind.side() == *side,
            _ => true,
        }
    }

    /// Applies `op` and answers the HTTP status its (last) request should get.
    pub fn apply(&mut self, op: &Op) -> u16 {
        match op {
            Op::FnoCreate {
                company,
                group,
                description,
            } => {
                let key = (company.clone(), group.clone());
                if self.fno.contains_key(&key) {
                    return 500; // "Cannot create a record … The record already exists."
                }
                self.fno_write(key, Some(description.clone()), 201)
            }
            Op::FnoUpdate {
                company,
                group,
                description,
            } => {
                let key = (company.clone(), group.clone());
                if !self.fno.contains_key(&key) {
                    return 404;
                }
                self.fno_write(key, Some(description.clone()), 204)
            }
            Op::FnoDelete { company, group } => {
                let key = (company.clone(), group.clone());
                if !self.fno.contains_key(&key) {
                    return 404;
                }
                self.fno_write(key, None, 204)
            }
            Op::DvCreate {
                company,
                group,
                description,
            } => {
                let key = (company.clone(), group.clone());
                if self.dv.contains_key(&key) {
                    return 412; // the alternate key (msdyn_groupid, company) is taken
                }
                self.dv_write(key, Some(description.clone()))
            }
            Op::DvUpdate {
                company,
                group,
                description,
            } => self.dv_write((company.clone(), group.clone()), Some(description.clone())),
            Op::DvDelete { company, group } => {
                self.dv_write((company.clone(), group.clone()), None)
            }
            Op::Pause | Op::Stop | Op::Resume | Op::Run { .. } => self.apply_map_action(op),
            Op::InjectFault {
                side,
                table,
                count,
                kind,
            } => {
                self.faults.push(Fault {
                    side: *side,
                    table: table.clone(),
                    count: *count,
                    kind: *kind,
                    message: None,
                });
                200
            }
            Op::AdvanceClock { .. } => 200,
        }
    }

    /// The map's life-cycle actions, as the dual-write service answers them in each state.
    fn apply_map_action(&mut self, op: &Op) -> u16 {
        match op {
            Op::Pause => self.transition(MapState::Running, MapState::Paused),
            Op::Stop => {
                if self.map == MapState::NotRunning {
                    return 500;
                }
                // The queue stays: a later resume replays it (docs/choices.md is silent).
                self.map = MapState::NotRunning;
                200
            }
            Op::Resume => {
                if self.map != MapState::Paused {
                    return 500;
                }
                self.resume();
                200
            }
            Op::Run { master } => match self.map {
                MapState::Running => 500,
                MapState::Paused => {
                    self.resume();
                    200
                }
                MapState::NotRunning => {
                    self.initial_sync(*master);
                    self.map = MapState::Running;
                    200
                }
            },
            other => unreachable!("not a map action: {other:?}"),
        }
    }

    fn transition(&mut self, from: MapState, to: MapState) -> u16 {
        if self.map != from {
            return 500; // the dual-write service refuses the action in this state
        }
        self.map = to;
        200
    }

    fn syncs(&self, company: &str) -> bool {
        self.connected.contains(company)
    }

    /// An F&O write and its dual-write, as one transaction.
    fn fno_write(&mut self, key: Key, after: Option<String>, ok: u16) -> u16 {
        let before = self.fno.get(&key).cloned();
        if self.syncs(&key.0) {
            match self.map {
                MapState::Running => {
                    if self
                        .write_dv(&key, before.as_deref(), after.as_deref())
                        .is_err()
                    {
                        return 500; // Infolog: "Unable to write data to entity …"
                    }
                }
                MapState::Paused => self.queue.push(Queued::Fno(key.clone())),
                MapState::NotRunning => {}
            }
        }
        match after {
            Some(d) => self.fno.insert(key, d),
            None => self.fno.remove(&key),
        };
        ok
    }

    /// A Dataverse write and its dual-write, as one transaction.
    fn dv_write(&mut self, key: Key, after: Option<String>) -> u16 {
        let before = self.dv.get(&key).map(|r| r.description.clone());
        let rid = match self.dv.get(&key) {
            Some(r) => r.rid,
            None => self.new_rid(),
        };
        if self.syncs(&key.0) {
            match self.map {
                MapState::Running => {
                    if self
                        .write_fno(&key, before.as_deref(), after.as_deref())
                        .is_err()
                    {
                        return 400; // 0x80040265 from the dual-write plug-in
                    }
                }
                MapState::Paused => self.queue.push(Queued::Dv(rid)),
                MapState::NotRunning => {}
            }
        }
        match after {
            Some(description) => self.dv.insert(key, DvRow { rid, description }),
            None => self.dv.remove(&key),
        };
        204
    }

    fn new_rid(&mut self) -> u64 {
        self.next_rid += 1;
        self.next_rid
    }

    /// The first planned fault for this side and table fires and counts down.
    fn fault(&mut self, side: Side) -> Result<(), Failed> {
        let names: &[&str] = if side == Side::Fno {
            &FNO_NAMES
        } else {
            &DV_NAMES
        };
        let hit = self.faults.iter().position(|f| {
            f.side == side
                && f.table
                    .as_ref()
                    .is_none_or(|t| names.iter().any(|n| n.eq_ignore_ascii_case(t)))
        });
        let Some(i) = hit else { return Ok(()) };
        self.faults[i].count -= 1;
        if self.faults[i].count == 0 {
            self.faults.remove(i);
        }
        Err(Failed)
    }

    /// Dual-writes an F&O change to Dataverse: upsert by key, or delete. A change of no
    /// mapped field, or one that finds the counterpart already equal, writes nothing.
    fn write_dv(
        &mut self,
        key: &Key,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<(), Failed> {
        let target = self.dv.get(key).map(|r| r.description.clone());
        match after {
            Some(d) => {
                if target.is_some() && before == Some(d) {
                    return Ok(());
                }
                if target.as_deref() == Some(d) {
                    return Ok(());
                }
                self.fault(Side::Dataverse)?;
                let rid = match self.dv.get(key) {
                    Some(r) => r.rid,
                    None => self.new_rid(),
                };
                self.dv.insert(
                    key.clone(),
                    DvRow {
                        rid,
                        description: d.to_string(),
                    },
                );
            }
            None => {
                if target.is_some() {
                    self.fault(Side::Dataverse)?;
                    self.dv.remove(key);
                }
            }
        }
        Ok(())
    }

    /// Dual-writes a Dataverse change to F&O.
    fn write_fno(
        &mut self,
        key: &Key,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<(), Failed> {
        let target = self.fno.get(key).cloned();
        match after {
            Some(d) => {
                if target.is_some() && before == Some(d) {
                    return Ok(());
                }
                if target.as_deref() == Some(d) {
                    return Ok(());
                }
                self.fault(Side::Fno)?;
                self.fno.insert(key.clone(), d.to_string());
            }
            None => {
                if target.is_some() {
                    self.fault(Side::Fno)?;
                    self.fno.remove(key);
                }
            }
        }
        Ok(())
    }

    /// Paused → Running: the queue replays in order, each change reading its origin row as
    /// it is now; a change whose row is gone, or whose write fails, is a catch-up error.
    fn resume(&mut self) {
        for q in std::mem::take(&mut self.queue) {
            let ok = match q {
                Queued::Fno(key) => match self.fno.get(&key).cloned() {
                    Some(d) => self.write_dv(&key, None, Some(&d)).is_ok(),
                    None => false,
                },
                Queued::Dv(rid) => {
                    let row = self
                        .dv
                        .iter()
                        .find(|(_, r)| r.rid == rid)
                        .map(|(k, r)| (k.clone(), r.description.clone()));
                    match row {
                        Some((key, d)) => self.write_fno(&key, None, Some(&d)).is_ok(),
                        None => false,
                    }
                }
            };
            if !ok {
                self.catch_up_errors += 1;
            }
        }
        self.map = MapState::Running;
    }

    /// Initial sync: rows on one side only are copied over; rows on both with different
    /// values take the master's. Injected faults do not apply (they are for live sync).
    fn initial_sync(&mut self, master: Side) {
        let keys: BTreeSet<Key> = self
            .fno
            .keys()
            .chain(self.dv.keys())
            .filter(|k| self.connected.contains(&k.0))
            .cloned()
            .collect();
        for key in keys {
            let f = self.fno.get(&key).cloned();
            let d = self.dv.get(&key).map(|r| r.description.clone());
            match (f, d) {
                (Some(f), None) => {
                    let rid = self.new_rid();
                    self.dv.insert(
                        key,
                        DvRow {
                            rid,
                            description: f,
                        },
                    );
                }
                (None, Some(d)) => {
                    self.fno.insert(key, d);
                }
                (Some(f), Some(d)) if f != d => match master {
                    Side::Dataverse => {
                        self.fno.insert(key, d);
                    }
                    Side::Fno => {
                        if let Some(r) = self.dv.get_mut(&key) {
                            r.description = f;
                        }
                    }
                },
                _ => {}
            }
        }
    }

    /// What the servers should show now.
    pub fn view(&self) -> View {
        let rows = |it: Vec<(&Key, &String)>| -> Vec<GroupRow> {
            it.into_iter()
                .map(|((c, g), d)| GroupRow {
                    company: c.clone(),
                    group: g.clone(),
                    description: d.clone(),
                })
                .collect()
        };
        View {
            fno: rows(self.fno.iter().collect()),
            dataverse: rows(self.dv.iter().map(|(k, r)| (k, &r.description)).collect()),
            maps: MAPS
                .iter()
                .map(|m| {
                    let state = if *m == MAP {
                        self.map
                    } else {
                        MapState::Running
                    };
                    (m.to_string(), state.text().to_string())
                })
                .collect(),
            queued: self.queue.len(),
            catch_up_errors: self.catch_up_errors,
            faults: FaultPlan {
                faults: self.faults.clone(),
            },
        }
    }
}

/// A customer group as both sides show it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupRow {
    /// The company code (upper case).
    pub company: String,
    /// The customer group id.
    pub group: String,
    /// The description.
    pub description: String,
}

/// The observable state the model predicts: the pool's groups on both sides (sorted), the
/// maps' states, the customer-groups queue and catch-up errors, and the fault plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The pool's groups in F&O.
    pub fno: Vec<GroupRow>,
    /// The pool's groups in Dataverse.
    pub dataverse: Vec<GroupRow>,
    /// Each published map's state.
    pub maps: BTreeMap<String, String>,
    /// Changes queued on the map under test.
    pub queued: usize,
    /// Catch-up errors on the map under test.
    pub catch_up_errors: usize,
    /// The fault plan left.
    pub faults: FaultPlan,
}

impl View {
    /// The parts that differ, observed against predicted.
    pub fn differences(&self, predicted: &View) -> Vec<String> {
        let mut out = Vec::new();
        let mut part = |name: &str, got: String, want: String| {
            if got != want {
                out.push(format!("{name}: servers {got}, model {want}"));
            }
        };
        let rows = |r: &[GroupRow]| {
            r.iter()
                .map(|g| format!("{}/{}={}", g.company, g.group, g.description))
                .collect::<Vec<_>>()
                .join(", ")
        };
        part(
            "F&O groups",
            format!("[{}]", rows(&self.fno)),
            format!("[{}]", rows(&predicted.fno)),
        );
        part(
            "Dataverse groups",
            format!("[{}]", rows(&self.dataverse)),
            format!("[{}]", rows(&predicted.dataverse)),
        );
        part(
            "maps",
            format!("{:?}", self.maps),
            format!("{:?}", predicted.maps),
        );
        part(
            "queued",
            self.queued.to_string(),
            predicted.queued.to_string(),
        );
        part(
            "catch-up errors",
            self.catch_up_errors.to_string(),
            predicted.catch_up_errors.to_string(),
        );
        part(
            "faults",
            json!(self.faults).to_string(),
            json!(predicted.faults).to_string(),
        );
        out
    }
}

/// One HTTP exchange of an operation, with short bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// The operation's index in the case.
    pub step: usize,
    /// `METHOD product /path?query`, without the server's base URL.
    pub request: String,
    /// The request body, shortened.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_body: String,
    /// The HTTP status.
    pub status: u16,
    /// The response body, shortened.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response_body: String,
}

const SHORT: usize = 300;

fn short(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(SHORT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.into_owned(),
    }
}

/// Records the exchanges of the current step; setup, observation and sign-in are not steps.
struct Recorder<'t> {
    inner: &'t dyn Transport,
    endpoints: Endpoints,
    step: Cell<Option<usize>>,
    log: RefCell<Vec<Exchange>>,
}

impl Recorder<'_> {
    /// A short body with the servers' origins (ports differ per run over HTTP) replaced
    /// by `<entra>`, `<lcs>`, `<fno:env>`, `<dataverse:org>`, so transcripts compare across
    /// runs and transports.
    fn portable(&self, body: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(body).into_owned();
        let fixed = [
            (Server::Entra, self.endpoints.entra.clone()),
            (Server::Lcs, self.endpoints.lcs.clone()),
        ];
        for (server, origin) in fixed.into_iter().chain(self.endpoints.environments()) {
            text = text.replace(&origin, &format!("<{}>", server.label()));
        }
        short(text.as_bytes())
    }
}

impl Transport for Recorder<'_> {
    fn endpoints(&self) -> Endpoints {
        self.endpoints.clone()
    }

    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply> {
        let reply = self.inner.send(method, url, headers, body)?;
        if let Some(step) = self.step.get() {
            if !url.contains("/oauth2/") {
                let request = match self.endpoints.route(url) {
                    Some((server, rest)) => format!("{method} {} {rest}", server.label()),
                    None => format!("{method} {url}"),
                };
                self.log.borrow_mut().push(Exchange {
                    step,
                    request,
                    request_body: self.portable(body),
                    status: reply.status,
                    response_body: self.portable(&reply.body),
                });
            }
        }
        Ok(reply)
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// Which transport a case runs over: in-process by default, `DWSIM_MB_TRANSPORT=http`
/// for the real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Carrier {
    /// Straight into the routers.
    InProcess,
    /// Over the real servers.
    Http,
}

impl Carrier {
    /// The carrier `DWSIM_MB_TRANSPORT` names (in-process unless `http`).
    pub fn from_env() -> Carrier {
        match std::env::var("DWSIM_MB_TRANSPORT").as_deref() {
            Ok("http") => Carrier::Http,
            _ => Carrier::InProcess,
        }
    }
}

/// What one case did.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    /// The first divergence from the model, or a broken invariant, with the step.
    pub failure: Option<String>,
    /// The index of the step that diverged.
    pub failed_step: Option<usize>,
    /// Every exchange of the case's steps.
    pub transcript: Vec<Exchange>,
    /// The servers' state at the end, if it could be read.
    pub observed: Option<View>,
    /// The model's state at the end.
    pub predicted: View,
}

struct Rig<'c> {
    client: Client<'c>,
    env: String,
    org: String,
    /// cdm_companyid → company code.
    companies: BTreeMap<String, String>,
}

/// Builds the world of `seed` with both environments existing, then sets dual-write up as
/// a customer would (app users, link every legal entity, run the maps with initial sync),
/// runs `ops` against it and checks the model after each. `seen` counts applied steps, for
/// proptest's shrinking.
pub fn run_case(
    seed: u64,
    ops: &[Op],
    carrier: Carrier,
    seen: Option<&AtomicUsize>,
) -> Result<CaseOutcome> {
    let data = Catalogue::shared()
        .map_err(|e| anyhow!("{e}"))?
        .demo
        .clone();
    let sim = Sim::new(WorldSpec {
        seed,
        fno: Start::Existing,
        dataverse: Start::Existing,
        data,
        clock_start_ms: 0,
    })
    .map_err(|e| anyhow!("building the starting world: {e}"))?;
    let http;
    let in_process;
    let inner: &dyn Transport = match carrier {
        Carrier::Http => {
            http = Http::https(sim)?;
            &http
        }
        Carrier::InProcess => {
            in_process = InProcess { sim };
            &in_process
        }
    };
    let recorder = Recorder {
        inner,
        endpoints: inner.endpoints(),
        step: Cell::new(None),
        log: RefCell::new(Vec::new()),
    };
    let client = Client::connect(&recorder)?;
    let rig = setup(client).context("setting dual-write up")?;
    let mut model = Model::new(seed);
    let mut outcome = CaseOutcome {
        failure: None,
        failed_step: None,
        transcript: Vec::new(),
        observed: None,
        predicted: model.view(),
    };
    for (i, op) in ops.iter().enumerate() {
        if let Some(seen) = seen {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        if !model.allows(op) {
            outcome.failure = Some(format!("step {i} ({op}) is not allowed by the model here"));
            outcome.failed_step = Some(i);
            break;
        }
        let want = model.apply(op);
        recorder.step.set(Some(i));
        let got = execute(&rig, op);
        recorder.step.set(None);
        let got = got.with_context(|| format!("step {i} ({op})"))?;
        let observed = observe(&rig)?;
        let predicted = model.view();
        let mut problems = Vec::new();
        if got != want {
            problems.push(format!("HTTP {got}, the model expects {want}"));
        }
        problems.extend(observed.differences(&predicted));
        let world = rig.client.export()?;
        // A change that failed its catch-up stays diverged until retried (documented), so
        // convergence holds only while there are none; the rows are compared above anyway.
        if predicted.catch_up_errors == 0 {
            if let Err(e) = invariants::convergence(&world) {
                problems.push(format!("convergence: {e}"));
            }
        }
        if let Err(e) = invariants::company_integrity(&world) {
            problems.push(format!("company integrity: {e}"));
        }
        outcome.observed = Some(observed);
        outcome.predicted = predicted;
        if !problems.is_empty() {
            outcome.failure = Some(format!("step {i} ({op}): {}", problems.join("; ")));
            outcome.failed_step = Some(i);
            break;
        }
    }
    outcome.transcript = recorder.log.take();
    Ok(outcome)
}

fn setup(client: Client) -> Result<Rig> {
    let env = EXISTING_FNO.to_string();
    let org = EXISTING_DATAVERSE.to_string();
    let c = &client;
    // Prerequisite 4: the dual-write application users in the existing Dataverse.
    crate::runner::create_app_users(c, &org)?;
    let les = c.dual_write(
        &env,
        "DualWriteLegalEntityService",
        "getLegalEntities",
        json!({}),
    )?["companies"]
        .clone();
    c.dual_write(
        &env,
        "DualWriteConnectionService",
        "link",
        json!({"dataverseEnvironment": org, "legalEntities": les}),
    )?;
    // Initial sync, so that the seeded F&O rows have counterparts and every running map
    // converges from the start.
    let runs: Vec<Value> = MAPS
        .iter()
        .map(|m| json!({"map": m, "initialSync": true, "master": "Dataverse"}))
        .collect();
    let r = c.dual_write(
        &env,
        "DualWriteMapService",
        "runMaps",
        json!({ "maps": runs }),
    )?;
    for e in r["executions"].as_array().into_iter().flatten() {
        if e["status"] != json!("Completed") {
            bail!(
                "initial sync of {} ended {}: {}",
                e["map"],
                e["status"],
                e["log"]
            );
        }
    }
    let companies = c
        .dv_all(&org, "cdm_companies?$select=cdm_companyid,cdm_companycode")?
        .iter()
        .filter_map(|r| {
            Some((
                r["cdm_companyid"].as_str()?.to_string(),
                r["cdm_companycode"].as_str()?.to_string(),
            ))
        })
        .collect();
    Ok(Rig {
        client,
        env,
        org,
        companies,
    })
}

fn admin(rig: &Rig, method: &str, verb: &str, body: &[u8]) -> Result<Reply> {
    let c = &rig.client;
    c.transport.send(
        method,
        &format!("{}/_dwsim/{verb}", c.endpoints.lcs),
        &[("Content-Type", "application/json")],
        body,
    )
}

fn map_service(rig: &Rig, operation: &str, args: Value) -> Result<Reply> {
    let c = &rig.client;
    let base = c.fno_base(&rig.env);
    c.send_as(
        &base,
        "POST",
        &format!("{base}/api/services/DualWriteServices/DualWriteMapService/{operation}"),
        &[("Content-Type", "application/json")],
        args.to_string().as_bytes(),
    )
}

fn fno_path(company: &str, group: &str) -> String {
    format!(
        "CustomerGroups(dataAreaId='{}',CustomerGroupId='{group}')",
        company.to_lowercase()
    )
}

/// The Dataverse id of a pool group, looked up by key as a client would.
fn dv_id(rig: &Rig, company: &str, group: &str) -> Result<Option<String>> {
    let Some(company_id) = rig
        .companies
        .iter()
        .find(|(_, code)| code.as_str() == company)
        .map(|(id, _)| id)
    else {
        bail!("no cdm_company {company}");
    };
    let rows = rig.client.dv_all(
        &rig.org,
        &format!("msdyn_customergroups?$select=msdyn_customergroupid&$filter=msdyn_groupid eq '{group}' and _msdyn_company_value eq {company_id}"),
    )?;
    Ok(rows
        .first()
        .and_then(|r| r["msdyn_customergroupid"].as_str())
        .map(str::to_string))
}

/// Runs one operation; answers the status of its last request.
fn execute(rig: &Rig, op: &Op) -> Result<u16> {
    let status = match op {
        Op::FnoCreate { .. } | Op::FnoUpdate { .. } | Op::FnoDelete { .. } => execute_fno(rig, op)?,
        Op::DvCreate { .. } | Op::DvUpdate { .. } | Op::DvDelete { .. } => execute_dv(rig, op)?,
        Op::Pause => map_service(rig, "pauseMap", json!({ "map": MAP }))?.status,
        Op::Resume => map_service(rig, "resumeMap", json!({ "map": MAP }))?.status,
        Op::Stop => map_service(rig, "stopMap", json!({ "map": MAP }))?.status,
        Op::Run { master } => {
            map_service(
                rig,
                "runMaps",
                json!({"maps": [{"map": MAP, "initialSync": true, "master": master}]}),
            )?
            .status
        }
        Op::InjectFault {
            side,
            table,
            count,
            kind,
        } => inject_fault(
            rig,
            Fault {
                side: *side,
                table: table.clone(),
                count: *count,
                kind: *kind,
                message: None,
            },
        )?,
        Op::AdvanceClock { minutes } => {
            admin(rig, "POST", &format!("clock?advanceMinutes={minutes}"), &[])?.status
        }
    };
    Ok(status)
}

/// An F&O write through OData, as a partner's integration sends it.
fn execute_fno(rig: &Rig, op: &Op) -> Result<u16> {
    let (c, env) = (&rig.client, &rig.env);
    let reply = match op {
        Op::FnoCreate {
            company,
            group,
            description,
        } => c.fno(
            "POST",
            env,
            "CustomerGroups",
            Some(&json!({"dataAreaId": company.to_lowercase(), "CustomerGroupId": group, "Description": description})),
        )?,
        Op::FnoUpdate {
            company,
            group,
            description,
        } => c.fno(
            "PATCH",
            env,
            &fno_path(company, group),
            Some(&json!({ "Description": description })),
        )?,
        Op::FnoDelete { company, group } => c.fno("DELETE", env, &fno_path(company, group), None)?,
        other => unreachable!("not an F&O write: {other:?}"),
    };
    Ok(reply.status)
}

/// A Dataverse write through the Web API; updates and deletes find the row by its keys first.
fn execute_dv(rig: &Rig, op: &Op) -> Result<u16> {
    let (c, org) = (&rig.client, &rig.org);
    let existing = |company: &str, group: &str| -> Result<String> {
        dv_id(rig, company, group)?
            .ok_or_else(|| anyhow!("Dataverse has no group {group} in {company}"))
    };
    let reply = match op {
        Op::DvCreate {
            company,
            group,
            description,
        } => c.dv(
            "POST",
            org,
            "msdyn_customergroups",
            Some(&json!({
                "msdyn_groupid": group,
                "msdyn_description": description,
                "msdyn_company@odata.bind": format!("/cdm_companies(cdm_companycode='{company}')"),
            })),
        )?,
        Op::DvUpdate {
            company,
            group,
            description,
        } => c.dv(
            "PATCH",
            org,
            &format!("msdyn_customergroups({})", existing(company, group)?),
            Some(&json!({ "msdyn_description": description })),
        )?,
        Op::DvDelete { company, group } => c.dv(
            "DELETE",
            org,
            &format!("msdyn_customergroups({})", existing(company, group)?),
            None,
        )?,
        other => unreachable!("not a Dataverse write: {other:?}"),
    };
    Ok(reply.status)
}

/// Adds one fault to the plan the server holds (read, push, write back).
fn inject_fault(rig: &Rig, fault: Fault) -> Result<u16> {
    let current = admin(rig, "GET", "faults", &[])?;
    let mut plan: FaultPlan = serde_json::from_slice(&current.body)
        .with_context(|| format!("GET /_dwsim/faults: {}", current.text()))?;
    plan.faults.push(fault);
    Ok(admin(rig, "PUT", "faults", json!(plan).to_string().as_bytes())?.status)
}

/// All rows of an F&O query, following nextLinks.
fn fno_all(rig: &Rig, path: &str) -> Result<Vec<Value>> {
    let c = &rig.client;
    let mut out = Vec::new();
    let mut reply = c.fno("GET", &rig.env, path, None)?;
    loop {
        if reply.status != 200 {
            bail!("GET {path}: HTTP {} {}", reply.status, reply.text());
        }
        let body = reply.json();
        out.extend(body["value"].as_array().cloned().unwrap_or_default());
        let Some(next) = body["@odata.nextLink"].as_str() else {
            break;
        };
        let base = c.fno_base(&rig.env);
        reply = c.send_as(&base, "GET", next, &[("Accept", "application/json")], &[])?;
    }
    Ok(out)
}

/// Reads what the model predicts, through the servers' public surface.
fn observe(rig: &Rig) -> Result<View> {
    let pool = |g: &str| GROUPS.contains(&g);
    let mut fno: Vec<GroupRow> = fno_all(rig, "CustomerGroups?cross-company=true")?
        .iter()
        .filter(|r| pool(r["CustomerGroupId"].as_str().unwrap_or_default()))
        .map(|r| GroupRow {
            company: r["dataAreaId"].as_str().unwrap_or_default().to_uppercase(),
            group: r["CustomerGroupId"].as_str().unwrap_or_default().into(),
            description: r["Description"].as_str().unwrap_or_default().into(),
        })
        .collect();
    fno.sort();
    let mut dataverse: Vec<GroupRow> = rig
        .client
        .dv_all(
            &rig.org,
            "msdyn_customergroups?$select=msdyn_groupid,msdyn_description,_msdyn_company_value",
        )?
        .iter()
        .filter(|r| pool(r["msdyn_groupid"].as_str().unwrap_or_default()))
        .map(|r| GroupRow {
            company: r["_msdyn_company_value"]
                .as_str()
                .and_then(|id| rig.companies.get(id))
                .cloned()
                .unwrap_or_default(),
            group: r["msdyn_groupid"].as_str().unwrap_or_default().into(),
            description: r["msdyn_description"].as_str().unwrap_or_default().into(),
        })
        .collect();
    dataverse.sort();
    let maps = rig
        .client
        .dual_write(&rig.env, "DualWriteMapService", "getMaps", json!({}))?
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| MAPS.contains(&m["map"].as_str().unwrap_or_default()))
        .map(|m| {
            (
                m["map"].as_str().unwrap_or_default().to_string(),
                m["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let queue = rig.client.dual_write(
        &rig.env,
        "DualWriteMapService",
        "getQueuedRecords",
        json!({ "map": MAP }),
    )?;
    let faults = admin(rig, "GET", "faults", &[])?;
    Ok(View {
        fno,
        dataverse,
        maps,
        queued: queue["totalQueuedRecordCount"].as_u64().unwrap_or(0) as usize,
        catch_up_errors: queue["catchUpErrors"].as_array().map_or(0, Vec::len),
        faults: serde_json::from_slice(&faults.body)
            .with_context(|| format!("GET /_dwsim/faults: {}", faults.text()))?,
    })
}

/// A failed case, as `dwsim replay` reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    /// The bundle's file name, without `.json`.
    pub name: String,
    /// The world seed; the data set is the built-in demo data.
    pub seed: u64,
    /// The transport the case ran over.
    pub transport: Carrier,
    /// Whether the runtime was built with the `broken-rollback` feature.
    pub broken_rollback: bool,
    /// The operations, readable, then as data.
    pub steps: Vec<String>,
    /// The operations as data, for replay.
    pub ops: Vec<Op>,
    /// The first divergence, with the step.
    pub failure: Option<String>,
    /// The index of the step that diverged.
    pub failed_step: Option<usize>,
    /// Every exchange of the case's steps.
    pub transcript: Vec<Exchange>,
    /// Both states at the end.
    pub end_state: EndState,
}

/// The end states of a failed case: the servers' and the model's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndState {
    /// The servers' state, if it could be read.
    pub observed: Option<View>,
    /// The model's state.
    pub predicted: View,
}

impl Bundle {
    /// A bundle of a case and its outcome.
    pub fn new(
        name: &str,
        seed: u64,
        ops: &[Op],
        carrier: Carrier,
        outcome: &CaseOutcome,
    ) -> Bundle {
        Bundle {
            name: name.to_string(),
            seed,
            transport: carrier,
            broken_rollback: cfg!(feature = "broken-rollback"),
            steps: ops.iter().map(Op::to_string).collect(),
            ops: ops.to_vec(),
            failure: outcome.failure.clone(),
            failed_step: outcome.failed_step,
            transcript: outcome.transcript.clone(),
            end_state: EndState {
                observed: outcome.observed.clone(),
                predicted: outcome.predicted.clone(),
            },
        }
    }

    /// Writes `<target>/dwsim-bundles/<name>.json` and answers the path.
    pub fn write(&self) -> Result<PathBuf> {
        let dir = bundle_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.json", self.name));
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Reads a bundle written by [`Bundle::write`].
    pub fn read(path: &Path) -> Result<Bundle> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("{} is not a bundle", path.display()))
    }
}

/// `$CARGO_TARGET_DIR/dwsim-bundles`, else `target/dwsim-bundles` below the current
/// directory (cargo runs tests from the package root, so that is the workspace's target).
/// Nothing about the build machine is baked into the binary.
pub fn bundle_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("dwsim-bundles")
}
