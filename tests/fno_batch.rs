//! F&O `$batch` over HTTP: a change set is one F&O transaction, so its writes and their
//! dual-writes to Dataverse commit together or roll back together, and a transaction may
//! dual-write at most the per-transaction record limit.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::{Http, Reply};
use dwsim_model::dualwrite::Side;
use dwsim_model::world::{EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
use dwsim_protocol::batch;
use serde_json::{json, Value};

/// An existing F&O and Dataverse, linked for every legal entity, maps running live.
fn linked(records_per_transaction: usize) -> Http {
    let mut world = common::linked(5, Some((false, Side::Dataverse)));
    world.config.dual_write.records_per_transaction = records_per_transaction;
    common::serve(world)
}

const BOUNDARY: &str = "batch_B";

fn changeset(requests: &[(&str, &str, Value)]) -> String {
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Type: multipart/mixed; boundary=changeset_C\r\n\r\n");
    for (i, (method, target, json)) in requests.iter().enumerate() {
        body.push_str(&format!(
            "--changeset_C\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {}\r\n\r\n{method} {target} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{json}\r\n",
            i + 1
        ));
    }
    body.push_str(&format!("--changeset_C--\r\n--{BOUNDARY}--\r\n"));
    body
}

fn post_batch(c: &Client, body: &str) -> (Reply, Vec<u16>) {
    let url = format!("{}/data/$batch", c.fno_base(FO));
    let ct = format!("multipart/mixed; boundary={BOUNDARY}");
    let reply = c
        .send_as(
            &c.fno_base(FO),
            "POST",
            &url,
            &[("Content-Type", &ct)],
            body.as_bytes(),
        )
        .expect("batch answered");
    let content_type = reply.header("content-type").unwrap_or_default().to_string();
    let parts = batch::parse_response(&content_type, &reply.body).expect("multipart answer");
    let statuses = parts
        .iter()
        .flat_map(|p| match p {
            batch::BatchResponsePart::Response(r) => vec![r.status],
            batch::BatchResponsePart::ChangeSet { responses, .. } => {
                responses.iter().map(|r| r.status).collect()
            }
        })
        .collect();
    (reply, statuses)
}

fn group(id: &str) -> Value {
    json!({"dataAreaId": "usmf", "CustomerGroupId": id, "Description": format!("Group {id}")})
}

fn dv_groups(c: &Client, id: &str) -> usize {
    c.dv_all(
        ORG,
        &format!("msdyn_customergroups?$select=msdyn_groupid&$filter=msdyn_groupid eq '{id}'"),
    )
    .expect("query")
    .len()
}

fn fo_group_exists(c: &Client, id: &str) -> bool {
    c.fno(
        "GET",
        FO,
        &format!("CustomerGroups(dataAreaId='usmf',CustomerGroupId='{id}')"),
        None,
    )
    .expect("get")
    .status
        == 200
}

#[test]
fn a_change_set_commits_with_its_dual_writes() {
    let h = linked(1000);
    let c = Client::connect(&h).expect("client");
    let body = changeset(&[
        ("POST", "CustomerGroups", group("B1")),
        ("POST", "CustomerGroups", group("B2")),
        ("PATCH", "$1", json!({"Description": "Patched through $1"})),
    ]);
    let (reply, statuses) = post_batch(&c, &body);
    assert_eq!(reply.status, 200);
    assert_eq!(statuses, vec![201, 201, 204]);
    assert_eq!((dv_groups(&c, "B1"), dv_groups(&c, "B2")), (1, 1));
    let d = c
        .dv_all(
            ORG,
            "msdyn_customergroups?$select=msdyn_description&$filter=msdyn_groupid eq 'B1'",
        )
        .expect("query");
    assert_eq!(d[0]["msdyn_description"], json!("Patched through $1"));
}

#[test]
fn a_change_set_whose_dataverse_side_fails_rolls_back_on_both_sides() {
    let h = linked(1000);
    let c = Client::connect(&h).expect("client");
    let email = format!("{}@example.com", "x".repeat(120));
    let body = changeset(&[
        ("POST", "CustomerGroups", group("RB")),
        (
            "POST",
            "CustomersV3",
            json!({"dataAreaId": "usmf", "CustomerAccount": "RB-1", "OrganizationName": "Rolled back", "CustomerGroupId": "RB", "PrimaryContactEmail": email}),
        ),
    ]);
    let (reply, statuses) = post_batch(&c, &body);
    assert_eq!(reply.status, 200, "F&O answers 200 around failed parts");
    assert_eq!(statuses, vec![500]);
    assert!(
        reply
            .text()
            .contains("Unable to write data to entity accounts"),
        "{}",
        reply.text()
    );
    assert!(
        !fo_group_exists(&c, "RB"),
        "the first write of the change set rolled back in F&O"
    );
    assert_eq!(
        dv_groups(&c, "RB"),
        0,
        "and its dual-write rolled back in Dataverse"
    );
}

#[test]
fn a_transaction_over_the_record_limit_fails_whole_but_separate_writes_pass() {
    let h = linked(2);
    let c = Client::connect(&h).expect("client");
    let body = changeset(&[
        ("POST", "CustomerGroups", group("L1")),
        ("POST", "CustomerGroups", group("L2")),
        ("POST", "CustomerGroups", group("L3")),
    ]);
    let (reply, statuses) = post_batch(&c, &body);
    assert_eq!(statuses, vec![500]);
    assert!(
        reply.text().contains("more than 2 records"),
        "{}",
        reply.text()
    );
    assert!(["L1", "L2", "L3"]
        .iter()
        .all(|g| !fo_group_exists(&c, g) && dv_groups(&c, g) == 0));
    for g in ["L1", "L2", "L3"] {
        let r = c
            .fno("POST", FO, "CustomerGroups", Some(&group(g)))
            .expect("create");
        assert_eq!(r.status, 201, "each plain write is its own transaction");
    }
    assert!(["L1", "L2", "L3"].iter().all(|g| dv_groups(&c, g) == 1));
}

#[test]
fn reads_outside_change_sets_and_malformed_batches() {
    let h = linked(1000);
    let c = Client::connect(&h).expect("client");
    let body = format!(
        "--{BOUNDARY}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET LegalEntities('USMF') HTTP/1.1\r\n\r\n\r\n--{BOUNDARY}--\r\n"
    );
    let (reply, statuses) = post_batch(&c, &body);
    assert_eq!((reply.status, statuses), (200, vec![200]));
    assert!(reply.text().contains("\"LegalEntityId\":\"USMF\""));
    let url = format!("{}/data/$batch", c.fno_base(FO));
    let bad = c
        .send_as(
            &c.fno_base(FO),
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            b"{}",
        )
        .expect("answered");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]["innererror"]["message"].is_string());
}
