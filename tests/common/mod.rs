//! Worlds the HTTP tests start from, built with the model directly (the arrangement), and
//! served on free loopback ports.
#![allow(dead_code)]

use dwsim_harness::transport::Http;
use dwsim_model::dualwrite::{MapRun, Side};
use dwsim_model::world::{EXISTING_DATAVERSE, EXISTING_FNO};
use dwsim_model::{Catalogue, SeedData, Start, World, WorldSpec};
use dwsim_protocol::Sim;

/// A starting world of the demo data set.
pub fn world(seed: u64, fno: Start, dataverse: Start) -> World {
    world_of(
        seed,
        fno,
        dataverse,
        Catalogue::builtin().expect("catalogue").demo,
    )
}

/// A starting world of this data set.
pub fn world_of(seed: u64, fno: Start, dataverse: Start, data: SeedData) -> World {
    World::new(WorldSpec {
        seed,
        fno,
        dataverse,
        data,
        clock_start_ms: 0,
    })
    .expect("world")
}

/// Existing F&O and Dataverse, linked by dual-write for every legal entity; with
/// `run` = Some(initial sync, master), every map is running.
pub fn linked(seed: u64, run: Option<(bool, Side)>) -> World {
    let mut w = world(seed, Start::Existing, Start::Existing);
    w.ensure_dual_write_app_users(EXISTING_DATAVERSE)
        .expect("app users");
    let companies = w.fno[EXISTING_FNO].companies();
    w.link(EXISTING_FNO, EXISTING_DATAVERSE, &companies)
        .expect("link");
    if let Some((initial_sync, master)) = run {
        let runs: Vec<MapRun> = w
            .catalogue
            .maps
            .iter()
            .map(|m| MapRun::new(&m.id, initial_sync, master))
            .collect();
        w.dual_write(EXISTING_FNO)
            .expect("linked")
            .run(&runs)
            .expect("maps run");
    }
    w
}

pub fn serve(world: World) -> Http {
    Http::https(Sim::from_world(world)).expect("servers start")
}
