//! Dataverse describes itself as clients read it (issue #8 items 4 and 5): `EntityDefinitions`
//! the way Microsoft's Python Dataverse SDK and DynamicsWebApi query it, typed attribute casts
//! with their option sets, keys and relationships, `GlobalOptionSetDefinitions`, a `$metadata`
//! that declares every property a payload carries with its real type; account and contact with
//! their documented lookups (primary contact, customer, owner) and every kind of formatted
//! value and lookup annotation.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::{InProcess, Reply};
use dwsim_model::schema::DvType;
use dwsim_model::Start;
use dwsim_protocol::Sim;
use quick_xml::events::Event;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ORG: &str = "contosocrm";

fn sim() -> Sim {
    Sim::from_world(common::world(11, Start::Existing, Start::Existing))
}

fn call(
    c: &Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let url = format!("{}/api/data/v9.2/{path}", c.dataverse_base(ORG));
    let mut all: Vec<(&str, &str)> = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ];
    all.extend_from_slice(headers);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    c.send_as(&c.dataverse_base(ORG), method, &url, &all, body.as_bytes())
        .expect("answered")
}

fn get(c: &Client, path: &str) -> Value {
    let r = call(c, "GET", path, &[], None);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

fn created_id(r: &Reply) -> String {
    assert_eq!(r.status, 204, "{}", r.text());
    let entity = r.header("OData-EntityId").expect("OData-EntityId");
    entity
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string()
}

#[test]
fn entity_definitions_answer_the_queries_published_clients_send() {
    let sim = sim();
    let t = InProcess { sim };
    let c = Client::connect(&t).expect("client");

    // Microsoft's Python Dataverse SDK resolves every table first.
    let found = get(
        &c,
        "EntityDefinitions?$select=LogicalName,EntitySetName,PrimaryIdAttribute&$filter=LogicalName eq 'account'",
    );
    let account = &found["value"][0];
    assert_eq!(found["value"].as_array().unwrap().len(), 1);
    assert_eq!(account["EntitySetName"], "accounts");
    assert_eq!(account["PrimaryIdAttribute"], "accountid");
    assert!(
        account["MetadataId"].is_string(),
        "MetadataId is always there"
    );
    assert!(
        account.get("ObjectTypeCode").is_none(),
        "only what $select names"
    );

    // DynamicsWebApi's useEntityNames reads every table's set name.
    let all = get(&c, "EntityDefinitions?$select=EntitySetName,LogicalName");
    assert!(all["value"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["LogicalName"] == "contact" && e["EntitySetName"] == "contacts"));

    // By logical name and by MetadataId, the same table.
    let id = account["MetadataId"].as_str().unwrap();
    let by_name = get(
        &c,
        "EntityDefinitions(LogicalName='account')?$select=SchemaName,ObjectTypeCode,OwnershipType",
    );
    let by_id = get(
        &c,
        &format!("EntityDefinitions({id})?$select=SchemaName,ObjectTypeCode,OwnershipType"),
    );
    assert_eq!(by_name["SchemaName"], "Account");
    assert_eq!(by_name["ObjectTypeCode"], 1);
    assert_eq!(by_name["OwnershipType"], "UserOwned");
    assert_eq!(by_name["SchemaName"], by_id["SchemaName"]);

    // The SDK's picklist probe: choices with their labels through the typed cast.
    let picklists = get(
        &c,
        "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options)",
    );
    let customer_type = picklists["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["LogicalName"] == "customertypecode")
        .expect("customertypecode is a picklist");
    assert_eq!(
        customer_type["@odata.type"],
        "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    );
    let options = customer_type["OptionSet"]["Options"].as_array().unwrap();
    let customer = options.iter().find(|o| o["Value"] == 3).expect("value 3");
    assert_eq!(customer["Label"]["LocalizedLabels"][0]["Label"], "Customer");
    assert_eq!(
        customer["Label"]["UserLocalizedLabel"]["LanguageCode"],
        1033
    );
    assert!(picklists["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["@odata.type"] == "#Microsoft.Dynamics.CRM.PicklistAttributeMetadata"));

    // Status reasons carry their state.
    let status = get(
        &c,
        "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='statuscode')/Microsoft.Dynamics.CRM.StatusAttributeMetadata?$expand=OptionSet",
    );
    let inactive = status["OptionSet"]["Options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["Value"] == 2)
        .cloned()
        .unwrap();
    assert_eq!(inactive["State"], 1);

    // Attributes, keys and relationships in one go, each with a nested $select/$filter.
    let expanded = get(
        &c,
        "EntityDefinitions(LogicalName='contact')?$select=LogicalName&$expand=Attributes($select=LogicalName,AttributeType,Targets;$filter=LogicalName eq 'parentcustomerid'),Keys,ManyToOneRelationships($filter=ReferencingAttribute eq 'parentcustomerid')",
    );
    let parent = &expanded["Attributes"][0];
    assert_eq!(parent["AttributeType"], "Customer");
    assert_eq!(parent["Targets"], json!(["account", "contact"]));
    assert_eq!(expanded["Attributes"].as_array().unwrap().len(), 1);
    let navs: BTreeSet<String> = expanded["ManyToOneRelationships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["ReferencingEntityNavigationPropertyName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        navs,
        BTreeSet::from([
            "parentcustomerid_account".to_string(),
            "parentcustomerid_contact".to_string()
        ])
    );
    let keys: Vec<&str> = expanded["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["LogicalName"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"msdyn_contactpersonidkey"), "{keys:?}");
    assert_eq!(
        expanded["Keys"][0]["KeyAttributes"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "msdyn_company"
    );

    let single = get(
        &c,
        "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='emailaddress1')",
    );
    assert_eq!(
        single["@odata.type"],
        "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    );
    assert_eq!(single["MaxLength"], 100);
    assert_eq!(single["Format"], "Email");

    // Unknown names get the product's error envelope.
    let unknown = call(
        &c,
        "GET",
        "EntityDefinitions(LogicalName='nosuchtable')",
        &[],
        None,
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], "0x80040217");
    let no_attribute = call(
        &c,
        "GET",
        "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='nosuch')",
        &[],
        None,
    );
    assert_eq!(no_attribute.status, 404);
    assert!(no_attribute.json()["error"]["message"].is_string());
    let write = call(&c, "POST", "EntityDefinitions", &[], Some(&json!({})));
    assert_eq!(write.status, 405);
}

#[test]
fn global_option_sets_are_served_from_the_columns_that_name_them() {
    let mut world = common::world(11, Start::Existing, Start::Existing);
    let account = std::sync::Arc::make_mut(&mut world.catalogue)
        .dv_tables
        .get_mut("account")
        .unwrap();
    let column = account
        .columns
        .iter_mut()
        .find(|c| c.name == "industrycode")
        .expect("industrycode");
    column.global_option_set = Some("dwsim_industry".into());
    let t = InProcess {
        sim: Sim::from_world(world),
    };
    let c = Client::connect(&t).expect("client");
    let sets = get(&c, "GlobalOptionSetDefinitions?$select=Name,IsGlobal");
    assert_eq!(
        sets["value"],
        json!([{"MetadataId": sets["value"][0]["MetadataId"], "Name": "dwsim_industry", "IsGlobal": true, "@odata.type": "#Microsoft.Dynamics.CRM.OptionSetMetadata"}])
    );
    let one = get(&c, "GlobalOptionSetDefinitions(Name='dwsim_industry')");
    assert!(!one["Options"].as_array().unwrap().is_empty());
    let via_attribute = get(&c, "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='industrycode')/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=GlobalOptionSet($select=Name),OptionSet");
    assert_eq!(via_attribute["GlobalOptionSet"]["Name"], "dwsim_industry");
    assert!(via_attribute["OptionSet"].is_null());
    assert_eq!(
        call(
            &c,
            "GET",
            "GlobalOptionSetDefinitions(Name='nosuch')",
            &[],
            None
        )
        .status,
        404
    );
}

/// Entity type name → property name → CSDL type, read with an XML parser.
fn csdl_properties(xml: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut out, mut current) = (BTreeMap::new(), None::<String>);
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"EntityType" => {
                let name = e
                    .try_get_attribute("Name")
                    .unwrap()
                    .unwrap()
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap()
                    .to_string();
                out.insert(name.clone(), BTreeMap::new());
                current = Some(name);
            }
            Event::Empty(e) if e.name().as_ref() == b"Property" => {
                let attr = |n: &str| {
                    e.try_get_attribute(n)
                        .unwrap()
                        .unwrap()
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap()
                        .to_string()
                };
                if let Some(t) = &current {
                    out.get_mut(t).unwrap().insert(attr("Name"), attr("Type"));
                }
            }
            Event::End(e) if e.name().as_ref() == b"EntityType" => current = None,
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

#[test]
fn metadata_declares_every_property_a_payload_carries_with_its_real_type() {
    let t = InProcess { sim: sim() };
    let c = Client::connect(&t).expect("client");
    let xml = call(&c, "GET", "$metadata", &[], None);
    assert_eq!(xml.status, 200);
    let xml = xml.text();
    for reference in ["OData.Community.Keys.V1", "OData.Community.Display.V1"] {
        assert!(
            xml.contains(&format!("<edmx:Include Namespace=\"{reference}\"")),
            "{reference}"
        );
    }
    let types = csdl_properties(&xml);
    for table in ["account", "contact", "msdyn_customergroup"] {
        let declared = &types[table];
        assert_eq!(declared["statecode"], "Edm.Int32");
        assert_eq!(declared["statuscode"], "Edm.Int32");
        assert_eq!(declared["versionnumber"], "Edm.Int64");
        for lookup in [
            "_createdby_value",
            "_modifiedby_value",
            "_ownerid_value",
            "_owningbusinessunit_value",
        ] {
            assert_eq!(declared[lookup], "Edm.Guid", "{table}.{lookup}");
        }
        let rows = get(
            &c,
            &format!(
                "{}?$top=1",
                if table == "msdyn_customergroup" {
                    "msdyn_customergroups".into()
                } else {
                    format!("{table}s")
                }
            ),
        );
        for key in rows["value"][0]
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !k.starts_with('@'))
        {
            assert!(
                declared.contains_key(key),
                "{table} payload carries {key}, undeclared"
            );
        }
    }
    assert!(xml.contains(r#"<NavigationProperty Name="primarycontactid" Type="mscrm.contact" Partner="account_primary_contact">"#));
    assert!(
        xml.contains(r#"<NavigationProperty Name="parentcustomerid_account" Type="mscrm.account""#)
    );
    assert!(xml.contains(r#"<NavigationProperty Name="ownerid" Type="mscrm.principal">"#));
    assert!(xml.contains(r#"<Action Name="CreateMultiple" IsBound="true">"#));
}

#[test]
fn account_and_contact_take_their_documented_lookups_and_annotate_every_type() {
    let t = InProcess { sim: sim() };
    let c = Client::connect(&t).expect("client");
    let company = created_id(&call(
        &c,
        "POST",
        "cdm_companies",
        &[],
        Some(&json!({"cdm_companycode": "TST", "cdm_name": "Test company"})),
    ));
    let bind_company = format!("/cdm_companies({company})");
    let contact = created_id(&call(
        &c,
        "POST",
        "contacts",
        &[],
        Some(&json!({
            "firstname": "Ada", "lastname": "Lovelace", "msdyn_company@odata.bind": bind_company,
            "birthdate": "1815-12-10", "numberofchildren": 1200, "annualincome": 1234567.5,
        })),
    ));
    let account = created_id(&call(
        &c,
        "POST",
        "accounts",
        &[],
        Some(&json!({
            "name": "Analytical Engines", "accountnumber": "AE-1", "msdyn_company@odata.bind": bind_company,
            "primarycontactid@odata.bind": format!("/contacts({contact})"),
            "customertypecode": 3, "creditlimit": 50000, "creditonhold": true, "numberofemployees": 1500,
        })),
    ));
    // A contact's parent customer is an account or a contact, each through its own navigation property.
    let child = created_id(&call(
        &c,
        "POST",
        "contacts",
        &[],
        Some(&json!({
            "lastname": "Babbage", "msdyn_company@odata.bind": bind_company,
            "parentcustomerid_account@odata.bind": format!("/accounts({account})"),
        })),
    ));
    let wrong = call(
        &c,
        "POST",
        "contacts",
        &[],
        Some(&json!({
            "lastname": "Wrong", "parentcustomerid_account@odata.bind": format!("/contacts({contact})"),
        })),
    );
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    assert_eq!(wrong.json()["error"]["code"], "0x80048d19");

    let annotated = call(&c, "GET", &format!("accounts({account})?$select=name,customertypecode,creditlimit,creditonhold,numberofemployees,statecode,statuscode,createdon,_primarycontactid_value,_ownerid_value&$expand=primarycontactid($select=fullname)"), &[("Prefer", "odata.include-annotations=\"*\"")], None);
    assert_eq!(annotated.status, 200, "{}", annotated.text());
    let a = annotated.json();
    let f = |k: &str| a[format!("{k}@OData.Community.Display.V1.FormattedValue")].clone();
    assert_eq!(f("customertypecode"), "Customer");
    assert_eq!(f("creditlimit"), "$50,000.00");
    assert_eq!(f("creditonhold"), "Yes");
    assert_eq!(f("numberofemployees"), "1,500");
    assert_eq!(f("statecode"), "Active");
    assert_eq!(f("statuscode"), "Active");
    assert_eq!(f("createdon"), "1/1/2026 12:00 AM");
    assert_eq!(f("_primarycontactid_value"), "Ada Lovelace");
    assert_eq!(
        a["_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "contact"
    );
    assert_eq!(
        a["_primarycontactid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"],
        "primarycontactid"
    );
    assert_eq!(
        a["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "team"
    );
    assert_eq!(a["primarycontactid"]["fullname"], "Ada Lovelace");

    // A named list gets only what it names.
    let named = call(
        &c,
        "GET",
        &format!("contacts({child})?$select=_parentcustomerid_value"),
        &[(
            "Prefer",
            "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\"",
        )],
        None,
    )
    .json();
    assert_eq!(named["_parentcustomerid_value"], account.as_str());
    assert_eq!(
        named["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "account"
    );
    assert!(named
        .get("_parentcustomerid_value@OData.Community.Display.V1.FormattedValue")
        .is_none());

    let ada = call(
        &c,
        "GET",
        &format!("contacts({contact})?$select=birthdate,annualincome"),
        &[(
            "Prefer",
            "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"",
        )],
        None,
    )
    .json();
    assert_eq!(
        ada["birthdate@OData.Community.Display.V1.FormattedValue"],
        "12/10/1815"
    );
    assert_eq!(
        ada["annualincome@OData.Community.Display.V1.FormattedValue"],
        "$1,234,567.50"
    );

    // Setting the status reason moves the state with it.
    let deactivate = call(
        &c,
        "PATCH",
        &format!("accounts({account})"),
        &[("If-Match", "*")],
        Some(&json!({"statuscode": 2})),
    );
    assert_eq!(deactivate.status, 204, "{}", deactivate.text());
    let state = get(
        &c,
        &format!("accounts({account})?$select=statecode,statuscode"),
    );
    assert_eq!(
        (state["statecode"].clone(), state["statuscode"].clone()),
        (json!(1), json!(2))
    );

    // Out-of-range choices and numbers, and a record where a value belongs, are refused with 400.
    let bad_choice = call(
        &c,
        "PATCH",
        &format!("accounts({account})"),
        &[("If-Match", "*")],
        Some(&json!({"customertypecode": 999})),
    );
    assert_eq!(bad_choice.status, 400);
    let bad_range = call(
        &c,
        "PATCH",
        &format!("accounts({account})"),
        &[("If-Match", "*")],
        Some(&json!({"numberofemployees": -5})),
    );
    assert_eq!(bad_range.status, 400);
    let object = call(
        &c,
        "PATCH",
        &format!("accounts({account})"),
        &[("If-Match", "*")],
        Some(&json!({"name": {"x": 1}})),
    );
    assert_eq!(object.status, 400, "{}", object.text());
    assert_eq!(object.json()["error"]["code"], "0x80048d19");

    // Read-only columns in a body are ignored, as the platform does.
    let ignored = call(
        &c,
        "PATCH",
        &format!("accounts({account})"),
        &[("If-Match", "*")],
        Some(&json!({"createdon": null, "versionnumber": 1, "name": "AE"})),
    );
    assert_eq!(ignored.status, 204, "{}", ignored.text());

    // The owner is a user or a team.
    let users = get(&c, "systemusers?$select=systemuserid&$top=1");
    let user = users["value"][0]["systemuserid"].as_str().unwrap();
    let assign = call(
        &c,
        "PATCH",
        &format!("accounts({account})"),
        &[("If-Match", "*")],
        Some(&json!({"ownerid@odata.bind": format!("/systemusers({user})")})),
    );
    assert_eq!(assign.status, 204, "{}", assign.text());
    let owned = get(
        &c,
        &format!("accounts({account})?$select=_ownerid_value,_owninguser_value,_owningteam_value"),
    );
    assert_eq!(owned["_ownerid_value"], user);
    assert_eq!(owned["_owninguser_value"], user);
    assert!(owned["_owningteam_value"].is_null());

    // Deep insert through a collection-valued navigation property.
    let deep = call(
        &c,
        "POST",
        "accounts",
        &[],
        Some(&json!({
            "name": "Deep", "accountnumber": "D-2", "msdyn_company@odata.bind": bind_company,
            "contact_customer_accounts": [{"lastname": "One"}, {"lastname": "Two"}],
        })),
    );
    let deep_id = created_id(&deep);
    let kids = get(
        &c,
        &format!("contacts?$select=lastname&$filter=_parentcustomerid_value eq {deep_id}"),
    );
    assert_eq!(kids["value"].as_array().unwrap().len(), 2);
}

#[test]
fn every_column_type_of_the_standard_tables_is_one_dwsim_models() {
    let catalogue = dwsim_model::Catalogue::builtin().unwrap();
    let account = &catalogue.dv_tables["account"];
    assert!(account.columns.len() > 100, "the documented columns");
    assert_eq!(
        account.column("primarycontactid").unwrap().kind,
        DvType::Lookup
    );
    assert_eq!(
        catalogue.dv_tables["contact"]
            .column("parentcustomerid")
            .unwrap()
            .kind,
        DvType::Customer
    );
    assert_eq!(account.column("ownerid").unwrap().kind, DvType::Owner);
    assert_eq!(
        account.column("statuscode").unwrap().states.get("2"),
        Some(&1)
    );
}
