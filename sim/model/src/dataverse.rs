//! A Dataverse environment: tables of rows, solutions, business units, teams and users, and
//! the platform behaviour of a write (validation, alternate keys, system columns, the
//! cdm_company plug-in). The dual-write runtime wraps these writes in `world.rs`.

use crate::catalogue::Catalogue;
use crate::clock::Instant;
use crate::error::{ErrorKind, SimError, SimResult};
use crate::ids::Ids;
use crate::schema::{DvColumn, DvTable, DvType};
use crate::store::{IndexKeys, Row, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The geography every simulated Dataverse environment is in.
pub const GEOGRAPHY: &str = "unitedstates";

/// One Dataverse environment (an organization) and everything stored in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DvEnv {
    /// Unique organization name; also the first path segment of its base URL.
    pub org: String,
    /// The organization id WhoAmI answers.
    pub organization_id: String,
    /// The Entra tenant the organization belongs to.
    pub tenant_id: String,
    /// The geography it was created in; a link from LCS needs the same one.
    pub geography: String,
    /// Created with "Enable Dynamics 365 apps".
    pub d365_apps_enabled: bool,
    /// DualWriteRegistration.Plugins and DualWriteRuntime.Plugins steps enabled.
    pub dual_write_plugins_enabled: bool,
    /// The root business unit, parent of every company's business unit.
    pub root_business_unit: String,
    /// The F&O environment linked through the Power Platform integration.
    pub fno_integration: Option<String>,
    /// The organization's base currency (a transactioncurrency id); records with a
    /// currency lookup default to it, as Dataverse does.
    #[serde(default)]
    pub base_currency: Option<String>,
    /// The last row version given out; each write takes the next (the numeric etag).
    pub next_version: i64,
    /// The tables and their rows.
    pub store: Store,
}

/// Everything a write needs besides the environment itself.
pub struct WriteContext<'a> {
    /// The table definitions the write is checked against.
    pub catalogue: &'a Catalogue,
    /// The id stream new row ids come from.
    pub ids: &'a mut Ids,
    /// When the write happens (createdon, modifiedon).
    pub now: Instant,
    /// systemuserid of the caller (Created by / Modified by).
    pub caller: String,
    /// Owner to set; the caller's own team-less default is the root business unit's team.
    pub owner: Option<String>,
}

/// Who writes and when: what a write stamps on a row besides its version.
pub struct Writer<'a> {
    /// When the write happens (createdon, modifiedon).
    pub now: Instant,
    /// systemuserid of the caller (Created by / Modified by).
    pub caller: &'a str,
    /// Owner to set, as in [`WriteContext::owner`].
    pub owner: Option<&'a str>,
}

/// A create worked out by [`DvEnv::prepare_insert`], waiting for its id.
pub struct PreparedInsert<'c> {
    table: &'c DvTable,
    id: NewId,
    /// The row to store and its index keys, or why the attributes were refused (reported
    /// once the id is taken, as a create takes its id before it checks anything).
    row: SimResult<(Row, Option<IndexKeys>)>,
}

/// Where a create's id comes from.
enum NewId {
    /// The caller named it.
    Given(String),
    /// The next one from the world's id stream.
    Fresh,
}

/// A Dataverse error with its hex code.
pub fn error(kind: ErrorKind, code: &str, message: impl Into<String>) -> SimError {
    SimError::new(kind, code, message)
}

/// `0x80040217`: the record does not exist, in the words live services use.
pub fn does_not_exist(table: &str, id: &str) -> SimError {
    error(
        ErrorKind::NotFound,
        "0x80040217",
        format!("{table} With Id = {id} Does Not Exist"),
    )
}

impl DvEnv {
    /// The definition of a table by logical name, or Dataverse's error for an unknown one.
    pub fn table<'c>(&self, catalogue: &'c Catalogue, logical: &str) -> SimResult<&'c DvTable> {
        catalogue.dv_tables.get(logical).ok_or_else(|| {
            error(
                ErrorKind::NotFound,
                "0x80040217",
                format!("Could not find a table with logical name '{logical}'."),
            )
        })
    }

    /// A row by primary id (ids compare case-insensitively).
    pub fn get(&self, logical: &str, id: &str) -> Option<&Row> {
        // Ids are stored in lower case; one without capitals needs no copy. (Folded over
        // every byte rather than stopping early, so that it compiles to a few wide steps.)
        let capitals = id
            .bytes()
            .fold(false, |any, b| any | b.is_ascii_uppercase() | (b >= 0x80));
        if !capitals {
            return self.store.get(logical, id);
        }
        self.store.get(logical, &id.to_lowercase())
    }

    /// Finds a row by the values of a key (attribute names), comparing case-insensitively.
    pub fn find_by(&self, logical: &str, key: &[(String, Value)]) -> Option<(String, &Row)> {
        let pins: Vec<(&str, Option<&Value>)> =
            key.iter().map(|(k, v)| (k.as_str(), Some(v))).collect();
        self.store
            .candidates(logical, &pins)
            .find(|(_, r)| key.iter().all(|(k, v)| same_value(r.get(k), Some(v))))
            .map(|(id, r)| (id.to_string(), r))
    }

    /// Declares the indexes the model looks rows up by: every alternate key, the company
    /// column, the primary name (what partners filter on most), each map's integration key
    /// and the keys its lookups resolve by (with the company where the table has one).
    /// Idempotent; an import declares them again.
    pub fn declare_indexes(&mut self, catalogue: &Catalogue) {
        for table in catalogue.dv_tables.values() {
            if let Some(name) = &table.primary_name {
                self.store
                    .index(&table.logical_name, std::slice::from_ref(name));
            }
            let company = table.company_attribute();
            for key in &table.alternate_keys {
                self.store.index(&table.logical_name, &key.columns);
            }
            if let Some(attr) = &company {
                self.store
                    .index(&table.logical_name, std::slice::from_ref(attr));
            }
        }
        for map in &catalogue.maps {
            let table = catalogue.dv_tables.get(&map.dv_table);
            let company = table.and_then(|t| t.company_attribute());
            let mut key: Vec<String> = map
                .key
                .iter()
                .filter_map(|k| {
                    map.field_for_fno(k)
                        .and_then(crate::dualwrite::transform::dv_attribute)
                })
                .collect();
            if key.len() == map.key.len() {
                key.extend(company.clone());
                self.store.index(&map.dv_table, &key);
            }
            for field in &map.fields {
                let Some((nav, keyfield)) = field.dv_lookup() else {
                    continue;
                };
                let target = crate::dualwrite::transform::lookup_target(table, nav);
                let mut columns = vec![keyfield.to_string()];
                columns.extend(
                    catalogue
                        .dv_tables
                        .get(target)
                        .and_then(|t| t.company_attribute()),
                );
                self.store.index(target, &columns);
            }
        }
    }

    /// The systemuserid of the application user bound to `application_id`, if any.
    pub fn application_user(&self, application_id: &str) -> Option<String> {
        self.store
            .rows("systemuser")
            .find(|(_, r)| {
                r.get("applicationid")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.eq_ignore_ascii_case(application_id))
            })
            .map(|(id, _)| id.to_string())
    }

    /// The systemuserid dual-write writes to Dataverse as (Modified by), or "" before the
    /// dual-write application users exist.
    pub fn dual_write_user(&self) -> String {
        self.application_user(crate::entra::DUAL_WRITE_RUNTIME_APP)
            .unwrap_or_default()
    }

    /// Creates the dual-write application users if they are missing.
    pub fn ensure_dual_write_app_users(&mut self, ids: &mut Ids) {
        for (app, name) in [
            (crate::entra::DUAL_WRITE_RUNTIME_APP, "Dual-write runtime"),
            (crate::entra::DUAL_WRITE_APP, "Dual-write"),
        ] {
            if self.application_user(app).is_some() {
                continue;
            }
            let id = ids.guid();
            let mut row = crate::store::obj(serde_json::json!({
                "systemuserid": id, "fullname": name, "applicationid": app, "isdisabled": false,
            }));
            row.insert(
                "_businessunitid_value".into(),
                Value::from(self.root_business_unit.clone()),
            );
            self.store.put("systemuser", &id, row);
        }
    }

    /// The table a lookup value points at: the one of its targets holding a row with that id.
    pub fn lookup_target<'c>(&self, col: &'c DvColumn, id: &str) -> Option<&'c str> {
        let targets = if col.targets.is_empty() {
            col.target.as_slice()
        } else {
            &col.targets
        };
        targets
            .iter()
            .map(String::as_str)
            .find(|t| self.get(t, id).is_some())
    }

    /// Whether a solution with this unique name is installed.
    pub fn has_solution(&self, uniquename: &str) -> bool {
        self.store
            .rows("solution")
            .any(|(_, r)| r.get("uniquename").and_then(Value::as_str) == Some(uniquename))
    }

    /// The default team of a business unit.
    pub fn default_team(&self, business_unit: &str) -> Option<String> {
        self.store
            .rows("team")
            .find(|(_, r)| {
                r.get("_businessunitid_value").and_then(Value::as_str) == Some(business_unit)
                    && r.get("isdefault") == Some(&Value::Bool(true))
            })
            .map(|(id, _)| id.to_string())
    }

    /// The cdm_company row with this company code.
    pub fn company_by_code(&self, code: &str) -> Option<(String, &Row)> {
        self.find_by(
            "cdm_company",
            &[("cdm_companycode".to_string(), Value::from(code))],
        )
    }

    /// The company code (`cdm_companycode`) of a cdm_company row.
    pub fn company_code(&self, company_id: &str) -> Option<String> {
        self.get("cdm_company", company_id)
            .and_then(|r| r.get("cdm_companycode"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Creates a row, answering its id. `attrs` are attribute names (`_x_value` for
    /// lookups).
    pub fn insert(
        &mut self,
        cx: &mut WriteContext,
        logical: &str,
        attrs: Row,
    ) -> SimResult<String> {
        let writer = Writer {
            now: cx.now,
            caller: &cx.caller,
            owner: cx.owner.as_deref(),
        };
        let prepared = self.prepare_insert(cx.catalogue, &writer, logical, attrs)?;
        self.finish_insert(cx, logical, prepared)
    }

    /// The part of a create that only reads the environment: the table, where the id comes
    /// from, the checks of the attributes and the row they make with its defaults and
    /// stamps. Initial sync prepares many creates at once this way, on several threads;
    /// [`DvEnv::finish_insert`] then writes them one by one, in order. The reads are of
    /// other tables than the one being written (lookup targets, the owner's team), so a
    /// prepared create finishes as if it had been made at once.
    pub fn prepare_insert<'c>(
        &self,
        catalogue: &'c Catalogue,
        writer: &Writer,
        logical: &str,
        mut attrs: Row,
    ) -> SimResult<PreparedInsert<'c>> {
        let table = self.table(catalogue, logical)?;
        let id = match attrs.remove(&table.primary_id) {
            Some(Value::String(s)) if is_guid(&s) => NewId::Given(s.to_lowercase()),
            Some(Value::Null) | None => NewId::Fresh,
            Some(other) => {
                return Err(error(
                    ErrorKind::BadRequest,
                    "0x80048d19",
                    format!(
                        "Cannot convert the literal '{other}' to the expected type 'Edm.Guid'."
                    ),
                ))
            }
        };
        let row = self.validate(table, &attrs, None).map(|()| {
            let mut row = table.new_row();
            let status_given = status_given(&attrs);
            row.merge(attrs);
            align_state_and_status(table, &mut row, status_given);
            // Records with a currency get the base currency unless they name one. (The
            // currency table's own id column has the name too, but is not a lookup.)
            let currency = table.column("transactioncurrencyid");
            if let (Some(true), Some(base)) =
                (currency.map(|c| c.kind.is_lookup()), &self.base_currency)
            {
                let attr = crate::column!("_transactioncurrencyid_value");
                if row.get(&attr).is_none_or(Value::is_null) {
                    row.insert(attr, Value::from(base.clone()));
                }
            }
            self.stamp_fields(writer, table, &mut row, true);
            // Packed here with stand-ins for the id and version, which the finish sets
            // in place; the index keys do not read them. A stand-in is a number no other
            // row has, so it is never the layout's template value: both are the row's own
            // values from the start, and setting them moves nothing.
            static STAND_IN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let stand_in = Value::from(STAND_IN.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            row.insert(table.primary_id.as_str().into(), stand_in.clone());
            row.insert(crate::column!("versionnumber"), stand_in);
            row.compact();
            let unset = [table.primary_id.as_str(), "versionnumber"];
            let keys = self.store.index_keys(logical, &row, &unset);
            (row, keys)
        });
        Ok(PreparedInsert { table, id, row })
    }

    /// Gives a prepared create its id and version and stores it, checking what depends on
    /// the rows already written: the id and the alternate keys.
    pub fn finish_insert(
        &mut self,
        cx: &mut WriteContext,
        logical: &str,
        prepared: PreparedInsert,
    ) -> SimResult<String> {
        let duplicate = || {
            error(
                ErrorKind::Duplicate,
                "0x80040237",
                "Cannot insert duplicate key.",
            )
        };
        let table = prepared.table;
        let id = match prepared.id {
            NewId::Given(id) => {
                if self.store.get(logical, &id).is_some() {
                    return Err(duplicate());
                }
                id
            }
            // A fresh id is checked as it is stored, in the same descent.
            NewId::Fresh => cx.ids.guid(),
        };
        let (mut row, keys) = prepared.row?;
        row.insert(table.primary_id.as_str().into(), Value::from(id.clone()));
        self.stamp_version(&mut row);
        self.check_keys(table, &id, &row)?;
        if !self.store.put_new_keyed(logical, &id, row, keys) {
            return Err(duplicate());
        }
        if logical == "cdm_company" {
            self.company_plugin(cx, &id)?;
        }
        Ok(id)
    }

    /// [`DvEnv::insert`], answering the row as created (what a Web API create returns).
    pub fn create(
        &mut self,
        cx: &mut WriteContext,
        logical: &str,
        attrs: Row,
    ) -> SimResult<(String, Row)> {
        let id = self.insert(cx, logical, attrs)?;
        let row = self.store.get(logical, &id).cloned().unwrap_or_default();
        Ok((id, row))
    }

    /// Updates a row's attributes; the company of a company-specific row is read-only once set.
    pub fn update(
        &mut self,
        cx: &mut WriteContext,
        logical: &str,
        id: &str,
        attrs: Row,
    ) -> SimResult<Row> {
        let catalogue = cx.catalogue;
        let table = self.table(catalogue, logical)?;
        let id = id.to_lowercase();
        let mut row = self
            .store
            .get(logical, &id)
            .cloned()
            .ok_or_else(|| does_not_exist(logical, &id))?;
        self.validate(table, &attrs, Some(&row))?;
        let status_given = status_given(&attrs);
        for (k, v) in attrs {
            if k == table.primary_id {
                continue;
            }
            row.insert(k, v);
        }
        align_state_and_status(table, &mut row, status_given);
        self.stamp(cx, table, &mut row, false);
        self.check_keys(table, &id, &row)?;
        self.store.put(logical, &id, row.clone());
        Ok(row)
    }

    /// Deletes a row by primary id, answering it as it was. Every lookup that pointed at it
    /// is cleared, as a RemoveLink cascade does (the only cascade dwsim's relationships
    /// have); the owner is not a lookup a delete clears.
    pub fn delete(&mut self, catalogue: &Catalogue, logical: &str, id: &str) -> SimResult<Row> {
        let id = id.to_lowercase();
        let row = self
            .store
            .remove(logical, &id)
            .ok_or_else(|| does_not_exist(logical, &id))?;
        for table in catalogue.dv_tables.values() {
            for col in table
                .columns
                .iter()
                .filter(|c| c.kind == DvType::Lookup && c.targets().contains(&logical))
            {
                let attr = col.attribute();
                let linked: Vec<(String, Row)> = self
                    .store
                    .rows(&table.logical_name)
                    .filter(|(_, r)| {
                        r.get(&attr)
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.eq_ignore_ascii_case(&id))
                    })
                    .map(|(k, r)| (k.to_string(), r.clone()))
                    .collect();
                for (key, mut r) in linked {
                    r.insert(attr.as_str().into(), Value::Null);
                    self.store.put(&table.logical_name, &key, r);
                }
            }
        }
        Ok(row)
    }

    /// A write's attributes against the table: required columns, then each attribute.
    fn validate(&self, table: &DvTable, attrs: &Row, existing: Option<&Row>) -> SimResult<()> {
        check_required(table, attrs, existing)?;
        for (k, v) in attrs {
            let Some(col) = table.column_by_attribute(k) else {
                return Err(error(
                    ErrorKind::BadRequest,
                    "0x80048d19",
                    format!(
                        "Error identified in Payload provided by the user for Entity :'{}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData.ODataException: The property '{k}' does not exist on type 'Microsoft.Dynamics.CRM.{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                        table.logical_name, table.logical_name
                    ),
                ));
            };
            if (col.read_only && k != &table.primary_id) || v.is_null() {
                continue;
            }
            self.check_attribute(table, col, k, v, existing)?;
        }
        Ok(())
    }

    /// One attribute's value: its type, its length, a lookup's target, and a company that
    /// is already set staying as it is.
    fn check_attribute(
        &self,
        table: &DvTable,
        col: &DvColumn,
        k: &str,
        v: &Value,
        existing: Option<&Row>,
    ) -> SimResult<()> {
        let type_ok = match col.kind {
            DvType::String | DvType::Memo | DvType::Datetime => v.is_string(),
            DvType::Uniqueidentifier | DvType::Lookup | DvType::Customer | DvType::Owner => {
                v.as_str().is_some_and(is_guid)
            }
            DvType::Integer
            | DvType::BigInt
            | DvType::Picklist
            | DvType::State
            | DvType::Status => v.is_i64() || v.is_u64(),
            DvType::Decimal | DvType::Double | DvType::Money => v.is_number(),
            DvType::Boolean => v.is_boolean(),
        };
        if !type_ok {
            return Err(error(
                ErrorKind::BadRequest,
                "0x80048d19",
                format!(
                    "Error identified in Payload provided by the user for Entity :'{}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : Microsoft.OData.ODataException: Cannot convert the literal '{v}' to the expected type for the property '{k}'.",
                    table.logical_name
                ),
            ));
        }
        if let (Some(max), Some(s)) = (col.max_length, v.as_str()) {
            if s.chars().count() > max {
                return Err(error(
                    ErrorKind::BadRequest,
                    "0x80044331",
                    format!(
                        "A validation error occurred.  The length of the '{}' attribute of the '{}' entity exceeded the maximum allowed length of '{max}'.",
                        col.name, table.logical_name
                    ),
                ));
            }
        }
        if col.kind.is_lookup() {
            let target_id = v.as_str().unwrap_or_default();
            if self.lookup_target(col, target_id).is_none() {
                let target = col.targets().first().copied().unwrap_or_default();
                return Err(does_not_exist(target, target_id));
            }
        }
        if col.kind.is_choice() && !col.options.is_empty() {
            let value = v.as_i64().unwrap_or_default();
            if col.label(value).is_none() {
                return Err(error(
                    ErrorKind::BadRequest,
                    "0x8004431a",
                    format!(
                        "A validation error occurred. The value {value} of '{}' on record of type '{}' is outside the valid range.",
                        col.name, table.logical_name
                    ),
                ));
            }
        }
        if let (Some(n), Some(min), Some(max)) = (v.as_f64(), col.min_value, col.max_value) {
            if n < min || n > max {
                return Err(error(
                    ErrorKind::BadRequest,
                    "0x80044331",
                    format!(
                        "A validation error occurred. The value of '{}' on record of type '{}' is outside the valid range. Accepted Values: {min} to {max}",
                        col.name, table.logical_name
                    ),
                ));
            }
        }
        if Some(col.name.as_str()) == table.company_lookup.as_deref() {
            if let Some(current) = existing.and_then(|r| r.get(k)).filter(|c| !c.is_null()) {
                if !same_value(Some(current), Some(v)) {
                    return Err(error(
                        ErrorKind::BadRequest,
                        "0x80040265",
                        "The company of a record can't be changed after the record is saved.",
                    ));
                }
            }
        }
        Ok(())
    }

    /// System columns every write maintains.
    fn stamp(&mut self, cx: &WriteContext, table: &DvTable, row: &mut Row, create: bool) {
        self.stamp_version(row);
        let writer = Writer {
            now: cx.now,
            caller: &cx.caller,
            owner: cx.owner.as_deref(),
        };
        self.stamp_fields(&writer, table, row, create);
    }

    /// The next row version.
    fn stamp_version(&mut self, row: &mut Row) {
        self.next_version += 1;
        row.insert(
            crate::column!("versionnumber"),
            Value::from(self.next_version),
        );
    }

    /// The system columns besides the version: when, by whom, and the owner.
    fn stamp_fields(&self, cx: &Writer, table: &DvTable, row: &mut Row, create: bool) {
        let now = cx.now.iso();
        if create {
            row.insert(crate::column!("createdon"), Value::from(now.clone()));
            row.insert(crate::column!("_createdby_value"), Value::from(cx.caller));
        }
        row.insert(crate::column!("modifiedon"), Value::from(now));
        row.insert(crate::column!("_modifiedby_value"), Value::from(cx.caller));
        if table.owned {
            let owner = cx
                .owner
                .map(str::to_string)
                .or_else(|| {
                    row.get("_ownerid_value")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .or_else(|| self.default_team(&self.root_business_unit));
            if let Some(owner) = owner {
                let team_row = self.get("team", &owner);
                let bu = team_row
                    .and_then(|t| t.get("_businessunitid_value").cloned())
                    .unwrap_or_else(|| Value::from(self.root_business_unit.clone()));
                let team = team_row.is_some();
                row.insert(crate::column!("_ownerid_value"), Value::from(owner.clone()));
                row.insert(crate::column!("_owningbusinessunit_value"), bu);
                let (user_owner, team_owner) = if team {
                    (Value::Null, Value::from(owner))
                } else {
                    (Value::from(owner), Value::Null)
                };
                row.insert(crate::column!("_owninguser_value"), user_owner);
                row.insert(crate::column!("_owningteam_value"), team_owner);
            }
        }
        if table.logical_name == "contact" {
            let full = [row.get("firstname"), row.get("lastname")]
                .into_iter()
                .filter_map(|v| v.and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            row.insert(crate::column!("fullname"), Value::from(full));
        }
    }

    /// Alternate keys are unique across the table once every key column has a value.
    fn check_keys(&self, table: &DvTable, id: &str, row: &Row) -> SimResult<()> {
        for key in &table.alternate_keys {
            let pins: Vec<(&str, Option<&Value>)> = key
                .columns
                .iter()
                .map(|c| (c.as_str(), row.get(c).filter(|v| !v.is_null())))
                .collect();
            if pins.iter().any(|(_, v)| v.is_none()) {
                continue;
            }
            let clash = self
                .store
                .candidates(&table.logical_name, &pins)
                .any(|(other, r)| {
                    other != id && pins.iter().all(|(k, v)| same_value(r.get(k), *v))
                });
            if clash {
                return Err(error(
                    ErrorKind::Duplicate,
                    "0x80060892",
                    format!(
                        "Entity Key {} violated. A record with the same value for {} already exists. A duplicate record cannot be created. Select one or more unique values and try again.",
                        key.name,
                        key.columns.join(",")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The dual-write plug-in on cdm_company: a business unit named after the company, with
    /// its default team, and a separate owner team "<code> DW" set as Default owning team.
    fn company_plugin(&mut self, cx: &mut WriteContext, company_id: &str) -> SimResult<()> {
        let Some(code) = self.company_code(company_id) else {
            return Ok(());
        };
        let existing_team = self
            .get("cdm_company", company_id)
            .and_then(|r| r.get("_cdm_defaultowningteam_value"))
            .is_some_and(|v| !v.is_null());
        if existing_team {
            return Ok(());
        }
        let bu = match self.find_by(
            "businessunit",
            &[("name".into(), Value::from(code.clone()))],
        ) {
            Some((id, _)) => id,
            None => {
                let bu = cx.ids.guid();
                let mut row = Row::new();
                row.insert("businessunitid".into(), Value::from(bu.clone()));
                row.insert("name".into(), Value::from(code.clone()));
                row.insert(
                    "_parentbusinessunitid_value".into(),
                    Value::from(self.root_business_unit.clone()),
                );
                self.store.put("businessunit", &bu, row);
                self.put_team(cx, &code, &bu, true);
                bu
            }
        };
        let team_name = format!("{code} DW");
        let team = match self.find_by("team", &[("name".into(), Value::from(team_name.clone()))]) {
            Some((id, _)) => id,
            None => self.put_team(cx, &team_name, &bu, false),
        };
        let mut row = self
            .store
            .get("cdm_company", company_id)
            .cloned()
            .unwrap_or_default();
        row.insert("_cdm_defaultowningteam_value".into(), Value::from(team));
        self.store.put("cdm_company", company_id, row);
        Ok(())
    }

    /// Creates a team in a business unit; a business unit's default team has `is_default`.
    pub fn put_team(
        &mut self,
        cx: &mut WriteContext,
        name: &str,
        bu: &str,
        is_default: bool,
    ) -> String {
        let id = cx.ids.guid();
        let mut row = Row::new();
        row.insert("teamid".into(), Value::from(id.clone()));
        row.insert("name".into(), Value::from(name));
        row.insert("_businessunitid_value".into(), Value::from(bu));
        row.insert("teamtype".into(), Value::from(0));
        row.insert("isdefault".into(), Value::from(is_default));
        self.store.put("team", &id, row);
        id
    }
}

/// Whether `s` is a GUID in its 8-4-4-4-12 hex form, the only form a Dataverse id takes.
pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Dataverse compares strings and GUIDs case-insensitively; numbers by value.
pub fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None | Some(Value::Null), None | Some(Value::Null)) => true,
        (Some(Value::String(x)), Some(Value::String(y))) => x.eq_ignore_ascii_case(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Which of statecode and statuscode a write names.
fn status_given(attrs: &Row) -> (bool, bool) {
    (
        attrs.get("statecode").is_some_and(|v| !v.is_null()),
        attrs.get("statuscode").is_some_and(|v| !v.is_null()),
    )
}

/// A status belongs to one state: a write that names the status moves the state with it,
/// one that names only the state gets that state's first status (as SetState does).
fn align_state_and_status(table: &DvTable, row: &mut Row, (state, status): (bool, bool)) {
    let Some(col) = table.column("statuscode").filter(|c| !c.states.is_empty()) else {
        return;
    };
    if status {
        let code = row
            .get("statuscode")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        if let Some(state) = col.states.get(&code.to_string()) {
            row.insert("statecode".into(), Value::from(*state));
        }
    } else if state {
        let state = row
            .get("statecode")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        let first = col
            .states
            .iter()
            .filter(|(_, s)| **s == state)
            .filter_map(|(code, _)| code.parse::<i64>().ok())
            .min();
        if let Some(code) = first {
            row.insert("statuscode".into(), Value::from(code));
        }
    }
}

/// System-required columns: a create must give them, and nothing may clear them.
fn check_required(table: &DvTable, attrs: &Row, existing: Option<&Row>) -> SimResult<()> {
    for col in table.columns.iter().filter(|c| c.required && !c.read_only) {
        let given = if col.kind.is_lookup() {
            attrs.get(&col.attribute())
        } else {
            attrs.get(&col.name)
        };
        let missing = match existing {
            None => given.is_none_or(Value::is_null),
            Some(_) => given.is_some_and(Value::is_null),
        };
        if missing {
            return Err(error(
                ErrorKind::BadRequest,
                "0x80040203",
                format!(
                    "The attribute '{}' of entity '{}' is required and can't be empty.",
                    col.name, table.logical_name
                ),
            ));
        }
    }
    Ok(())
}
