//! F&O OData, the dual-write administration, LCS and the Power Platform admin API over real
//! HTTP: one test per numbered item of the F&O/LCS fidelity issue, each documented failure
//! with its exact text.

use dwsim_harness::client::Client;
use dwsim_harness::transport::{Http, Reply};
use dwsim_model::world::{obj, EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
use dwsim_model::{Catalogue, Start, World, WorldSpec};
use dwsim_protocol::Sim;
use serde_json::{json, Value};

fn world(fno: Start, dataverse: Start) -> World {
    let data = Catalogue::builtin().expect("catalogue").demo;
    World::new(WorldSpec {
        seed: 3,
        fno,
        dataverse,
        data,
        clock_start_ms: 0,
    })
    .expect("world")
}

fn serve(w: World) -> Http {
    Http::https(Sim::from_world(w)).expect("servers")
}

fn get(c: &Client, path: &str) -> Value {
    let r = c.fno("GET", FO, path, None).expect("answered");
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

fn inner(r: &Reply) -> String {
    r.json()["error"]["innererror"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn accounts(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            r["CustomerAccount"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn dw(c: &Client, service: &str, op: &str, args: Value) -> Result<Value, String> {
    c.dual_write(FO, service, op, args)
        .map_err(|e| e.to_string())
}

#[test]
fn item1_fno_odata_queries_keys_companies_paging_and_errors() {
    let mut w = world(Start::Existing, Start::Existing);
    // 10,001 customer groups in DAT to see server paging.
    let catalogue = w.catalogue.clone();
    let groups = &catalogue.fno_entities["CustomerGroups"];
    let now = w.clock.now();
    let env = w.fno.get_mut(FO).expect("env");
    for i in 0..10_001 {
        env.insert(
            &catalogue,
            groups,
            obj(json!({"dataAreaId": "dat", "CustomerGroupId": format!("P{i:05}")})),
            now,
        )
        .expect("group");
    }
    let h = serve(w);
    let c = Client::connect(&h).expect("client");

    let meta = c
        .fno("GET", FO, "$metadata", None)
        .expect("metadata")
        .text();
    for needle in [
        r#"<EntityType Name="CustomerV3"><Key><PropertyRef Name="dataAreaId"/><PropertyRef Name="CustomerAccount"/></Key>"#,
        r#"<NavigationProperty Name="CustomerGroup""#,
        r#"<EnumType Name="NoYes">"#,
        r#"<EntitySet Name="CustomersV3""#,
    ] {
        assert!(meta.contains(needle), "$metadata lacks {needle}");
    }
    assert_eq!(
        c.fno("GET", FO, "customersv3", None)
            .expect("answered")
            .status,
        404,
        "entity sets are case-sensitive"
    );
    assert_eq!(
        get(
            &c,
            "CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')"
        )["OrganizationName"],
        json!("Contoso Retail San Diego")
    );

    // The default company (DAT) unless cross-company=true.
    assert_eq!(accounts(&get(&c, "CustomersV3")), Vec::<String>::new());
    assert_eq!(
        get(&c, "CustomersV3?cross-company=true&$count=true&$top=1")["@odata.count"],
        json!(9)
    );
    assert_eq!(
        accounts(&get(
            &c,
            "CustomersV3?cross-company=true&$filter=dataAreaId eq 'usrt'&$orderby=CustomerAccount"
        )),
        vec!["004021", "US-001"]
    );

    // F&O's filter dialect.
    assert_eq!(accounts(&get(&c, "CustomersV3?cross-company=true&$filter=OrganizationName eq '*wholesales*'&$orderby=CustomerAccount desc")), vec!["US-004", "US-003"]);
    let persons = get(&c, "CustomersV3?cross-company=true&$filter=PartyType eq Microsoft.Dynamics.DataEntities.DirPartyBaseType'Person'&$select=CustomerAccount");
    assert_eq!(persons["value"].as_array().map(Vec::len), Some(3));
    let r = c
        .fno(
            "GET",
            FO,
            "CustomersV3?$filter=CustomerAccount in ('US-001')",
            None,
        )
        .expect("answered");
    assert_eq!(
        (r.status, inner(&r)),
        (
            400,
            "The query specified in the URI is not valid. The 'in' operator is not supported."
                .to_string()
        )
    );

    // $select, $top, $skip, $count, /$count, one level of $expand.
    let page = get(&c, "CustomersV3?cross-company=true&$select=CustomerAccount,dataAreaId&$orderby=dataAreaId,CustomerAccount&$skip=2&$top=2");
    assert_eq!(accounts(&page), vec!["US-002", "US-003"]);
    assert!(page["value"][0].get("OrganizationName").is_none());
    let count = c
        .fno("GET", FO, "CustomerGroups/$count?cross-company=true", None)
        .expect("count");
    assert_eq!(count.text(), "10007");
    let expanded = get(&c, "CustomersV3(dataAreaId='usmf',CustomerAccount='US-003')?$expand=CustomerGroup($select=Description)");
    assert_eq!(
        expanded["CustomerGroup"],
        json!({"@odata.etag": expanded["CustomerGroup"]["@odata.etag"], "Description": "Wholesale customers"})
    );

    // Server paging at 10,000 rows with a $skip nextLink.
    let first = get(&c, "CustomerGroups");
    assert_eq!(first["value"].as_array().map(Vec::len), Some(10_000));
    let next = first["@odata.nextLink"]
        .as_str()
        .expect("nextLink")
        .to_string();
    assert!(next.ends_with("$skip=10000"), "{next}");
    let rest = c
        .send_as(&c.fno_base(FO), "GET", &next, &[], &[])
        .expect("next page")
        .json();
    assert_eq!(rest["value"].as_array().map(Vec::len), Some(1));
    assert!(rest.get("@odata.nextLink").is_none());

    // Writes and the Infolog errors.
    let created = c
        .fno(
            "POST",
            FO,
            "CustomerGroups",
            Some(&json!({"dataAreaId": "usmf", "CustomerGroupId": "40", "Description": "New"})),
        )
        .expect("create");
    assert_eq!(created.status, 201);
    assert!(created
        .header("Location")
        .unwrap_or_default()
        .ends_with("/data/CustomerGroups(dataAreaId='usmf',CustomerGroupId='40')"));
    let dup = c
        .fno(
            "POST",
            FO,
            "CustomerGroups",
            Some(&json!({"dataAreaId": "usmf", "CustomerGroupId": "10", "Description": "Again"})),
        )
        .expect("dup");
    assert_eq!(dup.status, 500);
    assert_eq!(inner(&dup), "Write failed for table row of type 'CustCustomerGroupEntity'. Infolog: Info: Cannot create a record in Customer groups (CustGroup). Customer group: 10.\nThe record already exists.");
    let missing = c.fno("POST", FO, "CustomersV3", Some(&json!({"dataAreaId": "usmf", "CustomerAccount": "X-1", "OrganizationName": "X", "CustomerGroupId": "Local"}))).expect("missing");
    assert_eq!(inner(&missing), "Write failed for table row of type 'CustCustomerV3Entity'. Infolog: Warning: The value 'Local' in field 'Customer group' is not found in the related table 'Customer groups'.");
    let long = c
        .fno(
            "POST",
            FO,
            "CustomerGroups",
            Some(&json!({"dataAreaId": "usmf", "CustomerGroupId": "TOOLONGGROUPID"})),
        )
        .expect("long");
    assert!(
        inner(&long).contains("in field 'Customer group' is too long"),
        "{}",
        inner(&long)
    );
    assert_eq!(
        c.fno(
            "PATCH",
            FO,
            "CustomerGroups(dataAreaId='usmf',CustomerGroupId='40')",
            Some(&json!({"Description": "Changed"}))
        )
        .expect("patch")
        .status,
        204
    );
    assert_eq!(
        c.fno(
            "DELETE",
            FO,
            "CustomerGroups(dataAreaId='usmf',CustomerGroupId='40')",
            None
        )
        .expect("delete")
        .status,
        204
    );
}

#[test]
fn item2_health_check_texts_gate_linking() {
    let mut w = world(Start::Existing, Start::Existing);
    w.provision_dataverse("barecrm", true, false, false)
        .expect("bare org");
    if let Some(f) = w.fno.get_mut(FO) {
        f.platform_update = 30;
        f.entra_apps
            .remove(dwsim_model::entra::DUAL_WRITE_DV_TO_FNO_APP);
    }
    if let Some(d) = w.dataverse.get_mut("barecrm") {
        d.tenant_id = "another-tenant".into();
    }
    let h = serve(w);
    let c = Client::connect(&h).expect("client");
    let r = dw(
        &c,
        "DualWriteConnectionService",
        "getHealthCheck",
        json!({"dataverseEnvironment": "barecrm"}),
    )
    .expect("health check");
    let messages: Vec<&str> = r["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["message"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        messages,
        vec![
            "Dual Write is supported on finance and operations app environments with Platform Update PU 33 (App version 10.0.9) or above",
            "The entity with a name 'msdyn_dualwriteentitymap' with namemapping='Logical' was not found in the MetadataCache.",
            "App user with id 6f7d0213-62b1-43a8-b7f4-ff2bb8b7b452 does not exist in the finance and operations app",
            "App user with id 00000015-0000-0000-c000-000000000000 does not exist in Dataverse",
            "To ensure listening into CRUD operations on the Dataverse, the dual-write plugins need to be enabled",
            "The finance and operations app and Dataverse must be in the same tenant.",
        ]
    );
    assert_eq!(r["passed"], json!(false));
    let refused = dw(
        &c,
        "DualWriteConnectionService",
        "link",
        json!({"dataverseEnvironment": "barecrm", "legalEntities": ["DAT"]}),
    )
    .expect_err("refused");
    assert!(
        refused.contains("You can't link dual-write unless the whole health check passes."),
        "{refused}"
    );
}

/// An existing F&O and Dataverse, ready to link.
fn ready() -> (Http, Vec<String>) {
    let mut w = world(Start::Existing, Start::Existing);
    w.ensure_dual_write_app_users(ORG).expect("app users");
    let companies = w.fno[FO].companies();
    (serve(w), companies)
}

#[test]
fn item2_link_legal_entities_and_company_names() {
    let (h, companies) = ready();
    let c = Client::connect(&h).expect("client");
    // Duplicate company names fail the connection set.
    let renamed = c
        .fno(
            "PATCH",
            FO,
            "LegalEntities('USRT')",
            Some(&json!({"Name": "Contoso Entertainment System USA"})),
        )
        .expect("rename");
    assert_eq!(renamed.status, 204);
    let dup = dw(
        &c,
        "DualWriteConnectionService",
        "link",
        json!({"dataverseEnvironment": ORG, "legalEntities": companies}),
    )
    .expect_err("duplicate names");
    assert!(
        dup.contains(
            "Saving connection set failed! An item with the same key has already been added."
        ),
        "{dup}"
    );
    c.fno(
        "PATCH",
        FO,
        "LegalEntities('USRT')",
        Some(&json!({"Name": "Contoso Retail USA"})),
    )
    .expect("rename back");
    dw(
        &c,
        "DualWriteConnectionService",
        "link",
        json!({"dataverseEnvironment": ORG, "legalEntities": ["DAT", "USMF"]}),
    )
    .expect("link");
    // One F&O to one Dataverse.
    let again = dw(
        &c,
        "DualWriteConnectionService",
        "link",
        json!({"dataverseEnvironment": ORG, "legalEntities": ["DAT"]}),
    )
    .expect_err("1:1");
    assert!(
        again.contains("is already linked to Dataverse environment contosocrm"),
        "{again}"
    );
    // Each company gets a business unit and a "<code> DW" owner team as Default owning team.
    let teams = c
        .dv_all(ORG, "teams?$select=name&$filter=name eq 'USMF DW'")
        .expect("teams");
    assert_eq!(teams.len(), 1);
    let company = c.dv_all(ORG, "cdm_companies?$select=cdm_companycode,_cdm_defaultowningteam_value&$filter=cdm_companycode eq 'USMF'").expect("company");
    assert_eq!(
        company[0]["_cdm_defaultowningteam_value"],
        teams[0]["teamid"]
    );
    // Add with initial writes, then removal refused while a map is paused.
    let runs = json!({"maps": [{"map": "legalentities-companies", "initialSync": false}, {"map": "paymentterms", "initialSync": true, "master": "FinanceAndOperations"}, {"map": "customergroups", "initialSync": true, "master": "FinanceAndOperations"}]});
    dw(&c, "DualWriteMapService", "runMaps", runs).expect("run");
    let added = dw(
        &c,
        "DualWriteLegalEntityService",
        "addLegalEntities",
        json!({"legalEntities": ["DEMF"]}),
    )
    .expect("add");
    assert!(
        added["executions"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "running maps do initial writes for the new company"
    );
    assert_eq!(
        c.dv_all(
            ORG,
            "msdyn_customergroups?$select=msdyn_groupid&$filter=msdyn_description eq 'Grosskunden'"
        )
        .expect("groups")
        .len(),
        1
    );
    dw(
        &c,
        "DualWriteMapService",
        "pauseMap",
        json!({"map": "customergroups"}),
    )
    .expect("pause");
    let refused = dw(
        &c,
        "DualWriteLegalEntityService",
        "removeLegalEntity",
        json!({"legalEntity": "DEMF"}),
    )
    .expect_err("paused");
    assert!(
        refused.contains("can't be removed while a table map is initializing or paused"),
        "{refused}"
    );
    dw(
        &c,
        "DualWriteMapService",
        "resumeMap",
        json!({"map": "customergroups"}),
    )
    .expect("resume");
    dw(
        &c,
        "DualWriteLegalEntityService",
        "removeLegalEntity",
        json!({"legalEntity": "DEMF"}),
    )
    .expect("remove");
    let conn =
        dw(&c, "DualWriteConnectionService", "getConnection", json!({})).expect("connection");
    assert_eq!(conn["legalEntities"], json!(["DAT", "USMF"]));
}

#[test]
fn item2_maps_related_order_state_machine_customizing_and_reset() {
    let (h, companies) = ready();
    let c = Client::connect(&h).expect("client");
    dw(
        &c,
        "DualWriteConnectionService",
        "link",
        json!({"dataverseEnvironment": ORG, "legalEntities": companies}),
    )
    .expect("link");
    let related = dw(
        &c,
        "DualWriteMapService",
        "getRelatedMaps",
        json!({"map": "customersv3-accounts"}),
    )
    .expect("related");
    let order: Vec<&str> = related
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(order.last(), Some(&"customersv3-accounts"));
    let pos = |m: &str| order.iter().position(|x| *x == m).expect(m);
    assert!(
        pos("legalentities-companies") < pos("customergroups")
            && pos("customergroups") < pos("customersv3-accounts"),
        "upstream first: {order:?}"
    );
    // A map whose dependencies are not running can't be enabled.
    let lonely = dw(
        &c,
        "DualWriteMapService",
        "runMaps",
        json!({"maps": [{"map": "customersv3-accounts"}]}),
    )
    .expect_err("dependencies");
    assert!(
        lonely.contains("Unable to build dual-write lookup metadata"),
        "{lonely}"
    );
    // Refusals in the wrong state, then Running → Paused → (Resuming) → Running → Not running.
    let paused = dw(
        &c,
        "DualWriteMapService",
        "pauseMap",
        json!({"map": "customergroups"}),
    )
    .expect_err("not running");
    assert!(
        paused.contains(
            "The action Pause isn't available for table map customergroups in state Not running."
        ),
        "{paused}"
    );
    let runs: Vec<Value> = order
        .iter()
        .map(|m| json!({"map": m, "initialSync": true, "master": "Dataverse"}))
        .collect();
    let ran = dw(&c, "DualWriteMapService", "runMaps", json!({"maps": runs}))
        .expect("run related, upstream first");
    let executed: Vec<&str> = ran["executions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["map"].as_str())
        .collect();
    assert_eq!(executed, order, "initial sync ran upstream first");
    let twice = dw(
        &c,
        "DualWriteMapService",
        "runMaps",
        json!({"maps": [{"map": "customergroups"}]}),
    )
    .expect_err("running");
    assert!(twice.contains("is Running and can't be run"), "{twice}");
    assert!(dw(
        &c,
        "DualWriteMapService",
        "resumeMap",
        json!({"map": "customergroups"})
    )
    .expect_err("running")
    .contains("The action Run isn't available"));
    dw(
        &c,
        "DualWriteMapService",
        "pauseMap",
        json!({"map": "customergroups"}),
    )
    .expect("pause");
    dw(
        &c,
        "DualWriteMapService",
        "resumeMap",
        json!({"map": "customergroups"}),
    )
    .expect("resume");
    let status = |m: &str| -> String {
        dw(&c, "DualWriteMapService", "getMaps", json!({}))
            .expect("maps")
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["map"] == json!(m))
            .and_then(|x| x["status"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    assert_eq!(status("customergroups"), "Running");
    // Fields are editable only when stopped; saving validates and needs publisher and version.
    let fields = json!([{"fno": "CustomerGroupId", "dv": "msdyn_groupid", "dir": "="}]);
    let running = dw(&c, "DualWriteMapService", "updateMapFields", json!({"map": "customergroups", "fields": fields, "publisher": "contoso", "version": "1.0.0.3"})).expect_err("running");
    assert!(
        running.contains("must be stopped (not running)"),
        "{running}"
    );
    assert!(dw(
        &c,
        "DualWriteMapService",
        "stopMap",
        json!({"map": "customergroups"})
    )
    .is_ok());
    assert_eq!(status("customergroups"), "Not running");
    let one_way = json!([{"fno": "CustomerGroupId", "dv": "msdyn_groupid", "dir": ">"}, {"fno": "Description", "dv": "msdyn_description", "dir": "="}]);
    let invalid = dw(&c, "DualWriteMapService", "updateMapFields", json!({"map": "customergroups", "fields": one_way, "publisher": "contoso", "version": "1.0.0.3"})).expect_err("DIPV1004");
    assert!(invalid.contains("Project validation failed. [DIPV1004] Integration key field isn't bi-directionally mapped: CustomerGroupId"), "{invalid}");
    let no_publisher = dw(
        &c,
        "DualWriteMapService",
        "updateMapFields",
        json!({"map": "customergroups", "fields": fields, "version": "1.0.0.3"}),
    )
    .expect_err("publisher");
    assert!(
        no_publisher.contains("needs a publisher and a version number"),
        "{no_publisher}"
    );
    let saved = dw(&c, "DualWriteMapService", "updateMapFields", json!({"map": "customergroups", "fields": fields, "publisher": "contoso", "version": "1.0.0.3"})).expect("saved");
    assert_eq!(saved["version"], json!("1.0.0.3"));
    dw(
        &c,
        "DualWriteMapService",
        "runMaps",
        json!({"maps": [{"map": "customergroups", "initialSync": false}]}),
    )
    .expect("rerun");
    c.fno("POST", FO, "CustomerGroups", Some(&json!({"dataAreaId": "usmf", "CustomerGroupId": "ED", "Description": "Not mapped any more"}))).expect("create");
    let row = c
        .dv_all(
            ORG,
            "msdyn_customergroups?$select=msdyn_description&$filter=msdyn_groupid eq 'ED'",
        )
        .expect("group");
    assert_eq!(
        row[0]["msdyn_description"],
        Value::Null,
        "the edited map no longer sends the description"
    );
    // Reset needs every map stopped, unless forced.
    let reset =
        dw(&c, "DualWriteConnectionService", "resetLink", json!({})).expect_err("maps running");
    assert!(
        reset.contains("You must stop all dual-write maps before you use the Reset link button."),
        "{reset}"
    );
    assert_eq!(
        dw(
            &c,
            "DualWriteConnectionService",
            "resetLink",
            json!({"force": true})
        )
        .expect("forced")["linked"],
        json!(false)
    );
}

#[test]
fn item3_lcs_deployment_integration_and_dual_write_with_failures() {
    let mut w = world(Start::New, Start::Existing);
    w.provision_dataverse("noapps", false, false, false)
        .expect("org without apps");
    let h = serve(w);
    let c = Client::connect(&h).expect("client");
    let p = c.project();
    let bad_name = c
        .lcs(
            "POST",
            &format!("/environment/v1/deploy/project/{p}?environmentName=Bad_Name"),
        )
        .expect_err("name");
    assert!(
        bad_name
            .to_string()
            .contains("The environment name 'Bad_Name' is not valid."),
        "{bad_name}"
    );
    let started = c
        .lcs(
            "POST",
            &format!("/environment/v1/deploy/project/{p}?environmentName=fonew&demoData=true"),
        )
        .expect("deploy");
    let env = started["EnvironmentId"].as_str().expect("env").to_string();
    let activity = started["OperationActivityId"]
        .as_str()
        .expect("activity")
        .to_string();
    let early = c
        .lcs(
            "POST",
            &format!(
                "/environment/v1/powerplatform/project/{p}/environment/{env}?template=standard"
            ),
        )
        .expect_err("deploying");
    assert!(
        early.to_string().contains(
            "The environment must be deployed before Power Platform integration can be set up."
        ),
        "{early}"
    );
    let status = format!(
        "/environment/v2/fetchstatus/project/{p}/environment/{env}/operationactivity/{activity}"
    );
    let mut polls = 0;
    loop {
        polls += 1;
        let s = c.lcs("GET", &status).expect("status");
        if s["OperationStatus"] == json!("Completed") {
            assert!(s["CompletionDate"].is_string());
            break;
        }
        assert_eq!(s["OperationStatus"], json!("InProgress"));
    }
    assert_eq!(polls, 12, "180 virtual minutes at 15 minutes a poll");
    let duplicate = c
        .lcs(
            "POST",
            &format!("/environment/v1/deploy/project/{p}?environmentName=fonew"),
        )
        .expect_err("duplicate");
    assert!(duplicate.to_string().contains("already exists"));
    let setup_first = c
        .lcs(
            "POST",
            &format!("/environment/v1/dualwrite/setup/project/{p}/environment/{env}"),
        )
        .expect_err("no integration");
    assert!(setup_first.to_string().contains("Power Platform integration must be completed before the dual-write application can be configured."), "{setup_first}");
    let no_apps = c.lcs("POST", &format!("/environment/v1/powerplatform/project/{p}/environment/{env}?template=standard&dataverseEnvironment=noapps")).expect_err("no apps");
    assert!(
        no_apps
            .to_string()
            .contains("was not created with Dynamics 365 apps enabled"),
        "{no_apps}"
    );
    let bad_template = c
        .lcs(
            "POST",
            &format!("/environment/v1/powerplatform/project/{p}/environment/{env}?template=deluxe"),
        )
        .expect_err("template");
    assert!(bad_template
        .to_string()
        .contains("Unknown template 'deluxe'"));
    let pp = c.lcs("POST", &format!("/environment/v1/powerplatform/project/{p}/environment/{env}?template=standard-with-dual-write&dataverseEnvironment={ORG}")).expect("integration");
    c.lcs_wait(&env, pp["OperationActivityId"].as_str().expect("activity"))
        .expect("integrated");
    let irreversible = c
        .lcs(
            "POST",
            &format!(
                "/environment/v1/powerplatform/project/{p}/environment/{env}?template=standard"
            ),
        )
        .expect_err("irreversible");
    assert!(
        irreversible
            .to_string()
            .contains("The link cannot be reversed."),
        "{irreversible}"
    );
    let link_first = c
        .lcs(
            "POST",
            &format!("/environment/v1/dualwrite/link/project/{p}/environment/{env}"),
        )
        .expect_err("not configured");
    assert!(link_first
        .to_string()
        .contains("The dual-write application must be configured before linking."));
    for verb in ["setup", "link"] {
        let op = c
            .lcs(
                "POST",
                &format!("/environment/v1/dualwrite/{verb}/project/{p}/environment/{env}"),
            )
            .expect(verb);
        c.lcs_wait(&env, op["OperationActivityId"].as_str().expect("activity"))
            .expect(verb);
    }
    let history = c
        .lcs(
            "GET",
            &format!("/environmentinfo/v1/history/project/{p}/environment/{env}/"),
        )
        .expect("history");
    let names: Vec<&str> = history["Data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["Name"].as_str())
        .collect();
    assert_eq!(
        names,
        vec![
            "Deploy environment",
            "Power Platform integration setup",
            "Dual-write application setup",
            "Link to Power Platform environment"
        ]
    );
    let meta = c
        .lcs(
            "GET",
            &format!("/environmentinfo/v1/detail/project/{p}/?environmentId={env}"),
        )
        .expect("metadata");
    assert_eq!(meta["VersionEOL"], json!("9999-12-31T23:59:59.9999999"));
    assert_eq!(meta["Data"][0]["DualWriteLinked"], json!(true));
    assert!(meta["Data"][0].get("Warning").is_none());
    // Dual-write pointed at another Dataverse than the integration's: LCS warns.
    let conn = c
        .dual_write(
            "fonew",
            "DualWriteConnectionService",
            "resetLink",
            json!({"force": true}),
        )
        .expect("reset");
    assert_eq!(conn["linked"], json!(false));
    c.dual_write(
        "fonew",
        "DualWriteConnectionService",
        "link",
        json!({"dataverseEnvironment": "noapps", "legalEntities": ["DAT"]}),
    )
    .expect_err("noapps lacks dual-write");
}

#[test]
fn item3_lcs_warns_when_dual_write_points_elsewhere() {
    let mut w = world(Start::Existing, Start::Existing);
    w.provision_dataverse("othercrm", true, true, true)
        .expect("another org");
    let h = serve(w);
    let c = Client::connect(&h).expect("client");
    let p = c.project();
    let meta = c
        .lcs("GET", &format!("/environmentinfo/v1/detail/project/{p}/"))
        .expect("metadata");
    let env = meta["Data"][0]["EnvironmentId"]
        .as_str()
        .expect("env")
        .to_string();
    let pp = c.lcs("POST", &format!("/environment/v1/powerplatform/project/{p}/environment/{env}?template=standard&dataverseEnvironment={ORG}")).expect("integration");
    c.lcs_wait(&env, pp["OperationActivityId"].as_str().expect("activity"))
        .expect("integrated");
    c.dual_write(
        FO,
        "DualWriteConnectionService",
        "link",
        json!({"dataverseEnvironment": "othercrm", "legalEntities": ["DAT"]}),
    )
    .expect("link elsewhere");
    let meta = c
        .lcs(
            "GET",
            &format!("/environmentinfo/v1/detail/project/{p}/?environmentId={env}"),
        )
        .expect("metadata");
    assert_eq!(
        meta["Data"][0]["Warning"],
        json!("Microsoft has detected that your environment is linked via Dual-write to a different destination than specified in Power Platform Integration, which is not recommended.")
    );
}

#[test]
fn item4_power_platform_admin_creates_dataverse_outside_lcs() {
    let h = serve(world(Start::Existing, Start::New));
    let c = Client::connect(&h).expect("client");
    let bap = "https://api.bap.microsoft.com";
    let url = format!(
        "{}/providers/Microsoft.BusinessAppPlatform/environments",
        c.endpoints.lcs
    );
    let body = json!({"location": "unitedstates", "properties": {"displayName": "Fresh", "environmentSku": "Sandbox", "linkedEnvironmentMetadata": {"domainName": "freshcrm", "templates": ["D365_Sales"]}}});
    let no_version = c
        .send_as(
            bap,
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .expect("answered");
    assert_eq!(no_version.status, 400);
    assert_eq!(
        no_version.json()["error"]["code"],
        json!("MissingApiVersionParameter")
    );
    let created = c
        .send_as(
            bap,
            "POST",
            &format!("{url}?api-version=2023-06-01"),
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .expect("answered");
    assert_eq!(created.status, 202);
    let location = created.header("Location").expect("Location").to_string();
    assert!(location.contains("/providers/Microsoft.BusinessAppPlatform/lifecycleOperations/"));
    let states: Vec<String> = (0..4)
        .map(|_| {
            c.send_as(bap, "GET", &location, &[], &[])
                .expect("poll")
                .json()["state"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(states, vec!["Running", "Running", "Running", "Succeeded"]);
    let again = c
        .send_as(
            bap,
            "POST",
            &format!("{url}?api-version=2023-06-01"),
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .expect("answered");
    assert_eq!(again.status, 409);
    let solutions = c
        .dv_all("freshcrm", "solutions?$select=uniquename")
        .expect("solutions");
    assert!(solutions
        .iter()
        .any(|s| s["uniquename"] == json!("msdynce_Sales")));
}

#[test]
fn item3_a_failed_power_platform_setup_can_be_resumed() {
    let h = serve(world(Start::Existing, Start::New));
    let c = Client::connect(&h).expect("client");
    let p = c.project();
    let capacity = |mb: i64| {
        let url = format!("{}/_dwsim/lcs", c.endpoints.lcs);
        let body = json!({ "dataverse_capacity_mb": mb }).to_string();
        assert_eq!(
            c.transport
                .send(
                    "PUT",
                    &url,
                    &[("Content-Type", "application/json")],
                    body.as_bytes()
                )
                .expect("admin")
                .status,
            200
        );
    };
    capacity(512);
    let meta = c
        .lcs("GET", &format!("/environmentinfo/v1/detail/project/{p}/"))
        .expect("metadata");
    let env = meta["Data"][0]["EnvironmentId"]
        .as_str()
        .expect("env")
        .to_string();
    let start = || {
        c.lcs("POST", &format!("/environment/v1/powerplatform/project/{p}/environment/{env}?template=standard-with-dual-write")).expect("start")
    };
    let failed = c
        .lcs_wait(
            &env,
            start()["OperationActivityId"].as_str().expect("activity"),
        )
        .expect_err("no capacity");
    assert!(
        failed
            .to_string()
            .contains("needs at least 1 GB. Add capacity, then select Resume."),
        "{failed}"
    );
    let meta = c
        .lcs(
            "GET",
            &format!("/environmentinfo/v1/detail/project/{p}/?environmentId={env}"),
        )
        .expect("metadata");
    assert_eq!(
        meta["Data"][0]["PowerPlatformIntegration"]["Status"],
        json!("Failed")
    );
    let org = meta["Data"][0]["PowerPlatformIntegration"]["EnvironmentName"].clone();
    capacity(2048);
    c.lcs_wait(
        &env,
        start()["OperationActivityId"].as_str().expect("activity"),
    )
    .expect("resumed");
    let meta = c
        .lcs(
            "GET",
            &format!("/environmentinfo/v1/detail/project/{p}/?environmentId={env}"),
        )
        .expect("metadata");
    assert_eq!(
        meta["Data"][0]["PowerPlatformIntegration"]["Status"],
        json!("Completed")
    );
    assert_eq!(
        meta["Data"][0]["PowerPlatformIntegration"]["EnvironmentName"], org,
        "resume finishes the same environment"
    );
}
