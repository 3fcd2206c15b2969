//! The dual-write services read their arguments strictly: a misspelt or unknown argument,
//! or a value of the wrong type, is a 400 in the custom-service envelope that names it,
//! never silently the default and never a 500.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::Reply;
use dwsim_model::dualwrite::Side;
use dwsim_model::world::EXISTING_FNO as FO;
use serde_json::{json, Value};

fn post(c: &Client, service: &str, op: &str, body: Value) -> Reply {
    let resource = c.endpoints.fno(FO);
    let url = format!("{resource}/api/services/DualWriteServices/{service}/{op}");
    c.send_as(
        &resource,
        "POST",
        &url,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .expect("post")
}

fn refused(r: &Reply, field: &str) {
    assert_eq!(r.status, 400, "{}", r.text());
    let message = r.json()["Message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains(field), "{message}");
    assert!(r.json()["ActivityId"].is_string(), "{}", r.text());
}

#[test]
fn a_misspelt_argument_is_refused_and_named() {
    let h = common::serve(common::linked(31, Some((false, Side::Dataverse))));
    let c = Client::connect(&h).expect("client");

    let r = post(
        &c,
        "DualWriteMapService",
        "stopMap",
        json!({"map": "customergroups"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        &c,
        "DualWriteMapService",
        "runMaps",
        json!({"maps": [{"map": "customergroups", "initalSync": false}]}),
    );
    refused(&r, "initalSync");
    let r = post(
        &c,
        "DualWriteMapService",
        "runMaps",
        json!({"maps": [{"map": "customergroups", "mastr": "FinanceAndOperations"}]}),
    );
    refused(&r, "mastr");
    let r = post(
        &c,
        "DualWriteMapService",
        "pauseMap",
        json!({"map": "customergroups", "colour": "red"}),
    );
    refused(&r, "colour");
    let r = post(
        &c,
        "DualWriteLegalEntityService",
        "getLegalEntities",
        json!({"company": "USMF"}),
    );
    refused(&r, "company");
}

#[test]
fn a_value_of_the_wrong_type_is_a_400() {
    let h = common::serve(common::linked(32, Some((false, Side::Dataverse))));
    let c = Client::connect(&h).expect("client");

    let r = post(
        &c,
        "DualWriteMapService",
        "pauseMap",
        json!({"map": ["customergroups"]}),
    );
    refused(&r, "invalid type: sequence, expected a string");
    let r = post(
        &c,
        "DualWriteLegalEntityService",
        "addLegalEntities",
        json!({"legalEntities": "USMF"}),
    );
    refused(&r, "invalid type: string \"USMF\", expected a sequence");
    let r = post(
        &c,
        "DualWriteMapService",
        "runMaps",
        json!({"maps": [{"map": "customergroups", "master": "Both"}]}),
    );
    refused(&r, "unknown variant `Both`");
    let r = post(&c, "DualWriteMapService", "stopMap", json!({}));
    refused(&r, "missing field `map`");
}
