//! Dataverse service protection over real HTTP: limits set through `PUT /_dwsim/limits`,
//! 429 with Retry-After and the product's body once exceeded, admitted again after the
//! virtual clock moves past the window, and nothing refused when the limits are off.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::{Http, Reply, Transport};
use dwsim_model::Start;
use serde_json::{json, Value};

const ORG: &str = "contosocrm";

fn servers() -> Http {
    common::serve(common::world(11, Start::Existing, Start::Existing))
}

fn admin(h: &Http, method: &str, verb: &str, body: &Value) -> Reply {
    let url = format!("{}/_dwsim/{verb}", h.endpoints().lcs);
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    h.send(
        method,
        &url,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .expect("admin verb answered")
}

fn who_am_i(c: &Client) -> Reply {
    c.dv("GET", ORG, "WhoAmI", None).expect("reply")
}

#[test]
fn request_limit_throttles_with_retry_after_until_the_window_slides() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let defaults = admin(&h, "GET", "limits", &Value::Null);
    assert_eq!(defaults.status, 200);
    let d = defaults.json();
    assert_eq!(
        (
            &d["enabled"],
            &d["max_requests"],
            &d["max_execution_ms"],
            &d["max_concurrent"],
            &d["window_seconds"]
        ),
        (
            &json!(true),
            &json!(6000),
            &json!(1_200_000),
            &json!(52),
            &json!(300)
        )
    );

    let set = admin(&h, "PUT", "limits", &json!({"max_requests": 3}));
    assert_eq!(set.status, 200, "{}", set.text());
    assert_eq!(set.json()["max_requests"], json!(3));
    assert_eq!(
        set.json()["cost_ms"],
        json!(20),
        "unnamed settings are kept"
    );

    let first = who_am_i(&c);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("x-ms-ratelimit-burst-remaining-xrm-requests"),
        Some("2")
    );
    assert_eq!(
        first.header("x-ms-ratelimit-time-remaining-xrm-requests"),
        Some("1199980")
    );
    // Enforced only after it has been exceeded: the fourth request still passes.
    for n in 2..=4 {
        assert_eq!(who_am_i(&c).status, 200, "request {n}");
    }
    let refused = who_am_i(&c);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("Retry-After"), Some("300"));
    assert_eq!(
        refused.json(),
        json!({"error": {
            "code": "0x80072322",
            "message": "Number of requests exceeded the limit of 3 over time window of 300 seconds."
        }})
    );
    // F&O is not limited at all.
    assert_eq!(
        c.fno("GET", "contosoprod", "LegalEntities", None)
            .expect("reply")
            .status,
        200
    );

    let moved = admin(&h, "POST", "clock?advanceMinutes=6", &Value::Null);
    assert_eq!(moved.status, 200);
    assert_eq!(who_am_i(&c).status, 200);
}

#[test]
fn execution_time_limit_counts_the_virtual_cost_per_request() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let set = admin(
        &h,
        "PUT",
        "limits",
        &json!({"max_execution_ms": 1_000_000, "cost_ms": 400_000}),
    );
    assert_eq!(set.status, 200, "{}", set.text());
    for n in 1..=3 {
        let ok = c.dv("GET", ORG, "accounts?$top=1", None).expect("reply");
        assert_eq!(ok.status, 200, "request {n}");
    }
    let refused = c.dv("GET", ORG, "accounts?$top=1", None).expect("reply");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("Retry-After"), Some("300"));
    assert_eq!(
        refused.json(),
        json!({"error": {
            "code": "0x80072321",
            "message": "Combined execution time of incoming requests exceeded limit of 1,000,000  milliseconds over time window of 300 seconds. Decrease number of concurrent requests or reduce the duration of requests and try again later."
        }})
    );
    admin(&h, "POST", "clock?advanceMinutes=6", &Value::Null);
    assert_eq!(who_am_i(&c).status, 200);
}

#[test]
fn concurrency_limit_applies_at_once_and_switching_off_admits_everything() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    admin(&h, "PUT", "limits", &json!({"in_flight": 52}));
    let refused = who_am_i(&c);
    assert_eq!(refused.status, 429);
    assert!(refused.header("Retry-After").is_some());
    assert_eq!(
        refused.json(),
        json!({"error": {
            "code": "0x80072326",
            "message": "Number of concurrent requests exceeded the limit of 52."
        }})
    );

    let off = admin(
        &h,
        "PUT",
        "limits",
        &json!({"enabled": false, "max_requests": 1, "cost_ms": 10_000_000}),
    );
    assert_eq!(off.status, 200);
    for n in 0..20 {
        let ok = who_am_i(&c);
        assert_eq!(ok.status, 200, "request {n}");
        assert_eq!(
            ok.header("x-ms-ratelimit-burst-remaining-xrm-requests"),
            None
        );
    }

    let bad = admin(&h, "PUT", "limits", &json!({"max_requests": "many"}));
    assert_eq!(bad.status, 400);
    let unknown = admin(&h, "PUT", "limits", &json!({"max_reqs": 1}));
    assert_eq!(unknown.status, 400);
}
