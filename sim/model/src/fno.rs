//! A Finance and Operations environment: legal entities, data entity rows per company, the
//! Entra applications it trusts. Its dual-write connection belongs to the runtime.
//!
//! The write functions here are the entity's own validateWrite/insert/update/delete; the
//! dual-write runtime wraps them in a transaction in `world.rs`.

use crate::catalogue::Catalogue;
use crate::clock::Instant;
use crate::error::{ErrorKind, SimError, SimResult};
use crate::schema::{FnoEntity, FnoType};
use crate::store::{Row, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The legal entities (companies) data entity.
pub const LEGAL_ENTITIES: &str = "LegalEntities";

/// One F&O environment and everything stored in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FnoEnv {
    /// The environment name, also the first host label of its real URL.
    pub name: String,
    /// The Entra tenant the environment signs in with.
    pub tenant_id: String,
    /// Platform update number (dual-write needs 33 or later).
    pub platform_update: u32,
    /// The application version (10.0.x).
    pub application_version: String,
    /// The application build (`GetApplicationBuildVersion`), a sample value for 10.0.42.
    #[serde(default = "default_application_build")]
    pub application_build: String,
    /// The platform build (`GetPlatformBuildVersion`), a sample value for update 66.
    #[serde(default = "default_platform_build")]
    pub platform_build: String,
    /// The company OData reads default to (the user's default company).
    pub default_company: String,
    /// Client ids registered under System administration > Microsoft Entra ID applications.
    pub entra_apps: BTreeSet<String>,
    /// The Dataverse organization linked through the Power Platform integration.
    pub power_platform_dataverse: Option<String>,
    /// The last RecId given out; each insert takes the next.
    pub next_recid: i64,
    /// Entity rows by entity set, keyed by their lower-cased key.
    pub store: Store,
}

fn default_application_build() -> String {
    "10.0.2177.26".to_string()
}

fn default_platform_build() -> String {
    "7.0.7521.60".to_string()
}

/// The error F&O's OData layer sends for a failed write: Infolog text inside a write failure.
pub fn write_failed(entity: &FnoEntity, level: &str, message: &str) -> SimError {
    SimError::new(
        ErrorKind::WriteFailed,
        "",
        format!(
            "Write failed for table row of type '{}'. Infolog: {level}: {message}",
            entity.entity_class
        ),
    )
}

/// Normalised key of a row: F&O keys compare case-insensitively.
pub fn row_id(entity: &FnoEntity, row: &Row) -> String {
    entity
        .keys
        .iter()
        .map(|k| value_text(row.get(k)).to_lowercase())
        .collect::<Vec<_>>()
        .join("|")
}

/// A value as text: strings as they are, numbers and booleans as JSON, null as "".
pub fn value_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

impl FnoEnv {
    /// A new environment with the standard platform and no companies yet.
    pub fn new(name: &str, tenant_id: &str) -> FnoEnv {
        FnoEnv {
            name: name.to_string(),
            tenant_id: tenant_id.to_string(),
            platform_update: 66,
            application_version: "10.0.42".to_string(),
            application_build: default_application_build(),
            platform_build: default_platform_build(),
            default_company: "dat".to_string(),
            entra_apps: BTreeSet::new(),
            power_platform_dataverse: None,
            next_recid: 5_637_144_576,
            store: Store::default(),
        }
    }

    /// Declares the indexes the model looks rows up by: the company of company-specific
    /// entities, the fields relations point at, and each map's integration key with the
    /// company. Idempotent; an import declares them again.
    pub fn declare_indexes(&mut self, catalogue: &Catalogue) {
        let with_company = |entity: &FnoEntity, mut columns: Vec<String>| {
            if entity.company_specific {
                columns.push("dataAreaId".to_string());
            }
            columns
        };
        for entity in catalogue.fno_entities.values() {
            if entity.company_specific {
                self.store
                    .index(&entity.entity_set, &["dataAreaId".to_string()]);
            }
            for rel in &entity.relations {
                if let Some(target) = catalogue.fno_entities.get(&rel.entity_set) {
                    let columns = with_company(target, vec![rel.target_field.clone()]);
                    self.store.index(&rel.entity_set, &columns);
                }
            }
        }
        for map in &catalogue.maps {
            if let Some(entity) = catalogue.fno_entities.get(&map.fno_entity) {
                let columns = with_company(entity, map.key.clone());
                self.store.index(&map.fno_entity, &columns);
            }
        }
    }

    /// Whether a legal entity with this id (any letter case) exists.
    pub fn has_company(&self, code: &str) -> bool {
        self.store
            .get(LEGAL_ENTITIES, &code.to_lowercase())
            .is_some()
    }

    /// Legal entity ids in id order, as F&O shows them (upper case).
    pub fn companies(&self) -> Vec<String> {
        self.store
            .rows(LEGAL_ENTITIES)
            .filter_map(|(_, r)| r.get("LegalEntityId").and_then(Value::as_str))
            .map(str::to_string)
            .collect()
    }

    /// A row by its store id (the lower-cased key, `usmf|10`).
    pub fn get(&self, entity_set: &str, id: &str) -> Option<&Row> {
        self.store.get(entity_set, id)
    }

    /// Validates and inserts a row, answering it as stored.
    pub fn insert(
        &mut self,
        catalogue: &Catalogue,
        entity: &FnoEntity,
        row: Row,
        now: Instant,
    ) -> SimResult<Row> {
        let id = self.insert_row(catalogue, entity, row, now)?;
        Ok(self
            .store
            .get(&entity.entity_set, &id)
            .cloned()
            .unwrap_or_default())
    }

    /// Validates and inserts a row (validateField, defaultRow, validateWrite, insert),
    /// answering its store id.
    pub fn insert_row(
        &mut self,
        catalogue: &Catalogue,
        entity: &FnoEntity,
        mut row: Row,
        now: Instant,
    ) -> SimResult<String> {
        self.normalise_company(entity, &mut row)?;
        for f in &entity.fields {
            if !row.contains_key(&f.name) || row.get(&f.name) == Some(&Value::Null) {
                if let Some(d) = &f.default {
                    row.insert(f.name.as_str().into(), d.clone());
                }
            }
        }
        self.validate_write(catalogue, entity, &row)?;
        let id = row_id(entity, &row);
        if self.store.get(&entity.entity_set, &id).is_some() {
            let labels: Vec<String> = entity
                .keys
                .iter()
                .filter(|k| *k != "dataAreaId")
                .map(|k| value_text(row.get(k)))
                .collect();
            let key_label = entity
                .keys
                .iter()
                .filter(|k| *k != "dataAreaId")
                .filter_map(|k| entity.field(k))
                .map(|f| f.label.clone())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(write_failed(
                entity,
                "Info",
                &format!(
                    "Cannot create a record in {} ({}). {key_label}: {}.\nThe record already exists.",
                    entity.table_label,
                    entity.table_name,
                    labels.join(", ")
                ),
            ));
        }
        self.next_recid += 1;
        row.insert("RecId".into(), Value::from(self.next_recid));
        row.insert("RecVersion".into(), Value::from(1));
        row.insert("ModifiedDateTime".into(), Value::from(now.iso()));
        self.store.put(&entity.entity_set, &id, row);
        Ok(id)
    }

    /// Applies `changes` to the row at `id` (forUpdate, validateWrite, update).
    pub fn update(
        &mut self,
        catalogue: &Catalogue,
        entity: &FnoEntity,
        id: &str,
        changes: &Row,
        now: Instant,
    ) -> SimResult<Row> {
        let mut row = self
            .store
            .get(&entity.entity_set, id)
            .cloned()
            .ok_or_else(|| not_found(entity))?;
        for (k, v) in changes {
            if entity.keys.iter().any(|key| key == k) {
                if value_text(Some(v)).to_lowercase() != value_text(row.get(k)).to_lowercase() {
                    return Err(SimError::bad_request(format!(
                        "The key field '{k}' of entity '{}' cannot be changed.",
                        entity.name
                    )));
                }
                continue;
            }
            row.insert(k.clone(), v.clone());
        }
        self.validate_write(catalogue, entity, &row)?;
        let version = row.get("RecVersion").and_then(Value::as_i64).unwrap_or(0) + 1;
        row.insert("RecVersion".into(), Value::from(version));
        row.insert("ModifiedDateTime".into(), Value::from(now.iso()));
        self.store.put(&entity.entity_set, id, row.clone());
        Ok(row)
    }

    /// Deletes a row (validateDelete, delete), answering it as it was.
    pub fn delete(&mut self, entity: &FnoEntity, id: &str) -> SimResult<Row> {
        self.store
            .remove(&entity.entity_set, id)
            .ok_or_else(|| not_found(entity))
    }

    /// Company-specific rows get the company from the body or the default company, in the
    /// lower case F&O stores `dataAreaId` in; the company must exist.
    fn normalise_company(&self, entity: &FnoEntity, row: &mut Row) -> SimResult<()> {
        if !entity.company_specific {
            return Ok(());
        }
        let company = match row.get("dataAreaId").and_then(Value::as_str) {
            Some(c) if !c.is_empty() => c.to_lowercase(),
            _ => self.default_company.clone(),
        };
        if !self.has_company(&company) {
            return Err(write_failed(
                entity,
                "Warning",
                &format!("Company '{company}' does not exist."),
            ));
        }
        row.insert("dataAreaId".into(), Value::from(company));
        Ok(())
    }

    /// validateWrite: each field's value, then the relations it must find.
    fn validate_write(
        &self,
        catalogue: &Catalogue,
        entity: &FnoEntity,
        row: &Row,
    ) -> SimResult<()> {
        for f in &entity.fields {
            let v = row.get(&f.name);
            let empty = matches!(v, None | Some(Value::Null))
                || v.and_then(Value::as_str).is_some_and(str::is_empty);
            if f.mandatory && empty {
                return Err(write_failed(
                    entity,
                    "Warning",
                    &format!("Field '{}' must be filled in.", f.label),
                ));
            }
            if empty {
                continue;
            }
            let Some(v) = v else { continue };
            match f.kind {
                FnoType::String | FnoType::Date => {
                    let Some(s) = v.as_str() else {
                        return Err(type_error(entity, &f.name, "Edm.String", v));
                    };
                    if let Some(max) = f.max_length {
                        if s.chars().count() > max {
                            return Err(write_failed(
                                entity,
                                "Warning",
                                &format!(
                                    "The value '{s}' in field '{}' is too long. The field can hold {max} characters.",
                                    f.label
                                ),
                            ));
                        }
                    }
                }
                FnoType::Int | FnoType::Real => {
                    if !v.is_number() {
                        return Err(type_error(entity, &f.name, "Edm.Decimal", v));
                    }
                }
                FnoType::Enum => {
                    let ok = v
                        .as_str()
                        .is_some_and(|s| f.values.iter().any(|x| x.eq_ignore_ascii_case(s)));
                    if !ok {
                        return Err(SimError::bad_request(format!(
                            "The value '{}' is not valid for the enum type 'Microsoft.Dynamics.DataEntities.{}'.",
                            value_text(Some(v)),
                            f.enum_name.clone().unwrap_or_default()
                        )));
                    }
                }
            }
        }
        self.validate_relations(catalogue, entity, row)
    }

    /// A foreign key's value must exist in the related table (in the row's company).
    fn validate_relations(
        &self,
        catalogue: &Catalogue,
        entity: &FnoEntity,
        row: &Row,
    ) -> SimResult<()> {
        for rel in &entity.relations {
            let value = value_text(row.get(&rel.field));
            if value.is_empty() {
                continue;
            }
            let Some(target) = catalogue.fno_entities.get(&rel.entity_set) else {
                continue;
            };
            let company = value_text(row.get("dataAreaId")).to_lowercase();
            let (pin_value, pin_company) =
                (Value::from(value.clone()), Value::from(company.clone()));
            let mut pins = vec![(rel.target_field.as_str(), Some(&pin_value))];
            if target.company_specific {
                pins.push(("dataAreaId", Some(&pin_company)));
            }
            let found = self.store.candidates(&rel.entity_set, &pins).any(|(_, r)| {
                value_text(r.get(&rel.target_field)).eq_ignore_ascii_case(&value)
                    && (!target.company_specific
                        || value_text(r.get("dataAreaId")).eq_ignore_ascii_case(&company))
            });
            if !found {
                let label = entity
                    .field(&rel.field)
                    .map_or(rel.field.as_str(), |f| f.label.as_str());
                return Err(write_failed(
                    entity,
                    "Warning",
                    &format!(
                        "The value '{value}' in field '{label}' is not found in the related table '{}'.",
                        target.table_label
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn type_error(entity: &FnoEntity, field: &str, edm: &str, v: &Value) -> SimError {
    SimError::bad_request(format!(
        "An error occurred while validating input parameters: Microsoft.OData.ODataException: Cannot convert the literal '{}' to the expected type '{edm}' for property '{field}' of '{}'.",
        value_text(Some(v)),
        entity.name
    ))
}

/// F&O's answer for a key that finds no row.
pub fn not_found(entity: &FnoEntity) -> SimError {
    SimError::new(
        ErrorKind::NotFound,
        "",
        format!(
            "No resource was found for the entity '{}' with the given key.",
            entity.entity_set
        ),
    )
}
