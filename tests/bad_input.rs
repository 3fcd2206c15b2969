//! Bad input gets each product's own envelope and status over real HTTP: malformed JSON,
//! unknown entity sets, bad keys, missing or wrong tokens, unsupported verbs. Never a panic,
//! never wiremock's empty 404.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::{Http, Reply, Transport};
use dwsim_model::Start;
use dwsim_protocol::Server;
use serde_json::{json, Value};

const ORG: &str = "contosocrm";
const FO: &str = "contosoprod";

fn servers() -> Http {
    common::serve(common::world(7, Start::Existing, Start::Existing))
}

fn send(h: &Http, method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    h.send(method, url, headers, body.as_bytes())
        .expect("request answered")
}

fn is_json(r: &Reply) -> Value {
    let v = r.json();
    assert!(
        !v.is_null(),
        "HTTP {} answered a non-JSON body: {:?}",
        r.status,
        r.text()
    );
    v
}

#[test]
fn entra_answers_bad_token_requests_with_aadsts_errors() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let tenant = c.harness["tenant_id"].as_str().expect("tenant").to_string();
    let url = format!("{}/{tenant}/oauth2/v2.0/token", h.endpoints().entra);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];

    let missing = send(&h, "POST", &url, &form, "client_id=x");
    assert_eq!(missing.status, 400);
    assert_eq!(is_json(&missing)["error_codes"], json!([900144]));

    let unknown_tenant = send(
        &h,
        "POST",
        &format!("{}/nosuchtenant/oauth2/v2.0/token", h.endpoints().entra),
        &form,
        "grant_type=client_credentials",
    );
    assert_eq!(is_json(&unknown_tenant)["error_codes"], json!([90002]));

    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret=wrong&scope={}/.default",
        c.harness["client_id"].as_str().unwrap_or_default(),
        h.endpoints().dataverse(ORG)
    );
    let bad_secret = send(&h, "POST", &url, &form, &body);
    assert_eq!(bad_secret.status, 401);
    assert_eq!(is_json(&bad_secret)["error"], json!("invalid_client"));
    assert!(bad_secret.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .starts_with("AADSTS7000215"));

    let grant = send(
        &h,
        "POST",
        &url,
        &form,
        "grant_type=authorization_magic&client_id=x",
    );
    assert_eq!(is_json(&grant)["error"], json!("unsupported_grant_type"));

    let get = send(&h, "GET", &url, &[], "");
    assert_eq!(get.status, 405);
    is_json(&get);

    let nowhere = send(
        &h,
        "GET",
        &format!("{}/x/y/z", h.endpoints().entra),
        &[],
        "",
    );
    assert_eq!(nowhere.status, 404);
    is_json(&nowhere);
}

#[test]
fn dataverse_answers_bad_requests_with_its_error_envelope() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let base = format!("{}/api/data/v9.2", h.endpoints().dataverse(ORG));

    let anonymous = send(&h, "GET", &format!("{base}/accounts"), &[], "");
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous.header("WWW-Authenticate").expect("challenge");
    assert!(
        challenge.starts_with("Bearer authorization_uri=") && challenge.contains(", resource_id="),
        "{challenge}"
    );
    is_json(&anonymous);

    let fo_token = format!("Bearer {}", c.token(&c.fno_base(FO)).expect("F&O token"));
    let wrong_audience = send(
        &h,
        "GET",
        &format!("{base}/accounts"),
        &[("Authorization", &fo_token)],
        "",
    );
    assert_eq!(
        wrong_audience.status, 401,
        "a token for another resource is refused"
    );

    let malformed = c.dv_raw("POST", ORG, "accounts", "{\"name\": ");
    assert_eq!(malformed.status, 400);
    assert_eq!(is_json(&malformed)["error"]["code"], json!("0x80048d19"));

    let unknown = c.dv("GET", ORG, "accountz", None).expect("reply");
    assert_eq!(unknown.status, 404);
    assert_eq!(
        is_json(&unknown)["error"]["message"],
        json!("Resource not found for the segment 'accountz'.")
    );

    let bad_key = c.dv("GET", ORG, "accounts(name='x')", None).expect("reply");
    assert_eq!(bad_key.status, 400);
    assert!(is_json(&bad_key)["error"]["message"].as_str().unwrap_or_default().starts_with("The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.account'."));

    let not_guid = c.dv("GET", ORG, "accounts(12)", None).expect("reply");
    assert_eq!(not_guid.status, 400);
    is_json(&not_guid);

    let missing = c
        .dv(
            "GET",
            ORG,
            "accounts(00000000-0000-0000-0000-000000000001)",
            None,
        )
        .expect("reply");
    assert_eq!(missing.status, 404);
    assert_eq!(is_json(&missing)["error"]["code"], json!("0x80040217"));

    for verb in ["PUT", "DELETE", "PATCH"] {
        let r = c
            .dv(verb, ORG, "accounts", Some(&json!({})))
            .expect("reply");
        assert_eq!(r.status, 405, "{verb} on a collection");
        is_json(&r);
    }

    let skip = c.dv("GET", ORG, "accounts?$skip=2", None).expect("reply");
    assert_eq!(skip.status, 400);
    is_json(&skip);

    // A deep-inserted record whose plain column gets an array: the product's 400 for a
    // wrong value type, not dwsim's 501 for deeper nesting (found by tests/fuzz.rs).
    let nested = c
        .dv(
            "POST",
            ORG,
            "contacts",
            Some(&json!({"lastname": "Nested", "parentcustomerid_account": {"name": []}})),
        )
        .expect("reply");
    assert_eq!(nested.status, 400, "{}", nested.text());
    assert_eq!(is_json(&nested)["error"]["code"], json!("0x80048d19"));

    let literal = c
        .dv("GET", ORG, "accounts?$filter=name%20eq%20'O'Bryan'", None)
        .expect("reply");
    assert_eq!(literal.status, 400);
    assert_eq!(
        is_json(&literal)["error"]["message"],
        json!("There is an unterminated literal at position 17 in 'name eq 'O'Bryan''.")
    );
}

#[test]
fn fno_answers_bad_requests_with_its_innererror_envelope() {
    let h = servers();
    let c = Client::connect(&h).expect("client");

    let anonymous = send(
        &h,
        "GET",
        &format!("{}/data/CustomersV3", h.endpoints().fno(FO)),
        &[],
        "",
    );
    assert_eq!(anonymous.status, 401);
    assert!(is_json(&anonymous)["error"]["innererror"]["message"].is_string());

    let malformed = c.fno_raw("POST", FO, "CustomerGroups", "not json");
    assert_eq!(malformed.status, 400);
    assert!(is_json(&malformed)["error"]["innererror"]["message"].is_string());

    let case = c.fno("GET", FO, "customersV3", None).expect("reply");
    assert_eq!(case.status, 404, "entity sets are case-sensitive");
    is_json(&case);

    let partial_key = c
        .fno("GET", FO, "CustomersV3(CustomerAccount='US-001')", None)
        .expect("reply");
    assert_eq!(partial_key.status, 400);
    assert!(is_json(&partial_key)["error"]["innererror"]["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("The number of keys specified in the URI does not match"));

    let verb = c
        .fno("PUT", FO, "CustomersV3", Some(&json!({})))
        .expect("reply");
    assert_eq!(verb.status, 405);
    is_json(&verb);

    let has = c
        .fno(
            "GET",
            FO,
            "CustomersV3?$filter=PartyType%20has%20'Person'",
            None,
        )
        .expect("reply");
    assert_eq!(has.status, 400);
    assert_eq!(
        is_json(&has)["error"]["innererror"]["message"],
        json!("The query specified in the URI is not valid. The 'has' operator is not supported.")
    );

    let op = c
        .dual_write(FO, "DualWriteMapService", "teleport", json!({}))
        .expect_err("unknown operation");
    assert!(op.to_string().contains("HTTP 404"), "{op}");
}

#[test]
fn lcs_answers_with_its_envelope() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let project = c.project();

    let anonymous = send(
        &h,
        "GET",
        &format!(
            "{}/environmentinfo/v1/detail/project/{project}/",
            h.endpoints().lcs
        ),
        &[("x-ms-version", "2017-09-15")],
        "",
    );
    assert_eq!(anonymous.status, 401);
    assert_eq!(is_json(&anonymous)["IsSuccess"], json!(false));

    let no_version = c
        .lcs(
            "GET",
            &format!("/environmentinfo/v1/detail/project/{project}/"),
        )
        .map(|_| ());
    assert!(no_version.is_ok(), "the client sends x-ms-version");
    let token = format!("Bearer {}", c.token(&h.endpoints().lcs).expect("token"));
    let unversioned = send(
        &h,
        "GET",
        &format!(
            "{}/environmentinfo/v1/detail/project/{project}/",
            h.endpoints().lcs
        ),
        &[("Authorization", &token)],
        "",
    );
    assert_eq!(
        unversioned.status, 200,
        "LCS answers 200 with IsSuccess false"
    );
    assert_eq!(is_json(&unversioned)["IsSuccess"], json!(false));

    let wrong_project = c
        .lcs("GET", "/environmentinfo/v1/detail/project/1/")
        .expect_err("unknown project");
    assert!(
        wrong_project
            .to_string()
            .contains("Project 1 was not found"),
        "{wrong_project}"
    );

    let nowhere = send(
        &h,
        "GET",
        &format!("{}/environment/v9/teleport", h.endpoints().lcs),
        &[("Authorization", &token), ("x-ms-version", "2017-09-15")],
        "",
    );
    assert_eq!(nowhere.status, 404);
    assert_eq!(is_json(&nowhere)["IsSuccess"], json!(false));

    // 6 metadata calls per project per minute; the successful one above used one.
    let url = format!(
        "{}/environmentinfo/v1/detail/project/{project}/",
        h.endpoints().lcs
    );
    let statuses: Vec<u16> = (0..6)
        .map(|_| {
            send(
                &h,
                "GET",
                &url,
                &[("Authorization", &token), ("x-ms-version", "2017-09-15")],
                "",
            )
            .status
        })
        .collect();
    assert_eq!(statuses, vec![200, 200, 200, 200, 200, 429]);
    let limited = send(
        &h,
        "GET",
        &url,
        &[("Authorization", &token), ("x-ms-version", "2017-09-15")],
        "",
    );
    assert!(limited.header("retry-after").is_some());
    is_json(&limited);
}

#[test]
fn a_partner_mock_overrides_an_endpoint_on_the_same_server() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    h.runtime().block_on(async {
        wiremock::Mock::given(wiremock::matchers::path("/api/data/v9.2/WhoAmI"))
            .respond_with(
                wiremock::ResponseTemplate::new(503)
                    .set_body_json(json!({"error": {"code": "0x80040216", "message": "injected"}})),
            )
            .mount(
                &h.servers
                    .mock_server(&Server::Dataverse(ORG.into()))
                    .expect("the environment's server"),
            )
            .await;
    });
    assert_eq!(c.dv("GET", ORG, "WhoAmI", None).expect("reply").status, 503);
    assert_eq!(
        c.dv("GET", ORG, "accounts?$top=1", None)
            .expect("reply")
            .status,
        200,
        "the rest still reaches the simulator"
    );
}
