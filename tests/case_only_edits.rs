//! An edit that only changes letter case is a change: it syncs both ways (issue: "alpha
//! beta" → "Alpha Beta" never reached the other side, because live sync compared values
//! case-insensitively when it computed the counterpart's patch).

use dwsim_model::dualwrite::{MapRun, Side};
use dwsim_model::store::obj;
use dwsim_model::world::{EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
use dwsim_model::{Catalogue, Start, World, WorldSpec};
use serde_json::{json, Value};

/// Existing F&O and Dataverse, linked for every company, every map running.
fn linked() -> World {
    let data = Catalogue::builtin().expect("catalogue").demo;
    let mut w = World::new(WorldSpec {
        seed: 5,
        fno: Start::Existing,
        dataverse: Start::Existing,
        data,
        clock_start_ms: 0,
    })
    .expect("world");
    w.ensure_dual_write_app_users(ORG).expect("app users");
    let companies = w.fno[FO].companies();
    w.link(FO, ORG, &companies).expect("link");
    let runs: Vec<MapRun> = w
        .catalogue
        .maps
        .iter()
        .map(|m| MapRun {
            map: m.id.clone(),
            initial_sync: true,
            master: Side::Fno,
        })
        .collect();
    w.dual_write(FO)
        .expect("linked")
        .run(&runs)
        .expect("maps run");
    w
}

/// The Dataverse customer group with this id: (its id, its description).
fn dv_group(w: &World, group: &str) -> (String, Value) {
    w.dataverse[ORG]
        .store
        .rows("msdyn_customergroup")
        .find(|(_, r)| r.get("msdyn_groupid") == Some(&json!(group)))
        .map(|(id, r)| (id.to_string(), r["msdyn_description"].clone()))
        .expect("the group reached Dataverse")
}

fn fno_group(w: &World, key: &str) -> Value {
    w.fno[FO].get("CustomerGroups", key).expect("F&O group")["Description"].clone()
}

#[test]
fn a_case_only_edit_in_fno_reaches_dataverse() {
    let mut w = linked();
    let row =
        obj(json!({"dataAreaId": "usmf", "CustomerGroupId": "CASE1", "Description": "alpha beta"}));
    w.fno_create(FO, "CustomerGroups", row).expect("create");
    assert_eq!(dv_group(&w, "CASE1").1, json!("alpha beta"));

    let change = obj(json!({"Description": "Alpha Beta"}));
    w.fno_update(FO, "CustomerGroups", "usmf|case1", change)
        .expect("update");

    assert_eq!(dv_group(&w, "CASE1").1, json!("Alpha Beta"));
}

#[test]
fn a_case_only_edit_in_dataverse_reaches_fno() {
    let mut w = linked();
    let row = obj(
        json!({"dataAreaId": "usmf", "CustomerGroupId": "CASE2", "Description": "gamma delta"}),
    );
    w.fno_create(FO, "CustomerGroups", row).expect("create");
    let (id, _) = dv_group(&w, "CASE2");
    let caller = w.dataverse[ORG]
        .application_user(&w.harness.client_id)
        .expect("harness user");

    let change = obj(json!({"msdyn_description": "Gamma Delta"}));
    w.dv_update(ORG, "msdyn_customergroup", &id, change, &caller)
        .expect("update");

    assert_eq!(fno_group(&w, "usmf|case2"), json!("Gamma Delta"));
}
