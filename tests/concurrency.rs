//! Many clients at once over HTTPS: 52 clients (Dataverse's documented concurrency limit
//! per user) creating and updating in both products lose no write, and concurrent
//! `If-Match` updates of one row give exactly one winner, the rest 412.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::Http;
use dwsim_model::world::{EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
use dwsim_model::Start;
use serde_json::{json, Value};
use std::sync::{Arc, Barrier};

const CLIENTS: usize = 52;
const WRITES: usize = 4;

fn entity_id(reply: &dwsim_harness::transport::Reply) -> String {
    let location = reply.header("OData-EntityId").unwrap_or_default();
    location
        .rsplit_once('(')
        .map(|(_, id)| id.trim_end_matches(')').to_string())
        .unwrap_or_default()
}

#[test]
fn fifty_two_clients_creating_and_updating_lose_no_write() {
    let http = Arc::new(common::serve(common::world(
        3,
        Start::Existing,
        Start::Existing,
    )));
    let start = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (http, start) = (http.clone(), start.clone());
            std::thread::spawn(move || -> Vec<String> {
                let c = Client::connect(http.as_ref() as &Http).expect("client");
                // Sign in to both products before the start, so the writes overlap.
                c.token(&c.dataverse_base(ORG)).expect("token");
                c.token(&c.fno_base(FO)).expect("token");
                start.wait();
                let mut failures = Vec::new();
                for w in 0..WRITES {
                    // Half the clients write Dataverse accounts, half F&O customer groups.
                    if t % 2 == 0 {
                        let created = c
                            .dv("POST", ORG, "accounts", Some(&json!({"name": format!("Load {t}-{w}")})))
                            .expect("create");
                        if created.status != 204 {
                            failures.push(format!("create {t}-{w}: {}", created.status));
                            continue;
                        }
                        let id = entity_id(&created);
                        let patched = c
                            .dv("PATCH", ORG, &format!("accounts({id})"), Some(&json!({"telephone1": format!("{t}-{w}")})))
                            .expect("update");
                        if patched.status != 204 {
                            failures.push(format!("update {t}-{w}: {}", patched.status));
                        }
                    } else {
                        let group = format!("L{t}-{w}");
                        let created = c
                            .fno_raw("POST", FO, "CustomerGroups", &json!({"dataAreaId": "usmf", "CustomerGroupId": group, "Description": "load"}).to_string());
                        if created.status != 201 {
                            failures.push(format!("create {group}: {} {}", created.status, created.text()));
                            continue;
                        }
                        let patched = c.fno_raw(
                            "PATCH",
                            FO,
                            &format!("CustomerGroups(dataAreaId='usmf',CustomerGroupId='{group}')"),
                            &json!({"Description": format!("updated {t}-{w}")}).to_string(),
                        );
                        if patched.status != 204 {
                            failures.push(format!("update {group}: {} {}", patched.status, patched.text()));
                        }
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("client thread"))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");

    let c = Client::connect(http.as_ref()).expect("client");
    let accounts = c
        .dv_all(
            ORG,
            "accounts?$select=name,telephone1&$filter=startswith(name,'Load ')",
        )
        .expect("accounts");
    assert_eq!(
        accounts.len(),
        CLIENTS / 2 * WRITES,
        "every account create landed"
    );
    for a in &accounts {
        let name = a["name"].as_str().unwrap_or_default();
        assert_eq!(
            a["telephone1"].as_str().map(|p| format!("Load {p}")),
            Some(name.to_string()),
            "every update landed on its own row"
        );
    }
    let groups = c
        .fno_raw("GET", FO, "CustomerGroups?cross-company=true&$filter=Description eq 'updated*'&$select=CustomerGroupId,Description", "")
        .json();
    let groups = groups["value"].as_array().cloned().unwrap_or_default();
    assert_eq!(groups.len(), CLIENTS / 2 * WRITES, "every F&O write landed");
}

#[test]
fn concurrent_if_match_updates_have_exactly_one_winner() {
    let http = Arc::new(common::serve(common::world(
        4,
        Start::Existing,
        Start::Existing,
    )));
    let c = Client::connect(http.as_ref()).expect("client");
    let created = c
        .dv("POST", ORG, "accounts", Some(&json!({"name": "Contended"})))
        .expect("create");
    let id = entity_id(&created);
    let read = c
        .dv("GET", ORG, &format!("accounts({id})?$select=name"), None)
        .expect("read");
    let etag = read.header("ETag").expect("etag").to_string();
    let start = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (http, start, id, etag) = (http.clone(), start.clone(), id.clone(), etag.clone());
            std::thread::spawn(move || -> (u16, Value) {
                let c = Client::connect(http.as_ref() as &Http).expect("client");
                let url = format!("{}/api/data/v9.2/accounts({id})", c.dataverse_base(ORG));
                c.token(&c.dataverse_base(ORG)).expect("token");
                start.wait();
                let body = json!({"name": format!("Winner {t}")}).to_string();
                let reply = c
                    .send_as(
                        &c.dataverse_base(ORG),
                        "PATCH",
                        &url,
                        &[("Content-Type", "application/json"), ("If-Match", &etag)],
                        body.as_bytes(),
                    )
                    .expect("patch");
                let error = if reply.body.is_empty() {
                    Value::Null
                } else {
                    reply.json()["error"]["code"].clone()
                };
                (reply.status, error)
            })
        })
        .collect();
    let results: Vec<(u16, Value)> = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    let winners = results.iter().filter(|(s, _)| *s == 204).count();
    let refused = results
        .iter()
        .filter(|(s, e)| *s == 412 && *e == json!("0x80060882"))
        .count();
    assert_eq!(winners, 1, "{results:?}");
    assert_eq!(refused, CLIENTS - 1, "{results:?}");
}
