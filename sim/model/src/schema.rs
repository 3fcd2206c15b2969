//! Product definitions as data: Dataverse table schemas, F&O data entity schemas and the
//! dual-write table-map catalogue. They are JSON files (see `sim/model/data/`) so partners can
//! add their own tables and maps without touching code.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The two products a table map joins: where a write starts, which side is master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    #[serde(rename = "FinanceAndOperations")]
    Fno,
    Dataverse,
}

/// Column types of a Dataverse table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DvType {
    String,
    Memo,
    Integer,
    Decimal,
    Money,
    Boolean,
    Picklist,
    Lookup,
    Uniqueidentifier,
    Datetime,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DvColumn {
    /// Logical name. For a lookup this is the navigation property; the row holds `_<name>_value`.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: DvType,
    #[serde(default)]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub required: bool,
    /// Target table (logical name) of a lookup.
    #[serde(default)]
    pub target: Option<String>,
    /// Picklist labels by value, for formatted-value annotations.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Set by the platform; a client may not write it.
    #[serde(default)]
    pub read_only: bool,
}

impl DvColumn {
    /// The attribute name a row stores this column under.
    pub fn attribute(&self) -> String {
        if self.kind == DvType::Lookup {
            format!("_{}_value", self.name)
        } else {
            self.name.clone()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DvKey {
    pub name: String,
    /// Row attribute names (`_x_value` for lookups) that make up the key.
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DvTable {
    pub logical_name: String,
    pub entity_set: String,
    pub primary_id: String,
    #[serde(default)]
    pub primary_name: Option<String>,
    /// The cdm_company lookup that stripes this table by company, if it is company-specific.
    #[serde(default)]
    pub company_lookup: Option<String>,
    /// User- or team-owned tables carry ownerid and owningbusinessunit.
    #[serde(default)]
    pub owned: bool,
    pub columns: Vec<DvColumn>,
    #[serde(default)]
    pub alternate_keys: Vec<DvKey>,
}

impl DvTable {
    pub fn column(&self, name: &str) -> Option<&DvColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
    /// The column stored under a row attribute name (`_x_value` finds lookup `x`).
    pub fn column_by_attribute(&self, attribute: &str) -> Option<&DvColumn> {
        self.columns.iter().find(|c| c.attribute() == attribute)
    }
    pub fn company_attribute(&self) -> Option<String> {
        self.company_lookup.as_ref().map(|c| format!("_{c}_value"))
    }
}

/// Field types of an F&O data entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FnoType {
    String,
    Int,
    Real,
    Enum,
    Date,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FnoField {
    pub name: String,
    /// The label F&O uses in Infolog messages ("Customer group").
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FnoType,
    #[serde(default)]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub mandatory: bool,
    /// Enum type name (in namespace Microsoft.Dynamics.DataEntities) and its values.
    #[serde(default)]
    pub enum_name: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
    /// Value written when a create leaves the field out.
    #[serde(default)]
    pub default: Option<Value>,
}

/// A foreign key the entity's validateWrite checks ("not found in the related table").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FnoRelation {
    pub field: String,
    pub entity_set: String,
    pub target_field: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FnoEntity {
    /// Entity type name (`CustomerV3`), read through the entity set (`CustomersV3`).
    pub name: String,
    pub entity_set: String,
    /// Label used by dual-write ("Customers V3").
    pub label: String,
    /// Backing table and its label, as Infolog names them ("Customer groups (CustGroup)").
    pub table_name: String,
    pub table_label: String,
    /// The X++ entity class, as write errors name it (`CustCustomerGroupEntity`).
    pub entity_class: String,
    pub company_specific: bool,
    /// Key fields, `dataAreaId` first for company-specific entities.
    pub keys: Vec<String>,
    pub fields: Vec<FnoField>,
    #[serde(default)]
    pub relations: Vec<FnoRelation>,
}

impl FnoEntity {
    pub fn field(&self, name: &str) -> Option<&FnoField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Dual-write map field directions, as the mapping page writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    #[serde(rename = "=")]
    Both,
    #[serde(rename = "><")]
    BothTransformed,
    #[serde(rename = ">")]
    ToDataverse,
    #[serde(rename = "<")]
    ToFno,
    #[serde(rename = ">>")]
    DefaultToDataverse,
    #[serde(rename = "<<")]
    DefaultToFno,
}

impl Direction {
    pub fn flows_to_dataverse(self) -> bool {
        matches!(
            self,
            Direction::Both
                | Direction::BothTransformed
                | Direction::ToDataverse
                | Direction::DefaultToDataverse
        )
    }
    pub fn flows_to_fno(self) -> bool {
        matches!(
            self,
            Direction::Both
                | Direction::BothTransformed
                | Direction::ToFno
                | Direction::DefaultToFno
        )
    }
}

/// One field mapping. `dv` may be a lookup path `nav.keyfield`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldMap {
    #[serde(default)]
    pub fno: Option<String>,
    #[serde(default)]
    pub dv: Option<String>,
    pub dir: Direction,
    /// Pairs of (F&O value, Dataverse value).
    #[serde(default)]
    pub value_map: Vec<(Value, Value)>,
    /// The default transform: written to the destination when there is no source.
    #[serde(default)]
    pub default: Option<Value>,
}

impl FieldMap {
    /// `Some((nav, keyfield))` when the Dataverse side is a lookup path.
    pub fn dv_lookup(&self) -> Option<(&str, &str)> {
        self.dv.as_deref().and_then(|d| d.split_once('.'))
    }
}

/// An equality filter on one side of a map (the simulator's form of a source filter).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldEquals {
    pub field: String,
    #[serde(default)]
    pub equals: Option<Value>,
    /// `!=`, as in the currencies map's `CURRENCYCODE != "999"`.
    #[serde(default)]
    pub not_equals: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableMap {
    /// Stable id used by the services and scenario files (`customersv3-accounts`).
    pub id: String,
    /// Display name as the dual-write workspace lists it.
    pub name: String,
    pub version: String,
    /// F&O entity set.
    pub fno_entity: String,
    /// Dataverse table logical name.
    pub dv_table: String,
    /// F&O fields whose mapped Dataverse columns, with the company, form the integration key.
    pub key: Vec<String>,
    #[serde(default)]
    pub fno_filter: Vec<FieldEquals>,
    #[serde(default)]
    pub fno_filter_text: String,
    #[serde(default)]
    pub dv_filter: Vec<FieldEquals>,
    #[serde(default)]
    pub dv_filter_text: String,
    pub fields: Vec<FieldMap>,
    /// Ids of maps this one needs running first (lookups into their tables).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Single-threaded tables (initial-sync guidance); affects the DV→F&O window.
    #[serde(default)]
    pub single_threaded: bool,
}

impl TableMap {
    pub fn field_for_fno(&self, fno: &str) -> Option<&FieldMap> {
        self.fields.iter().find(|f| f.fno.as_deref() == Some(fno))
    }
}

/// Which install a solution comes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SolutionGroup {
    /// The Dynamics 365 apps of an environment created with them.
    Base,
    /// The dual-write core solution (its plug-ins).
    DualWriteCore,
    /// The dual-write application orchestration solutions (the table maps).
    DualWriteMaps,
}

/// A Dataverse solution as listed in `solutions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SolutionDef {
    pub uniquename: String,
    pub friendlyname: String,
    pub version: String,
    pub group: SolutionGroup,
}
