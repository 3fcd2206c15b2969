//! How the invariants read the two worlds, by the documented rules and nothing of the
//! runtime's: which rows a map's partition holds on each side, their integration keys,
//! and a field's value as a user would compare it.
//!
//! "The same value" is read as a user would check it: text exactly (a change of letter
//! case is a change), numbers by value, an empty F&O value (null, "" or 0) as no value, and
//! a lookup as the looked-up row's table, company and key, so that a lookup into another
//! company's customer group "10" is not the same as this company's.

use dwsim_model::dataverse::DvEnv;
use dwsim_model::dualwrite::Connection;
use dwsim_model::fno::{FnoEnv, LEGAL_ENTITIES};
use dwsim_model::schema::{Direction, DvTable, FieldEquals, FieldMap, FnoEntity, TableMap};
use dwsim_model::store::Row;
use dwsim_model::world::World;
use serde_json::Value;
use std::collections::BTreeMap;

/// Where the rows of one partition are: a company (its code and Dataverse id), or every
/// row of a table without companies.
pub(super) enum Scope {
    Company { code: String, dv_id: String },
    Global,
}

/// A value as the check compares it.
#[derive(Debug, PartialEq)]
pub(super) enum Seen {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    /// A looked-up row: its table, company code ("" without one) and key value.
    Row(String, String, String),
    Other(String),
}

pub(super) fn seen(v: Option<&Value>) -> Seen {
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
pub(super) fn term_holds(row: &Row, field: &str, want: &Value) -> bool {
    match (row.get(field), want) {
        (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Some(Value::Number(a)), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (None | Some(Value::Null), Value::Null) => true,
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

pub(super) fn passes(filter: &[FieldEquals], row: &Row) -> bool {
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
pub(super) fn company_code(dv: &DvEnv, id: &str) -> String {
    dv.store
        .get("cdm_company", id)
        .and_then(|r| r.get("cdm_companycode"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// What a Dataverse column holds: the looked-up row for a lookup (`nav.keyfield`), else
/// the value.
pub(super) fn dv_value(
    world: &World,
    dv: &DvEnv,
    table: &DvTable,
    row: &Row,
    dv_name: &str,
) -> Seen {
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
pub(super) fn expected_in_dv(
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
pub(super) fn translate(f: &FieldMap, v: Option<&Value>, to_dataverse: bool) -> Seen {
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
pub(super) fn expected_in_fno(
    world: &World,
    dv: &DvEnv,
    table: &DvTable,
    f: &FieldMap,
    row: &Row,
) -> Seen {
    let dv_name = f.dv.as_deref().unwrap_or_default();
    match dv_value(world, dv, table, row, dv_name) {
        Seen::Row(_, _, key) => Seen::Text(key),
        _ => translate(f, row.get(dv_name), false),
    }
}

pub(super) fn fno_seen_for_lookup(v: Option<&Value>) -> Seen {
    match seen(v) {
        Seen::Text(s) => Seen::Text(s.to_lowercase()),
        other => other,
    }
}

/// The integration key of an F&O row: the map's key fields, without regard to case.
pub(super) fn fno_key(map: &TableMap, row: &Row) -> Option<Vec<String>> {
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
pub(super) fn dv_key(
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

pub(super) fn in_scope_fno(
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

pub(super) fn in_scope_dv(
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

/// The partitions of `map` on a connection: one per connected company for a
/// company-specific entity, else the whole table.
pub(super) fn scopes(
    dv: &DvEnv,
    conn: &Connection,
    map: &TableMap,
    entity: &FnoEntity,
) -> Vec<Scope> {
    if !entity.company_specific || map.fno_entity == LEGAL_ENTITIES {
        return vec![Scope::Global];
    }
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
                .map(|(id, _)| id.to_string())?;
            Some(Scope::Company {
                code: code.clone(),
                dv_id,
            })
        })
        .collect()
}

impl Scope {
    /// The company code, or `global`, for messages.
    pub(super) fn label(&self) -> &str {
        match self {
            Scope::Company { code, .. } => code,
            Scope::Global => "global",
        }
    }
}

/// The rows of one map's partition on both sides, by integration key.
pub(super) struct Sides<'w> {
    pub fno: BTreeMap<Vec<String>, &'w Row>,
    pub dv: BTreeMap<Vec<String>, &'w Row>,
}

/// Reads the rows `scope` holds for `map` in `world`'s F&O environment `fno` and its
/// connected Dataverse `dv`.
#[allow(clippy::too_many_arguments)]
pub(super) fn sides<'w>(
    world: &'w World,
    fno: &'w FnoEnv,
    dv: &'w DvEnv,
    conn: &Connection,
    map: &TableMap,
    entity: &FnoEntity,
    table: &DvTable,
    scope: &Scope,
) -> Sides<'w> {
    Sides {
        fno: fno
            .store
            .rows(&map.fno_entity)
            .filter(|(_, r)| in_scope_fno(map, entity, conn, scope, r))
            .filter_map(|(_, r)| fno_key(map, r).map(|k| (k, r)))
            .collect(),
        dv: dv
            .store
            .rows(&map.dv_table)
            .filter(|(_, r)| in_scope_dv(map, table, conn, scope, r))
            .filter_map(|(_, r)| dv_key(world, dv, table, map, r).map(|k| (k, r)))
            .collect(),
    }
}
