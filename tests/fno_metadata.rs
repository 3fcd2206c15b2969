//! What an F&O client reads before its first `/data` request, over real HTTP: the Metadata
//! API, the `Companies` entity, the `DataManagementEntities` version actions, and
//! `OData-Version: 4.0` on every answer.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::Reply;
use dwsim_model::world::EXISTING_FNO as FO;
use dwsim_model::Start;
use serde_json::Value;

fn metadata(c: &Client, path: &str) -> Reply {
    let base = c.fno_base(FO);
    c.send_as(
        &base,
        "GET",
        &format!("{base}/Metadata/{path}"),
        &[("Accept", "application/json")],
        &[],
    )
    .expect("answered")
}

fn ok(r: Reply, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    assert_eq!(r.header("OData-Version"), Some("4.0"), "{what}");
    r.json()
}

fn names(v: &Value, field: &str) -> Vec<String> {
    v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r[field].as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_metadata_api_describes_every_entity_of_data_metadata() {
    let http = common::serve(common::world(5, Start::Existing, Start::Existing));
    let c = Client::connect(&http).expect("client");

    let all = ok(metadata(&c, "DataEntities"), "DataEntities");
    let data = ok(
        c.fno("GET", FO, "", None).expect("answered"),
        "service document",
    );
    let mut public: Vec<String> = names(&all, "PublicCollectionName");
    let mut sets = names(&data, "name");
    public.sort();
    sets.sort();
    assert_eq!(public, sets, "one data entity per entity set of /data");

    let one = ok(
        metadata(
            &c,
            "DataEntities?$filter=PublicEntityName eq 'CustomerGroup'",
        ),
        "filtered DataEntities",
    );
    assert_eq!(names(&one, "Name"), ["CustCustomerGroupEntity"]);
    assert_eq!(one["value"][0]["DataServiceEnabled"], true);

    let by_key = ok(metadata(&c, "PublicEntities('CustomerGroup')"), "by key");
    assert_eq!(by_key["EntitySetName"], "CustomerGroups");
    let props = by_key["Properties"].as_array().expect("properties");
    let key: Vec<&str> = props
        .iter()
        .filter(|p| p["IsKey"] == true)
        .filter_map(|p| p["Name"].as_str())
        .collect();
    assert_eq!(key, ["dataAreaId", "CustomerGroupId"]);
    let by_name = ok(
        metadata(&c, "PublicEntities(Name='CustomerGroup')"),
        "by Name=",
    );
    assert_eq!(by_name["Properties"], by_key["Properties"]);

    // Every label id handed out resolves to its text.
    let label_id = by_key["LabelId"].as_str().expect("label id").to_string();
    let label = ok(
        metadata(&c, &format!("Labels(Id='{label_id}',Language='en-us')")),
        "label",
    );
    assert!(!label["Value"].as_str().unwrap_or_default().is_empty());

    let enums = ok(metadata(&c, "PublicEnumerations"), "enums");
    let members = &enums["value"][0]["Members"];
    assert!(members.as_array().is_some_and(|m| !m.is_empty()), "{enums}");

    let selected = ok(
        metadata(&c, "PublicEntities?$select=Name&$top=2"),
        "$select",
    );
    let first = selected["value"][0].as_object().expect("row");
    assert_eq!(first.keys().collect::<Vec<_>>(), ["Name"]);
    assert_eq!(selected["value"].as_array().map(Vec::len), Some(2));
}

#[test]
fn unknown_metadata_gets_the_odata_error_envelope() {
    let http = common::serve(common::world(5, Start::Existing, Start::Existing));
    let c = Client::connect(&http).expect("client");
    for path in ["PublicEntities('NoSuchEntity')", "NoSuchCollection"] {
        let r = metadata(&c, path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(r.header("OData-Version"), Some("4.0"));
        let message = r.json()["error"]["innererror"]["message"].clone();
        assert!(
            message
                .as_str()
                .is_some_and(|m| m.contains("Resource not found")),
            "{path}: {message}"
        );
    }
    let base = c.fno_base(FO);
    let r = c
        .send_as(
            &base,
            "DELETE",
            &format!("{base}/Metadata/DataEntities"),
            &[],
            &[],
        )
        .expect("answered");
    assert_eq!(r.status, 405, "{}", r.text());
}

#[test]
fn companies_are_the_legal_entities_keyed_by_data_area() {
    let http = common::serve(common::world(5, Start::Existing, Start::Existing));
    let c = Client::connect(&http).expect("client");
    let legal = ok(
        c.fno("GET", FO, "LegalEntities?$select=LegalEntityId", None)
            .expect("answered"),
        "legal entities",
    );
    let companies = ok(
        c.fno("GET", FO, "Companies?$select=DataArea,Name", None)
            .expect("answered"),
        "companies",
    );
    let expected: Vec<String> = names(&legal, "LegalEntityId")
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    assert_eq!(names(&companies, "DataArea"), expected);
    assert!(companies["value"][0]["Name"].is_string());

    let one = ok(
        c.fno("GET", FO, "Companies('USMF')", None)
            .expect("answered"),
        "one company",
    );
    assert_eq!(one["DataArea"], "usmf");
    let missing = c
        .fno("GET", FO, "Companies('NOPE')", None)
        .expect("answered");
    assert_eq!(missing.status, 404, "{}", missing.text());
    let write = c
        .fno(
            "POST",
            FO,
            "Companies",
            Some(&serde_json::json!({"DataArea": "x"})),
        )
        .expect("answered");
    assert_eq!(write.status, 405, "{}", write.text());
}

#[test]
fn version_actions_answer_the_environments_versions() {
    let http = common::serve(common::world(5, Start::Existing, Start::Existing));
    let c = Client::connect(&http).expect("client");
    let w = http.servers.sim.world().fno[FO].clone();
    for (action, want) in [
        ("GetApplicationVersion", &w.application_version),
        ("GetPlatformBuildVersion", &w.platform_build),
        ("GetApplicationBuildVersion", &w.application_build),
    ] {
        let path = format!("DataManagementEntities/Microsoft.Dynamics.DataEntities.{action}");
        let v = ok(
            c.fno("POST", FO, &path, Some(&serde_json::json!({})))
                .expect("answered"),
            action,
        );
        assert_eq!(v["value"].as_str(), Some(want.as_str()), "{action}");
        let get = c.fno("GET", FO, &path, None).expect("answered");
        assert_eq!(get.status, 405, "{action} by GET: {}", get.text());
    }
    // The Metadata API lists them, as clients check an entity exists before calling it.
    let listed = ok(
        metadata(
            &c,
            "DataEntities?$filter=PublicCollectionName eq 'DataManagementEntities'",
        ),
        "DataEntities",
    );
    assert_eq!(
        listed["value"][0]["PublicEntityName"],
        "DataManagementEntity"
    );
    let public = ok(
        metadata(&c, "PublicEntities('DataManagementEntity')"),
        "PublicEntities",
    );
    let actions: Vec<&str> = public["Actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Name"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "GetApplicationVersion",
            "GetPlatformBuildVersion",
            "GetApplicationBuildVersion"
        ]
    );
    let label = public["LabelId"].as_str().unwrap().to_string();
    ok(
        metadata(&c, &format!("Labels(Id='{label}',Language='en-us')")),
        "its label",
    );
    // $metadata declares what a generic OData client needs to discover them.
    let csdl = c
        .fno("GET", FO, "$metadata", None)
        .expect("metadata")
        .text();
    for needle in [
        r#"<EntitySet Name="Companies" EntityType="Microsoft.Dynamics.DataEntities.Company"/>"#,
        r#"<EntitySet Name="DataManagementEntities" EntityType="Microsoft.Dynamics.DataEntities.DataManagementEntity"/>"#,
        r#"<Action Name="GetApplicationVersion" IsBound="true"><Parameter Name="_bindingParameter" Type="Collection(Microsoft.Dynamics.DataEntities.DataManagementEntity)"/><ReturnType Type="Edm.String"/></Action>"#,
    ] {
        assert!(csdl.contains(needle), "$metadata lacks {needle}");
    }
    let mut reader = quick_xml::Reader::from_str(&csdl);
    while reader.read_event().expect("well-formed XML") != quick_xml::events::Event::Eof {}
}
