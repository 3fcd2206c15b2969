//! Cross-system invariants checked on exported worlds: convergence, no loss, company
//! integrity and the master rule. Each answers the first violation found, with what and
//! where, so a failing scenario or property names the row.

use dwsim_model::dualwrite::Side;
use dwsim_model::store::Row;
use dwsim_model::world::World;
use serde_json::Value;
use std::collections::BTreeMap;

mod convergence;
mod reading;

pub use convergence::convergence;
use reading::{
    dv_key, dv_value, expected_in_dv, expected_in_fno, fno_key, fno_seen_for_lookup, passes,
    scopes, seen, sides, Seen,
};

type Check = Result<(), String>;

/// Business rows of a world: (product/env/table, id) → row, for every F&O table and every
/// Dataverse table a map of the catalogue writes (and the companies).
pub fn business_rows(world: &World) -> BTreeMap<(String, String), Row> {
    let mut out = BTreeMap::new();
    for (name, env) in &world.fno {
        for table in env.store.table_names() {
            for (id, r) in env.store.rows(table) {
                out.insert((format!("fno/{name}/{table}"), id.to_string()), r.clone());
            }
        }
    }
    for (org, dv) in &world.dataverse {
        let tables: std::collections::BTreeSet<&str> = std::iter::once("cdm_company")
            .chain(world.catalogue.maps.iter().map(|m| m.dv_table.as_str()))
            .collect();
        for table in tables {
            for (id, r) in dv.store.rows(table) {
                out.insert(
                    (format!("dataverse/{org}/{table}"), id.to_string()),
                    r.clone(),
                );
            }
        }
    }
    out
}

/// Every row of `before` still exists in `after`.
pub fn no_loss(before: &World, after: &World) -> Check {
    let after_rows = business_rows(after);
    for key in business_rows(before).keys() {
        if !after_rows.contains_key(key) {
            return Err(format!("{} row {} was lost", key.0, key.1));
        }
    }
    Ok(())
}

/// Company-striped Dataverse rows that carry a company point at a connected company, and
/// every company-specific F&O row that crossed sits in a connected company.
pub fn company_integrity(world: &World) -> Check {
    for (env_name, env) in &world.fno {
        let Some(c) = world.connections.get(env_name) else {
            continue;
        };
        let dv = &world.dataverse[&c.dataverse];
        for table in world.catalogue.dv_tables.values() {
            let Some(attr) = table.company_attribute() else {
                continue;
            };
            for (id, r) in dv.store.rows(&table.logical_name) {
                let Some(company) = r.get(&attr).and_then(Value::as_str) else {
                    continue;
                };
                let code = dv.company_code(company).unwrap_or_default();
                let was_connected = c
                    .removed_legal_entities
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(&code));
                if !c.is_connected(&code) && !was_connected {
                    return Err(format!(
                        "{} {id} carries company {code}, which is not in the connection",
                        table.logical_name
                    ));
                }
                lookups_in_company(world, dv, table, id, r, company)?;
                let writer = world.dual_write_user(&c.dataverse);
                let owner_ok = r.get("_modifiedby_value").and_then(Value::as_str)
                    != Some(writer.as_str())
                    || r.get("_ownerid_value")
                        == dv
                            .get("cdm_company", company)
                            .and_then(|co| co.get("_cdm_defaultowningteam_value"));
                if !owner_ok {
                    return Err(format!("{} {id} was written by dual-write but is not owned by {code}'s default owning team", table.logical_name));
                }
            }
        }
        for map in &world.catalogue.maps {
            let (Some(entity), Some(table)) = (
                world.catalogue.fno_entities.get(&map.fno_entity),
                world.catalogue.dv_tables.get(&map.dv_table),
            ) else {
                continue;
            };
            let Some(attr) = table.company_attribute() else {
                continue;
            };
            if !entity.company_specific {
                continue;
            }
            for (id, r) in env.store.rows(&map.fno_entity) {
                let company = r
                    .get("dataAreaId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let was_connected = c
                    .removed_legal_entities
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(company));
                if c.is_connected(company) || was_connected {
                    continue;
                }
                let Some(key) = fno_key(map, r) else {
                    continue;
                };
                let crossed = dv.store.rows(&map.dv_table).any(|(_, d)| {
                    d.get(&attr)
                        .and_then(Value::as_str)
                        .map(|co| reading::company_code(dv, co))
                        .is_some_and(|code| code.eq_ignore_ascii_case(company))
                        && dv_key(world, dv, table, map, d).as_ref() == Some(&key)
                });
                if crossed {
                    return Err(format!(
                        "{} {id} of unconnected company {company} crossed to Dataverse",
                        map.fno_entity
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Every lookup of a company-striped row that points at a company-striped table points at
/// a row of the same company: a customer in USRT has USRT's customer group "10", never
/// USMF's. Read straight from the rows and the table definitions, not the runtime's lookup
/// resolution, so that a runtime resolving in the wrong company cannot pass it.
fn lookups_in_company(
    world: &World,
    dv: &dwsim_model::dataverse::DvEnv,
    table: &dwsim_model::schema::DvTable,
    id: &str,
    row: &Row,
    company: &str,
) -> Check {
    for col in table.columns.iter().filter(|c| c.kind.is_lookup()) {
        let Some(target_id) = row.get(&col.attribute()).and_then(Value::as_str) else {
            continue;
        };
        for target in col.targets() {
            let Some(target_table) = world.catalogue.dv_tables.get(target) else {
                continue;
            };
            let (Some(attr), Some(target_row)) =
                (target_table.company_attribute(), dv.get(target, target_id))
            else {
                continue;
            };
            let target_company = target_row.get(&attr).and_then(Value::as_str);
            if target_company.is_some_and(|t| !t.eq_ignore_ascii_case(company)) {
                return Err(format!(
                    "{} {id} of company {} looks up {target} {target_id} of company {} through {}",
                    table.logical_name,
                    dv.company_code(company).unwrap_or_default(),
                    target_company
                        .and_then(|t| dv.company_code(t))
                        .unwrap_or_default(),
                    col.name
                ));
            }
        }
    }
    Ok(())
}

/// For an initial sync of `map` with `master`: rows present on both sides before whose
/// values differ in a field the map sends both ways (lookups included, as table, company
/// and key) end with the master's value on both sides. Read by the same documented rules as convergence, not the runtime's transform.
pub fn master_rule(
    before: &World,
    after: &World,
    fno_env: &str,
    map_id: &str,
    master: Side,
) -> Check {
    let (Some(fno_before), Some(fno_after)) = (before.fno.get(fno_env), after.fno.get(fno_env))
    else {
        return Ok(());
    };
    let Some(conn) = after.connections.get(fno_env) else {
        return Ok(());
    };
    let Some(map) = after.catalogue.maps.iter().find(|m| m.id == map_id) else {
        return Ok(());
    };
    let (Some(entity), Some(table)) = (
        after.catalogue.fno_entities.get(&map.fno_entity),
        after.catalogue.dv_tables.get(&map.dv_table),
    ) else {
        return Ok(());
    };
    let org = &conn.dataverse;
    let (Some(dv_before), Some(dv_after)) = (before.dataverse.get(org), after.dataverse.get(org))
    else {
        return Ok(());
    };
    let both_ways: Vec<_> = map
        .fields
        .iter()
        .filter(|f| {
            f.fno.is_some() && f.dv.is_some() && f.dir.flows_to_dataverse() && f.dir.flows_to_fno()
        })
        .collect();
    for scope in scopes(dv_after, conn, map, entity) {
        let was = sides(
            before, fno_before, dv_before, conn, map, entity, table, &scope,
        );
        let now = sides(after, fno_after, dv_after, conn, map, entity, table, &scope);
        for (key, fr) in &was.fno {
            let Some(dr) = was.dv.get(key) else {
                continue;
            };
            if !passes(&map.fno_filter, fr) || !passes(&map.dv_filter, dr) {
                continue;
            }
            for f in &both_ways {
                let (Some(fo), Some(dvn)) = (f.fno.as_deref(), f.dv.as_deref()) else {
                    continue;
                };
                // A lookup's F&O side holds the looked-up key, compared without case.
                let fno_seen = |r: &Row| {
                    if dvn.contains('.') {
                        fno_seen_for_lookup(r.get(fo))
                    } else {
                        seen(r.get(fo))
                    }
                };
                let fno_was = fno_seen(fr);
                let dv_was = dv_value(before, dv_before, table, dr, dvn);
                let from_fno = expected_in_dv(before, table, f, fr.get(fo), &scope);
                if from_fno == dv_was {
                    continue; // no conflict in this field
                }
                let (Some(fn_), Some(dn)) = (now.fno.get(key), now.dv.get(key)) else {
                    return Err(format!(
                        "map {map_id} company {}: row {key:?} disappeared during initial sync",
                        scope.label()
                    ));
                };
                let fno_now = fno_seen(fn_);
                let dv_now = dv_value(after, dv_after, table, dn, dvn);
                let (fno_want, dv_want): (Seen, Seen) = match master {
                    Side::Dataverse => (expected_in_fno(before, dv_before, table, f, dr), dv_was),
                    Side::Fno => (fno_was, from_fno),
                };
                if fno_now != fno_want || dv_now != dv_want {
                    return Err(format!(
                        "map {map_id} company {} row {key:?} field {fo}/{dvn}: {master:?} is master, so F&O should hold {fno_want:?} and Dataverse {dv_want:?}; they hold {fno_now:?} and {dv_now:?}",
                        scope.label()
                    ));
                }
            }
        }
    }
    Ok(())
}
