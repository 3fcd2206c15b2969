//! The admin verbs under `/_dwsim/` and the auth and concurrency rules a careless or hostile
//! caller tests (issue #12 items 4 and 5): an admin key or a harness app token, the Host and
//! cross-site checks, secrets redacted in exports, strict fault plans; F&O's `If-Match`, users
//! that cannot be deleted, a clock that cannot be wound past its end.

mod common;

use dwsim_harness::client::{enc, Client};
use dwsim_harness::transport::{Http, Reply, Transport};
use dwsim_http::Options;
use dwsim_model::world::{EXISTING_DATAVERSE, EXISTING_FNO};
use dwsim_model::Start;
use dwsim_protocol::Sim;
use serde_json::{json, Value};
use std::io::{Read, Write};

fn served(key: Option<&str>) -> Http {
    let sim = Sim::from_world(common::world(4, Start::Existing, Start::Existing));
    sim.set_admin_key(key.map(str::to_string));
    Http::start(sim, Options::plain()).expect("servers")
}

fn admin(h: &Http, method: &str, verb: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let url = format!("{}/_dwsim/{verb}", h.endpoints().lcs);
    h.send(method, &url, headers, body.as_bytes())
        .expect("answered")
}

#[test]
fn the_admin_verbs_need_the_key_or_a_harness_token() {
    let h = served(Some("s3cret-key"));
    assert_eq!(admin(&h, "GET", "harness", &[], "").status, 401);
    let wrong = admin(
        &h,
        "GET",
        "harness",
        &[("Authorization", "Bearer nope")],
        "",
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("www-authenticate").is_some());
    let by_key = admin(
        &h,
        "GET",
        "harness",
        &[("Authorization", "Bearer s3cret-key")],
        "",
    );
    assert_eq!(by_key.status, 200);
    let creds = by_key.json();

    // A token of the harness app, for any audience, opens them too.
    let entra = h.endpoints().entra;
    let token = h
        .send(
            "POST",
            &format!(
                "{entra}/{}/oauth2/v2.0/token",
                creds["tenant_id"].as_str().unwrap()
            ),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
                enc(creds["client_id"].as_str().unwrap()),
                enc(creds["client_secret"].as_str().unwrap()),
                enc(&format!(
                    "{}/.default",
                    creds["dataverse"][0]["url"].as_str().unwrap()
                ))
            )
            .as_bytes(),
        )
        .unwrap()
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let by_token = admin(
        &h,
        "GET",
        "clock",
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    );
    assert_eq!(by_token.status, 200, "{}", by_token.text());
    // The journal is an admin verb as well.
    assert_eq!(admin(&h, "GET", "journal", &[], "").status, 401);
}

#[test]
fn cross_site_requests_and_foreign_hosts_are_refused() {
    let h = served(None);
    for headers in [
        vec![
            ("Origin", "https://evil.example"),
            ("Content-Type", "application/json"),
        ],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Content-Type", "application/x-www-form-urlencoded")],
        vec![("Content-Type", "text/plain")],
    ] {
        let r = admin(&h, "POST", "reset", &headers, "");
        assert_eq!(r.status, 403, "{headers:?}: {}", r.text());
    }
    // The same origin may.
    let lcs = h.endpoints().lcs;
    assert_eq!(
        admin(&h, "POST", "reset", &[("Origin", &lcs)], "").status,
        204
    );

    // A Host header that is not one of ours (DNS rebinding).
    let addr = lcs.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(
        b"GET /_dwsim/harness HTTP/1.1\r\nHost: rebind.example:80\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
}

#[test]
fn exports_redact_secrets_unless_asked_and_reimport_keeps_them() {
    let h = served(None);
    let redacted = admin(&h, "GET", "state", &[], "").json();
    assert_eq!(redacted["harness"]["client_secret"], "<redacted>");
    assert_eq!(redacted["harness"]["password"], "<redacted>");
    for app in redacted["tenant"]["apps"].as_object().unwrap().values() {
        assert_eq!(app["secret"], "<redacted>");
    }
    let full = admin(&h, "GET", "state?secrets=true", &[], "").json();
    assert_ne!(full["harness"]["client_secret"], "<redacted>");
    // Importing the redacted export keeps the current secrets: the harness still signs in.
    let put = admin(
        &h,
        "PUT",
        "state",
        &[("Content-Type", "application/json")],
        &redacted.to_string(),
    );
    assert_eq!(put.status, 204, "{}", put.text());
    let c = Client::connect(&h).expect("client");
    assert_eq!(
        c.dv("GET", EXISTING_DATAVERSE, "WhoAmI", None)
            .unwrap()
            .status,
        200
    );
}

#[test]
fn fault_plans_and_settings_are_read_strictly() {
    let h = served(None);
    let json = [("Content-Type", "application/json")];
    let misspelt = admin(
        &h,
        "PUT",
        "faults",
        &json,
        r#"{"fault": [{"side": "Dataverse", "count": 1, "kind": "pluginFailure"}]}"#,
    );
    assert_eq!(misspelt.status, 400, "{}", misspelt.text());
    let unknown_table = admin(
        &h,
        "PUT",
        "faults",
        &json,
        r#"{"faults": [{"side": "Dataverse", "table": "nosuchtable", "count": 1, "kind": "pluginFailure"}]}"#,
    );
    assert_eq!(unknown_table.status, 400);
    assert!(unknown_table.text().contains("nosuchtable"));
    let extra_field = admin(
        &h,
        "PUT",
        "faults",
        &json,
        r#"{"faults": [{"side": "Dataverse", "count": 1, "kind": "pluginFailure", "tabel": "x"}]}"#,
    );
    assert_eq!(extra_field.status, 400);
    let good = admin(
        &h,
        "PUT",
        "faults",
        &json,
        r#"{"faults": [{"side": "Dataverse", "table": "msdyn_customergroups", "count": 1, "kind": "pluginFailure"}]}"#,
    );
    assert_eq!(good.status, 200, "{}", good.text());
    assert_eq!(
        admin(&h, "PUT", "limits", &json, r#"{"max_requets": 5}"#).status,
        400
    );
    assert_eq!(
        admin(
            &h,
            "PUT",
            "dualwrite",
            &json,
            r#"{"initial_sync": {"nosuch": 1}}"#
        )
        .status,
        400
    );
}

#[test]
fn fno_honours_if_match_with_412() {
    let h = served(None);
    let c = Client::connect(&h).expect("client");
    let path = "CustomerGroups(dataAreaId='usmf',CustomerGroupId='10')";
    let etag = c.fno("GET", EXISTING_FNO, path, None).unwrap().json()["@odata.etag"]
        .as_str()
        .expect("an etag")
        .to_string();
    let fo = c.fno_base(EXISTING_FNO);
    let patch = |tag: &str, description: &str| {
        c.send_as(
            &fo,
            "PATCH",
            &format!("{fo}/data/{path}"),
            &[("Content-Type", "application/json"), ("If-Match", tag)],
            json!({"Description": description}).to_string().as_bytes(),
        )
        .unwrap()
    };
    assert_eq!(patch(&etag, "first").status, 204);
    let stale = patch(&etag, "second");
    assert_eq!(stale.status, 412, "{}", stale.text());
    assert_eq!(
        c.fno("GET", EXISTING_FNO, path, None).unwrap().json()["Description"],
        "first"
    );
    assert_eq!(patch("*", "third").status, 204);
}

#[test]
fn users_cannot_be_deleted_and_the_clock_cannot_wrap() {
    let h = served(None);
    let c = Client::connect(&h).expect("client");
    let me = c
        .dv("GET", EXISTING_DATAVERSE, "WhoAmI", None)
        .unwrap()
        .json();
    let user = me["UserId"].as_str().unwrap();
    let r = c
        .dv(
            "DELETE",
            EXISTING_DATAVERSE,
            &format!("systemusers({user})"),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "0x80040227");
    assert_eq!(
        c.dv("GET", EXISTING_DATAVERSE, "WhoAmI", None)
            .unwrap()
            .status,
        200
    );

    // A primary key must be a GUID, or nothing could read the record back.
    let bad_id = c
        .dv(
            "POST",
            EXISTING_DATAVERSE,
            "transactioncurrencies",
            Some(&json!({"transactioncurrencyid": "not-a-guid", "isocurrencycode": "XTS", "currencyname": "Test"})),
        )
        .unwrap();
    assert_eq!(bad_id.status, 400, "{}", bad_id.text());
    assert!(bad_id.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Edm.Guid"));

    let huge = admin(
        &h,
        "POST",
        &format!("clock?advanceMinutes={}", i64::MAX),
        &[],
        "",
    );
    assert_eq!(huge.status, 400, "{}", huge.text());
    let now: Value = admin(&h, "GET", "clock", &[], "").json();
    assert!(now["now"].as_str().unwrap().starts_with("2026-"), "{now}");
}
