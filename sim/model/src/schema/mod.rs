//! Product definitions as data: Dataverse table schemas, F&O data entity schemas and the
//! dual-write table-map catalogue. They are JSON files (see `sim/model/data/`) so partners can
//! add their own tables and maps without touching code.

mod dataverse;

pub use dataverse::{DvColumn, DvKey, DvRelationship, DvTable, DvType, RequiredLevel};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The two products a table map joins: where a write starts, which side is master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Finance and Operations.
    #[serde(rename = "FinanceAndOperations")]
    Fno,
    /// Dataverse.
    Dataverse,
}

/// Field types of an F&O data entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FnoType {
    /// Text.
    String,
    /// Whole number.
    Int,
    /// Real number.
    Real,
    /// Enum value (serialised as its name).
    Enum,
    /// Date.
    Date,
}

/// A field of an F&O data entity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FnoField {
    /// The OData property name (`CustomerGroupId`).
    pub name: String,
    /// The label F&O uses in Infolog messages ("Customer group").
    pub label: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: FnoType,
    /// Most characters a text field holds.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// Mandatory: a write without a value fails.
    #[serde(default)]
    pub mandatory: bool,
    /// Enum type name (in namespace Microsoft.Dynamics.DataEntities) and its values.
    #[serde(default)]
    pub enum_name: Option<String>,
    /// The enum's values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Value written when a create leaves the field out.
    #[serde(default)]
    pub default: Option<Value>,
}

/// A foreign key the entity's validateWrite checks ("not found in the related table").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FnoRelation {
    /// The field holding the foreign key.
    pub field: String,
    /// The related entity set.
    pub entity_set: String,
    /// The field of the related entity it must match.
    pub target_field: String,
}

/// An F&O data entity definition.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FnoEntity {
    /// Entity type name (`CustomerV3`), read through the entity set (`CustomersV3`).
    pub name: String,
    /// The entity set, as in URLs (case-sensitive).
    pub entity_set: String,
    /// Label used by dual-write ("Customers V3").
    pub label: String,
    /// Backing table and its label, as Infolog names them ("Customer groups (CustGroup)").
    pub table_name: String,
    /// The backing table's label.
    pub table_label: String,
    /// The X++ entity class, as write errors name it (`CustCustomerGroupEntity`).
    pub entity_class: String,
    /// Whether rows belong to a company (`dataAreaId`).
    pub company_specific: bool,
    /// Key fields, `dataAreaId` first for company-specific entities.
    pub keys: Vec<String>,
    /// The fields.
    pub fields: Vec<FnoField>,
    /// The foreign keys validateWrite checks.
    #[serde(default)]
    pub relations: Vec<FnoRelation>,
}

impl FnoEntity {
    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&FnoField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Dual-write map field directions, as the mapping page writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// `=`: both ways.
    #[serde(rename = "=")]
    Both,
    /// `><`: both ways through a value map.
    #[serde(rename = "><")]
    BothTransformed,
    /// `>`: F&O to Dataverse only.
    #[serde(rename = ">")]
    ToDataverse,
    /// `<`: Dataverse to F&O only.
    #[serde(rename = "<")]
    ToFno,
    /// `>>`: a default written to Dataverse on create.
    #[serde(rename = ">>")]
    DefaultToDataverse,
    /// `<<`: a default written to F&O on create.
    #[serde(rename = "<<")]
    DefaultToFno,
}

impl Direction {
    /// Whether values flow from F&O to Dataverse.
    pub fn flows_to_dataverse(self) -> bool {
        matches!(
            self,
            Direction::Both
                | Direction::BothTransformed
                | Direction::ToDataverse
                | Direction::DefaultToDataverse
        )
    }
    /// Whether values flow from Dataverse to F&O.
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
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    /// The F&O field, or none for a default into Dataverse.
    #[serde(default)]
    pub fno: Option<String>,
    /// The Dataverse column, or none for a default into F&O.
    #[serde(default)]
    pub dv: Option<String>,
    /// Which way values flow.
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
#[serde(deny_unknown_fields)]
pub struct FieldEquals {
    /// The field or column the filter reads.
    pub field: String,
    /// `==`: the value it must have.
    #[serde(default)]
    pub equals: Option<Value>,
    /// `!=`, as in the currencies map's `CURRENCYCODE != "999"`.
    #[serde(default)]
    pub not_equals: Option<Value>,
}

/// A dual-write table map between one F&O entity and one Dataverse table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMap {
    /// Stable id used by the services and scenario files (`customersv3-accounts`).
    pub id: String,
    /// Display name as the dual-write workspace lists it.
    pub name: String,
    /// The map's version.
    pub version: String,
    /// F&O entity set.
    pub fno_entity: String,
    /// Dataverse table logical name.
    pub dv_table: String,
    /// F&O fields whose mapped Dataverse columns, with the company, form the integration key.
    pub key: Vec<String>,
    /// The F&O source filter, as equality tests.
    #[serde(default)]
    pub fno_filter: Vec<FieldEquals>,
    /// The F&O source filter as the designer shows it.
    #[serde(default)]
    pub fno_filter_text: String,
    /// The Dataverse-side filter, as equality tests.
    #[serde(default)]
    pub dv_filter: Vec<FieldEquals>,
    /// The Dataverse-side filter as the designer shows it.
    #[serde(default)]
    pub dv_filter_text: String,
    /// The field mappings.
    pub fields: Vec<FieldMap>,
    /// Ids of maps this one needs running first (lookups into their tables).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Single-threaded tables (initial-sync guidance); affects the DV→F&O window.
    #[serde(default)]
    pub single_threaded: bool,
}

impl TableMap {
    /// The mapping of an F&O field.
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
#[serde(deny_unknown_fields)]
pub struct SolutionDef {
    /// The solution's unique name.
    pub uniquename: String,
    /// Its display name.
    pub friendlyname: String,
    /// Its version.
    pub version: String,
    /// Which install brings it.
    pub group: SolutionGroup,
}
