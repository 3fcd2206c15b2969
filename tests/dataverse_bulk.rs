//! Dataverse bulk operations and counts (issue #8 item 6): `CreateMultiple`, `UpdateMultiple`
//! and `UpsertMultiple` bound to an entity set, each one transaction; `/$count` honours
//! `$filter`.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::{InProcess, Reply};
use dwsim_model::Start;
use dwsim_protocol::Sim;
use serde_json::{json, Value};

const ORG: &str = "contosocrm";

fn call(c: &Client, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let url = format!("{}/api/data/v9.2/{path}", c.dataverse_base(ORG));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    c.send_as(
        &c.dataverse_base(ORG),
        method,
        &url,
        &[("Content-Type", "application/json"), ("If-Match", "*")],
        body.as_bytes(),
    )
    .expect("answered")
}

fn count(c: &Client, query: &str) -> u64 {
    let r = call(c, "GET", &format!("accounts/$count{query}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
        .trim_start_matches('\u{feff}')
        .parse()
        .expect("a number")
}

fn account(name: &str, number: &str, company: &str) -> Value {
    json!({
        "@odata.type": "Microsoft.Dynamics.CRM.account",
        "name": name, "accountnumber": number,
        "msdyn_company@odata.bind": format!("/cdm_companies({company})"),
    })
}

#[test]
fn bulk_operations_write_every_target_or_none() {
    let t = InProcess {
        sim: Sim::from_world(common::world(5, Start::Existing, Start::Existing)),
    };
    let c = Client::connect(&t).expect("client");
    let made = call(
        &c,
        "POST",
        "cdm_companies",
        Some(&json!({"cdm_companycode": "BLK", "cdm_name": "Bulk"})),
    );
    let company = made
        .header("OData-EntityId")
        .unwrap()
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let before = count(&c, "");

    let created = call(
        &c,
        "POST",
        "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        Some(&json!({
            "Targets": [account("Bulk A", "BLK-1", &company), account("Bulk B", "BLK-2", &company)]
        })),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let ids = created.json()["Ids"].as_array().unwrap().clone();
    assert_eq!(ids.len(), 2);
    assert_eq!(count(&c, ""), before + 2);
    assert_eq!(count(&c, "?$filter=startswith(accountnumber,'BLK-')"), 2);

    // A duplicate key in the second target rolls back the first.
    let refused = call(
        &c,
        "POST",
        "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        Some(&json!({
            "Targets": [account("Bulk C", "BLK-3", &company), account("Bulk D", "BLK-1", &company)]
        })),
    );
    assert_eq!(refused.status, 412, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "0x80060892");
    assert_eq!(count(&c, "?$filter=startswith(accountnumber,'BLK-')"), 2);

    let untyped = call(
        &c,
        "POST",
        "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        Some(&json!({"Targets": [{"name": "x"}]})),
    );
    assert_eq!(untyped.status, 400);
    assert!(untyped.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("@odata.type"));
    let wrong_type = call(
        &c,
        "POST",
        "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        Some(
            &json!({"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "x"}]}),
        ),
    );
    assert_eq!(wrong_type.status, 400);
    assert_eq!(
        call(
            &c,
            "GET",
            "accounts/Microsoft.Dynamics.CRM.CreateMultiple",
            None
        )
        .status,
        405
    );

    let updated = call(
        &c,
        "POST",
        "accounts/Microsoft.Dynamics.CRM.UpdateMultiple",
        Some(&json!({
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": ids[0], "telephone1": "555-0100"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": ids[1], "telephone1": "555-0101"},
            ]
        })),
    );
    assert_eq!(updated.status, 204, "{}", updated.text());
    assert_eq!(count(&c, "?$filter=telephone1 eq '555-0101'"), 1);

    // Upsert by alternate key: one existing record updated, one new record created.
    let key = |n: &str| format!("accounts(accountnumber='{n}',_msdyn_company_value={company})");
    let upserted = call(
        &c,
        "POST",
        "accounts/Microsoft.Dynamics.CRM.UpsertMultiple",
        Some(&json!({
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": key("BLK-2"), "name": "Bulk B renamed"},
                {"@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": key("BLK-9"), "name": "Bulk new", "msdyn_company@odata.bind": format!("/cdm_companies({company})")},
            ]
        })),
    );
    assert_eq!(upserted.status, 204, "{}", upserted.text());
    assert_eq!(count(&c, "?$filter=startswith(accountnumber,'BLK-')"), 3);
    assert_eq!(count(&c, "?$filter=name eq 'Bulk B renamed'"), 1);

    // A SQL query is refused, not answered with every row.
    let sql = call(
        &c,
        "GET",
        "accounts?sql=SELECT%20TOP%201%20name%20FROM%20account",
        None,
    );
    assert_eq!(sql.status, 400, "{}", sql.text());
    // $count refuses a filter on a column the table does not have.
    assert_eq!(
        call(&c, "GET", "accounts/$count?$filter=nosuch eq 1", None).status,
        400
    );
}
