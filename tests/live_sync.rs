//! Live-sync depth over HTTP: the payload limit and the 2-minute window on the virtual
//! clock (5 minutes when enabled), pause with an ordered queue and resume, catch-up errors
//! and their retry, the queue's retention limits, and alert rules.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::{Http, Reply};
use dwsim_model::dualwrite::Side;
use dwsim_model::world::{EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
use serde_json::{json, Value};

/// Existing F&O and Dataverse linked for every company, all maps running live.
fn live() -> Http {
    common::serve(common::linked(21, Some((true, Side::Fno))))
}

fn admin(c: &Client, method: &str, verb: &str, body: Value) -> Reply {
    let url = format!("{}/_dwsim/{verb}", c.endpoints.lcs);
    let r = c
        .transport
        .send(
            method,
            &url,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .expect("admin");
    assert!(r.status < 300, "{verb}: {} {}", r.status, r.text());
    r
}

fn dw(c: &Client, op: &str, args: Value) -> Result<Value, String> {
    c.dual_write(FO, "DualWriteMapService", op, args)
        .map_err(|e| e.to_string())
}

fn group_description(c: &Client, id: &str) -> Option<String> {
    let usmf = company(c, "USMF");
    c.dv_all(ORG, &format!("msdyn_customergroups?$select=msdyn_description&$filter=msdyn_groupid eq '{id}' and _msdyn_company_value eq {usmf}"))
        .expect("query")
        .first()
        .map(|g| g["msdyn_description"].as_str().unwrap_or_default().to_string())
}

fn set_group(c: &Client, id: &str, description: &str) -> Reply {
    c.fno(
        "PATCH",
        FO,
        &format!("CustomerGroups(dataAreaId='usmf',CustomerGroupId='{id}')"),
        Some(&json!({"Description": description})),
    )
    .expect("patch")
}

fn company(c: &Client, code: &str) -> String {
    c.dv_all(
        ORG,
        &format!("cdm_companies?$select=cdm_companycode&$filter=cdm_companycode eq '{code}'"),
    )
    .expect("company")[0]["cdm_companyid"]
        .as_str()
        .expect("id")
        .to_string()
}

#[test]
fn payload_over_the_limit_fails_the_dataverse_write() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    admin(
        &c,
        "PUT",
        "dualwrite",
        json!({"live_sync": {"payload_limit_bytes": 300}}),
    );
    let usmf = company(&c, "USMF");
    let r = c.dv("POST", ORG, "accounts", Some(&json!({"name": "Big", "accountnumber": "BIG-1", "customertypecode": 3, "telephone1": "1".repeat(40), "msdyn_company@odata.bind": format!("/cdm_companies({usmf})")}))).expect("post");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], json!("0x80040216"));
    assert!(r.json()["error"]["message"].as_str().unwrap_or_default().starts_with("Error Code: -2147220970 Error Message: Message size exceeded when sending context to Sandbox. Message size: 0."));
    assert!(c
        .dv_all(ORG, "accounts?$filter=accountnumber eq 'BIG-1'")
        .expect("query")
        .is_empty());
}

#[test]
fn a_transaction_past_its_window_rolls_back_on_both_sides() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    admin(
        &c,
        "PUT",
        "dualwrite",
        json!({"live_sync": {"plugin_delay_ms": {"msdyn_customergroup": 150000}}}),
    );
    let before = admin(&c, "GET", "clock", json!({})).json()["now"].clone();
    let r = c
        .fno(
            "POST",
            FO,
            "CustomerGroups",
            Some(&json!({"dataAreaId": "usmf", "CustomerGroupId": "SLOW"})),
        )
        .expect("post");
    assert_eq!(r.status, 500);
    assert!(
        r.json()["error"]["innererror"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("didn't complete within the 2-minute limit"),
        "{}",
        r.text()
    );
    assert_eq!(
        c.fno(
            "GET",
            FO,
            "CustomerGroups(dataAreaId='usmf',CustomerGroupId='SLOW')",
            None
        )
        .expect("get")
        .status,
        404
    );
    assert_eq!(group_description(&c, "SLOW"), None);
    let after = admin(&c, "GET", "clock", json!({})).json()["now"].clone();
    assert_ne!(before, after, "the slow transaction took virtual time");
    // The 5-minute mode applies to Dataverse → F&O transactions.
    admin(
        &c,
        "PUT",
        "dualwrite",
        json!({"live_sync": {"five_minute_mode": true}}),
    );
    let usmf = company(&c, "USMF");
    let r = c.dv("POST", ORG, "msdyn_customergroups", Some(&json!({"msdyn_groupid": "SLOW", "msdyn_company@odata.bind": format!("/cdm_companies({usmf})")}))).expect("post");
    assert_eq!(
        r.status,
        204,
        "2.5 minutes fit in the 5-minute window: {}",
        r.text()
    );
    assert_eq!(
        c.fno(
            "GET",
            FO,
            "CustomerGroups(dataAreaId='usmf',CustomerGroupId='SLOW')",
            None
        )
        .expect("get")
        .status,
        200
    );
}

#[test]
fn paused_changes_queue_in_order_and_replay_on_resume() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    dw(&c, "pauseMap", json!({"map": "customergroups"})).expect("pause");
    for name in ["NameA", "NameB", "NameC"] {
        assert_eq!(
            set_group(&c, "10", name).status,
            204,
            "F&O keeps working while the map is paused"
        );
    }
    assert_eq!(
        group_description(&c, "10").as_deref(),
        Some("Wholesale customers")
    );
    let queued = dw(&c, "getQueuedRecords", json!({"map": "customergroups"})).expect("queue");
    assert_eq!(queued["totalQueuedRecordCount"], json!(3));
    dw(&c, "resumeMap", json!({"map": "customergroups"})).expect("resume");
    assert_eq!(group_description(&c, "10").as_deref(), Some("NameC"));
    assert_eq!(
        dw(&c, "getQueuedRecords", json!({"map": "customergroups"})).expect("queue")
            ["totalQueuedRecordCount"],
        json!(0)
    );
}

/// A paused map queues only the rows its source filter takes: with the accounts map paused,
/// a person customer goes straight to contacts through the running contacts map and is
/// not queued on the accounts map; an organisation customer is.
#[test]
fn a_paused_map_queues_only_the_rows_its_filter_takes() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    dw(&c, "pauseMap", json!({"map": "customersv3-accounts"})).expect("pause");
    let person = c.fno("POST", FO, "CustomersV3", Some(&json!({"dataAreaId": "usmf", "CustomerAccount": "FLT-P", "PartyType": "Person", "PersonLastName": "Person", "CustomerGroupId": "10"})));
    assert_eq!(person.expect("person").status, 201);
    let queued = |c: &Client| {
        dw(
            c,
            "getQueuedRecords",
            json!({"map": "customersv3-accounts"}),
        )
        .expect("queue")["totalQueuedRecordCount"]
            .clone()
    };
    assert_eq!(queued(&c), json!(0));
    let contacts = c
        .dv_all(
            ORG,
            "contacts?$select=lastname&$filter=msdyn_contactpersonid eq 'FLT-P'",
        )
        .expect("contacts");
    assert_eq!(contacts.len(), 1);
    let organisation = c.fno("POST", FO, "CustomersV3", Some(&json!({"dataAreaId": "usmf", "CustomerAccount": "FLT-O", "PartyType": "Organization", "OrganizationName": "Organisation", "CustomerGroupId": "10"})));
    assert_eq!(organisation.expect("organisation").status, 201);
    assert_eq!(queued(&c), json!(1));
}

#[test]
fn failed_replays_become_catch_up_errors_that_can_be_retried() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    dw(&c, "pauseMap", json!({"map": "customergroups"})).expect("pause");
    set_group(&c, "10", "Caught up later");
    admin(
        &c,
        "PUT",
        "faults",
        json!({"faults": [{"side": "Dataverse", "table": "msdyn_customergroup", "count": 1, "kind": "pluginFailure"}]}),
    );
    dw(&c, "resumeMap", json!({"map": "customergroups"})).expect("resume");
    let errors = dw(&c, "getQueuedRecords", json!({"map": "customergroups"})).expect("queue")
        ["catchUpErrors"]
        .clone();
    assert_eq!(errors.as_array().map(Vec::len), Some(1));
    assert_eq!(
        group_description(&c, "10").as_deref(),
        Some("Wholesale customers")
    );
    let retried =
        dw(&c, "retryCatchUpErrors", json!({"map": "customergroups"})).expect("retry all");
    assert_eq!(
        retried,
        json!({"retried": 1, "stillFailing": 0, "retryStatus": "Completed"})
    );
    assert_eq!(
        group_description(&c, "10").as_deref(),
        Some("Caught up later")
    );
}

#[test]
fn queue_retention_blocks_after_a_week_or_purges_after_a_day() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    dw(&c, "pauseMap", json!({"map": "customergroups"})).expect("pause");
    assert_eq!(set_group(&c, "10", "Queued").status, 204);
    admin(&c, "POST", "clock?advanceMinutes=10080", json!({}));
    let blocked = set_group(&c, "10", "Blocked");
    assert_eq!(blocked.status, 500);
    assert!(
        blocked
            .text()
            .contains("further records are blocked until the map is resumed"),
        "{}",
        blocked.text()
    );
    // The 24-hour variant: old queued records are purged on resume.
    admin(
        &c,
        "PUT",
        "dualwrite",
        json!({"live_sync": {"queue_retention": "24h"}}),
    );
    assert_eq!(set_group(&c, "20", "Too old").status, 204);
    admin(&c, "POST", "clock?advanceMinutes=1500", json!({}));
    dw(&c, "resumeMap", json!({"map": "customergroups"})).expect("resume");
    assert_eq!(
        group_description(&c, "20").as_deref(),
        Some("Major customers"),
        "the day-old change was purged"
    );
}

#[test]
fn alert_rules_apply_after_a_restart_and_pause_the_map() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    let rules = json!({"rules": [{"errorType": "ApplicationError", "count": 2, "windowMinutes": 15, "recipients": "ops@contoso.example", "action": "Pause"}]});
    c.dual_write(FO, "DualWriteMapService", "setAlertRules", rules)
        .expect("rules");
    let fail = |n: u32| {
        let email = format!("{}@example.com", "x".repeat(120));
        c.fno("POST", FO, "CustomersV3", Some(&json!({"dataAreaId": "usmf", "CustomerAccount": format!("AL-{n}"), "OrganizationName": "Alert", "CustomerGroupId": "10", "PrimaryContactEmail": email}))).expect("post").status
    };
    let status = || -> String {
        dw(&c, "getMaps", json!({}))
            .expect("maps")
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["map"] == json!("customersv3-accounts"))
            .and_then(|m| m["status"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!((fail(1), fail(2), fail(3)), (500, 500, 500));
    assert_eq!(status(), "Running", "new rules wait for the map to restart");
    dw(&c, "stopMap", json!({"map": "customersv3-accounts"})).expect("stop");
    dw(
        &c,
        "runMaps",
        json!({"maps": [{"map": "customersv3-accounts", "initialSync": false}]}),
    )
    .expect("restart");
    assert_eq!(fail(4), 500);
    assert_eq!(status(), "Running");
    assert_eq!(fail(5), 500);
    assert_eq!(
        status(),
        "Paused",
        "two errors within 15 minutes paused the map"
    );
    let alerts = c
        .dual_write(FO, "DualWriteMapService", "getAlerts", json!({}))
        .expect("alerts");
    assert_eq!(
        alerts["notifications"][0]["recipients"],
        json!("ops@contoso.example")
    );
    assert_eq!(
        alerts["notifications"][0]["map"],
        json!("customersv3-accounts")
    );
}

#[test]
fn only_mapped_fields_trigger_and_dual_write_does_not_echo() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    let usmf = company(&c, "USMF");
    let read = || {
        c.dv_all(ORG, &format!("msdyn_customergroups?$select=versionnumber,msdyn_description,_modifiedby_value,_ownerid_value&$filter=msdyn_groupid eq '30' and _msdyn_company_value eq {usmf}")).expect("group")[0].clone()
    };
    let before = read();
    let r = c
        .fno(
            "PATCH",
            FO,
            "CustomerGroups(dataAreaId='usmf',CustomerGroupId='30')",
            Some(&json!({"IsSalesTaxIncludedInPrice": "Yes"})),
        )
        .expect("patch");
    assert_eq!(r.status, 204);
    assert_eq!(
        read()["versionnumber"],
        before["versionnumber"],
        "a change to an unmapped field sends nothing"
    );
    // A Dataverse change reaches F&O once, and F&O's write does not come back.
    let id = before["msdyn_customergroupid"]
        .as_str()
        .expect("id")
        .to_string();
    let r = c
        .dv(
            "PATCH",
            ORG,
            &format!("msdyn_customergroups({id})"),
            Some(&json!({"msdyn_description": "From Dataverse"})),
        )
        .expect("patch");
    assert_eq!(r.status, 204);
    let after = read();
    let me = c.dv("GET", ORG, "WhoAmI", None).expect("whoami").json()["UserId"].clone();
    assert_eq!(
        after["_modifiedby_value"], me,
        "the row is as the caller wrote it: dual-write did not write it back"
    );
    assert_eq!(after["msdyn_description"], json!("From Dataverse"));
    let fo = c
        .fno(
            "GET",
            FO,
            "CustomerGroups(dataAreaId='usmf',CustomerGroupId='30')",
            None,
        )
        .expect("get")
        .json();
    assert_eq!(fo["Description"], json!("From Dataverse"));
}

#[test]
fn dual_written_rows_are_modified_by_the_app_user_and_owned_by_the_company_team() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    c.fno(
        "POST",
        FO,
        "CustomerGroups",
        Some(&json!({"dataAreaId": "usmf", "CustomerGroupId": "OWN"})),
    )
    .expect("create");
    let row = c.dv_all(ORG, "msdyn_customergroups?$select=_modifiedby_value,_ownerid_value&$filter=msdyn_groupid eq 'OWN'").expect("group")[0].clone();
    let runtime = c.dv_all(ORG, "systemusers?$select=fullname&$filter=applicationid eq 00000015-0000-0000-c000-000000000000").expect("user")[0]["systemuserid"].clone();
    assert_eq!(row["_modifiedby_value"], runtime);
    let team = c
        .dv_all(ORG, "teams?$select=name&$filter=name eq 'USMF DW'")
        .expect("team")[0]["teamid"]
        .clone();
    assert_eq!(row["_ownerid_value"], team);
}

/// A customer whose group is gone from Dataverse: a change of its name cannot be dual-written
/// (the lookup finds nothing) and fails with the documented text, even though the row's
/// lookup failed before the change as well; a change of a field the map does not send
/// still goes through.
#[test]
fn a_change_fails_when_its_lookup_finds_nothing_before_and_after() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    let group = c.fno(
        "POST",
        FO,
        "CustomerGroups",
        Some(&json!({"dataAreaId": "usmf", "CustomerGroupId": "GONE", "Description": "Gone"})),
    );
    assert_eq!(group.expect("group").status, 201);
    let customer = c.fno("POST", FO, "CustomersV3", Some(&json!({"dataAreaId": "usmf", "CustomerAccount": "REF-2", "OrganizationName": "Before", "CustomerGroupId": "GONE"})));
    assert_eq!(customer.expect("customer").status, 201);
    // The group map stops, so the Dataverse delete stays there.
    dw(&c, "stopMap", json!({"map": "customergroups"})).expect("stop");
    let usmf = company(&c, "USMF");
    let id = c.dv_all(ORG, &format!("msdyn_customergroups?$select=msdyn_groupid&$filter=msdyn_groupid eq 'GONE' and _msdyn_company_value eq {usmf}")).expect("group")[0]["msdyn_customergroupid"].as_str().expect("id").to_string();
    let deleted = c.dv("DELETE", ORG, &format!("msdyn_customergroups({id})"), None);
    assert_eq!(deleted.expect("delete").status, 204);
    let path = "CustomersV3(dataAreaId='usmf',CustomerAccount='REF-2')";
    let r = c
        .fno(
            "PATCH",
            FO,
            path,
            Some(&json!({"OrganizationName": "After"})),
        )
        .expect("patch");
    assert_eq!(r.status, 500, "{}", r.text());
    let message = r.json()["error"]["innererror"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("Unable to lookup msdyn_customergroups with values {GONE}."),
        "{message}"
    );
    let row = c.fno("GET", FO, path, None).expect("get").json();
    assert_eq!(row["OrganizationName"], "Before");
    let name = |c: &Client| {
        c.dv_all(ORG, &format!("accounts?$select=name&$filter=accountnumber eq 'REF-2' and _msdyn_company_value eq {usmf}")).expect("account")[0]["name"].clone()
    };
    assert_eq!(name(&c), "Before");
    // LanguageId only flows from Dataverse's defaults: changing it sends nothing.
    let r = c
        .fno("PATCH", FO, path, Some(&json!({"LanguageId": "de"})))
        .expect("patch");
    assert_eq!(r.status, 204, "{}", r.text());
}

#[test]
fn missing_reference_data_fails_with_the_documented_text() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    dw(&c, "pauseMap", json!({"map": "customergroups"})).expect("pause");
    c.fno(
        "POST",
        FO,
        "CustomerGroups",
        Some(&json!({"dataAreaId": "usmf", "CustomerGroupId": "NEWG"})),
    )
    .expect("group waits in the queue");
    let r = c.fno("POST", FO, "CustomersV3", Some(&json!({"dataAreaId": "usmf", "CustomerAccount": "REF-1", "OrganizationName": "Needs NEWG", "CustomerGroupId": "NEWG"}))).expect("post");
    assert_eq!(r.status, 500);
    let message = r.json()["error"]["innererror"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("Unable to write data to entity accounts. Writes to CustCustomerV3Entity failed with error message Unable to lookup msdyn_customergroups with values {NEWG}."), "{message}");
    assert_eq!(
        c.fno(
            "GET",
            FO,
            "CustomersV3(dataAreaId='usmf',CustomerAccount='REF-1')",
            None
        )
        .expect("get")
        .status,
        404
    );
}

#[test]
fn a_delete_made_while_paused_is_replayed_on_resume() {
    let h = live();
    let c = Client::connect(&h).expect("client");
    dw(&c, "pauseMap", json!({"map": "customergroups"})).expect("pause");
    let r = c
        .fno(
            "DELETE",
            FO,
            "CustomerGroups(dataAreaId='usmf',CustomerGroupId='20')",
            None,
        )
        .expect("delete");
    assert_eq!(r.status, 204);
    assert_eq!(
        group_description(&c, "20").as_deref(),
        Some("Major customers"),
        "still there while paused"
    );
    dw(&c, "resumeMap", json!({"map": "customergroups"})).expect("resume");
    assert_eq!(group_description(&c, "20"), None, "the delete was replayed");
    let queue = dw(&c, "getQueuedRecords", json!({"map": "customergroups"})).expect("queue");
    assert_eq!(queue["catchUpErrors"], json!([]));
}
