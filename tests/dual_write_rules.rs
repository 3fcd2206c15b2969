//! The documented dual-write rules, each checked against literal values from the demo data
//! rather than through the runtime's own helpers: the master decides initial-sync
//! conflicts, live sync only writes for companies in the connection, a paused queue
//! replays oldest first, source filters hold on both sides, and lookups resolve in the
//! row's own company. `.ci/mutants` breaks each rule in turn and expects these to fail.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::InProcess;
use dwsim_model::world::{World, EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
use dwsim_model::Start;
use dwsim_protocol::Sim;
use serde_json::{json, Value};

/// Existing F&O and Dataverse linked for `companies`, with the legal-entity map run and
/// the company-less Dataverse rows bootstrapped to USMF, as the guidance's existing-
/// existing setup does.
fn linked(companies: &[&str]) -> Sim {
    let mut w = common::world(11, Start::Existing, Start::Existing);
    w.ensure_dual_write_app_users(ORG).expect("app users");
    let companies: Vec<String> = companies.iter().map(|c| c.to_string()).collect();
    w.link(FO, ORG, &companies).expect("link");
    let sim = Sim::from_world(w);
    sim.world().config.service_protection.enabled = false;
    sim
}

fn dw(c: &Client, op: &str, args: Value) -> Value {
    c.dual_write(FO, "DualWriteMapService", op, args)
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

/// Runs maps in order, each with initial sync and this master.
fn run(c: &Client, maps: &[&str], master: &str) {
    for m in maps {
        let r = dw(
            c,
            "runMaps",
            json!({"maps": [{"map": m, "initialSync": true, "master": master}]}),
        );
        let status = r["executions"][0]["status"].as_str().unwrap_or("Completed");
        assert_eq!(status, "Completed", "{m}: {r}");
    }
}

/// The customer maps with everything they depend on, USMF bootstrapped in between.
fn customers_running(c: &Client, master: &str) {
    run(c, &["legalentities-companies"], master);
    dwsim_harness::runner::bootstrap(c, ORG, "USMF").expect("bootstrap");
    run(
        c,
        &[
            "currencies",
            "paymentterms",
            "customergroups",
            "customersv3-accounts",
        ],
        master,
    );
}

/// A world linked for `companies` with the customer maps running, F&O master.
fn customers_synced(companies: &[&str]) -> Sim {
    let sim = linked(companies);
    let t = InProcess { sim: sim.clone() };
    customers_running(
        &Client::connect(&t).expect("client"),
        "FinanceAndOperations",
    );
    sim
}

fn world(sim: &Sim) -> std::sync::MutexGuard<'_, World> {
    sim.world()
}

/// The company id of a cdm_company by code, read from the rows.
fn company_id(w: &World, code: &str) -> Option<String> {
    w.dataverse[ORG]
        .store
        .rows("cdm_company")
        .find(|(_, r)| r["cdm_companycode"].as_str() == Some(code))
        .map(|(id, _)| id.to_string())
}

/// The id of a company's Dataverse customer group, by company id and group id.
fn group_id(w: &World, company: &str, group: &str) -> Option<String> {
    w.dataverse[ORG]
        .store
        .rows("msdyn_customergroup")
        .find(|(_, r)| {
            r.get("msdyn_groupid") == Some(&json!(group))
                && r.get("_msdyn_company_value") == Some(&json!(company))
        })
        .map(|(id, _)| id.to_string())
}

/// Accounts with this account number, as (company code, row).
fn accounts(w: &World, number: &str) -> Vec<(String, dwsim_model::Row)> {
    let dv = &w.dataverse[ORG];
    dv.store
        .rows("account")
        .filter(|(_, r)| r.get("accountnumber").and_then(Value::as_str) == Some(number))
        .map(|(_, r)| {
            let company = r
                .get("_msdyn_company_value")
                .and_then(Value::as_str)
                .and_then(|id| dv.get("cdm_company", id))
                .and_then(|co| co["cdm_companycode"].as_str())
                .unwrap_or_default()
                .to_string();
            (company, r.clone())
        })
        .collect()
}

fn customer(w: &World, company: &str, account: &str) -> Option<dwsim_model::Row> {
    w.fno[FO]
        .store
        .rows("CustomersV3")
        .find(|(_, r)| {
            r["dataAreaId"].as_str() == Some(company)
                && r["CustomerAccount"].as_str() == Some(account)
        })
        .map(|(_, r)| r.clone())
}

#[test]
fn the_master_decides_initial_sync_conflicts() {
    // US-001 is in both products with different names and credit limits.
    let sim = customers_synced(&["USMF"]);
    let w = world(&sim);
    let (company, account) = accounts(&w, "US-001").pop().expect("US-001 account");
    assert_eq!(company, "USMF");
    assert_eq!(
        account["name"],
        json!("Contoso Retail San Diego"),
        "F&O is master"
    );
    assert_eq!(account["creditlimit"].as_f64(), Some(10000.0));
    drop(w);

    let sim = linked(&["USMF"]);
    let t = InProcess { sim: sim.clone() };
    customers_running(&Client::connect(&t).expect("client"), "Dataverse");
    let w = world(&sim);
    let fo = customer(&w, "usmf", "US-001").expect("US-001 customer");
    assert_eq!(
        fo["OrganizationName"],
        json!("Contoso Retail (San Diego)"),
        "Dataverse is master"
    );
    assert_eq!(fo["CreditLimit"].as_f64(), Some(12000.0));
}

#[test]
fn live_sync_writes_only_for_companies_in_the_connection() {
    let sim = linked(&["USMF"]);
    let t = InProcess { sim: sim.clone() };
    let c = Client::connect(&t).expect("client");
    customers_running(&c, "FinanceAndOperations");
    // USRT has a company row in Dataverse (made by hand), but is not in the connection.
    let made = c
        .dv(
            "POST",
            ORG,
            "cdm_companies",
            Some(&json!({"cdm_companycode": "USRT", "cdm_name": "Contoso Retail USA"})),
        )
        .expect("company");
    assert_eq!(made.status, 204, "{}", made.text());
    let created = c.fno_raw(
        "POST",
        FO,
        "CustomersV3",
        &json!({"dataAreaId": "usrt", "CustomerAccount": "RT-500", "OrganizationName": "Outside the link", "CustomerGroupId": "10", "PartyType": "Organization"}).to_string(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let w = world(&sim);
    assert!(company_id(&w, "USRT").is_some());
    assert!(
        accounts(&w, "RT-500").is_empty(),
        "a customer of a company outside the connection stays in F&O"
    );
}

#[test]
fn a_paused_map_replays_its_queue_oldest_first() {
    let sim = linked(&["USMF"]);
    let t = InProcess { sim: sim.clone() };
    let c = Client::connect(&t).expect("client");
    customers_running(&c, "FinanceAndOperations");
    dw(&c, "pauseMap", json!({"map": "customersv3-accounts"}));
    for name in ["First rename", "Second rename"] {
        let r = c.fno_raw(
            "PATCH",
            FO,
            "CustomersV3(dataAreaId='usmf',CustomerAccount='US-002')",
            &json!({"OrganizationName": name}).to_string(),
        );
        assert_eq!(r.status, 204, "{}", r.text());
    }
    // In Dataverse: an account made and deleted, then another with the same number. In
    // order, the delete finds nothing to delete and the second create lands; in reverse,
    // the delete would remove the second account's counterpart.
    let usmf = company_id(&world(&sim), "USMF").expect("USMF");
    let group = world(&sim).dataverse[ORG]
        .store
        .rows("msdyn_customergroup")
        .find(|(_, r)| {
            r["msdyn_groupid"].as_str() == Some("10")
                && r["_msdyn_company_value"].as_str() == Some(usmf.as_str())
        })
        .map(|(id, _)| id.to_string())
        .expect("USMF's group 10");
    let mut made = Vec::new();
    for name in ["Made then deleted", "Made again"] {
        let body = json!({"name": name, "accountnumber": "Q-1", "customertypecode": 3,
            "msdyn_company@odata.bind": format!("/cdm_companies({usmf})"),
            "msdyn_customergroupid@odata.bind": format!("/msdyn_customergroups({group})")});
        let r = c.dv("POST", ORG, "accounts", Some(&body)).expect("create");
        assert_eq!(r.status, 204, "{}", r.text());
        let id = r.header("OData-EntityId").unwrap_or_default().to_string();
        if made.is_empty() {
            let id = id
                .rsplit_once('(')
                .map(|(_, i)| i.trim_end_matches(')'))
                .unwrap_or_default();
            let d = c
                .dv("DELETE", ORG, &format!("accounts({id})"), None)
                .expect("delete");
            assert_eq!(d.status, 204, "{}", d.text());
        }
        made.push(id);
    }
    dw(&c, "resumeMap", json!({"map": "customersv3-accounts"}));
    let w = world(&sim);
    let (_, account) = accounts(&w, "US-002").pop().expect("US-002 account");
    assert_eq!(
        account["name"],
        json!("Second rename"),
        "the newest change wins"
    );
    let q1 = customer(&w, "usmf", "Q-1").expect("the second Q-1 reached F&O");
    assert_eq!(q1["OrganizationName"], json!("Made again"));
}

#[test]
fn source_filters_hold_on_both_sides() {
    let sim = linked(&["USMF"]);
    let t = InProcess { sim: sim.clone() };
    customers_running(&Client::connect(&t).expect("client"), "Dataverse");
    let w = world(&sim);
    // F&O side: PartyType == Organization; US-027 is a person.
    assert!(customer(&w, "usmf", "US-027").is_some());
    assert!(
        accounts(&w, "US-027").is_empty(),
        "a person customer is not an account"
    );
    // Dataverse side: customertypecode == 3 (customer); CRM-900 is a competitor.
    assert_eq!(accounts(&w, "CRM-900").len(), 1);
    assert!(
        customer(&w, "usmf", "CRM-900").is_none(),
        "a competitor account is not an F&O customer"
    );
    assert!(
        customer(&w, "usmf", "CRM-101").is_some(),
        "a customer account is"
    );
}

#[test]
fn lookups_resolve_in_the_rows_own_company() {
    // USMF, USRT and DEMF each have a customer group "10"; DE-001, USRT's US-001 and USMF's
    // US-003 are in it.
    let sim = linked(&["USMF", "USRT", "DEMF"]);
    let t = InProcess { sim: sim.clone() };
    customers_running(
        &Client::connect(&t).expect("client"),
        "FinanceAndOperations",
    );
    let w = world(&sim);
    let dv = &w.dataverse[ORG];
    let mut checked = 0;
    for (company, account) in ["DE-001", "US-001", "US-003"]
        .iter()
        .flat_map(|n| accounts(&w, n))
    {
        let group = account["_msdyn_customergroupid_value"]
            .as_str()
            .and_then(|g| dv.get("msdyn_customergroup", g))
            .expect("the account has a customer group");
        let group_company = group["_msdyn_company_value"]
            .as_str()
            .and_then(|id| dv.get("cdm_company", id))
            .and_then(|co| co["cdm_companycode"].as_str())
            .unwrap_or_default();
        assert_eq!(group_company, company, "{account:?}");
        checked += 1;
    }
    assert!(checked >= 4, "accounts in all three companies were checked");
}

#[test]
fn ci_breaks_every_mutant() {
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/mutants"))
        .expect(".ci/mutants");
    for m in dwsim_model::mutants::ALL {
        assert!(
            script.contains(m),
            ".ci/mutants does not run the mutant {m}"
        );
    }
    let run =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).expect(".ci/run");
    assert!(
        run.contains("bash .ci/mutants"),
        "CI does not run .ci/mutants"
    );
}

/// The convergence invariant compares by the rules, not by the runtime's helpers: a
/// difference only in letter case, and a lookup into another company's row with the same
/// key, are both divergence. The world is edited behind the runtime's back to make them.
#[test]
fn convergence_sees_case_and_company_of_lookups() {
    let sim = customers_synced(&["USMF", "USRT"]);
    let mut w = world(&sim);
    assert_eq!(dwsim_harness::invariants::convergence(&w), Ok(()));

    let usmf = company_id(&w, "USMF").expect("USMF");
    let usrt = company_id(&w, "USRT").expect("USRT");
    let (id, mut account) = w.dataverse[ORG]
        .store
        .rows("account")
        .find(|(_, r)| {
            r.get("accountnumber") == Some(&json!("US-002"))
                && r.get("_msdyn_company_value") == Some(&json!(usmf))
        })
        .map(|(id, r)| (id.to_string(), r.clone()))
        .expect("US-002");
    let original = account.clone();

    account.insert("name".into(), json!("CONTOSO RETAIL LOS ANGELES"));
    w.dataverse
        .get_mut(ORG)
        .expect("org")
        .store
        .put("account", &id, account);
    let found = dwsim_harness::invariants::convergence(&w);
    assert!(
        found.as_ref().is_err_and(|e| e.contains("name")),
        "{found:?}"
    );

    // USRT's group 10 instead of USMF's.
    let other_group = group_id(&w, &usrt, "10").expect("USRT's group 10");
    let mut account = original;
    account.insert("_msdyn_customergroupid_value".into(), json!(other_group));
    w.dataverse
        .get_mut(ORG)
        .expect("org")
        .store
        .put("account", &id, account);
    let found = dwsim_harness::invariants::convergence(&w);
    assert!(
        found
            .as_ref()
            .is_err_and(|e| e.contains("msdyn_customergroupid")),
        "{found:?}"
    );
}

/// Makes USMF's Dataverse account `number` differ from its F&O customer in every field the
/// customer map sends both ways: name, credit limit, email, the mandatory flag, the
/// customer group and the currency (both lookups, to other rows of the same company).
fn conflict_everywhere(sim: &Sim, number: &str) {
    let mut w = world(sim);
    let fo = customer(&w, "usmf", number).expect("the F&O customer");
    let usmf = company_id(&w, "USMF").expect("USMF");
    let dv = w.dataverse.get_mut(ORG).expect("org");
    let other_group = dv
        .store
        .rows("msdyn_customergroup")
        .find(|(_, r)| {
            r.get("_msdyn_company_value") == Some(&json!(usmf))
                && r.get("msdyn_groupid") != fo.get("CustomerGroupId")
        })
        .map(|(id, _)| id.to_string())
        .expect("another USMF customer group");
    let fo_currency = fo
        .get("SalesCurrencyCode")
        .and_then(Value::as_str)
        .unwrap_or("USD");
    let other_currency = dv
        .store
        .rows("transactioncurrency")
        .find(|(_, r)| r.get("isocurrencycode").and_then(Value::as_str) != Some(fo_currency))
        .map(|(id, _)| id.to_string())
        .expect("another currency");
    let (id, mut account) = dv
        .store
        .rows("account")
        .find(|(_, r)| {
            r.get("accountnumber") == Some(&json!(number))
                && r.get("_msdyn_company_value") == Some(&json!(usmf))
        })
        .map(|(id, r)| (id.to_string(), r.clone()))
        .expect("the Dataverse account");
    let mandatory = fo.get("CreditLimitIsMandatory") != Some(&json!("Yes"));
    for (k, v) in [
        ("name", json!("Conflicting name")),
        ("creditlimit", json!(777)),
        ("emailaddress1", json!("conflict@example.com")),
        ("msdyn_creditlimitismandatory", json!(mandatory)),
        ("_msdyn_customergroupid_value", json!(other_group)),
        ("_transactioncurrencyid_value", json!(other_currency)),
    ] {
        assert_ne!(account.get(k), Some(&v), "{k} already conflicts");
        account.insert(k.into(), v);
    }
    dv.store.put("account", &id, account);
}

#[test]
fn the_master_rule_invariant_tells_the_masters_apart() {
    // The same linked world, synced once with each master, US-001 conflicting in every
    // field the map sends both ways: the invariant holds each end state to the master it
    // was run with, and refuses the other's.
    let ended = |master: &str| {
        let sim = linked(&["USMF"]);
        let t = InProcess { sim: sim.clone() };
        let c = Client::connect(&t).expect("client");
        run(&c, &["legalentities-companies"], master);
        dwsim_harness::runner::bootstrap(&c, ORG, "USMF").expect("bootstrap");
        run(
            &c,
            &["currencies", "paymentterms", "customergroups"],
            master,
        );
        conflict_everywhere(&sim, "US-001");
        let before = world(&sim).clone();
        run(&c, &["customersv3-accounts"], master);
        let after = world(&sim).clone();
        (before, after)
    };
    let (fno_before, fno_after) = ended("FinanceAndOperations");
    let (dv_before, dv_after) = ended("Dataverse");
    // Literal values: Dataverse's conflicting values won in F&O, and F&O's in Dataverse.
    let won = customer(&dv_after, "usmf", "US-001").expect("US-001");
    assert_eq!(won["CreditLimit"].as_f64(), Some(777.0));
    assert_eq!(won["PrimaryContactEmail"], json!("conflict@example.com"));
    assert_ne!(
        won["CustomerGroupId"],
        customer(&dv_before, "usmf", "US-001").expect("US-001")["CustomerGroupId"]
    );
    let (_, kept) = accounts(&fno_after, "US-001").pop().expect("US-001");
    assert_ne!(kept["name"], json!("Conflicting name"));
    assert_ne!(kept["emailaddress1"], json!("conflict@example.com"));
    let rule = dwsim_harness::invariants::master_rule;
    let map = "customersv3-accounts";
    use dwsim_model::dualwrite::Side::{Dataverse, Fno};
    assert_eq!(rule(&fno_before, &fno_after, FO, map, Fno), Ok(()));
    assert_eq!(rule(&dv_before, &dv_after, FO, map, Dataverse), Ok(()));
    let wrong = rule(&fno_before, &dv_after, FO, map, Fno);
    assert!(
        wrong.as_ref().is_err_and(|e| e.contains("us-001")),
        "{wrong:?}"
    );
    let wrong = rule(&dv_before, &fno_after, FO, map, Dataverse);
    assert!(
        wrong.as_ref().is_err_and(|e| e.contains("us-001")),
        "{wrong:?}"
    );
}

#[test]
fn company_integrity_sees_rows_and_lookups_outside_the_connection() {
    let sim = customers_synced(&["USMF", "USRT"]);
    let mut w = world(&sim);
    assert_eq!(dwsim_harness::invariants::company_integrity(&w), Ok(()));
    let clean = w.clone();

    // A USMF account that looks up USRT's customer group "10".
    let usmf = company_id(&w, "USMF").expect("USMF");
    let usrt = company_id(&w, "USRT").expect("USRT");
    let usrt_group = group_id(&w, &usrt, "10").expect("USRT's group 10");
    let (id, mut account) = w.dataverse[ORG]
        .store
        .rows("account")
        .find(|(_, r)| r.get("_msdyn_company_value") == Some(&json!(usmf)))
        .map(|(id, r)| (id.to_string(), r.clone()))
        .expect("a USMF account");
    account.insert("_msdyn_customergroupid_value".into(), json!(usrt_group));
    let dv = w.dataverse.get_mut(ORG).expect("org");
    dv.store.put("account", &id, account);
    let found = dwsim_harness::invariants::company_integrity(&w);
    assert!(
        found
            .as_ref()
            .is_err_and(|e| e.contains("msdyn_customergroupid") && e.contains("USRT")),
        "{found:?}"
    );

    // A DEMF customer (DEMF is not in the connection) whose account crossed to Dataverse.
    *w = clean;
    let (_, demf) = w.fno[FO]
        .store
        .rows("CustomersV3")
        .find(|(_, r)| r["dataAreaId"].as_str() == Some("demf"))
        .map(|(id, r)| (id.to_string(), r.clone()))
        .expect("a DEMF customer");
    let number = demf["CustomerAccount"].clone();
    // A DEMF company row made by hand, and a copy of a USMF account pointed at it.
    let demf_company = "00000000-0000-0000-0000-00000000de3f";
    let mut company = w.dataverse[ORG]
        .store
        .get("cdm_company", &usmf)
        .cloned()
        .expect("USMF company");
    company.insert("cdm_companycode".into(), json!("DEMF"));
    company.insert("cdm_companyid".into(), json!(demf_company));
    let dv = w.dataverse.get_mut(ORG).expect("org");
    dv.store.put("cdm_company", demf_company, company);
    let (_, mut account) = w.dataverse[ORG]
        .store
        .rows("account")
        .find(|(_, r)| r.get("_msdyn_company_value") == Some(&json!(usmf)))
        .map(|(id, r)| (id.to_string(), r.clone()))
        .expect("a USMF account");
    account.insert("accountnumber".into(), number);
    account.insert("_msdyn_company_value".into(), json!(demf_company));
    account.insert(
        "accountid".into(),
        json!("00000000-0000-0000-0000-00000000d3f0"),
    );
    let dv = w.dataverse.get_mut(ORG).expect("org");
    dv.store
        .put("account", "00000000-0000-0000-0000-00000000d3f0", account);
    let found = dwsim_harness::invariants::company_integrity(&w);
    assert!(
        found.as_ref().is_err_and(|e| e.contains("DEMF")),
        "{found:?}"
    );
}
