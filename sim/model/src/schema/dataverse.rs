//! Dataverse table definitions: columns with their types, lengths, ranges and choices,
//! alternate keys and many-to-one relationships. One definition feeds everything that
//! describes or checks a table: writes, reads and their annotations, `$metadata`, and the
//! `EntityDefinitions` metadata service.
//!
//! A table file names the columns that make the table what it is. [`DvTable::complete`] adds
//! the columns Dataverse gives every table of its kind (row version, created and modified
//! on and by, state and status, and for user- or team-owned tables the owner columns) and a
//! relationship for every lookup that names none, as the platform does when a table is made.

use crate::ids::derived_guid;
use crate::row::{Column, Row};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// Column types of a Dataverse table (the metadata's `AttributeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DvType {
    /// Single line of text.
    String,
    /// Multiple lines of text.
    Memo,
    /// Whole number.
    Integer,
    /// Big integer (the row version).
    BigInt,
    /// Decimal number.
    Decimal,
    /// Floating point number.
    Double,
    /// Currency.
    Money,
    /// Two options (yes/no).
    Boolean,
    /// Choice.
    Picklist,
    /// The record's state (`statecode`).
    State,
    /// The record's status reason (`statuscode`), each value belonging to one state.
    Status,
    /// Lookup to one table.
    Lookup,
    /// Lookup to an account or a contact.
    Customer,
    /// The owner: a user or a team.
    Owner,
    /// A GUID that is not a lookup.
    Uniqueidentifier,
    /// Date and time.
    Datetime,
}

impl DvType {
    /// Lookups of every kind: the row holds `_<name>_value`, writes bind through `@odata.bind`.
    pub fn is_lookup(self) -> bool {
        matches!(self, DvType::Lookup | DvType::Customer | DvType::Owner)
    }

    /// Choices of every kind: a whole number with a label.
    pub fn is_choice(self) -> bool {
        matches!(self, DvType::Picklist | DvType::State | DvType::Status)
    }

    /// The metadata's `AttributeType` name.
    pub fn attribute_type(self) -> &'static str {
        match self {
            DvType::String => "String",
            DvType::Memo => "Memo",
            DvType::Integer => "Integer",
            DvType::BigInt => "BigInt",
            DvType::Decimal => "Decimal",
            DvType::Double => "Double",
            DvType::Money => "Money",
            DvType::Boolean => "Boolean",
            DvType::Picklist => "Picklist",
            DvType::State => "State",
            DvType::Status => "Status",
            DvType::Lookup => "Lookup",
            DvType::Customer => "Customer",
            DvType::Owner => "Owner",
            DvType::Uniqueidentifier => "Uniqueidentifier",
            DvType::Datetime => "DateTime",
        }
    }

    /// The derived metadata type a typed cast names (`PicklistAttributeMetadata`).
    pub fn metadata_type(self) -> &'static str {
        match self {
            DvType::String => "StringAttributeMetadata",
            DvType::Memo => "MemoAttributeMetadata",
            DvType::Integer => "IntegerAttributeMetadata",
            DvType::BigInt => "BigIntAttributeMetadata",
            DvType::Decimal => "DecimalAttributeMetadata",
            DvType::Double => "DoubleAttributeMetadata",
            DvType::Money => "MoneyAttributeMetadata",
            DvType::Boolean => "BooleanAttributeMetadata",
            DvType::Picklist => "PicklistAttributeMetadata",
            DvType::State => "StateAttributeMetadata",
            DvType::Status => "StatusAttributeMetadata",
            DvType::Lookup | DvType::Customer | DvType::Owner => "LookupAttributeMetadata",
            DvType::Uniqueidentifier => "UniqueIdentifierAttributeMetadata",
            DvType::Datetime => "DateTimeAttributeMetadata",
        }
    }

    /// The CSDL type of the property a row carries.
    pub fn edm_type(self) -> &'static str {
        match self {
            DvType::String | DvType::Memo => "Edm.String",
            DvType::Integer | DvType::Picklist | DvType::State | DvType::Status => "Edm.Int32",
            DvType::BigInt => "Edm.Int64",
            DvType::Decimal | DvType::Money => "Edm.Decimal",
            DvType::Double => "Edm.Double",
            DvType::Boolean => "Edm.Boolean",
            DvType::Lookup | DvType::Customer | DvType::Owner | DvType::Uniqueidentifier => {
                "Edm.Guid"
            }
            DvType::Datetime => "Edm.DateTimeOffset",
        }
    }
}

/// How much a form insists on a value (the metadata's `RequiredLevel`). Only
/// `SystemRequired` is enforced on writes, as the platform does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequiredLevel {
    /// Optional.
    #[default]
    None,
    /// Business recommended.
    Recommended,
    /// Business required (forms only).
    ApplicationRequired,
    /// The platform refuses a write without it.
    SystemRequired,
}

/// A column of a Dataverse table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DvColumn {
    /// Logical name. For a lookup this is the navigation property; the row holds `_<name>_value`.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: DvType,
    /// The label forms show; the logical name when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Most characters a text column holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Smallest value of a number column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_value: Option<f64>,
    /// Largest value of a number column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_value: Option<f64>,
    /// Digits after the decimal point of a decimal, double or money column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u32>,
    /// Text format (`Email`, `Phone`, `Url`, ...) or date format (`DateOnly`, `DateAndTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// System-required: a create must give it and nothing may clear it.
    #[serde(default)]
    pub required: bool,
    /// The required level metadata reports (SystemRequired when `required`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_level: Option<RequiredLevel>,
    /// Target table (logical name) of a lookup to one table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Target tables of a customer or owner lookup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Choice labels by value, for formatted values and option set metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// For a status column: the state each status value belongs to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub states: BTreeMap<String, i64>,
    /// The global option set a choice uses, when it is not local to the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_option_set: Option<String>,
    /// The value a create without this column stores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    /// Set by the platform; a client may not write it.
    #[serde(default)]
    pub read_only: bool,
}

impl DvColumn {
    /// A column of `kind` with nothing else set.
    pub fn new(name: &str, kind: DvType) -> DvColumn {
        DvColumn {
            name: name.to_string(),
            kind,
            display_name: None,
            max_length: None,
            min_value: None,
            max_value: None,
            precision: None,
            format: None,
            required: false,
            required_level: None,
            target: None,
            targets: Vec::new(),
            options: BTreeMap::new(),
            states: BTreeMap::new(),
            global_option_set: None,
            default_value: None,
            read_only: false,
        }
    }

    fn read_only(mut self) -> DvColumn {
        self.read_only = true;
        self
    }

    fn targeting(mut self, target: &str) -> DvColumn {
        self.target = Some(target.to_string());
        self
    }

    /// The attribute name a row stores this column under.
    pub fn attribute(&self) -> String {
        if self.kind.is_lookup() {
            format!("_{}_value", self.name)
        } else {
            self.name.clone()
        }
    }

    /// The tables a lookup may point at.
    pub fn targets(&self) -> Vec<&str> {
        if self.targets.is_empty() {
            self.target.iter().map(String::as_str).collect()
        } else {
            self.targets.iter().map(String::as_str).collect()
        }
    }

    /// The required level metadata reports.
    pub fn level(&self) -> RequiredLevel {
        if self.required {
            RequiredLevel::SystemRequired
        } else {
            self.required_level.unwrap_or_default()
        }
    }

    /// The label of a choice value.
    pub fn label(&self, value: i64) -> Option<&str> {
        // The number's text in a buffer on the stack: this runs for every choice a write sets.
        let mut digits = itoa::Buffer::new();
        self.options.get(digits.format(value)).map(String::as_str)
    }
}

/// An alternate key of a Dataverse table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DvKey {
    /// The key's name, as duplicate-key errors name it.
    pub name: String,
    /// Row attribute names (`_x_value` for lookups) that make up the key.
    pub columns: Vec<String>,
}

/// A many-to-one relationship: a lookup column of this table pointing at another table, and
/// the navigation properties on both sides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DvRelationship {
    /// The relationship's schema name (`account_primary_contact`).
    pub schema_name: String,
    /// The lookup column of this table (`primarycontactid`).
    pub referencing_attribute: String,
    /// The table pointed at (`contact`).
    pub referenced_entity: String,
    /// The single-valued navigation property on this table (`primarycontactid`,
    /// `parentcustomerid_account`); `@odata.bind` and `$expand` use it.
    pub referencing_nav: String,
    /// The collection-valued navigation property on the table pointed at.
    pub referenced_nav: String,
}

/// A Dataverse table definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DvTable {
    /// The logical name (`account`).
    pub logical_name: String,
    /// The entity set the Web API serves it under (`accounts`).
    pub entity_set: String,
    /// The primary id column (`accountid`).
    pub primary_id: String,
    /// The primary name column, which lookups are shown by.
    #[serde(default)]
    pub primary_name: Option<String>,
    /// The schema name (`Account`); the logical name when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_name: Option<String>,
    /// The singular label (`Account`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The plural label (`Accounts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_collection_name: Option<String>,
    /// What the table is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The entity type code (1 for account, 2 for contact); custom tables get one from 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_type_code: Option<i64>,
    /// The cdm_company lookup that stripes this table by company, if it is company-specific.
    #[serde(default)]
    pub company_lookup: Option<String>,
    /// User- or team-owned tables carry ownerid and owningbusinessunit.
    #[serde(default)]
    pub owned: bool,
    /// Tables without a state (users, teams, business units, solutions) have no
    /// statecode/statuscode.
    #[serde(default)]
    pub no_state: bool,
    /// The columns.
    pub columns: Vec<DvColumn>,
    /// The alternate keys.
    #[serde(default)]
    pub alternate_keys: Vec<DvKey>,
    /// The many-to-one relationships of the lookups.
    #[serde(default)]
    pub many_to_one: Vec<DvRelationship>,
    /// Column positions by logical name and by row attribute, built by [`DvTable::complete`].
    #[serde(skip)]
    index: ColumnIndex,
}

#[derive(Debug, Clone, Default)]
struct ColumnIndex {
    by_name: HashMap<String, usize, foldhash::fast::FixedState>,
    by_attribute: HashMap<String, usize, foldhash::fast::FixedState>,
    /// Row attribute names with their column positions, in name order: the order a
    /// record's attributes are written in.
    in_attribute_order: Vec<(String, usize)>,
    /// What a create starts from (see [`DvTable::new_row`]).
    created: Row,
}

/// Row attribute names with column positions, in name order, each name once (with the
/// last column of that name, as a record shows it).
fn attribute_order(columns: &[DvColumn]) -> Vec<(String, usize)> {
    let mut order: Vec<(String, usize)> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.attribute(), i))
        .collect();
    order.sort();
    order.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            earlier.1 = later.1;
        }
        same
    });
    order
}

impl DvTable {
    /// A column by logical name (the navigation property for a lookup).
    pub fn column(&self, name: &str) -> Option<&DvColumn> {
        if self.index.by_name.is_empty() {
            return self.columns.iter().find(|c| c.name == name);
        }
        self.index.by_name.get(name).map(|&i| &self.columns[i])
    }

    /// The column stored under a row attribute name (`_x_value` finds lookup `x`).
    pub fn column_by_attribute(&self, attribute: &str) -> Option<&DvColumn> {
        if self.index.by_attribute.is_empty() {
            return self.columns.iter().find(|c| c.attribute() == attribute);
        }
        self.index
            .by_attribute
            .get(attribute)
            .map(|&i| &self.columns[i])
    }

    /// Each column's row attribute name (`_x_value` for lookup `x`) with the column, in
    /// name order.
    pub fn in_attribute_order(&self) -> Cow<'_, [(String, usize)]> {
        if self.index.by_name.is_empty() {
            return Cow::Owned(attribute_order(&self.columns));
        }
        Cow::Borrowed(&self.index.in_attribute_order)
    }

    /// The row attribute of the company lookup (`_msdyn_company_value`), if striped.
    pub fn company_attribute(&self) -> Option<String> {
        self.company_lookup.as_ref().map(|c| format!("_{c}_value"))
    }

    /// The schema name (`Account`).
    pub fn schema(&self) -> &str {
        self.schema_name.as_deref().unwrap_or(&self.logical_name)
    }

    /// The table's `MetadataId`, stable for its logical name.
    pub fn metadata_id(&self) -> String {
        derived_guid(&["EntityMetadata", &self.logical_name])
    }

    /// The relationship behind a single-valued navigation property, with the tables a bind
    /// through it may name (a user or a team for the owner).
    pub fn navigation(&self, nav: &str) -> Option<(&DvRelationship, &DvColumn)> {
        let rel = self.many_to_one.iter().find(|r| r.referencing_nav == nav)?;
        Some((rel, self.column(&rel.referencing_attribute)?))
    }

    /// Adds the columns Dataverse gives every table of this kind and a relationship for each
    /// lookup without one, then indexes the columns. Idempotent.
    pub fn complete(&mut self) {
        let system = [
            DvColumn::new("versionnumber", DvType::BigInt).read_only(),
            DvColumn::new("createdon", DvType::Datetime).read_only(),
            DvColumn::new("modifiedon", DvType::Datetime).read_only(),
            DvColumn::new("createdby", DvType::Lookup)
                .targeting("systemuser")
                .read_only(),
            DvColumn::new("modifiedby", DvType::Lookup)
                .targeting("systemuser")
                .read_only(),
        ];
        for column in system {
            self.add_missing(column);
        }
        if !self.no_state {
            let mut state = DvColumn::new("statecode", DvType::State);
            state.options = choices(&[(0, "Active"), (1, "Inactive")]);
            state.default_value = Some(Value::from(0));
            self.add_missing(state);
            let mut status = DvColumn::new("statuscode", DvType::Status);
            status.options = choices(&[(1, "Active"), (2, "Inactive")]);
            status.states = [("1".to_string(), 0), ("2".to_string(), 1)].into();
            status.default_value = Some(Value::from(1));
            self.add_missing(status);
        }
        if self.owned {
            let mut owner = DvColumn::new("ownerid", DvType::Owner);
            owner.targets = vec!["systemuser".into(), "team".into()];
            owner.required_level = Some(RequiredLevel::SystemRequired);
            self.add_missing(owner);
            for (name, target) in [
                ("owningbusinessunit", "businessunit"),
                ("owninguser", "systemuser"),
                ("owningteam", "team"),
            ] {
                self.add_missing(
                    DvColumn::new(name, DvType::Lookup)
                        .targeting(target)
                        .read_only(),
                );
            }
        }
        self.add_relationships();
        self.index = ColumnIndex {
            by_name: self
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect(),
            by_attribute: self
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.attribute(), i))
                .collect(),
            in_attribute_order: attribute_order(&self.columns),
            created: self.defaults(),
        };
    }

    /// The row a create starts from: columns with a default hold it, and two-option
    /// columns hold No unless the table says otherwise (a create's own values then replace
    /// them). Worked out once per table, with its column names interned, as every created
    /// row has them.
    pub fn new_row(&self) -> Row {
        if self.index.by_name.is_empty() {
            return self.defaults();
        }
        self.index.created.clone()
    }

    fn defaults(&self) -> Row {
        self.columns
            .iter()
            .filter_map(|c| match (&c.default_value, c.kind) {
                (Some(v), _) => Some((c.attribute(), v.clone())),
                (None, DvType::Boolean) => Some((c.name.clone(), Value::Bool(false))),
                _ => None,
            })
            .map(|(name, v)| (Column::schema(&name), v))
            .collect()
    }

    fn add_missing(&mut self, column: DvColumn) {
        if !self.columns.iter().any(|c| c.name == column.name) {
            self.columns.push(column);
        }
    }

    /// One relationship per lookup target that has none: a single-target lookup navigates
    /// by its own name, a customer lookup by `<name>_<target>`, the owner by `ownerid`.
    fn add_relationships(&mut self) {
        let mut added = Vec::new();
        for c in self.columns.iter().filter(|c| c.kind.is_lookup()) {
            if self
                .many_to_one
                .iter()
                .any(|r| r.referencing_attribute == c.name)
            {
                continue;
            }
            let targets = c.targets();
            for target in &targets {
                let (nav, referenced) = match c.kind {
                    DvType::Owner => (c.name.clone(), "owner"),
                    _ if targets.len() > 1 => (format!("{}_{target}", c.name), *target),
                    _ => (c.name.clone(), *target),
                };
                let schema_name = match c.kind {
                    DvType::Owner => format!("owner_{}", self.entity_set),
                    _ if targets.len() > 1 => format!("{}_{}_{target}", self.logical_name, c.name),
                    _ => format!("{}_{}", self.logical_name, c.name),
                };
                if added
                    .iter()
                    .any(|r: &DvRelationship| r.schema_name == schema_name)
                {
                    continue;
                }
                added.push(DvRelationship {
                    referenced_nav: schema_name.clone(),
                    schema_name,
                    referencing_attribute: c.name.clone(),
                    referenced_entity: referenced.to_string(),
                    referencing_nav: nav,
                });
            }
        }
        self.many_to_one.extend(added);
    }
}

fn choices(pairs: &[(i64, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn attributes_come_in_name_order_once_each() {
        let columns = [
            DvColumn::new("name", DvType::String),
            DvColumn::new("parentaccountid", DvType::Lookup).targeting("account"),
            DvColumn::new("accountid", DvType::Uniqueidentifier),
            DvColumn::new("name", DvType::Memo),
        ];
        assert_eq!(
            attribute_order(&columns),
            [
                ("_parentaccountid_value".to_string(), 1),
                ("accountid".to_string(), 2),
                ("name".to_string(), 3),
            ]
        );
    }

    use super::*;

    fn table() -> DvTable {
        serde_json::from_value(serde_json::json!({
            "logical_name": "account", "entity_set": "accounts", "primary_id": "accountid",
            "owned": true,
            "columns": [
                {"name": "accountid", "type": "uniqueidentifier", "read_only": true},
                {"name": "primarycontactid", "type": "lookup", "target": "contact"},
                {"name": "parentcustomerid", "type": "customer", "targets": ["account", "contact"]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn completion_adds_system_columns_and_relationships_once() {
        let mut t = table();
        t.complete();
        t.complete();
        for name in [
            "versionnumber",
            "statecode",
            "statuscode",
            "ownerid",
            "owningteam",
            "modifiedby",
        ] {
            assert!(t.column(name).is_some(), "{name}");
        }
        assert_eq!(
            t.columns.iter().filter(|c| c.name == "statecode").count(),
            1
        );
        assert_eq!(
            t.column_by_attribute("_ownerid_value").unwrap().kind,
            DvType::Owner
        );
        let (rel, col) = t.navigation("parentcustomerid_contact").unwrap();
        assert_eq!(
            (rel.referenced_entity.as_str(), col.name.as_str()),
            ("contact", "parentcustomerid")
        );
        assert_eq!(
            t.navigation("primarycontactid")
                .unwrap()
                .0
                .referenced_entity,
            "contact"
        );
        assert_eq!(
            t.navigation("ownerid").unwrap().1.targets(),
            vec!["systemuser", "team"]
        );
        assert_eq!(
            t.many_to_one
                .iter()
                .filter(|r| r.referencing_attribute == "ownerid")
                .count(),
            1
        );
    }
}
