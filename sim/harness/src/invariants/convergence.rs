//! Convergence, by the documented rules and nothing of the runtime's: for every running
//! map and connected company, the rows each side exports (its source filter passed) have
//! a counterpart with the same integration key in the same company, and every mapped
//! field holds the same value on both sides in the directions the map sends it.
//!
//! "The same value" is read as a user would check it: text exactly (a change of letter
//! case is a change), numbers by value, an empty F&O value (null, "" or 0) as no value, and
//! a lookup as the looked-up row's table, company and key, so that a lookup into another
//! company's customer group "10" is not the same as this company's.

use dwsim_model::dataverse::DvEnv;
use dwsim_model::dualwrite::{Connection, MapState};
use dwsim_model::fno::{FnoEnv, LEGAL_ENTITIES};
use dwsim_model::schema::{Direction, DvTable, FieldEquals, FieldMap, FnoEntity, TableMap};
use dwsim_model::store::Row;
use dwsim_model::world::World;
use serde_json::Value;
use std::collections::BTreeMap;

/// Where the rows of one partition are: a company (its code and Dataverse id), or every
/// row of a table without companies.
enum Scope {
    Company { code: String, dv_id: String },
    Global,
}

/// A value as the check compares it.
#[derive(Debug, PartialEq)]
enum Seen {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    /// A looked-up row: its table, company code ("" without one) and key value.
    Row(String, String, String),
    Other(String),
}

fn seen(v: Option<&Value>) -> Seen {
    match v {
        None | Some(Value::Null) => Seen::Empty,
        Some(Value::String(s)) if s.is_empty() => Seen::Empty,
        Some(Value::String(s)) => Seen::Text(s.clone()),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(0.0) => Seen::Empty,
            Some(f) => Seen::Number(f),
            None => Seen::Other(n.to_string()),
        },
        Some(Value::Bool(b)) => Seen::Bool(*b),
        Some(other) => Seen::Other(other.to_string()),
    }
}

/// A filter term as the map documents it: text compares without regard to case (as both
/// products' filters do), numbers by value.
fn term_holds(row: &Row, field: &str, want: &Value) -> bool {
    match (row.get(field), want) {
        (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (None | Some(Value::Null), Value::Null) => true,
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

fn passes(filter: &[FieldEquals], row: &Row) -> bool {
    filter.iter().all(|f| {
        f.equals
            .as_ref()
            .is_none_or(|v| term_holds(row, &f.field, v))
            && f.not_equals
                .as_ref()
                .is_none_or(|v| !term_holds(row, &f.field, v))
    })
}

/// The company code of a Dataverse company id, read from cdm_company.
fn company_code(dv: &DvEnv, id: &str) -> String {
    dv.store
        .get("cdm_company", id)
        .and_then(|r| r.get("cdm_companycode"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// What a Dataverse column holds: the looked-up row for a lookup (`nav.keyfield`), else
/// the value.
fn dv_value(world: &World, dv: &DvEnv, table: &DvTable, row: &Row, dv_name: &str) -> Seen {
    let Some((nav, keyfield)) = dv_name.split_once('.') else {
        return seen(row.get(dv_name));
    };
    let Some(id) = row.get(&format!("_{nav}_value")).and_then(Value::as_str) else {
        return Seen::Empty;
    };
    let target = table
        .column(nav)
        .and_then(|c| c.targets().first().map(|t| t.to_string()))
        .unwrap_or_default();
    let Some(target_row) = dv.store.get(&target, id) else {
        return Seen::Other(format!("{target}({id}), which does not exist"));
    };
    let company = world
        .catalogue
        .dv_tables
        .get(&target)
        .and_then(|t| t.company_attribute())
        .and_then(|a| {
            target_row
                .get(&a)
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .map(|id| company_code(dv, &id))
        .unwrap_or_default();
    let key = target_row
        .get(keyfield)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    Seen::Row(target, company.to_lowercase(), key)
}

/// What an F&O field's value should be on the Dataverse side: the row it looks up (in the
/// row's own company when the target table has companies), or the value through the
/// map's value translation.
fn expected_in_dv(
    world: &World,
    table: &DvTable,
    f: &FieldMap,
    v: Option<&Value>,
    scope: &Scope,
) -> Seen {
    if let Some((nav, _)) = f.dv.as_deref().and_then(|d| d.split_once('.')) {
        let key = match v {
            Some(Value::String(s)) if !s.is_empty() => s.to_lowercase(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Seen::Empty,
        };
        let target = table
            .column(nav)
            .and_then(|c| c.targets().first().map(|t| t.to_string()))
            .unwrap_or_default();
        let striped = world
            .catalogue
            .dv_tables
            .get(&target)
            .is_some_and(|t| t.company_attribute().is_some());
        let company = match scope {
            Scope::Company { code, .. } if striped => code.to_lowercase(),
            _ => String::new(),
        };
        return Seen::Row(target, company, key);
    }
    translate(f, v, true)
}

/// A value through the map's value translation (`><`), in the given direction.
fn translate(f: &FieldMap, v: Option<&Value>, to_dataverse: bool) -> Seen {
    if f.dir == Direction::BothTransformed {
        for (fno, dv) in &f.value_map {
            let (from, to) = if to_dataverse { (fno, dv) } else { (dv, fno) };
            let hit = match (v, from) {
                (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
                (Some(a), b) => a == b,
                (None, _) => false,
            };
            if hit {
                return seen(Some(to));
            }
        }
    }
    seen(v)
}

/// The F&O value a Dataverse field should have (its key for a lookup).
fn expected_in_fno(world: &World, dv: &DvEnv, table: &DvTable, f: &FieldMap, row: &Row) -> Seen {
    let dv_name = f.dv.as_deref().unwrap_or_default();
    match dv_value(world, dv, table, row, dv_name) {
        Seen::Row(_, _, key) => Seen::Text(key),
        _ => translate(f, row.get(dv_name), false),
    }
}

fn fno_seen_for_lookup(v: Option<&Value>) -> Seen {
    match seen(v) {
        Seen::Text(s) => Seen::Text(s.to_lowercase()),
        other => other,
    }
}

/// The integration key of an F&O row: the map's key fields, without regard to case.
fn fno_key(map: &TableMap, row: &Row) -> Option<Vec<String>> {
    let parts: Vec<String> = map
        .key
        .iter()
        .map(|k| match row.get(k) {
            Some(Value::String(s)) => s.to_lowercase(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        })
        .collect();
    (!parts.iter().any(String::is_empty)).then_some(parts)
}

/// The integration key of a Dataverse row: the columns the key fields map to.
fn dv_key(
    world: &World,
    dv: &DvEnv,
    table: &DvTable,
    map: &TableMap,
    row: &Row,
) -> Option<Vec<String>> {
    let parts: Vec<String> = map
        .key
        .iter()
        .map(|k| {
            let Some(dv_name) = map
                .fields
                .iter()
                .find(|f| f.fno.as_deref() == Some(k))
                .and_then(|f| f.dv.clone())
            else {
                return String::new();
            };
            match dv_value(world, dv, table, row, &dv_name) {
                Seen::Text(s) => s.to_lowercase(),
                Seen::Number(n) => n.to_string(),
                Seen::Row(_, _, key) => key,
                _ => String::new(),
            }
        })
        .collect();
    (!parts.iter().any(String::is_empty)).then_some(parts)
}

fn in_scope_fno(
    map: &TableMap,
    entity: &FnoEntity,
    conn: &Connection,
    scope: &Scope,
    row: &Row,
) -> bool {
    let text = |k: &str| {
        row.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    if map.fno_entity == LEGAL_ENTITIES {
        return conn.is_connected(&text("LegalEntityId"));
    }
    match scope {
        Scope::Company { code, .. } => {
            entity.company_specific && text("dataAreaId").eq_ignore_ascii_case(code)
        }
        Scope::Global => true,
    }
}

fn in_scope_dv(
    map: &TableMap,
    table: &DvTable,
    conn: &Connection,
    scope: &Scope,
    row: &Row,
) -> bool {
    if map.fno_entity == LEGAL_ENTITIES {
        return conn.is_connected(
            row.get("cdm_companycode")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
    }
    match (scope, table.company_attribute()) {
        (Scope::Company { dv_id, .. }, Some(attr)) => row
            .get(&attr)
            .and_then(Value::as_str)
            .is_some_and(|id| id.eq_ignore_ascii_case(dv_id)),
        (Scope::Company { .. }, None) => false,
        (Scope::Global, _) => true,
    }
}

/// Every running map of every connection converges; the first difference, with its place.
pub fn convergence(world: &World) -> Result<(), String> {
    for (env_name, fno) in &world.fno {
        let Some(conn) = world.connections.get(env_name) else {
            continue;
        };
        let Some(dv) = world.dataverse.get(&conn.dataverse) else {
            continue;
        };
        for map in &world.catalogue.maps {
            if conn.maps.get(&map.id).map(|m| m.state) != Some(MapState::Running) {
                continue;
            }
            let (Some(entity), Some(table)) = (
                world.catalogue.fno_entities.get(&map.fno_entity),
                world.catalogue.dv_tables.get(&map.dv_table),
            ) else {
                continue;
            };
            let scopes: Vec<Scope> = if entity.company_specific && map.fno_entity != LEGAL_ENTITIES
            {
                conn.legal_entities
                    .iter()
                    .filter_map(|code| {
                        let dv_id = dv
                            .store
                            .rows("cdm_company")
                            .find(|(_, r)| {
                                r.get("cdm_companycode")
                                    .and_then(Value::as_str)
                                    .is_some_and(|c| c.eq_ignore_ascii_case(code))
                            })
                            .map(|(id, _)| id.clone())?;
                        Some(Scope::Company {
                            code: code.clone(),
                            dv_id,
                        })
                    })
                    .collect()
            } else {
                vec![Scope::Global]
            };
            for scope in &scopes {
                converges(world, fno, dv, conn, map, entity, table, scope).map_err(|e| {
                    let company = match scope {
                        Scope::Company { code, .. } => code.as_str(),
                        Scope::Global => "global",
                    };
                    format!("{env_name} map {} company {company}: {e}", map.id)
                })?;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn converges(
    world: &World,
    fno: &FnoEnv,
    dv: &DvEnv,
    conn: &Connection,
    map: &TableMap,
    entity: &FnoEntity,
    table: &DvTable,
    scope: &Scope,
) -> Result<(), String> {
    let fno_rows: BTreeMap<Vec<String>, &Row> = fno
        .store
        .rows(&map.fno_entity)
        .filter(|(_, r)| in_scope_fno(map, entity, conn, scope, r))
        .filter_map(|(_, r)| fno_key(map, r).map(|k| (k, r)))
        .collect();
    let dv_rows: BTreeMap<Vec<String>, &Row> = dv
        .store
        .rows(&map.dv_table)
        .filter(|(_, r)| in_scope_dv(map, table, conn, scope, r))
        .filter_map(|(_, r)| dv_key(world, dv, table, map, r).map(|k| (k, r)))
        .collect();
    let exported = fno_rows
        .iter()
        .filter(|(_, r)| passes(&map.fno_filter, r))
        .map(|(k, _)| k)
        .chain(
            dv_rows
                .iter()
                .filter(|(_, r)| passes(&map.dv_filter, r))
                .map(|(k, _)| k),
        );
    for key in exported {
        let (Some(fr), Some(dr)) = (fno_rows.get(key), dv_rows.get(key)) else {
            let missing = if fno_rows.contains_key(key) {
                "Dataverse"
            } else {
                "F&O"
            };
            return Err(format!("row {key:?} has no {missing} counterpart"));
        };
        for f in &map.fields {
            let (Some(fo), Some(dvn)) = (&f.fno, &f.dv) else {
                continue;
            };
            if matches!(
                f.dir,
                Direction::DefaultToDataverse | Direction::DefaultToFno
            ) {
                continue;
            }
            let is_lookup = dvn.contains('.');
            if f.dir.flows_to_dataverse() {
                let want = expected_in_dv(world, table, f, fr.get(fo), scope);
                let got = dv_value(world, dv, table, dr, dvn);
                if want != got {
                    return Err(format!("row {key:?} differs: {dvn}: Dataverse has {got:?}, F&O {fo} gives {want:?}"));
                }
            }
            if f.dir.flows_to_fno() {
                let want = expected_in_fno(world, dv, table, f, dr);
                let got = if is_lookup {
                    fno_seen_for_lookup(fr.get(fo))
                } else {
                    seen(fr.get(fo))
                };
                if want != got {
                    return Err(format!("row {key:?} differs: {fo}: F&O has {got:?}, Dataverse {dvn} gives {want:?}"));
                }
            }
        }
    }
    Ok(())
}
