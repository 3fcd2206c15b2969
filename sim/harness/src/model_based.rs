//! Model-based testing of live sync for the customer map family in several companies: F&O
//! `CustomerGroups` ↔ Dataverse `msdyn_customergroups`, and F&O `CustomersV3` ↔ Dataverse
//! `accounts` (organisation customers) and `contacts` (person customers), whose customer
//! group lookup points at the pool's groups. The operations pause, resume, stop and run
//! each of the three maps. A small reference model of both sides (rows, the maps' states
//! and masters, the pause queues with their deletes, the connection's legal entities,
//! injected faults) predicts what each operation answers and leaves behind; [`run_case`]
//! drives the real servers through their HTTP surface and compares after every step.
//! `tests/model_based.rs` generates and shrinks operation sequences; `dwsim replay` re-runs a
//! failure's bundle through the same code.
//!
//! Covered: creates, updates and deletes on both sides; descriptions and names that differ
//! only in letter case (a case-only edit is a change); deletes while a map is paused
//! (queued with the row, replayed by integration key); legal entities removed from and
//! added back to the live connection (with or without initial writes); customers whose
//! group is missing on the other side (the lookup fails the write) or deleted under them
//! (F&O keeps the group id, Dataverse clears the lookup); customer maps run and stopped
//! around the groups' map they depend on.
//!
//! The model is written from the documented behaviour (live sync is one transaction across
//! both sides, paused maps queue and replay in order, initial sync merges by key with the
//! master deciding conflicts, adding a legal entity runs initial writes for the running and
//! paused maps, removing one is refused while a map is paused) and from the runtime's
//! recorded choices (docs/choices.md), never from the runtime's code.

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

/// The customer groups' map, which map actions act on unless they name another.
pub const MAP: &str = "customergroups";
/// The organisation customers' map.
pub const ACCOUNTS_MAP: &str = "customersv3-accounts";
/// The person customers' map.
pub const CONTACTS_MAP: &str = "customersv3-contacts";
/// The maps the operations pause, resume, stop and run, upstream first.
pub const POOL_MAPS: [&str; 3] = [MAP, ACCOUNTS_MAP, CONTACTS_MAP];
/// Every map the setup runs, upstream first.
pub const MAPS: [&str; 6] = [
    "legalentities-companies",
    "currencies",
    "paymentterms",
    "customergroups",
    "customersv3-accounts",
    "customersv3-contacts",
];
/// Companies the operations write in, and remove from and add back to the connection (all
/// connected by the setup).
pub const COMPANIES: [&str; 3] = ["USMF", "DEMF", "USRT"];
/// Customer group ids the operations use. The seeded data has none of them.
pub const GROUPS: [&str; 3] = ["MB1", "MB2", "MB3"];
/// Descriptions the operations write; two differ only in letter case.
pub const DESCRIPTIONS: [&str; 3] = ["Alpha", "alpha", "Beta"];
/// Customer accounts of organisations (F&O `PartyType` Organization ↔ Dataverse accounts).
pub const ORGANISATIONS: [&str; 2] = ["MBA1", "MBA2"];
/// Customer accounts of persons (F&O `PartyType` Person ↔ Dataverse contacts).
pub const PERSONS: [&str; 2] = ["MBP1", "MBP2"];
/// Customer names the operations write (an organisation's name, a person's last name); two
/// differ only in letter case.
pub const NAMES: [&str; 3] = ["Contoso", "contoso", "Fabrikam"];

/// Shown for a Dataverse customer whose group lookup points at no group (which Dataverse
/// never leaves: a delete clears the lookups that pointed at the row).
const GONE: &str = "(deleted)";

/// The tables the model tracks, with the names a fault may name them by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Groups,
    Accounts,
    Contacts,
}

impl Table {
    /// The map that syncs the table.
    fn map(self) -> &'static str {
        match self {
            Table::Groups => MAP,
            Table::Accounts => ACCOUNTS_MAP,
            Table::Contacts => CONTACTS_MAP,
        }
    }

    /// The customer table of an account number: persons are contacts, the rest accounts.
    fn of(account: &str) -> Table {
        if PERSONS.contains(&account) {
            Table::Contacts
        } else {
            Table::Accounts
        }
    }

    fn names(self, side: Side) -> [&'static str; 2] {
        match (self, side) {
            (Table::Groups, Side::Fno) => ["CustomerGroups", "CustCustomerGroupEntity"],
            (Table::Groups, Side::Dataverse) => ["msdyn_customergroup", "msdyn_customergroups"],
            (_, Side::Fno) => ["CustomersV3", "CustCustomerV3Entity"],
            (Table::Accounts, Side::Dataverse) => ["account", "accounts"],
            (Table::Contacts, Side::Dataverse) => ["contact", "contacts"],
        }
    }
}

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
    /// An OData create of a customer in F&O (`CustomersV3`): an organisation or a person by
    /// the account's pool.
    FnoCustomerCreate {
        /// The legal entity (upper case).
        company: String,
        /// The customer account.
        account: String,
        /// The organisation's name or the person's last name.
        name: String,
        /// The customer group id.
        group: String,
    },
    /// An OData update of a customer's name and group in F&O.
    FnoCustomerUpdate {
        /// The legal entity (upper case).
        company: String,
        /// The customer account.
        account: String,
        /// The organisation's name or the person's last name.
        name: String,
        /// The customer group id.
        group: String,
    },
    /// An OData delete of a customer in F&O.
    FnoCustomerDelete {
        /// The legal entity (upper case).
        company: String,
        /// The customer account.
        account: String,
    },
    /// A Web API create of an account (organisation) or contact (person) in Dataverse,
    /// bound to its company and to the company's customer group.
    DvCustomerCreate {
        /// The company code.
        company: String,
        /// The account number or contact person id.
        account: String,
        /// The account's name or the contact's last name.
        name: String,
        /// The customer group id the lookup is bound to.
        group: String,
    },
    /// A Web API update of an account's or contact's name and customer group.
    DvCustomerUpdate {
        /// The company code.
        company: String,
        /// The account number or contact person id.
        account: String,
        /// The account's name or the contact's last name.
        name: String,
        /// The customer group id the lookup is bound to.
        group: String,
    },
    /// A Web API delete of an account or contact.
    DvCustomerDelete {
        /// The company code.
        company: String,
        /// The account number or contact person id.
        account: String,
    },
    /// `removeLegalEntity`: takes a company out of the live connection.
    RemoveLegalEntity {
        /// The legal entity (upper case).
        company: String,
    },
    /// `addLegalEntities`: puts a company (back) into the live connection.
    AddLegalEntity {
        /// The legal entity (upper case).
        company: String,
        /// Skip the initial writes of the running and paused maps for it.
        #[serde(default, rename = "skipInitialWrites")]
        skip_initial_writes: bool,
    },
    /// `pauseMap` on one of the pool's maps.
    Pause {
        /// The map (the customer groups' when a bundle does not say).
        #[serde(default = "group_map", skip_serializing_if = "is_group_map")]
        map: String,
    },
    /// `resumeMap` on one of the pool's maps.
    Resume {
        /// The map (the customer groups' when a bundle does not say).
        #[serde(default = "group_map", skip_serializing_if = "is_group_map")]
        map: String,
    },
    /// `stopMap` on one of the pool's maps.
    Stop {
        /// The map (the customer groups' when a bundle does not say).
        #[serde(default = "group_map", skip_serializing_if = "is_group_map")]
        map: String,
    },
    /// `runMaps` with initial sync for one of the pool's maps (a paused map resumes
    /// instead).
    Run {
        /// The side that wins conflicts.
        master: Side,
        /// The map (the customer groups' when a bundle does not say).
        #[serde(default = "group_map", skip_serializing_if = "is_group_map")]
        map: String,
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

fn group_map() -> String {
    MAP.to_string()
}

fn is_group_map(map: &str) -> bool {
    map == MAP
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
            Op::FnoCustomerCreate {
                company,
                account,
                name,
                group,
            } => write!(
                f,
                "create customer {account} ({name}, group {group}) in {company} on F&O"
            ),
            Op::FnoCustomerUpdate {
                company,
                account,
                name,
                group,
            } => write!(
                f,
                "update customer {account} to {name}, group {group} in {company} on F&O"
            ),
            Op::FnoCustomerDelete { company, account } => {
                write!(f, "delete customer {account} in {company} on F&O")
            }
            Op::DvCustomerCreate {
                company,
                account,
                name,
                group,
            } => write!(
                f,
                "create customer {account} ({name}, group {group}) in {company} on Dataverse"
            ),
            Op::DvCustomerUpdate {
                company,
                account,
                name,
                group,
            } => write!(
                f,
                "update customer {account} to {name}, group {group} in {company} on Dataverse"
            ),
            Op::DvCustomerDelete { company, account } => {
                write!(f, "delete customer {account} in {company} on Dataverse")
            }
            Op::RemoveLegalEntity { company } => {
                write!(f, "remove legal entity {company} from the connection")
            }
            Op::AddLegalEntity {
                company,
                skip_initial_writes,
            } => write!(
                f,
                "add legal entity {company} to the connection{}",
                if *skip_initial_writes {
                    ", skipping initial writes"
                } else {
                    ""
                }
            ),
            Op::Pause { map } => write!(f, "pause {map}"),
            Op::Resume { map } => write!(f, "resume {map}"),
            Op::Stop { map } => write!(f, "stop {map}"),
            Op::Run { master, map } => write!(
                f,
                "run {map} with initial sync, {} master",
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
/// identity of the Dataverse row (a recreated Dataverse row is another row). A delete keeps
/// the key the deleted row had, so that the replay can delete its counterpart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Queued {
    Fno { key: Key, deleted: bool },
    Dv { rid: u64, deleted: Option<Key> },
}

/// A company code and a group id or customer account.
type Key = (String, String);

#[derive(Debug, Clone, PartialEq, Eq)]
struct DvRow {
    /// Stands for the row's GUID.
    rid: u64,
    description: String,
}

/// A customer in F&O: its name and the id of its group (in its company).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Customer {
    name: String,
    group: String,
}

/// An account or contact in Dataverse: its lookup holds the group row's id, or nothing once
/// that group is deleted (the relationship's cascade is RemoveLink).
#[derive(Debug, Clone, PartialEq, Eq)]
struct DvCustomer {
    rid: u64,
    name: String,
    group: Option<u64>,
}

/// The reference model: the pool's customer groups and customers on both sides, and the
/// runtime state that decides what a write does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The world seed the case runs on.
    pub seed: u64,
    fno: BTreeMap<Key, String>,
    dv: BTreeMap<Key, DvRow>,
    fno_customers: BTreeMap<Key, Customer>,
    dv_customers: BTreeMap<Key, DvCustomer>,
    next_rid: u64,
    /// The states of the pool's maps.
    maps: BTreeMap<&'static str, MapState>,
    /// The master each pool map last ran with (the setup's is Dataverse); adding a legal
    /// entity runs its initial writes with it.
    masters: BTreeMap<&'static str, Side>,
    /// The changes queued while a map was paused, with the map.
    queue: Vec<(&'static str, Queued)>,
    catch_up_errors: usize,
    faults: Vec<Fault>,
    connected: BTreeSet<String>,
}

/// Why a counterpart write failed (a fault fired, a lookup found nothing, the other side
/// refused the row).
struct Failed;

/// Each customer key (company, account) with each group key of its company:
/// (company, account, group).
fn with_groups<'a>(
    customers: impl Iterator<Item = &'a Key>,
    groups: impl Iterator<Item = &'a Key> + Clone,
) -> Vec<(String, String, String)> {
    customers
        .flat_map(|(company, account)| {
            groups
                .clone()
                .filter(move |(c, _)| c == company)
                .map(move |(_, group)| (company.clone(), account.clone(), group.clone()))
        })
        .collect()
}

impl Model {
    /// The state after setup: every legal entity connected, every map running with
    /// Dataverse as master, none of the pool's rows on either side.
    pub fn new(seed: u64) -> Model {
        Model {
            seed,
            fno: BTreeMap::new(),
            dv: BTreeMap::new(),
            fno_customers: BTreeMap::new(),
            dv_customers: BTreeMap::new(),
            next_rid: 0,
            maps: POOL_MAPS.map(|m| (m, MapState::Running)).into(),
            masters: POOL_MAPS.map(|m| (m, Side::Dataverse)).into(),
            queue: Vec::new(),
            catch_up_errors: 0,
            faults: Vec::new(),
            connected: ["DAT", "DEMF", "USMF", "USRT"]
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    /// The state of the customer groups' map.
    pub fn map_state(&self) -> MapState {
        self.state(MAP)
    }

    /// The state of a pool map.
    fn state(&self, map: &str) -> MapState {
        self.maps.get(map).copied().unwrap_or(MapState::Running)
    }

    /// The pool map called `map` (None for a map outside the pool).
    fn pool_map(map: &str) -> Option<&'static str> {
        POOL_MAPS.into_iter().find(|m| *m == map)
    }

    /// The pool maps that are stopped, for running them again.
    pub fn stopped_maps(&self) -> Vec<String> {
        POOL_MAPS
            .iter()
            .filter(|m| self.state(m) == MapState::NotRunning)
            .map(|m| m.to_string())
            .collect()
    }

    /// The companies of the pool that are out of the connection, for adding them back.
    pub fn disconnected(&self) -> Vec<String> {
        COMPANIES
            .iter()
            .filter(|c| !self.syncs(c))
            .map(|c| c.to_string())
            .collect()
    }

    /// Dataverse groups of the pool, for choosing update and delete targets and the groups
    /// Dataverse customers bind to.
    pub fn dv_keys(&self) -> Vec<(String, String)> {
        self.dv.keys().cloned().collect()
    }

    /// F&O groups of the pool, for choosing the groups F&O customers refer to.
    pub fn fno_keys(&self) -> Vec<(String, String)> {
        self.fno.keys().cloned().collect()
    }

    /// F&O customers of the pool with each group of their company that F&O has:
    /// (company, account, group), for choosing update targets.
    pub fn fno_customer_targets(&self) -> Vec<(String, String, String)> {
        with_groups(self.fno_customers.keys(), self.fno.keys())
    }

    /// Dataverse accounts and contacts of the pool, for choosing update and delete targets.
    pub fn dv_customer_keys(&self) -> Vec<(String, String)> {
        self.dv_customers.keys().cloned().collect()
    }

    /// Dataverse accounts and contacts of the pool with each group of their company that
    /// Dataverse has: (company, account, group), for choosing update targets.
    pub fn dv_customer_targets(&self) -> Vec<(String, String, String)> {
        with_groups(self.dv_customers.keys(), self.dv.keys())
    }

    /// Whether `op` may be generated here. Dataverse updates and deletes need the row (they
    /// address it by id), and a Dataverse customer's group must exist in Dataverse (its
    /// lookup is bound by id).
    pub fn allows(&self, op: &Op) -> bool {
        let dv_group = |company: &String, group: &String| {
            self.dv.contains_key(&(company.clone(), group.clone()))
        };
        match op {
            Op::DvUpdate { company, group, .. } | Op::DvDelete { company, group } => {
                dv_group(company, group)
            }
            Op::DvCustomerCreate { company, group, .. } => dv_group(company, group),
            Op::DvCustomerUpdate {
                company,
                account,
                group,
                ..
            } => {
                dv_group(company, group)
                    && self
                        .dv_customers
                        .contains_key(&(company.clone(), account.clone()))
            }
            Op::DvCustomerDelete { company, account } => self
                .dv_customers
                .contains_key(&(company.clone(), account.clone())),
            Op::InjectFault {
                side, kind, count, ..
            } => *count > 0 && kind.side() == *side,
            Op::Pause { map } | Op::Resume { map } | Op::Stop { map } | Op::Run { map, .. } => {
                Model::pool_map(map).is_some()
            }
            _ => true,
        }
    }

    /// Applies `op` and answers the HTTP status its (last) request should get.
    pub fn apply(&mut self, op: &Op) -> u16 {
        let key = |company: &String, id: &String| (company.clone(), id.clone());
        match op {
            Op::FnoCreate {
                company,
                group,
                description,
            } => {
                let key = key(company, group);
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
                let key = key(company, group);
                if !self.fno.contains_key(&key) {
                    return 404;
                }
                self.fno_write(key, Some(description.clone()), 204)
            }
            Op::FnoDelete { company, group } => {
                let key = key(company, group);
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
                let key = key(company, group);
                if self.dv.contains_key(&key) {
                    return 412; // the alternate key (msdyn_groupid, company) is taken
                }
                self.dv_write(key, Some(description.clone()))
            }
            Op::DvUpdate {
                company,
                group,
                description,
            } => self.dv_write(key(company, group), Some(description.clone())),
            Op::DvDelete { company, group } => self.dv_write(key(company, group), None),
            Op::FnoCustomerCreate {
                company,
                account,
                name,
                group,
            } => {
                let key = key(company, account);
                if self.fno_customers.contains_key(&key) {
                    return 500;
                }
                let after = Customer {
                    name: name.clone(),
                    group: group.clone(),
                };
                self.fno_customer_write(key, Some(after), 201)
            }
            Op::FnoCustomerUpdate {
                company,
                account,
                name,
                group,
            } => {
                let key = key(company, account);
                if !self.fno_customers.contains_key(&key) {
                    return 404;
                }
                let after = Customer {
                    name: name.clone(),
                    group: group.clone(),
                };
                self.fno_customer_write(key, Some(after), 204)
            }
            Op::FnoCustomerDelete { company, account } => {
                let key = key(company, account);
                if !self.fno_customers.contains_key(&key) {
                    return 404;
                }
                self.fno_customer_write(key, None, 204)
            }
            Op::DvCustomerCreate {
                company,
                account,
                name,
                group,
            }
            | Op::DvCustomerUpdate {
                company,
                account,
                name,
                group,
            } => {
                let key = key(company, account);
                if matches!(op, Op::DvCustomerCreate { .. }) && self.dv_customers.contains_key(&key)
                {
                    return 412; // the alternate key (number, company) is taken
                }
                let group = self.dv[&(company.clone(), group.clone())].rid;
                self.dv_customer_write(key, Some((name.clone(), group)))
            }
            Op::DvCustomerDelete { company, account } => {
                self.dv_customer_write(key(company, account), None)
            }
            Op::RemoveLegalEntity { company } => self.remove_legal_entity(company),
            Op::AddLegalEntity {
                company,
                skip_initial_writes,
            } => self.add_legal_entity(company, *skip_initial_writes),
            Op::Pause { .. } | Op::Stop { .. } | Op::Resume { .. } | Op::Run { .. } => {
                self.apply_map_action(op)
            }
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

    /// The maps' life-cycle actions, as the dual-write service answers them in each state.
    fn apply_map_action(&mut self, op: &Op) -> u16 {
        let (Op::Pause { map } | Op::Stop { map } | Op::Resume { map } | Op::Run { map, .. }) = op
        else {
            unreachable!("not a map action: {op:?}")
        };
        let map = Model::pool_map(map).expect("a pool map");
        let state = self.state(map);
        match op {
            Op::Pause { .. } => {
                if state != MapState::Running {
                    return 500; // the dual-write service refuses the action in this state
                }
                self.maps.insert(map, MapState::Paused);
                200
            }
            Op::Stop { .. } => {
                if state == MapState::NotRunning {
                    return 500;
                }
                // The queue stays: a later resume replays it (docs/choices.md is silent).
                self.maps.insert(map, MapState::NotRunning);
                200
            }
            Op::Resume { .. } => {
                if state != MapState::Paused {
                    return 500;
                }
                self.resume(map);
                200
            }
            Op::Run { master, .. } => {
                // A map runs only while the maps it depends on run (or are paused): the
                // customer maps need the customer groups'.
                if state == MapState::Running
                    || (map != MAP && self.state(MAP) == MapState::NotRunning)
                {
                    return 500;
                }
                if state == MapState::Paused {
                    self.resume(map);
                    return 200;
                }
                let companies = self.connected.clone();
                let errors = self.initial_sync(map, &companies, *master);
                self.masters.insert(map, *master);
                // A run with any error leaves the map Not running.
                let state = if errors == 0 {
                    MapState::Running
                } else {
                    MapState::NotRunning
                };
                self.maps.insert(map, state);
                200
            }
            _ => unreachable!("not a map action: {op:?}"),
        }
    }

    /// Initial sync of one pool map in `companies`; answers the rows that failed.
    fn initial_sync(&mut self, map: &str, companies: &BTreeSet<String>, master: Side) -> usize {
        match map {
            MAP => {
                self.initial_sync_groups(companies, master);
                0
            }
            ACCOUNTS_MAP => self.initial_sync_customers(companies, master, Table::Accounts),
            _ => self.initial_sync_customers(companies, master, Table::Contacts),
        }
    }

    /// Removing a legal entity is refused while a map is paused (or initializing, which no
    /// request sees); a company outside the connection is not found. Its rows then stay
    /// where they are and stop syncing.
    fn remove_legal_entity(&mut self, company: &str) -> u16 {
        if self.maps.values().any(|s| *s == MapState::Paused) {
            return 500;
        }
        if !self.connected.remove(company) {
            return 404;
        }
        200
    }

    /// Adding a legal entity: the maps that are running or paused go through initial writes
    /// for it (upstream first, each with its master) unless they are skipped. A company
    /// already in the connection changes nothing.
    fn add_legal_entity(&mut self, company: &str, skip_initial_writes: bool) -> u16 {
        if !self.connected.insert(company.to_string()) {
            return 200;
        }
        if !skip_initial_writes {
            let only: BTreeSet<String> = [company.to_string()].into();
            for map in POOL_MAPS {
                if self.state(map) != MapState::NotRunning {
                    // Errors show in the execution; the map stays as it is.
                    self.initial_sync(map, &only, self.masters[map]);
                }
            }
        }
        200
    }

    fn syncs(&self, company: &str) -> bool {
        self.connected.contains(company)
    }

    /// What a write in `company` does to `map`, before the write itself lands: when the
    /// company is connected and the map runs, `counterpart` writes the other side, and its
    /// failure fails the origin write too (`Err`); a paused map queues the change instead.
    fn dual_write(
        &mut self,
        company: &str,
        map: &'static str,
        queued: Queued,
        counterpart: impl FnOnce(&mut Self) -> Result<(), Failed>,
    ) -> Result<(), Failed> {
        if !self.syncs(company) {
            return Ok(());
        }
        match self.state(map) {
            MapState::Running => counterpart(self),
            MapState::Paused => {
                self.queue.push((map, queued));
                Ok(())
            }
            MapState::NotRunning => Ok(()),
        }
    }

    /// An F&O write of a group and its dual-write, as one transaction.
    fn fno_write(&mut self, key: Key, after: Option<String>, ok: u16) -> u16 {
        let before = self.fno.get(&key).cloned();
        let queued = Queued::Fno {
            key: key.clone(),
            deleted: after.is_none(),
        };
        let counterpart = |m: &mut Self| m.write_dv(&key, before.as_deref(), after.as_deref());
        if self.dual_write(&key.0, MAP, queued, counterpart).is_err() {
            return 500; // Infolog: "Unable to write data to entity …"
        }
        match after {
            Some(d) => self.fno.insert(key, d),
            None => self.fno.remove(&key),
        };
        ok
    }

    /// A Dataverse write of a group and its dual-write, as one transaction.
    fn dv_write(&mut self, key: Key, after: Option<String>) -> u16 {
        let before = self.dv.get(&key).map(|r| r.description.clone());
        let rid = match self.dv.get(&key) {
            Some(r) => r.rid,
            None => self.new_rid(),
        };
        let queued = Queued::Dv {
            rid,
            deleted: after.is_none().then(|| key.clone()),
        };
        let counterpart = |m: &mut Self| m.write_fno(&key, before.as_deref(), after.as_deref());
        if self.dual_write(&key.0, MAP, queued, counterpart).is_err() {
            return 400; // 0x80040265 from the dual-write plug-in
        }
        match after {
            Some(description) => {
                self.dv.insert(key, DvRow { rid, description });
            }
            None => self.remove_dv_group(&key),
        };
        204
    }

    /// An F&O write of a customer and its dual-write. F&O validates first: the customer's
    /// group must exist in its company (a delete is not checked).
    fn fno_customer_write(&mut self, key: Key, after: Option<Customer>, ok: u16) -> u16 {
        if let Some(c) = &after {
            if !self.fno.contains_key(&(key.0.clone(), c.group.clone())) {
                return 500; // validateWrite: the group is not in the company
            }
        }
        let before = self.fno_customers.get(&key).cloned();
        let queued = Queued::Fno {
            key: key.clone(),
            deleted: after.is_none(),
        };
        let counterpart = |m: &mut Self| m.customer_to_dv(&key, before.as_ref(), after.as_ref());
        if self
            .dual_write(&key.0, Table::of(&key.1).map(), queued, counterpart)
            .is_err()
        {
            return 500;
        }
        match after {
            Some(c) => self.fno_customers.insert(key, c),
            None => self.fno_customers.remove(&key),
        };
        ok
    }

    /// A Dataverse write of an account or contact and its dual-write.
    fn dv_customer_write(&mut self, key: Key, after: Option<(String, u64)>) -> u16 {
        let before = self.dv_customers.get(&key).cloned();
        let rid = match &before {
            Some(r) => r.rid,
            None => self.new_rid(),
        };
        let after = after.map(|(name, group)| DvCustomer {
            rid,
            name,
            group: Some(group),
        });
        let queued = Queued::Dv {
            rid,
            deleted: after.is_none().then(|| key.clone()),
        };
        let counterpart = |m: &mut Self| m.customer_to_fno(&key, before.as_ref(), after.as_ref());
        if self
            .dual_write(&key.0, Table::of(&key.1).map(), queued, counterpart)
            .is_err()
        {
            return 400;
        }
        match after {
            Some(c) => self.dv_customers.insert(key, c),
            None => self.dv_customers.remove(&key),
        };
        204
    }

    fn new_rid(&mut self) -> u64 {
        self.next_rid += 1;
        self.next_rid
    }

    /// The first planned fault for this side and table fires and counts down.
    fn fault(&mut self, side: Side, table: Table) -> Result<(), Failed> {
        let names = table.names(side);
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

    /// Dual-writes an F&O group change to Dataverse: upsert by key, or delete. A change of
    /// no mapped field, or one that finds the counterpart already equal, writes nothing.
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
                self.fault(Side::Dataverse, Table::Groups)?;
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
                    self.fault(Side::Dataverse, Table::Groups)?;
                    self.remove_dv_group(key);
                }
            }
        }
        Ok(())
    }

    /// Dual-writes a Dataverse group change to F&O.
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
                self.fault(Side::Fno, Table::Groups)?;
                self.fno.insert(key.clone(), d.to_string());
            }
            None => {
                if target.is_some() {
                    self.fault(Side::Fno, Table::Groups)?;
                    self.fno.remove(key);
                }
            }
        }
        Ok(())
    }

    /// Deletes a Dataverse group; the accounts and contacts that pointed at it lose their
    /// group (RemoveLink, docs/choices.md). The cleared lookups are not dual-written.
    fn remove_dv_group(&mut self, key: &Key) {
        if let Some(row) = self.dv.remove(key) {
            for c in self.dv_customers.values_mut() {
                if c.group == Some(row.rid) {
                    c.group = None;
                }
            }
        }
    }

    /// The Dataverse group the lookup `msdyn_customergroupid.msdyn_groupid` finds: by key,
    /// within the row's company.
    fn dv_group_rid(&self, company: &str, group: &str) -> Option<u64> {
        self.dv
            .get(&(company.to_string(), group.to_string()))
            .map(|r| r.rid)
    }

    /// The group id a Dataverse lookup points at ("" when it is empty).
    fn dv_group_id(&self, rid: Option<u64>) -> String {
        self.dv
            .iter()
            .find(|(_, r)| Some(r.rid) == rid)
            .map(|((_, g), _)| g.clone())
            .unwrap_or_default()
    }

    /// Dual-writes an F&O customer change to Dataverse. The group lookup must find the
    /// group in Dataverse ("Unable to lookup msdyn_customergroups with values {…}").
    fn customer_to_dv(
        &mut self,
        key: &Key,
        before: Option<&Customer>,
        after: Option<&Customer>,
    ) -> Result<(), Failed> {
        let table = Table::of(&key.1);
        let target = self.dv_customers.get(key).cloned();
        match after {
            Some(c) => {
                if target.is_some() && before == Some(c) {
                    return Ok(()); // no mapped field changed
                }
                let group = self.dv_group_rid(&key.0, &c.group).ok_or(Failed)?;
                let group = Some(group);
                if target
                    .as_ref()
                    .is_some_and(|t| t.name == c.name && t.group == group)
                {
                    return Ok(());
                }
                self.fault(Side::Dataverse, table)?;
                let rid = match &target {
                    Some(t) => t.rid,
                    None => self.new_rid(),
                };
                self.dv_customers.insert(
                    key.clone(),
                    DvCustomer {
                        rid,
                        name: c.name.clone(),
                        group,
                    },
                );
            }
            None => {
                if target.is_some() {
                    self.fault(Side::Dataverse, table)?;
                    self.dv_customers.remove(key);
                }
            }
        }
        Ok(())
    }

    /// Dual-writes a Dataverse customer change to F&O, where the row must pass F&O's
    /// validation (its group exists in its company).
    fn customer_to_fno(
        &mut self,
        key: &Key,
        before: Option<&DvCustomer>,
        after: Option<&DvCustomer>,
    ) -> Result<(), Failed> {
        let table = Table::of(&key.1);
        let target = self.fno_customers.get(key).cloned();
        match after {
            Some(d) => {
                if target.is_some()
                    && before.is_some_and(|b| b.name == d.name && b.group == d.group)
                {
                    return Ok(()); // no mapped field changed
                }
                let want = Customer {
                    name: d.name.clone(),
                    group: self.dv_group_id(d.group),
                };
                if target.as_ref() == Some(&want) {
                    return Ok(());
                }
                self.fault(Side::Fno, table)?;
                if !self.fno.contains_key(&(key.0.clone(), want.group.clone())) {
                    return Err(Failed);
                }
                self.fno_customers.insert(key.clone(), want);
            }
            None => {
                if target.is_some() {
                    self.fault(Side::Fno, table)?;
                    self.fno_customers.remove(key);
                }
            }
        }
        Ok(())
    }

    /// Paused → Running: the map's queue replays in order, each change reading its origin
    /// row as it is now. A delete whose row is still gone deletes the counterpart by the
    /// key the row had; a create or update whose row is gone, or a write that fails, is a
    /// catch-up error.
    fn resume(&mut self, map: &'static str) {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|(m, _)| *m == map);
        self.queue = rest;
        for (_, q) in mine {
            let ok = if map == MAP {
                self.replay_group(q)
            } else {
                self.replay_customer(q)
            };
            if !ok {
                self.catch_up_errors += 1;
            }
        }
        self.maps.insert(map, MapState::Running);
    }

    fn replay_group(&mut self, q: Queued) -> bool {
        match q {
            Queued::Fno { key, deleted } => match self.fno.get(&key).cloned() {
                Some(d) => self.write_dv(&key, None, Some(&d)).is_ok(),
                None if deleted => self.write_dv(&key, None, None).is_ok(),
                None => false,
            },
            Queued::Dv { rid, deleted } => {
                let row = self
                    .dv
                    .iter()
                    .find(|(_, r)| r.rid == rid)
                    .map(|(k, r)| (k.clone(), r.description.clone()));
                match (row, deleted) {
                    (Some((key, d)), _) => self.write_fno(&key, None, Some(&d)).is_ok(),
                    (None, Some(key)) => self.write_fno(&key, None, None).is_ok(),
                    (None, None) => false,
                }
            }
        }
    }

    fn replay_customer(&mut self, q: Queued) -> bool {
        match q {
            Queued::Fno { key, deleted } => match self.fno_customers.get(&key).cloned() {
                Some(c) => self.customer_to_dv(&key, None, Some(&c)).is_ok(),
                None if deleted => self.customer_to_dv(&key, None, None).is_ok(),
                None => false,
            },
            Queued::Dv { rid, deleted } => {
                let row = self
                    .dv_customers
                    .iter()
                    .find(|(_, r)| r.rid == rid)
                    .map(|(k, r)| (k.clone(), r.clone()));
                match (row, deleted) {
                    (Some((key, d)), _) => self.customer_to_fno(&key, None, Some(&d)).is_ok(),
                    (None, Some(key)) => self.customer_to_fno(&key, None, None).is_ok(),
                    (None, None) => false,
                }
            }
        }
    }

    /// Initial sync of the groups in `companies`: rows on one side only are copied over;
    /// rows on both with different values take the master's. Injected faults do not apply
    /// (they are for live sync).
    fn initial_sync_groups(&mut self, companies: &BTreeSet<String>, master: Side) {
        let keys: BTreeSet<Key> = self
            .fno
            .keys()
            .chain(self.dv.keys())
            .filter(|k| companies.contains(&k.0))
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

    /// Initial sync of the customers (accounts and contacts) in `companies`, as for the
    /// groups; a row whose group the other side lacks is an error of the run and stays
    /// where it is ("Couldn't resolve the guid …" towards Dataverse, F&O's validation the
    /// other way).
    fn initial_sync_customers(
        &mut self,
        companies: &BTreeSet<String>,
        master: Side,
        table: Table,
    ) -> usize {
        let keys: BTreeSet<Key> = self
            .fno_customers
            .keys()
            .chain(self.dv_customers.keys())
            .filter(|k| companies.contains(&k.0) && Table::of(&k.1) == table)
            .cloned()
            .collect();
        let mut errors = 0;
        for key in keys {
            let f = self.fno_customers.get(&key).cloned();
            let d = self.dv_customers.get(&key).cloned();
            let d_as_fno = d.as_ref().map(|d| Customer {
                name: d.name.clone(),
                group: self.dv_group_id(d.group),
            });
            let to_dv = match (&f, &d_as_fno) {
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(f), Some(d)) if f != d => master == Side::Fno,
                _ => continue,
            };
            if to_dv {
                let f = f.expect("an F&O row");
                let Some(group) = self.dv_group_rid(&key.0, &f.group) else {
                    errors += 1;
                    continue;
                };
                let rid = match &d {
                    Some(d) => d.rid,
                    None => self.new_rid(),
                };
                self.dv_customers.insert(
                    key,
                    DvCustomer {
                        rid,
                        name: f.name,
                        group: Some(group),
                    },
                );
            } else {
                let d = d_as_fno.expect("a Dataverse row");
                if self.fno.contains_key(&(key.0.clone(), d.group.clone())) {
                    self.fno_customers.insert(key, d);
                } else {
                    errors += 1;
                }
            }
        }
        errors
    }

    /// Whether every running map's pool rows correspond one to one, with equal values, in
    /// every connected company: when they do, the convergence invariant must hold.
    pub fn converged(&self) -> bool {
        let running = |k: &Key| self.state(Table::of(&k.1).map()) == MapState::Running;
        COMPANIES.iter().filter(|c| self.syncs(c)).all(|company| {
            let mine = |k: &Key| k.0 == *company;
            let groups = self.state(MAP) != MapState::Running
                || self.fno.iter().filter(|(k, _)| mine(k)).collect::<Vec<_>>()
                    == self
                        .dv
                        .iter()
                        .filter(|(k, _)| mine(k))
                        .map(|(k, r)| (k, &r.description))
                        .collect::<Vec<_>>();
            let fno: Vec<(&Key, Customer)> = self
                .fno_customers
                .iter()
                .filter(|(k, _)| mine(k) && running(k))
                .map(|(k, c)| (k, c.clone()))
                .collect();
            let dv: Vec<(&Key, Customer)> = self
                .dv_customers
                .iter()
                .filter(|(k, _)| mine(k) && running(k))
                .map(|(k, d)| {
                    let group = self.dv_group_id(d.group);
                    let name = d.name.clone();
                    (k, Customer { name, group })
                })
                .collect();
            groups && fno == dv
        })
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
        let customer = |(company, account): &Key, name: &str, group: String| CustomerRow {
            company: company.clone(),
            account: account.clone(),
            name: name.to_string(),
            group,
        };
        View {
            fno: rows(self.fno.iter().collect()),
            dataverse: rows(self.dv.iter().map(|(k, r)| (k, &r.description)).collect()),
            fno_customers: self
                .fno_customers
                .iter()
                .map(|(k, c)| customer(k, &c.name, c.group.clone()))
                .collect(),
            dv_customers: self
                .dv_customers
                .iter()
                .map(|(k, d)| customer(k, &d.name, self.dv_group_id(d.group)))
                .collect(),
            legal_entities: self.connected.iter().cloned().collect(),
            maps: MAPS
                .iter()
                .map(|m| (m.to_string(), self.state(m).text().to_string()))
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

/// A customer as both sides show it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CustomerRow {
    /// The company code (upper case).
    pub company: String,
    /// The customer account (account number, contact person id).
    pub account: String,
    /// The organisation's name or the person's last name.
    pub name: String,
    /// The customer group id (on Dataverse, of the group the lookup points at; empty when
    /// the lookup is).
    pub group: String,
}

/// The observable state the model predicts: the pool's groups and customers on both sides
/// (sorted), the connection's legal entities, the maps' states, the customer-groups queue
/// and catch-up errors, and the fault plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The pool's groups in F&O.
    pub fno: Vec<GroupRow>,
    /// The pool's groups in Dataverse.
    pub dataverse: Vec<GroupRow>,
    /// The pool's customers in F&O.
    #[serde(default)]
    pub fno_customers: Vec<CustomerRow>,
    /// The pool's accounts and contacts in Dataverse.
    #[serde(default)]
    pub dv_customers: Vec<CustomerRow>,
    /// The legal entities in the connection (sorted).
    #[serde(default)]
    pub legal_entities: Vec<String>,
    /// Each published map's state.
    pub maps: BTreeMap<String, String>,
    /// Changes queued on the pool's maps.
    pub queued: usize,
    /// Catch-up errors on the pool's maps.
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
        let customers = |r: &[CustomerRow]| {
            r.iter()
                .map(|c| format!("{}/{}={} ({})", c.company, c.account, c.name, c.group))
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
            "F&O customers",
            format!("[{}]", customers(&self.fno_customers)),
            format!("[{}]", customers(&predicted.fno_customers)),
        );
        part(
            "Dataverse customers",
            format!("[{}]", customers(&self.dv_customers)),
            format!("[{}]", customers(&predicted.dv_customers)),
        );
        part(
            "legal entities",
            format!("{:?}", self.legal_entities),
            format!("{:?}", predicted.legal_entities),
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
        // Rows diverge for documented reasons (a failed catch-up stays until retried, a
        // company added back without initial writes keeps what changed meanwhile, a lookup
        // whose group was deleted), so the invariant is held only where the model says the
        // running maps correspond; the pool's rows are compared above anyway.
        if model.converged() {
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
    service(rig, "DualWriteMapService", operation, args)
}

/// A dual-write service operation, answered whatever its status.
fn service(rig: &Rig, service: &str, operation: &str, args: Value) -> Result<Reply> {
    let c = &rig.client;
    let base = c.fno_base(&rig.env);
    c.send_as(
        &base,
        "POST",
        &format!("{base}/api/services/DualWriteServices/{service}/{operation}"),
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
    dv_find(
        rig,
        "msdyn_customergroups",
        "msdyn_customergroupid",
        "msdyn_groupid",
        company,
        group,
    )
}

/// The Dataverse table of a pool customer: entity set, id column, key column, name column.
fn customer_table(account: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    match Table::of(account) {
        Table::Contacts => ("contacts", "contactid", "msdyn_contactpersonid", "lastname"),
        _ => ("accounts", "accountid", "accountnumber", "name"),
    }
}

/// The id of the row of `set` whose `key` is `value` in `company`, looked up as a client
/// would.
fn dv_find(
    rig: &Rig,
    set: &str,
    id: &str,
    key: &str,
    company: &str,
    value: &str,
) -> Result<Option<String>> {
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
        &format!("{set}?$select={id}&$filter={key} eq '{value}' and _msdyn_company_value eq {company_id}"),
    )?;
    Ok(rows
        .first()
        .and_then(|r| r[id].as_str())
        .map(str::to_string))
}

/// Runs one operation; answers the status of its last request.
fn execute(rig: &Rig, op: &Op) -> Result<u16> {
    let status = match op {
        Op::FnoCreate { .. } | Op::FnoUpdate { .. } | Op::FnoDelete { .. } => execute_fno(rig, op)?,
        Op::DvCreate { .. } | Op::DvUpdate { .. } | Op::DvDelete { .. } => execute_dv(rig, op)?,
        Op::FnoCustomerCreate { .. }
        | Op::FnoCustomerUpdate { .. }
        | Op::FnoCustomerDelete { .. } => execute_fno_customer(rig, op)?,
        Op::DvCustomerCreate { .. } | Op::DvCustomerUpdate { .. } | Op::DvCustomerDelete { .. } => {
            execute_dv_customer(rig, op)?
        }
        Op::RemoveLegalEntity { company } => {
            service(
                rig,
                "DualWriteLegalEntityService",
                "removeLegalEntity",
                json!({ "legalEntity": company }),
            )?
            .status
        }
        Op::AddLegalEntity {
            company,
            skip_initial_writes,
        } => {
            service(
                rig,
                "DualWriteLegalEntityService",
                "addLegalEntities",
                json!({"legalEntities": [company], "skipInitialWrites": skip_initial_writes}),
            )?
            .status
        }
        Op::Pause { map } => map_service(rig, "pauseMap", json!({ "map": map }))?.status,
        Op::Resume { map } => map_service(rig, "resumeMap", json!({ "map": map }))?.status,
        Op::Stop { map } => map_service(rig, "stopMap", json!({ "map": map }))?.status,
        Op::Run { master, map } => {
            map_service(
                rig,
                "runMaps",
                json!({"maps": [{"map": map, "initialSync": true, "master": master}]}),
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

/// A customer write in F&O through `CustomersV3`: an organisation's name or a person's last
/// name, and the customer group.
fn execute_fno_customer(rig: &Rig, op: &Op) -> Result<u16> {
    let (c, env) = (&rig.client, &rig.env);
    let fields = |account: &str, name: &str, group: &str| {
        let name_field = match Table::of(account) {
            Table::Contacts => "PersonLastName",
            _ => "OrganizationName",
        };
        let mut body = serde_json::Map::new();
        body.insert(name_field.into(), json!(name));
        body.insert("CustomerGroupId".into(), json!(group));
        body
    };
    let path = |company: &str, account: &str| {
        format!(
            "CustomersV3(dataAreaId='{}',CustomerAccount='{account}')",
            company.to_lowercase()
        )
    };
    let reply = match op {
        Op::FnoCustomerCreate {
            company,
            account,
            name,
            group,
        } => {
            let mut body = fields(account, name, group);
            body.insert("dataAreaId".into(), json!(company.to_lowercase()));
            body.insert("CustomerAccount".into(), json!(account));
            let party = match Table::of(account) {
                Table::Contacts => "Person",
                _ => "Organization",
            };
            body.insert("PartyType".into(), json!(party));
            c.fno("POST", env, "CustomersV3", Some(&Value::Object(body)))?
        }
        Op::FnoCustomerUpdate {
            company,
            account,
            name,
            group,
        } => c.fno(
            "PATCH",
            env,
            &path(company, account),
            Some(&Value::Object(fields(account, name, group))),
        )?,
        Op::FnoCustomerDelete { company, account } => {
            c.fno("DELETE", env, &path(company, account), None)?
        }
        other => unreachable!("not an F&O customer write: {other:?}"),
    };
    Ok(reply.status)
}

/// An account or contact write through the Web API, its group lookup bound by the group's
/// id; updates and deletes find the row by its keys first.
fn execute_dv_customer(rig: &Rig, op: &Op) -> Result<u16> {
    let (c, org) = (&rig.client, &rig.org);
    let existing = |company: &str, account: &str| -> Result<String> {
        let (set, id, key, _) = customer_table(account);
        dv_find(rig, set, id, key, company, account)?
            .ok_or_else(|| anyhow!("Dataverse has no customer {account} in {company}"))
    };
    let fields = |company: &str, account: &str, name: &str, group: &str| -> Result<Value> {
        let (_, _, _, name_column) = customer_table(account);
        let group_id = dv_id(rig, company, group)?
            .ok_or_else(|| anyhow!("Dataverse has no group {group} in {company}"))?;
        let mut body = serde_json::Map::new();
        body.insert(name_column.into(), json!(name));
        body.insert(
            "msdyn_customergroupid@odata.bind".into(),
            json!(format!("/msdyn_customergroups({group_id})")),
        );
        Ok(Value::Object(body))
    };
    let reply = match op {
        Op::DvCustomerCreate {
            company,
            account,
            name,
            group,
        } => {
            let (set, _, key, _) = customer_table(account);
            let mut body = fields(company, account, name, group)?;
            body[key] = json!(account);
            body["msdyn_company@odata.bind"] =
                json!(format!("/cdm_companies(cdm_companycode='{company}')"));
            // Each map's Dataverse filter: accounts of type customer, sellable contacts.
            match Table::of(account) {
                Table::Contacts => body["msdyn_sellable"] = json!(true),
                _ => body["customertypecode"] = json!(3),
            }
            c.dv("POST", org, set, Some(&body))?
        }
        Op::DvCustomerUpdate {
            company,
            account,
            name,
            group,
        } => {
            let (set, _, _, _) = customer_table(account);
            let body = fields(company, account, name, group)?;
            let id = existing(company, account)?;
            c.dv("PATCH", org, &format!("{set}({id})"), Some(&body))?
        }
        Op::DvCustomerDelete { company, account } => {
            let (set, _, _, _) = customer_table(account);
            let id = existing(company, account)?;
            c.dv("DELETE", org, &format!("{set}({id})"), None)?
        }
        other => unreachable!("not a Dataverse customer write: {other:?}"),
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
    let customer_pool = |a: &str| ORGANISATIONS.contains(&a) || PERSONS.contains(&a);
    let mut fno_customers: Vec<CustomerRow> = fno_all(
        rig,
        "CustomersV3?cross-company=true&$filter=CustomerAccount eq 'MB*'",
    )?
    .iter()
    .filter(|r| customer_pool(r["CustomerAccount"].as_str().unwrap_or_default()))
    .map(|r| {
        let account = r["CustomerAccount"].as_str().unwrap_or_default();
        let name = match Table::of(account) {
            Table::Contacts => &r["PersonLastName"],
            _ => &r["OrganizationName"],
        };
        CustomerRow {
            company: r["dataAreaId"].as_str().unwrap_or_default().to_uppercase(),
            account: account.into(),
            name: name.as_str().unwrap_or_default().into(),
            group: r["CustomerGroupId"].as_str().unwrap_or_default().into(),
        }
    })
    .collect();
    fno_customers.sort();
    // Every Dataverse group by id, so that a lookup shows the group it points at.
    let group_ids: BTreeMap<String, String> = rig
        .client
        .dv_all(
            &rig.org,
            "msdyn_customergroups?$select=msdyn_customergroupid,msdyn_groupid",
        )?
        .iter()
        .filter_map(|r| {
            Some((
                r["msdyn_customergroupid"].as_str()?.to_string(),
                r["msdyn_groupid"].as_str()?.to_string(),
            ))
        })
        .collect();
    let mut dv_customers = Vec::new();
    for account in ["MBA1", "MBP1"] {
        let (set, _, key, name) = customer_table(account);
        let rows = rig.client.dv_all(
            &rig.org,
            &format!("{set}?$select={key},{name},_msdyn_company_value,_msdyn_customergroupid_value&$filter=startswith({key},'MB')"),
        )?;
        dv_customers.extend(
            rows.iter()
                .filter(|r| customer_pool(r[key].as_str().unwrap_or_default()))
                .map(|r| CustomerRow {
                    company: r["_msdyn_company_value"]
                        .as_str()
                        .and_then(|id| rig.companies.get(id))
                        .cloned()
                        .unwrap_or_default(),
                    account: r[key].as_str().unwrap_or_default().into(),
                    name: r[name].as_str().unwrap_or_default().into(),
                    group: match r["_msdyn_customergroupid_value"].as_str() {
                        Some(id) => group_ids.get(id).cloned().unwrap_or_else(|| GONE.into()),
                        None => String::new(),
                    },
                }),
        );
    }
    dv_customers.sort();
    let legal_entities = rig.client.dual_write(
        &rig.env,
        "DualWriteLegalEntityService",
        "getLegalEntities",
        json!({}),
    )?["connected"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_uppercase))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
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
    let (mut queued, mut catch_up_errors) = (0, 0);
    for map in POOL_MAPS {
        let queue = rig.client.dual_write(
            &rig.env,
            "DualWriteMapService",
            "getQueuedRecords",
            json!({ "map": map }),
        )?;
        queued += queue["totalQueuedRecordCount"].as_u64().unwrap_or(0) as usize;
        catch_up_errors += queue["catchUpErrors"].as_array().map_or(0, Vec::len);
    }
    let faults = admin(rig, "GET", "faults", &[])?;
    Ok(View {
        fno,
        dataverse,
        fno_customers,
        dv_customers,
        legal_entities,
        maps,
        queued,
        catch_up_errors,
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
