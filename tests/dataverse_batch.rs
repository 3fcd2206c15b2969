//! Dataverse `$batch` over real HTTP: change sets with `Content-ID` references, rollback of a
//! failed change set, `odata.continue-on-error`, the 1000-request limit, and malformed bodies.
//! The world's org `contosocrm` is not dual-write linked, so writes stay in Dataverse.

use dwsim_harness::client::Client;
use dwsim_harness::transport::{Http, InProcess, Reply, Transport};
use dwsim_model::{Catalogue, Start, WorldSpec};
use dwsim_protocol::batch::{self, BatchResponsePart, ResponsePart};
use dwsim_protocol::Sim;
use serde_json::{json, Value};

const ORG: &str = "contosocrm";
const MISSING: &str = "00000000-0000-0000-0000-000000000001";

fn sim() -> Sim {
    let data = Catalogue::builtin().expect("catalogue").demo;
    Sim::new(WorldSpec {
        seed: 7,
        fno: Start::Existing,
        dataverse: Start::Existing,
        data,
        clock_start_ms: 0,
    })
    .expect("world")
}

fn servers() -> Http {
    Http::https(sim()).expect("servers start")
}

/// An `application/http` part holding one request.
fn request(content_id: Option<&str>, method: &str, url: &str, body: Option<&Value>) -> String {
    let id = content_id.map_or(String::new(), |i| format!("Content-ID: {i}\r\n"));
    let (ct, body) = match body {
        Some(b) => ("Content-Type: application/json\r\n", b.to_string()),
        None => ("", String::new()),
    };
    format!(
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n{id}\r\n{method} {url} HTTP/1.1\r\n{ct}\r\n{body}\r\n"
    )
}

/// Adds an inner header right after the request line.
fn with_header(part: String, header: &str) -> String {
    part.replacen(" HTTP/1.1\r\n", &format!(" HTTP/1.1\r\n{header}\r\n"), 1)
}

fn changeset(boundary: &str, parts: &[String]) -> String {
    let mut s = format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n");
    for p in parts {
        s.push_str(&format!("--{boundary}\r\n{p}"));
    }
    s.push_str(&format!("--{boundary}--\r\n"));
    s
}

fn batch_body(parts: &[String]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push_str(&format!("--batch_AAA\r\n{p}"));
    }
    s.push_str("--batch_AAA--\r\n");
    s
}

fn post_batch(c: &Client, content_type: &str, prefer: Option<&str>, body: &str) -> Reply {
    let url = format!("{}/api/data/v9.2/$batch", c.dataverse_base(ORG));
    let mut headers = vec![
        ("Content-Type", content_type),
        ("OData-MaxVersion", "4.0"),
        ("OData-Version", "4.0"),
        ("Accept", "application/json"),
    ];
    if let Some(p) = prefer {
        headers.push(("Prefer", p));
    }
    c.send_as(
        &c.dataverse_base(ORG),
        "POST",
        &url,
        &headers,
        body.as_bytes(),
    )
    .expect("batch answered")
}

fn send(c: &Client, prefer: Option<&str>, parts: &[String]) -> Reply {
    post_batch(
        c,
        "multipart/mixed; boundary=\"batch_AAA\"",
        prefer,
        &batch_body(parts),
    )
}

fn parts(r: &Reply) -> Vec<BatchResponsePart> {
    let ct = r.header("content-type").expect("content type");
    assert!(
        ct.starts_with("multipart/mixed; boundary=batchresponse_"),
        "{ct}"
    );
    batch::parse_response(ct, &r.body)
        .unwrap_or_else(|e| panic!("unreadable batch response ({e}): {}", r.text()))
}

fn single(p: &BatchResponsePart) -> &ResponsePart {
    match p {
        BatchResponsePart::Response(r) => r,
        BatchResponsePart::ChangeSet { .. } => panic!("expected a single response: {p:?}"),
    }
}

fn json_of(r: &ResponsePart) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn id_in(url: &str) -> String {
    url.rsplit_once('(')
        .and_then(|(_, id)| id.strip_suffix(')'))
        .unwrap_or_default()
        .to_string()
}

fn groups_named(c: &Client, group: &str) -> Vec<Value> {
    c.dv_all(
        ORG,
        &format!("msdyn_customergroups?$filter=msdyn_groupid%20eq%20'{group}'"),
    )
    .expect("query")
}

#[test]
fn changeset_binds_content_ids_and_a_later_get_sees_the_writes() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let base = format!("{}/api/data/v9.2", c.dataverse_base(ORG));
    let cs = changeset(
        "changeset_BBB",
        &[
            request(
                Some("1"),
                "POST",
                "/api/data/v9.2/msdyn_customergroups",
                Some(&json!({"msdyn_groupid": "BATCH1", "msdyn_description": "from a batch"})),
            ),
            request(
                Some("2"),
                "POST",
                &format!("{base}/accounts"),
                Some(&json!({"name": "Batch account", "msdyn_customergroupid@odata.bind": "$1"})),
            ),
            request(
                Some("3"),
                "PATCH",
                "$2",
                Some(&json!({"telephone1": "555-0100"})),
            ),
            request(
                None,
                "PUT",
                "$2/emailaddress1",
                Some(&json!({"value": "b@example.com"})),
            ),
        ],
    );
    let get = request(
        None,
        "GET",
        "accounts?$filter=name%20eq%20'Batch%20account'&$select=name,telephone1,emailaddress1,_msdyn_customergroupid_value",
        None,
    );
    let r = send(&c, None, &[cs, get]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Content-Transfer-Encoding: binary"));
    assert!(r.text().contains("HTTP/1.1 204 No Content"));
    let ps = parts(&r);
    assert_eq!(ps.len(), 2);
    let BatchResponsePart::ChangeSet {
        boundary,
        responses,
    } = &ps[0]
    else {
        panic!("a changeset response first: {:?}", ps[0]);
    };
    assert!(boundary.starts_with("changesetresponse_"), "{boundary}");
    let statuses: Vec<u16> = responses.iter().map(|p| p.status).collect();
    assert_eq!(statuses, vec![204, 204, 204, 204]);
    let ids: Vec<Option<&str>> = responses.iter().map(|p| p.content_id.as_deref()).collect();
    assert_eq!(ids, vec![Some("1"), Some("2"), Some("3"), None]);
    let group_url = responses[0].header("OData-EntityId").expect("entity id");
    assert!(group_url.starts_with(&format!("{base}/msdyn_customergroups(")));
    assert_eq!(responses[0].header("Location"), Some(group_url));
    let group_id = id_in(group_url);

    let get = single(&ps[1]);
    assert_eq!(get.status, 200);
    let rows = json_of(get)["value"].clone();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["_msdyn_customergroupid_value"], json!(group_id));
    assert_eq!(rows[0]["telephone1"], json!("555-0100"));
    assert_eq!(rows[0]["emailaddress1"], json!("b@example.com"));
    assert_eq!(groups_named(&c, "BATCH1").len(), 1);
}

#[test]
fn failed_changeset_rolls_back_and_stops_the_batch() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let cs = changeset(
        "changeset_CCC",
        &[
            request(
                Some("1"),
                "POST",
                "/api/data/v9.2/msdyn_customergroups",
                Some(&json!({"msdyn_groupid": "BATCH2"})),
            ),
            request(
                Some("2"),
                "POST",
                "/api/data/v9.2/accounts",
                Some(&json!({"name": "x".repeat(200), "msdyn_customergroupid@odata.bind": "$1"})),
            ),
        ],
    );
    let after = request(None, "GET", "WhoAmI", None);
    let r = send(&c, None, &[cs, after]);
    assert_eq!(
        r.status,
        400,
        "the outer status is the failure's: {}",
        r.text()
    );
    let ps = parts(&r);
    assert_eq!(ps.len(), 1, "only the failing part: {}", r.text());
    let failed = single(&ps[0]);
    assert_eq!(failed.status, 400);
    assert_eq!(failed.content_id.as_deref(), Some("2"));
    assert_eq!(
        json_of(failed)["error"]["code"],
        json!("0x80044331"),
        "the bind to $1 worked and the name's length failed"
    );
    assert!(
        groups_named(&c, "BATCH2").is_empty(),
        "the first create of the changeset is rolled back"
    );
}

#[test]
fn continue_on_error_answers_every_part() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let missing = request(None, "GET", &format!("accounts({MISSING})"), None);
    let cs = changeset(
        "changeset_DDD",
        &[
            request(
                Some("1"),
                "POST",
                "msdyn_customergroups",
                Some(&json!({"msdyn_groupid": "BATCH3"})),
            ),
            // If-Match: * makes the PATCH an update only, so a missing record fails.
            with_header(
                request(
                    Some("2"),
                    "PATCH",
                    &format!("/api/data/v9.2/accounts({MISSING})"),
                    Some(&json!({"name": "n"})),
                ),
                "If-Match: *",
            ),
        ],
    );
    let good = changeset(
        "changeset_EEE",
        &[request(
            Some("1"),
            "POST",
            "msdyn_customergroups",
            Some(&json!({"msdyn_groupid": "BATCH4"})),
        )],
    );
    let who = request(None, "GET", "WhoAmI", None);
    let r = send(
        &c,
        Some("odata.continue-on-error"),
        &[missing, cs, good, who],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("Preference-Applied"),
        Some("odata.continue-on-error")
    );
    let ps = parts(&r);
    assert_eq!(ps.len(), 4, "{}", r.text());
    assert_eq!(single(&ps[0]).status, 404);
    assert_eq!(
        json_of(single(&ps[0]))["error"]["code"],
        json!("0x80040217")
    );
    let failed = single(&ps[1]);
    assert_eq!(
        failed.status,
        404,
        "{}",
        String::from_utf8_lossy(&failed.body)
    );
    assert!(
        matches!(&ps[2], BatchResponsePart::ChangeSet { responses, .. } if responses.len() == 1 && responses[0].status == 204)
    );
    assert_eq!(single(&ps[3]).status, 200);
    assert!(groups_named(&c, "BATCH3").is_empty(), "rolled back");
    assert_eq!(groups_named(&c, "BATCH4").len(), 1, "later changesets run");
}

#[test]
fn undeclared_content_id_is_reported_with_the_documented_text() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    for (part, reference) in [
        (
            request(Some("2"), "PATCH", "$1", Some(&json!({"name": "n"}))),
            "$1",
        ),
        (
            request(
                Some("2"),
                "POST",
                "accounts",
                Some(&json!({"name": "n", "msdyn_customergroupid@odata.bind": "$7"})),
            ),
            "$7",
        ),
    ] {
        let r = send(&c, None, &[changeset("changeset_FFF", &[part])]);
        assert_eq!(r.status, 400, "{}", r.text());
        let ps = parts(&r);
        let failed = single(&ps[0]);
        assert_eq!(failed.status, 400);
        assert_eq!(
            json_of(failed)["error"]["message"],
            json!(format!(
                "Content-ID Reference: '{reference}' does not exist in the batch context."
            ))
        );
    }
    let outside = send(&c, None, &[request(None, "GET", "$1", None)]);
    assert_eq!(
        outside.status, 400,
        "references only live inside a changeset"
    );
}

#[test]
fn get_inside_a_changeset_is_refused() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let cs = changeset(
        "changeset_GGG",
        &[
            request(
                Some("1"),
                "POST",
                "msdyn_customergroups",
                Some(&json!({"msdyn_groupid": "BATCH5"})),
            ),
            request(None, "GET", "accounts", None),
        ],
    );
    let r = send(&c, None, &[cs]);
    assert_eq!(r.status, 400);
    let ps = parts(&r);
    let failed = single(&ps[0]);
    assert_eq!(
        failed.header("Content-Type"),
        Some("application/json; odata.metadata=minimal")
    );
    assert_eq!(
        json_of(failed)["error"]["message"],
        json!("An invalid HTTP method 'GET' was detected for a request in a change set. Requests in change sets only support the HTTP methods 'POST', 'PUT', 'DELETE', and 'PATCH'.")
    );
    assert!(groups_named(&c, "BATCH5").is_empty());
}

#[test]
fn a_batch_holds_at_most_1000_requests_counting_changesets() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let count = request(None, "GET", "accounts/$count", None);
    let full = vec![count.clone(); 1000];
    let r = send(&c, None, &full);
    assert_eq!(r.status, 200);
    assert_eq!(parts(&r).len(), 1000);

    let mut over = vec![count; 999];
    over.push(changeset(
        "changeset_HHH",
        &[
            request(
                Some("1"),
                "POST",
                "msdyn_customergroups",
                Some(&json!({"msdyn_groupid": "BATCH6"})),
            ),
            request(
                Some("2"),
                "POST",
                "msdyn_customergroups",
                Some(&json!({"msdyn_groupid": "BATCH7"})),
            ),
        ],
    ));
    let r = send(&c, None, &over);
    assert_eq!(r.status, 400);
    let e = r.json();
    assert_eq!(e["error"]["code"], json!("0x80048d19"));
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1000"),
        "{e}"
    );
    assert!(groups_named(&c, "BATCH6").is_empty(), "nothing ran");
}

#[test]
fn malformed_batches_get_the_error_envelope() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let get = request(None, "GET", "WhoAmI", None);
    let good = batch_body(std::slice::from_ref(&get));
    let cases = [
        ("multipart/mixed", good.clone()),
        ("application/json", good.clone()),
        (
            "multipart/mixed; boundary=batch_AAA",
            good.replace("--batch_AAA--\r\n", ""),
        ),
        (
            "multipart/mixed; boundary=batch_AAA",
            good.replace("GET WhoAmI HTTP/1.1", "GET"),
        ),
        (
            "multipart/mixed; boundary=batch_AAA",
            good.replace("Content-Type: application/http", "Content-Type: text/plain"),
        ),
        ("multipart/mixed; boundary=batch_AAA", "garbage".to_string()),
    ];
    for (ct, body) in cases {
        let r = post_batch(&c, ct, None, &body);
        assert_eq!(r.status, 400, "{ct}: {body:?}");
        let e = r.json();
        assert_eq!(
            e["error"]["code"],
            json!("0x80048d19"),
            "{ct}: {body:?} -> {e}"
        );
        assert!(e["error"]["message"].is_string());
    }

    let nested = send(&c, None, &[request(None, "POST", "$batch", None)]);
    assert_eq!(nested.status, 400);
    assert_eq!(single(&parts(&nested)[0]).status, 400);

    let url = format!("{}/api/data/v9.2/$batch", c.dataverse_base(ORG));
    let wrong_verb = c
        .send_as(&c.dataverse_base(ORG), "GET", &url, &[], &[])
        .expect("reply");
    assert_eq!(wrong_verb.status, 405);

    let anonymous = h
        .send(
            "POST",
            &url,
            &[("Content-Type", "multipart/mixed; boundary=batch_AAA")],
            good.as_bytes(),
        )
        .expect("reply");
    assert_eq!(anonymous.status, 401);
}

#[test]
fn batch_answers_are_deterministic() {
    let run = || {
        let t = InProcess { sim: sim() };
        let c = Client::connect(&t).expect("client");
        let cs = changeset(
            "changeset_III",
            &[request(
                Some("1"),
                "POST",
                "msdyn_customergroups",
                Some(&json!({"msdyn_groupid": "BATCH8"})),
            )],
        );
        let r = send(&c, None, &[cs, request(None, "GET", "WhoAmI", None)]);
        (
            r.status,
            r.header("content-type").map(str::to_string),
            r.body,
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn a_request_line_with_unencoded_spaces_is_read_as_odatalib_reads_it() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let r = send(
        &c,
        None,
        &[request(
            None,
            "GET",
            "/api/data/v9.2/transactioncurrencies?$select=currencyname&$filter=currencyname eq 'US Dollar'",
            None,
        )],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let all = parts(&r);
    let answer = single(&all[0]);
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(json_of(answer)["value"][0]["currencyname"], "US Dollar");
}
