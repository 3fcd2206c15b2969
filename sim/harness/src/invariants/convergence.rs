//! Convergence: for every running map and connected company, the rows each side exports
//! (its source filter passed) have a counterpart with the same integration key in the same
//! company, and every mapped field holds the same value on both sides in the directions
//! the map sends it. Values are read as [`super::reading`] documents.

use super::reading::*;
use dwsim_model::dataverse::DvEnv;
use dwsim_model::dualwrite::MapState;
use dwsim_model::schema::{Direction, DvTable, TableMap};
use dwsim_model::world::World;

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
            for scope in &scopes(dv, conn, map, entity) {
                let rows = sides(world, fno, dv, conn, map, entity, table, scope);
                converges(world, dv, map, table, scope, &rows).map_err(|e| {
                    format!("{env_name} map {} company {}: {e}", map.id, scope.label())
                })?;
            }
        }
    }
    Ok(())
}

fn converges(
    world: &World,
    dv: &DvEnv,
    map: &TableMap,
    table: &DvTable,
    scope: &Scope,
    rows: &Sides,
) -> Result<(), String> {
    let exported = rows
        .fno
        .iter()
        .filter(|(_, r)| passes(&map.fno_filter, r))
        .map(|(k, _)| k)
        .chain(
            rows.dv
                .iter()
                .filter(|(_, r)| passes(&map.dv_filter, r))
                .map(|(k, _)| k),
        );
    for key in exported {
        let (Some(fr), Some(dr)) = (rows.fno.get(key), rows.dv.get(key)) else {
            let missing = if rows.fno.contains_key(key) {
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
