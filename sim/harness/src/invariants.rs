//! Cross-system invariants checked on exported worlds: convergence, no loss, company
//! integrity and the master rule. Each answers the first violation found, with what and
//! where, so a failing scenario or property names the row.

use dwsim_model::dualwrite::transform;
use dwsim_model::dualwrite::Side;
use dwsim_model::fno::value_text;
use dwsim_model::schema::{Direction, TableMap};
use dwsim_model::store::Row;
use dwsim_model::world::World;
use serde_json::Value;
use std::collections::BTreeMap;

mod convergence;

pub use convergence::convergence;

type Check = Result<(), String>;

/// Fields compared for convergence: every mapping that has both a source and a destination.
fn compared(map: &TableMap) -> impl Iterator<Item = &dwsim_model::schema::FieldMap> {
    map.fields.iter().filter(|f| {
        f.fno.is_some()
            && f.dv.is_some()
            && !matches!(
                f.dir,
                Direction::DefaultToDataverse | Direction::DefaultToFno
            )
    })
}

/// Business rows of a world: (product/env/table, id) → row.
pub fn business_rows(world: &World) -> BTreeMap<(String, String), Row> {
    let mut out = BTreeMap::new();
    for (name, env) in &world.fno {
        for table in env.store.table_names() {
            for (id, r) in env.store.rows(table) {
                out.insert((format!("fno/{name}/{table}"), id.clone()), r.clone());
            }
        }
    }
    for (org, dv) in &world.dataverse {
        for table in ["cdm_company", "msdyn_customergroup", "account", "contact"] {
            for (id, r) in dv.store.rows(table) {
                out.insert((format!("dataverse/{org}/{table}"), id.clone()), r.clone());
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
            if !transform::is_company_specific(&world.catalogue, map) {
                continue;
            }
            for (id, r) in env.store.rows(&map.fno_entity) {
                let company = value_text(r.get("dataAreaId"));
                let was_connected = c
                    .removed_legal_entities
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(&company));
                if c.is_connected(&company) || was_connected {
                    continue;
                }
                if let Some(key) = transform::fno_key(map, r) {
                    let crossed = dv.store.rows(&map.dv_table).any(|(_, d)| {
                        transform::dv_key(map, d).as_ref() == Some(&key)
                            && d.get("_msdyn_company_value")
                                .and_then(Value::as_str)
                                .and_then(|co| dv.company_code(co))
                                .is_some_and(|code| code.eq_ignore_ascii_case(&company))
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

/// For an initial sync of `map` with `master`: rows present on both sides before with
/// differing bidirectional values end with the master's values on both sides.
pub fn master_rule(
    before: &World,
    after: &World,
    fno_env: &str,
    map_id: &str,
    master: Side,
) -> Check {
    let (Some(env_before), Some(env_after)) = (before.fno.get(fno_env), after.fno.get(fno_env))
    else {
        return Ok(());
    };
    let Some(c) = after.connections.get(fno_env) else {
        return Ok(());
    };
    let Some(map) = after.catalogue.map(map_id) else {
        return Ok(());
    };
    let org = &c.dataverse;
    let (Some(dv_before), Some(dv_after)) = (before.dataverse.get(org), after.dataverse.get(org))
    else {
        return Ok(());
    };
    for partition in before.partitions(org, map, &c.legal_entities) {
        let fno_before: BTreeMap<Vec<String>, Row> =
            transform::fno_rows(map, env_before, &partition)
                .into_iter()
                .filter_map(|(_, r)| transform::fno_key(map, &r).map(|k| (k, r)))
                .collect();
        for (_, dvr) in transform::dv_rows(&before.catalogue, map, dv_before, &partition) {
            let Some(key) = transform::dv_key(map, &dvr) else {
                continue;
            };
            let Some(fr) = fno_before.get(&key) else {
                continue;
            };
            for f in compared(map).filter(|f| {
                matches!(f.dir, Direction::Both | Direction::BothTransformed)
                    && f.dv_lookup().is_none()
            }) {
                let (Some(fo), Some(dvn)) = (&f.fno, &f.dv) else {
                    continue;
                };
                let projected = transform::to_fno(
                    &before.catalogue,
                    map,
                    dv_before,
                    &dvr,
                    &partition,
                    false,
                    false,
                );
                if transform::equivalent(projected.get(fo), fr.get(fo)) {
                    continue;
                }
                let fno_now = transform::fno_rows(map, env_after, &partition)
                    .into_iter()
                    .map(|(_, r)| r)
                    .find(|r| transform::fno_key(map, r).as_ref() == Some(&key));
                let dv_now = transform::dv_rows(&after.catalogue, map, dv_after, &partition)
                    .into_iter()
                    .map(|(_, r)| r)
                    .find(|r| transform::dv_key(map, r).as_ref() == Some(&key));
                let (Some(fno_now), Some(dv_now)) = (fno_now, dv_now) else {
                    return Err(format!(
                        "map {map_id}: row {key:?} disappeared during initial sync"
                    ));
                };
                let ok = match master {
                    Side::Dataverse => {
                        transform::equivalent(dv_now.get(dvn), dvr.get(dvn))
                            && transform::equivalent(fno_now.get(fo), projected.get(fo))
                    }
                    Side::Fno => transform::equivalent(fno_now.get(fo), fr.get(fo)),
                };
                if !ok {
                    return Err(format!(
                        "map {map_id} row {key:?} field {fo}/{dvn}: master {master:?} had {:?}, ended with F&O {:?} and Dataverse {:?}",
                        if master == Side::Fno { fr.get(fo) } else { dvr.get(dvn) },
                        fno_now.get(fo),
                        dv_now.get(dvn)
                    ));
                }
            }
        }
    }
    Ok(())
}
