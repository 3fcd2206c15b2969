//! Bounded fuzzing with proptest: malformed and odd input for the parsers and the
//! routers, in process. Nothing may panic, and nothing a client sends may get a 5xx (a 500
//! here is a caught panic or an internal error: the product would have answered 400).
//!
//! Targets: the `$filter` parser and evaluator (both dialects), key segments, JSON bodies
//! for creates in both products, `$batch` multipart bodies for both products, raw request
//! targets, and scenario files. CI runs `FUZZ_CASES` cases per target (default 200); a
//! longer run is `FUZZ_CASES=20000 cargo test --release --test fuzz -- --nocapture`, which
//! prints each HTTP target's answers by status (see the README).

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::scenario::Scenario;
use dwsim_harness::transport::InProcess;
use dwsim_model::world::{EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
use dwsim_model::Start;
use dwsim_protocol::odata::{self, filter, filter::Dialect};
use dwsim_protocol::Sim;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: if cfg!(feature = "mutants") {
            None
        } else {
            Some(Box::new(FileFailurePersistence::Direct(
                "proptest-regressions/fuzz.txt",
            )))
        },
        ..Config::default()
    })
}

/// Text built from the pieces a `$filter` is made of, mixed with arbitrary characters.
fn filter_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("name".to_string()),
        Just("accountnumber".to_string()),
        Just("_msdyn_company_value".to_string()),
        Just("msdyn_company/cdm_companycode".to_string()),
        Just("creditlimit".to_string()),
        Just(" eq ".to_string()),
        Just(" ne ".to_string()),
        Just(" gt ".to_string()),
        Just(" and ".to_string()),
        Just(" or ".to_string()),
        Just("not ".to_string()),
        Just(" add ".to_string()),
        Just(" div ".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just("'".to_string()),
        Just("''".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("contains(".to_string()),
        Just("startswith(".to_string()),
        Just("Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=[".to_string()),
        Just("@p1".to_string()),
        Just("00000000-0000-0000-0000-000000000001".to_string()),
        Just("2024-01-01T00:00:00Z".to_string()),
        Just("'*x*'".to_string()),
        (-1e20f64..1e20).prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        "[ -~]{0,6}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

/// A row with a mix of value types, for the evaluator.
fn row() -> dwsim_model::Row {
    dwsim_model::store::obj(json!({
        "name": "Contoso", "accountnumber": "A-1", "creditlimit": 10.5,
        "_msdyn_company_value": "00000000-0000-0000-0000-000000000001",
        "donotemail": false, "description": null, "nested": {"a": [1, "b"]}
    }))
}

#[test]
fn filter_parser_and_evaluator_never_panic() {
    let aliases: BTreeMap<String, String> = [("@p1".to_string(), "'x'".to_string())].into();
    let row = row();
    runner()
        .run(&filter_text(), |text| {
            for dialect in [Dialect::Dataverse, Dialect::FinOps] {
                if let Ok(expr) = filter::parse(&text, dialect, &aliases) {
                    let _ = filter::eval(&expr, &row, dialect);
                    let _ = odata::equality_pins(&expr);
                    let _ = filter::properties(&expr);
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn key_segments_never_panic() {
    let segment = proptest::collection::vec(
        prop_oneof![
            Just("accounts".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just("=".to_string()),
            Just(",".to_string()),
            Just("'".to_string()),
            Just("accountnumber".to_string()),
            Just("00000000-0000-0000-0000-000000000001".to_string()),
            "[ -~]{0,5}",
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..12,
    )
    .prop_map(|p| p.concat());
    runner()
        .run(&segment, |s| {
            let _ = odata::parse_segment(&s);
            let _ = odata::literal(&s);
            let _ = odata::parse_expand_item(&s);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Arbitrary JSON, nested a few levels, with the column names the tables have.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        "\\PC{0,6}".prop_map(Value::from),
        Just(Value::from("00000000-0000-0000-0000-000000000001")),
        Just(Value::from(
            "/accounts(00000000-0000-0000-0000-000000000001)"
        )),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_string()),
        Just("accountnumber".to_string()),
        Just("creditlimit".to_string()),
        Just("statecode".to_string()),
        Just("statuscode".to_string()),
        Just("customertypecode".to_string()),
        Just("createdon".to_string()),
        Just("primarycontactid@odata.bind".to_string()),
        Just("msdyn_company@odata.bind".to_string()),
        Just("parentcustomerid_account@odata.bind".to_string()),
        Just("contact_customer_accounts".to_string()),
        Just("accountid".to_string()),
        Just("dataAreaId".to_string()),
        Just("CustomerAccount".to_string()),
        Just("CustomerGroupId".to_string()),
        Just("PartyType".to_string()),
        Just("CreditLimit".to_string()),
        "[a-zA-Z_@.]{1,12}",
    ]
}

/// The demo world (existing F&O and Dataverse), served in process, unthrottled.
fn served() -> InProcess {
    let sim = Sim::from_world(common::world(5, Start::Existing, Start::Existing));
    sim.world().config.service_protection.enabled = false;
    InProcess { sim }
}

/// Sends as the harness app (one client per test, so its tokens are reused) and answers
/// the status and body.
fn send(
    c: &Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let resource = if url.starts_with(&c.dataverse_base(ORG)) {
        c.dataverse_base(ORG)
    } else {
        c.fno_base(FO)
    };
    let r = c
        .send_as(&resource, method, url, headers, body)
        .expect("in-process send");
    (r.status, r.text())
}

/// F&O's own answer to a write its validation refuses: the product answers those 500 with
/// `AxODataWriteException` (domain/protocols.md §2.4).
fn fno_write_refused(status: u16, body: &str) -> bool {
    status == 500
        && body.contains("AxODataWriteException")
        && body.contains("Write failed for table row of type")
        && !body.contains("internal error")
}

/// A 5xx is a failure, except F&O's answer to a refused write. Every answer is counted in
/// the target's tally.
fn no_server_error(
    tally: &Tally,
    status: u16,
    what: &str,
    body: &str,
) -> Result<(), TestCaseError> {
    tally.count(status, body);
    prop_assert!(
        status < 500 || fno_write_refused(status, body),
        "{what} answered {status}: {body}"
    );
    Ok(())
}

/// The answers one target got, by status, printed when the target ends (shown with
/// `-- --nocapture`): the request and 5xx counts a longer run reports.
struct Tally {
    target: &'static str,
    statuses: std::cell::RefCell<BTreeMap<String, u64>>,
}

impl Tally {
    fn new(target: &'static str) -> Tally {
        Tally {
            target,
            statuses: Default::default(),
        }
    }

    fn count(&self, status: u16, body: &str) {
        let kind = if fno_write_refused(status, body) {
            "500 (F&O write refused)".to_string()
        } else {
            status.to_string()
        };
        *self.statuses.borrow_mut().entry(kind).or_default() += 1;
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let statuses = self.statuses.borrow();
        let shown: Vec<String> = statuses.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        eprintln!(
            "fuzz {}: {} requests; {}",
            self.target,
            statuses.values().sum::<u64>(),
            shown.join(", ")
        );
    }
}

#[test]
fn json_bodies_get_client_errors_not_server_errors() {
    let transport = served();
    let c = Client::connect(&transport).expect("client");
    let (dv, fo) = (c.dataverse_base(ORG), c.fno_base(FO));
    // Where a body is POSTed, and where a PATCH of the same table goes: a key (an id no row
    // has yet, which Dataverse answers as an upsert, or a demo row in F&O).
    let urls = [
        (
            format!("{dv}/api/data/v9.2/accounts"),
            Some(format!(
                "{dv}/api/data/v9.2/accounts(00000000-0000-0000-0000-00000000f022)"
            )),
        ),
        (
            format!("{dv}/api/data/v9.2/contacts"),
            Some(format!(
                "{dv}/api/data/v9.2/contacts(00000000-0000-0000-0000-00000000c022)"
            )),
        ),
        (
            format!("{dv}/api/data/v9.2/accounts/Microsoft.Dynamics.CRM.CreateMultiple"),
            None,
        ),
        (
            format!("{fo}/data/CustomersV3"),
            Some(format!(
                "{fo}/data/CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')"
            )),
        ),
        (
            format!("{fo}/data/CustomerGroups"),
            Some(format!(
                "{fo}/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='10')"
            )),
        ),
        (
            format!("{fo}/api/services/DualWriteServices/DualWriteMapService/runMaps"),
            None,
        ),
    ];
    let case = (0..urls.len(), json_value(), any::<bool>());
    let tally = Tally::new("JSON bodies");
    runner()
        .run(&case, |(u, body, patch)| {
            let (method, url) = match (&urls[u], patch) {
                ((_, Some(key)), true) => ("PATCH", key),
                ((collection, _), _) => ("POST", collection),
            };
            let text = body.to_string();
            let (status, answer) = send(
                &c,
                method,
                url,
                &[("Content-Type", "application/json")],
                text.as_bytes(),
            );
            no_server_error(&tally, status, &format!("{method} {url} {text}"), &answer)
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A `$batch` body: a boundary, parts with request lines, headers and bodies drawn from
/// valid and broken pieces.
fn batch_body() -> impl Strategy<Value = (String, String)> {
    let line = prop_oneof![
        Just("GET accounts?$select=name HTTP/1.1".to_string()),
        Just("POST accounts HTTP/1.1".to_string()),
        Just("PATCH accounts(00000000-0000-0000-0000-000000000001) HTTP/1.1".to_string()),
        Just("DELETE $1 HTTP/1.1".to_string()),
        Just("GET CustomerGroups HTTP/1.1".to_string()),
        Just("POST CustomerGroups HTTP/1.1".to_string()),
        Just("Content-Type: application/http".to_string()),
        Just("Content-Transfer-Encoding: binary".to_string()),
        Just("Content-Type: application/json".to_string()),
        Just("Content-Type: multipart/mixed; boundary=changeset_x".to_string()),
        Just("--changeset_x".to_string()),
        Just("--changeset_x--".to_string()),
        Just("Content-ID: 1".to_string()),
        Just("{\"name\":\"x\"}".to_string()),
        Just("{\"CustomerGroupId\":\"Z\",\"dataAreaId\":\"usmf\"}".to_string()),
        Just(String::new()),
        "[ -~]{0,20}",
    ];
    (
        prop_oneof![Just("batch_x".to_string()), "[a-z_]{0,8}"],
        proptest::collection::vec(proptest::collection::vec(line, 0..10), 0..5),
        any::<bool>(),
    )
        .prop_map(|(boundary, parts, close)| {
            let mut body = String::new();
            for part in parts {
                body.push_str(&format!("--{boundary}\r\n"));
                for l in part {
                    body.push_str(&l);
                    body.push_str("\r\n");
                }
            }
            if close {
                body.push_str(&format!("--{boundary}--\r\n"));
            }
            (boundary, body)
        })
}

#[test]
fn batch_bodies_get_client_errors_not_server_errors() {
    let transport = served();
    let c = Client::connect(&transport).expect("client");
    let urls = [
        format!("{}/api/data/v9.2/$batch", c.dataverse_base(ORG)),
        format!("{}/data/$batch", c.fno_base(FO)),
    ];
    let tally = Tally::new("$batch bodies");
    runner()
        .run(&(0..2usize, batch_body()), |(u, (boundary, body))| {
            let content_type = format!("multipart/mixed; boundary={boundary}");
            let (status, answer) = send(
                &c,
                "POST",
                &urls[u],
                &[("Content-Type", &content_type)],
                body.as_bytes(),
            );
            no_server_error(&tally, status, &format!("$batch {body:?}"), &answer)
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn request_targets_get_client_errors_not_server_errors() {
    let transport = served();
    let c = Client::connect(&transport).expect("client");
    let (dv, fo) = (c.dataverse_base(ORG), c.fno_base(FO));
    let path = proptest::collection::vec(
        prop_oneof![
            Just("/api/data/v9.2/".to_string()),
            Just("/data/".to_string()),
            Just("accounts".to_string()),
            Just("CustomersV3".to_string()),
            Just("EntityDefinitions".to_string()),
            Just("(LogicalName='account')".to_string()),
            Just("/Attributes".to_string()),
            Just("$metadata".to_string()),
            Just("$count".to_string()),
            Just("?".to_string()),
            Just("&".to_string()),
            Just("$filter=".to_string()),
            Just("$select=".to_string()),
            Just("$expand=".to_string()),
            Just("$top=".to_string()),
            Just("$skiptoken=".to_string()),
            Just("%".to_string()),
            Just("%2F".to_string()),
            Just("%00".to_string()),
            Just("'".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            "[ -~]{0,6}",
        ],
        0..10,
    );
    // Mostly below an API root, so the routers' own parsing is reached, not only 404s.
    let root = prop_oneof![
        3 => Just("/api/data/v9.2/"),
        2 => Just("/data/"),
        1 => Just(""),
    ];
    let free_form = (root, path).prop_map(|(root, p)| format!("{root}{}", p.concat()));
    // Half the cases follow OData's grammar, so they reach the query options' parsers.
    let path = prop_oneof![free_form, odata_target()];
    let method = prop_oneof![Just("GET"), Just("DELETE"), Just("PATCH"), Just("POST")];
    let tally = Tally::new("request targets");
    runner()
        .run(&(any::<bool>(), method, path), |(to_dv, method, path)| {
            // A target below one product's API root goes to that product's origin.
            let to_dv = match () {
                _ if path.starts_with("/api/data/") => true,
                _ if path.starts_with("/data/") => false,
                _ => to_dv,
            };
            let base = if to_dv { &dv } else { &fo };
            let path = path.replace(' ', "%20");
            let url = format!(
                "{base}{}",
                if path.starts_with('/') {
                    path.clone()
                } else {
                    format!("/{path}")
                }
            );
            let (status, answer) = send(&c, method, &url, &[], b"{}");
            no_server_error(&tally, status, &format!("{method} {url}"), &answer)
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// An OData-shaped target below an API root: an entity set (of either product), maybe a key,
/// maybe a property, navigation or `$count`, and query options whose values are drawn from
/// valid and broken pieces.
fn odata_target() -> impl Strategy<Value = String> {
    let dataverse = prop_oneof![
        Just("accounts"),
        Just("contacts"),
        Just("msdyn_customergroups"),
        Just("systemusers"),
        Just("EntityDefinitions"),
        Just("GlobalOptionSetDefinitions"),
        Just("WhoAmI"),
        Just("$metadata"),
    ]
    .prop_map(|set| ("/api/data/v9.2/", set));
    let fno = prop_oneof![
        Just("CustomersV3"),
        Just("CustomerGroups"),
        Just("LegalEntities"),
        Just("$metadata"),
    ]
    .prop_map(|set| ("/data/", set));
    let root_and_set = prop_oneof![dataverse, fno];
    let key = prop_oneof![
        3 => Just(String::new()),
        1 => Just("(00000000-0000-0000-0000-000000000001)".to_string()),
        1 => Just("(accountnumber='A1')".to_string()),
        1 => Just("(dataAreaId='usmf',CustomerGroupId='10')".to_string()),
        1 => Just("(LogicalName='account')".to_string()),
        1 => "\\([ -~]{0,12}\\)",
    ];
    let tail = prop_oneof![
        3 => Just(""),
        1 => Just("/name"),
        1 => Just("/$count"),
        1 => Just("/$ref"),
        1 => Just("/Attributes"),
        1 => Just("/primarycontactid"),
        1 => Just("/contact_customer_accounts"),
    ];
    let option = prop_oneof![
        Just("$select"),
        Just("$filter"),
        Just("$top"),
        Just("$skip"),
        Just("$orderby"),
        Just("$expand"),
        Just("$count"),
        Just("$apply"),
        Just("$skiptoken"),
        Just("$search"),
        Just("cross-company"),
        Just("$format"),
    ];
    let value = prop_oneof![
        Just("name".to_string()),
        Just("name,accountnumber".to_string()),
        Just("name eq 'x'".to_string()),
        Just("contains(name,'a') and statecode eq 0".to_string()),
        Just("CustomerGroupId eq '10' or dataAreaId ne 'usmf'".to_string()),
        Just("10".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("true".to_string()),
        Just("name desc,accountnumber".to_string()),
        Just("primarycontactid($select=fullname;$top=1)".to_string()),
        Just("Attributes($filter=LogicalName eq 'name')".to_string()),
        "[ -~]{0,16}",
    ];
    let options = proptest::collection::vec((option, value), 0..4);
    (root_and_set, key, tail, options).prop_map(|((root, set), key, tail, options)| {
        let query: Vec<String> = options.iter().map(|(o, v)| format!("{o}={v}")).collect();
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        };
        format!("{root}{set}{key}{tail}{query}")
    })
}

#[test]
fn scenario_files_never_panic_the_parser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut sources: Vec<String> = std::fs::read_dir(&dir)
        .expect("scenarios")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    sources.sort();
    assert!(!sources.is_empty());
    // A real file with a slice cut out and arbitrary text spliced in.
    let case = (
        0..sources.len(),
        any::<prop::sample::Index>(),
        0..40usize,
        "\\PC{0,12}",
    );
    runner()
        .run(&case, |(f, at, cut, insert)| {
            let src = &sources[f];
            let chars: Vec<char> = src.chars().collect();
            let at = at.index(chars.len().max(1));
            let end = (at + cut).min(chars.len());
            let mutated: String = chars[..at]
                .iter()
                .chain(insert.chars().collect::<Vec<_>>().iter())
                .chain(chars[end..].iter())
                .collect();
            let _ = Scenario::parse(Path::new("fuzzed.toml"), &mutated);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
