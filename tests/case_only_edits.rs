//! An edit that only changes letter case is a change: it syncs both ways (issue: "alpha
//! beta" → "Alpha Beta" never reached the other side, because live sync compared values
//! case-insensitively when it computed the counterpart's patch).

mod common;

use dwsim_model::dualwrite::Side;
use dwsim_model::store::obj;
use dwsim_model::world::{EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
use dwsim_model::World;
use serde_json::{json, Value};

/// Existing F&O and Dataverse, linked for every company, every map running.
fn linked() -> World {
    common::linked(5, Some((true, Side::Fno)))
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
