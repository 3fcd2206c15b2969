//! Customizing a table map: its field mappings can be edited only while the map is stopped,
//! and saving runs the project validations (the DIPV codes) and needs a publisher and a
//! version. Edited maps are kept in the world and replace the catalogue's definition.

use super::{Connection, MapState};
use crate::catalogue::Catalogue;
use crate::error::{ErrorKind, SimError, SimResult};
use crate::schema::{Direction, DvTable, FieldMap, FnoEntity, TableMap};
use std::collections::BTreeSet;

fn dipv(code: &str, message: &str, detail: String) -> SimError {
    SimError::new(
        ErrorKind::BadRequest,
        code,
        format!("Project validation failed. [{code}] {message}: {detail}"),
    )
}

/// The project validations a saved map must pass.
pub fn validate(catalogue: &Catalogue, map: &TableMap) -> SimResult<()> {
    let entity = catalogue
        .fno_entities
        .get(&map.fno_entity)
        .ok_or_else(|| dipv("DIPV1018", "Missing source schema", map.fno_entity.clone()))?;
    let table = catalogue.dv_tables.get(&map.dv_table).ok_or_else(|| {
        dipv(
            "DIPV1020",
            "Missing destination schema",
            map.dv_table.clone(),
        )
    })?;
    if entity.company_specific != table.company_lookup.is_some() {
        return Err(dipv(
            "DIPV1002",
            "Dual-write only supports mapping between cross-company entities or company-specific entities from both sides",
            format!("{} and {}", entity.entity_set, table.logical_name),
        ));
    }
    validate_fields(entity, table, map)?;
    validate_keys(table, map)?;
    validate_mandatory(entity, map)
}

/// Each mapping names fields that exist, once each, with a default where one side is
/// missing, and never writes a read-only Dataverse column.
fn validate_fields(entity: &FnoEntity, table: &DvTable, map: &TableMap) -> SimResult<()> {
    let (mut sources, mut destinations) = (BTreeSet::new(), BTreeSet::new());
    for f in &map.fields {
        if let Some(fo) = &f.fno {
            if entity.field(fo).is_none() {
                return Err(dipv(
                    "DIPV1022",
                    "Missing source field in the schema",
                    fo.clone(),
                ));
            }
            if !sources.insert(fo.clone()) {
                return Err(dipv("DIPV1023", "Duplicate source fields", fo.clone()));
            }
        }
        if let Some(dv) = &f.dv {
            let column = dv.split('.').next().unwrap_or(dv);
            let Some(col) = table.column(column) else {
                return Err(dipv(
                    "DIPV1025",
                    "Missing destination field in the schema",
                    dv.clone(),
                ));
            };
            if !destinations.insert(dv.clone()) {
                return Err(dipv("DIPV1026", "Duplicate destination fields", dv.clone()));
            }
            if col.read_only && f.dir.flows_to_dataverse() {
                return Err(dipv(
                    "DIPV1011",
                    "Readonly field in destination entity must not be mapped",
                    dv.clone(),
                ));
            }
        }
        if f.fno.is_none() && f.dv.is_none() {
            return Err(dipv(
                "DIPV1021",
                "Missing source field in the mapping",
                "an empty mapping".into(),
            ));
        }
        if (f.fno.is_none() || f.dv.is_none()) && f.default.is_none() {
            return Err(dipv(
                "DIPV1031",
                "Missing default transform for mandatory destination field",
                f.fno.clone().or_else(|| f.dv.clone()).unwrap_or_default(),
            ));
        }
    }
    Ok(())
}

/// The table has integration keys, and each key field is mapped (both ways when the map
/// has any bidirectional field).
fn validate_keys(table: &DvTable, map: &TableMap) -> SimResult<()> {
    if table.alternate_keys.is_empty() {
        return Err(dipv(
            "DIPV1003",
            "Integration keys are missing",
            table.logical_name.clone(),
        ));
    }
    let bidirectional = map
        .fields
        .iter()
        .any(|f| f.dir.flows_to_dataverse() && f.dir.flows_to_fno());
    for key in &map.key {
        let Some(f) = map.field_for_fno(key).filter(|f| f.dv.is_some()) else {
            return Err(dipv(
                "DIPV1014",
                "Mapping is missing for integration key",
                key.clone(),
            ));
        };
        if bidirectional && !matches!(f.dir, Direction::Both | Direction::BothTransformed) {
            return Err(dipv(
                "DIPV1004",
                "Integration key field isn't bi-directionally mapped",
                key.clone(),
            ));
        }
    }
    Ok(())
}

/// A map that writes to F&O maps every mandatory field without a default.
fn validate_mandatory(entity: &FnoEntity, map: &TableMap) -> SimResult<()> {
    let to_fno = map.fields.iter().any(|f| f.dir.flows_to_fno());
    if to_fno {
        for field in entity
            .fields
            .iter()
            .filter(|f| f.mandatory && f.name != "dataAreaId" && f.default.is_none())
        {
            if !map
                .fields
                .iter()
                .any(|m| m.fno.as_deref() == Some(field.name.as_str()) && m.dir.flows_to_fno())
            {
                return Err(dipv(
                    "DIPV1010",
                    "Mandatory field in destination entity must be mapped",
                    field.name.clone(),
                ));
            }
        }
    }
    Ok(())
}

/// The map `map_id` with these field mappings, checked as the designer's save checks it:
/// the map must be stopped (Not running), the save needs a publisher and a version, and the
/// result must pass validation. The world keeps the result as a customized map.
pub fn customized(
    catalogue: &Catalogue,
    connection: &Connection,
    map_id: &str,
    fields: Vec<FieldMap>,
    publisher: &str,
    version: &str,
) -> SimResult<TableMap> {
    let state = connection
        .maps
        .get(map_id)
        .map(|m| m.state)
        .ok_or_else(|| SimError::not_found(format!("Table map {map_id} does not exist.")))?;
    if state != MapState::NotRunning {
        return Err(SimError::conflict(format!(
            "The table map {map_id} must be stopped (not running) before its mappings can be changed; it is {}.",
            super::state_text(state)
        )));
    }
    if publisher.trim().is_empty() || version.trim().is_empty() {
        return Err(SimError::bad_request(
            "Saving a table map needs a publisher and a version number.",
        ));
    }
    let mut map = catalogue
        .map(map_id)
        .cloned()
        .ok_or_else(|| SimError::not_found(format!("Table map {map_id} does not exist.")))?;
    map.fields = fields;
    map.version = version.to_string();
    validate(catalogue, &map)?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_maps_pass_validation() {
        let c = Catalogue::builtin().expect("catalogue");
        for m in &c.maps {
            assert_eq!(validate(&c, m), Ok(()), "{}", m.id);
        }
    }

    #[test]
    fn each_broken_mapping_gets_its_dipv_code() {
        let c = Catalogue::builtin().expect("catalogue");
        let base = c.map("customersv3-accounts").cloned().expect("map");
        let code = |m: &TableMap| validate(&c, m).err().map(|e| e.code);
        let mut no_key = base.clone();
        no_key
            .fields
            .retain(|f| f.fno.as_deref() != Some("CustomerAccount"));
        assert_eq!(code(&no_key).as_deref(), Some("DIPV1014"));
        let mut one_way_key = base.clone();
        if let Some(f) = one_way_key
            .fields
            .iter_mut()
            .find(|f| f.fno.as_deref() == Some("CustomerAccount"))
        {
            f.dir = Direction::ToDataverse;
        }
        assert_eq!(code(&one_way_key).as_deref(), Some("DIPV1004"));
        let mut dup = base.clone();
        dup.fields.push(base.fields[1].clone());
        assert_eq!(code(&dup).as_deref(), Some("DIPV1023"));
        let mut read_only = base.clone();
        read_only.fields.push(FieldMap {
            fno: None,
            dv: Some("accountid".into()),
            dir: Direction::DefaultToDataverse,
            value_map: vec![],
            default: Some("x".into()),
        });
        assert_eq!(code(&read_only).as_deref(), Some("DIPV1011"));
        let mut no_group = base.clone();
        no_group
            .fields
            .retain(|f| f.fno.as_deref() != Some("CustomerGroupId"));
        assert_eq!(code(&no_group).as_deref(), Some("DIPV1010"));
        let mut mismatch = base.clone();
        mismatch.dv_table = "transactioncurrency_nonexistent".into();
        assert_eq!(code(&mismatch).as_deref(), Some("DIPV1020"));
        let mut global = base;
        global.fno_entity = "LegalEntities".into();
        global.fields.clear();
        assert_eq!(code(&global).as_deref(), Some("DIPV1002"));
    }
}
