//! Initial sync over HTTP: legs with counts and the documented log, only the top five
//! errors, a failed run leaving the map Not running, rerun with and without the errored
//! rows, and the limits (rows per legal entity, lookups from Dataverse, the 24-hour window
//! for single-threaded tables, 40 legal entities), each set small through `/_dwsim/dualwrite`.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::Http;
use dwsim_model::world::{EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
use serde_json::{json, Value};

/// Existing F&O and Dataverse, linked for every company, no map running.
fn linked() -> Http {
    common::serve(common::linked(9, None))
}

fn dw(c: &Client, op: &str, args: Value) -> Result<Value, String> {
    c.dual_write(FO, "DualWriteMapService", op, args)
        .map_err(|e| e.to_string())
}

fn run(c: &Client, maps: &[(&str, bool)]) -> Result<Value, String> {
    let maps: Vec<Value> = maps
        .iter()
        .map(|(m, sync)| json!({"map": m, "initialSync": sync, "master": "Dataverse"}))
        .collect();
    dw(c, "runMaps", json!({ "maps": maps }))
}

fn status(c: &Client, map: &str) -> String {
    let maps = dw(c, "getMaps", json!({})).expect("maps");
    maps.as_array()
        .into_iter()
        .flatten()
        .find(|m| m["map"] == json!(map))
        .and_then(|m| m["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn settings(c: &Client, body: Value) {
    let url = format!("{}/_dwsim/dualwrite", c.endpoints.lcs);
    let r = c
        .transport
        .send(
            "PUT",
            &url,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .expect("settings");
    assert_eq!(r.status, 200, "{}", r.text());
}

fn last(v: &Value) -> Value {
    v["executions"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn failed_initial_sync_keeps_top_five_errors_and_reruns() {
    let h = linked();
    let c = Client::connect(&h).expect("client");
    // Customer groups go live without initial sync, so Dataverse lacks every group.
    run(
        &c,
        &[
            ("legalentities-companies", false),
            ("currencies", false),
            ("paymentterms", false),
            ("customergroups", false),
        ],
    )
    .expect("upstream maps");
    let failed = last(&run(&c, &[("customersv3-accounts", true)]).expect("run answers"));
    assert_eq!(failed["status"], json!("Error"));
    assert_eq!(failed["error_count"], json!(6));
    assert_eq!(
        failed["errors"].as_array().map(Vec::len),
        Some(5),
        "only the top five errors are kept"
    );
    assert!(failed["errors"][0].as_str().unwrap_or_default().starts_with("Couldn't resolve the guid for the field: msdyn_customergroupid.msdyn_groupid. The lookup wasn't found:"));
    let log = failed["log"].as_str().unwrap_or_default();
    assert!(log.starts_with("Dual write Initial Sync completed with status: Error. Following are the details:\nExecuted leg: From AX Customers V3 to CRM accounts"), "{log}");
    assert!(log.contains("with exported records count: 4, ImportRecordsErrorCount: 4, ImportRecordsInsertedCount: 0 and ImportRecordsUpdatedCount: 0"), "{log}");
    assert_eq!(
        status(&c, "customersv3-accounts"),
        "Not running",
        "a failed initial sync leaves the map Not running"
    );

    // Rerun without errors skips the failed rows: nothing to do, so it completes.
    let skipped = dw(
        &c,
        "rerunExecution",
        json!({"map": "customersv3-accounts", "withoutErrors": true}),
    )
    .expect("rerun");
    assert_eq!(skipped["status"], json!("Completed"));
    assert!(skipped["legs"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|l| l["inserted"] == json!(0)));

    // Fix the reference data, then "Re-run execution" retries everything.
    dw(&c, "stopMap", json!({"map": "customergroups"})).expect("stop");
    dw(&c, "stopMap", json!({"map": "paymentterms"})).expect("stop");
    run(&c, &[("paymentterms", true)]).expect("terms of payment with initial sync");
    run(&c, &[("customergroups", true)]).expect("groups with initial sync");
    let rerun = dw(&c, "rerunExecution", json!({"map": "customersv3-accounts"})).expect("rerun");
    assert_eq!(rerun["status"], json!("Completed"), "{}", rerun["log"]);
    let inserted: u64 = rerun["legs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| l["inserted"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(inserted, 6);
    assert_eq!(
        status(&c, "customersv3-accounts"),
        "Not running",
        "the map waits to be run"
    );
    run(&c, &[("customersv3-accounts", false)]).expect("run after the rerun");
    assert_eq!(status(&c, "customersv3-accounts"), "Running");
    let history = dw(
        &c,
        "getInitialSyncDetails",
        json!({"map": "customersv3-accounts"}),
    )
    .expect("details");
    assert_eq!(history.as_array().map(Vec::len), Some(3));
}

#[test]
fn rows_per_legal_entity_limit_fails_the_run() {
    let h = linked();
    let c = Client::connect(&h).expect("client");
    settings(&c, json!({"initial_sync": {"rows_per_legal_entity": 2}}));
    let r = run(
        &c,
        &[
            ("legalentities-companies", true),
            ("currencies", true),
            ("paymentterms", true),
            ("customergroups", true),
            ("customersv3-accounts", true),
        ],
    )
    .expect("answers");
    let accounts = r["executions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["map"] == json!("customersv3-accounts"))
        .cloned()
        .expect("execution");
    assert_eq!(accounts["status"], json!("Error"));
    assert!(accounts["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e
            == &json!(
                "USMF: we currently limit project executions to 2 rows per execution per project."
            )));
    assert_eq!(status(&c, "customersv3-accounts"), "Not running");
}

#[test]
fn lookups_and_the_24_hour_window_limit_syncs_from_dataverse() {
    let h = linked();
    let c = Client::connect(&h).expect("client");
    dwsim_harness::runner::bootstrap(&c, ORG, "USMF").expect("bootstrap");
    run(
        &c,
        &[
            ("legalentities-companies", true),
            ("currencies", true),
            ("paymentterms", true),
            ("customergroups", true),
        ],
    )
    .expect("upstream");
    settings(&c, json!({"initial_sync": {"max_lookups": 1}}));
    let r = last(&run(&c, &[("customersv3-accounts", true)]).expect("answers"));
    assert_eq!(r["status"], json!("Error"));
    assert!(
        r["errors"][0].as_str().unwrap_or_default().starts_with(
            "CRMExport: Package execution complete. Error Description 5 Attempts to get data from"
        ),
        "{}",
        r["errors"]
    );
    settings(
        &c,
        json!({"initial_sync": {"max_lookups": 10, "single_threaded_rows": 2}}),
    );
    let r = last(&run(&c, &[("customersv3-accounts", true)]).expect("answers"));
    assert_eq!(r["status"], json!("Error"));
    assert!(
        r["errors"][0]
            .as_str()
            .unwrap_or_default()
            .contains("didn't come back within 24 hours"),
        "{}",
        r["errors"]
    );
    settings(&c, json!({"initial_sync": {"single_threaded_rows": 70000}}));
    let r = last(&run(&c, &[("customersv3-accounts", true)]).expect("answers"));
    assert_eq!(r["status"], json!("Completed"), "{}", r["log"]);
}

#[test]
fn more_legal_entities_than_the_limit_refuse_initial_sync() {
    let h = linked();
    let c = Client::connect(&h).expect("client");
    settings(&c, json!({"initial_sync": {"legal_entities": 3}}));
    let refused =
        run(&c, &[("legalentities-companies", true)]).expect_err("four companies, limit three");
    assert!(refused.contains("Dual write failure - Plugin registration failed: [(Unable to get partition map for project DWM-"), "{refused}");
    assert!(
        refused.contains("Error Exceeds the maximum partitions allowed for mapping DWM-"),
        "{refused}"
    );
    run(&c, &[("legalentities-companies", false)]).expect("without initial sync it runs");
    assert_eq!(status(&c, "legalentities-companies"), "Running");
}
