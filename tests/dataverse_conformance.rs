//! Dataverse Web API conformance over real HTTP, one test per numbered item of the fidelity
//! issue: metadata, queries, paging, writes, errors and auth. `$batch` and the service
//! protection limits have files of their own.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::{Http, Reply, Transport};
use dwsim_model::Start;
use serde_json::{json, Value};

const ORG: &str = "contosocrm";

fn servers() -> Http {
    common::serve(common::world(11, Start::Existing, Start::Existing))
}

/// A Web API call with extra headers.
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

fn names(v: &Value) -> Vec<String> {
    v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn id_of(r: &Reply) -> String {
    let entity = r.header("OData-EntityId").expect("OData-EntityId");
    entity
        .rsplit('(')
        .next()
        .unwrap_or_default()
        .trim_end_matches(')')
        .to_string()
}

fn create(c: &Client, set: &str, body: Value) -> String {
    let r = call(c, "POST", set, &[], Some(&body));
    assert_eq!(r.status, 204, "POST {set}: {}", r.text());
    id_of(&r)
}

#[test]
fn item1_service_document_metadata_and_functions() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let doc = get(&c, "");
    assert!(doc["value"]
        .as_array()
        .expect("value")
        .iter()
        .any(|s| s["name"] == json!("accounts") && s["kind"] == json!("EntitySet")));
    let meta = call(&c, "GET", "$metadata", &[], None);
    assert_eq!(meta.status, 200);
    let csdl = meta.text();
    for needle in [
        r#"<EntityType Name="account" BaseType="mscrm.crmbaseentity"><Key><PropertyRef Name="accountid"/></Key>"#,
        r#"<NavigationProperty Name="msdyn_company" Type="mscrm.cdm_company""#,
        r#"<Function Name="WhoAmI">"#,
        r#"<Function Name="RetrieveFinanceAndOperationsIntegrationDetails">"#,
        r#"PropertyPath="_msdyn_company_value""#,
    ] {
        assert!(csdl.contains(needle), "$metadata lacks {needle}");
    }
    let me = get(&c, "WhoAmI");
    assert!(
        me["UserId"].is_string()
            && me["BusinessUnitId"].is_string()
            && me["OrganizationId"].is_string()
    );
    let posted = call(&c, "POST", "WhoAmI", &[], Some(&json!({})));
    assert_eq!(posted.status, 404);
    assert!(posted.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("No HTTP resource was found that matches the request URI"));
    let details = call(
        &c,
        "GET",
        "RetrieveFinanceAndOperationsIntegrationDetails",
        &[],
        None,
    );
    assert_eq!(details.status, 400, "not integrated yet");
    assert_eq!(details.json()["error"]["code"], json!("0x80048d0b"));
}

#[test]
fn item2_query_options() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let obryan = create(
        &c,
        "accounts",
        json!({"name": "O'Bryan Traders", "customertypecode": 3, "creditlimit": 7000}),
    );

    let selected = get(&c, "accounts?$select=name,accountnumber&$top=1");
    assert!(selected["@odata.context"]
        .as_str()
        .unwrap_or_default()
        .ends_with("$metadata#accounts(name,accountnumber)"));
    let row = &selected["value"][0];
    assert!(
        row.get("accountid").is_some()
            && row.get("@odata.etag").is_some()
            && row.get("creditlimit").is_none()
    );

    // Case-insensitive comparison, functions, not, grouping, null, numbers.
    assert_eq!(
        names(&get(
            &c,
            "accounts?$select=name&$filter=contains(name,'WHOLESALES')"
        )),
        vec!["Forest Wholesales"]
    );
    assert_eq!(names(&get(&c, "accounts?$select=name&$filter=startswith(name,'lit') or endswith(name,'fabrikam inc')&$orderby=name")), vec!["Fabrikam Inc", "Litware Inc"]);
    let no_number = get(
        &c,
        "accounts?$select=name&$filter=accountnumber eq null&$orderby=name",
    );
    assert_eq!(
        names(&no_number),
        vec!["O'Bryan Traders", "Prospect without number"]
    );
    let high = get(&c, "accounts?$select=name&$filter=(creditlimit gt 10000 and customertypecode eq 3) and not contains(name,'forest')");
    assert_eq!(names(&high), vec!["Contoso Retail (San Diego)"]);
    assert_eq!(
        names(&get(
            &c,
            "accounts?$select=name&$filter=name eq 'O''Bryan Traders'"
        )),
        vec!["O'Bryan Traders"]
    );
    assert_eq!(
        names(&get(
            &c,
            &format!(
                "accounts?$select=name&$filter=accountid eq {}",
                obryan.to_uppercase()
            )
        )),
        vec!["O'Bryan Traders"]
    );
    assert_eq!(
        get(
            &c,
            "accounts?$select=name&$filter=createdon ge 2026-01-01T00:00:00Z"
        )["value"]
            .as_array()
            .map(Vec::len),
        Some(7)
    );
    let group = get(
        &c,
        "msdyn_customergroups?$select=msdyn_groupid&$filter=msdyn_groupid eq 'CRM'",
    );
    let gid = group["value"][0]["msdyn_customergroupid"]
        .as_str()
        .expect("group")
        .to_string();
    assert_eq!(names(&get(&c, &format!("accounts?$select=name&$filter=_msdyn_customergroupid_value eq {gid}&$orderby=name desc"))), vec!["Northwind Traders (competitor)", "Litware Inc", "Fabrikam Inc"]);
    let contacts = get(
        &c,
        "contacts?$select=fullname&$filter=msdyn_sellable eq true&$orderby=lastname",
    );
    assert_eq!(contacts["value"].as_array().map(Vec::len), Some(2));

    // Parameter aliases, several orderby columns, $top, $count and /$count.
    let aliased = get(
        &c,
        "accounts?$select=name&$filter=name eq @p1&@p1='Litware Inc'",
    );
    assert_eq!(names(&aliased), vec!["Litware Inc"]);
    let ordered = get(
        &c,
        "accounts?$select=name&$orderby=customertypecode desc,name asc&$top=2",
    );
    assert_eq!(
        names(&ordered),
        vec!["Prospect without number", "Contoso Retail (San Diego)"]
    );
    let counted = get(&c, "accounts?$select=name&$count=true&$top=1");
    assert_eq!(counted["@odata.count"], json!(7));
    let bare = call(&c, "GET", "accounts/$count", &[], None);
    assert_eq!((bare.status, bare.text().as_str()), (200, "7"));
    assert!(bare
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain"));

    // $expand of a single-valued lookup with a nested $select.
    let expanded = get(&c, "accounts?$select=name&$filter=accountnumber eq 'CRM-101'&$expand=msdyn_customergroupid($select=msdyn_groupid)");
    assert_eq!(
        expanded["value"][0]["msdyn_customergroupid"]["msdyn_groupid"],
        json!("CRM")
    );

    // Refusals.
    let skip = call(&c, "GET", "accounts?$skip=1", &[], None);
    assert_eq!(
        (skip.status, skip.json()["error"]["message"].clone()),
        (400, json!("The query parameter $skip is not supported"))
    );
    let literal = call(
        &c,
        "GET",
        "contacts?$filter=lastname%20eq%20'O'Bryan'",
        &[],
        None,
    );
    assert_eq!(
        literal.json()["error"]["message"],
        json!("There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''.")
    );
    let property = call(&c, "GET", "accounts?$select=Name", &[], None);
    assert_eq!(property.status, 400);
    assert_eq!(
        property.json()["error"],
        json!({"code": "0x0", "message": "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'."})
    );
    let unknown_function = call(
        &c,
        "GET",
        "accounts?$filter=Microsoft.Dynamics.CRM.Today(PropertyName='createdon')",
        &[],
        None,
    );
    assert_eq!(unknown_function.status, 400);
}

#[test]
fn item3_server_paging() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let page = call(
        &c,
        "GET",
        "accounts?$select=name&$orderby=name&$top=1",
        &[("Prefer", "odata.maxpagesize=3")],
        None,
    );
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Preference-Applied"),
        Some("odata.maxpagesize=3")
    );
    let body = page.json();
    assert_eq!(
        body["value"].as_array().map(Vec::len),
        Some(3),
        "$top is ignored when a page size is given"
    );
    let next = body["@odata.nextLink"]
        .as_str()
        .expect("nextLink")
        .to_string();
    assert!(
        next.contains("$skiptoken=%3Ccookie%20pagenumber%3D%222%22"),
        "{next}"
    );
    let mut seen = names(&body);
    let mut link = Some(next);
    while let Some(url) = link {
        let r = c
            .send_as(
                &c.dataverse_base(ORG),
                "GET",
                &url,
                &[("Prefer", "odata.maxpagesize=3")],
                &[],
            )
            .expect("page");
        let b = r.json();
        seen.extend(names(&b));
        link = b["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort_by_key(|s| s.to_lowercase());
    assert_eq!(seen, sorted, "pages follow the order");
    let capped = call(
        &c,
        "GET",
        "accounts?$select=name",
        &[("Prefer", "odata.maxpagesize=100000")],
        None,
    );
    assert_eq!(
        capped.header("Preference-Applied"),
        Some("odata.maxpagesize=5000")
    );
}

#[test]
fn item4_writes_upserts_keys_and_etags() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    // Create: 204 + OData-EntityId, or 201 with the representation.
    let plain = call(
        &c,
        "POST",
        "cdm_companies",
        &[],
        Some(&json!({"cdm_companycode": "TST", "cdm_name": "Test company"})),
    );
    assert_eq!(plain.status, 204);
    assert!(plain
        .header("OData-EntityId")
        .unwrap_or_default()
        .contains("/api/data/v9.2/cdm_companies("));
    let rep = call(
        &c,
        "POST",
        "accounts?$select=name,accountnumber",
        &[("Prefer", "return=representation")],
        Some(
            &json!({"name": "Rep", "accountnumber": "R-1", "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='TST')"}),
        ),
    );
    assert_eq!(rep.status, 201, "{}", rep.text());
    assert!(rep.header("OData-EntityId").is_none());
    let body = rep.json();
    assert_eq!(body["name"], json!("Rep"));
    assert!(body["@odata.context"]
        .as_str()
        .unwrap_or_default()
        .ends_with("$metadata#accounts/$entity"));
    let account = body["accountid"].as_str().expect("id").to_string();

    // Alternate key with the company lookup in the URL.
    let company = get(
        &c,
        "cdm_companies?$select=cdm_companycode&$filter=cdm_companycode eq 'TST'",
    )["value"][0]["cdm_companyid"]
        .as_str()
        .expect("company")
        .to_string();
    let by_key = get(
        &c,
        &format!("accounts(accountnumber='R-1',_msdyn_company_value={company})?$select=name"),
    );
    assert_eq!(by_key["accountid"], json!(account));

    // Update, then ETags: stale If-Match → 412, matching If-None-Match → 304.
    let first = call(
        &c,
        "GET",
        &format!("accounts({account})?$select=name"),
        &[],
        None,
    );
    let etag = first.header("ETag").expect("etag").to_string();
    assert!(etag.starts_with("W/\""));
    assert_eq!(
        call(
            &c,
            "GET",
            &format!("accounts({account})"),
            &[("If-None-Match", &etag)],
            None
        )
        .status,
        304
    );
    assert_eq!(
        call(
            &c,
            "PATCH",
            &format!("accounts({account})"),
            &[("If-Match", "*")],
            Some(&json!({"name": "Renamed"}))
        )
        .status,
        204
    );
    let stale = call(
        &c,
        "PATCH",
        &format!("accounts({account})"),
        &[("If-Match", &etag)],
        Some(&json!({"name": "Again"})),
    );
    assert_eq!(stale.status, 412);
    assert_eq!(stale.json()["error"]["code"], json!("0x80060882"));
    let updated = call(
        &c,
        "PATCH",
        &format!("accounts({account})?$select=name"),
        &[("Prefer", "return=representation")],
        Some(&json!({"name": "Represented"})),
    );
    assert_eq!(
        (updated.status, updated.json()["name"].clone()),
        (200, json!("Represented"))
    );

    // Upsert: PATCH creates; If-Match * updates only; If-None-Match * creates only.
    let new_id = "aaaaaaaa-0000-4000-8000-000000000001";
    assert_eq!(
        call(
            &c,
            "PATCH",
            &format!("accounts({new_id})"),
            &[],
            Some(&json!({"name": "Upserted"}))
        )
        .status,
        204
    );
    assert_eq!(
        get(&c, &format!("accounts({new_id})?$select=name"))["name"],
        json!("Upserted")
    );
    let missing = call(
        &c,
        "PATCH",
        "accounts(aaaaaaaa-0000-4000-8000-000000000002)",
        &[("If-Match", "*")],
        Some(&json!({"name": "x"})),
    );
    assert_eq!(missing.status, 404);
    let exists = call(
        &c,
        "PATCH",
        &format!("accounts({new_id})"),
        &[("If-None-Match", "*")],
        Some(&json!({"name": "x"})),
    );
    assert_eq!(
        (exists.status, exists.json()["error"]["message"].clone()),
        (
            412,
            json!("A record with matching key values already exists.")
        )
    );
    let by_alt = call(
        &c,
        "PATCH",
        &format!("accounts(accountnumber='R-2',_msdyn_company_value={company})"),
        &[],
        Some(&json!({"name": "Upsert by key"})),
    );
    assert_eq!(by_alt.status, 204);
    assert_eq!(get(&c, &format!("accounts(accountnumber='R-2',_msdyn_company_value={company})?$select=accountnumber"))["accountnumber"], json!("R-2"));

    // Single properties.
    assert_eq!(
        get(&c, &format!("accounts({account})/name"))["value"],
        json!("Represented")
    );
    assert_eq!(
        call(
            &c,
            "PUT",
            &format!("accounts({account})/name"),
            &[],
            Some(&json!({"value": "Put name"}))
        )
        .status,
        204
    );
    assert_eq!(
        call(
            &c,
            "DELETE",
            &format!("accounts({account})/telephone1"),
            &[],
            None
        )
        .status,
        204
    );
    assert_eq!(
        get(&c, &format!("accounts({account})?$select=name,telephone1"))["name"],
        json!("Put name")
    );

    // @odata.bind by id, one level of deep insert, and a deep insert that rolls back.
    let group = create(
        &c,
        "msdyn_customergroups",
        json!({"msdyn_groupid": "G1", "msdyn_company@odata.bind": format!("/cdm_companies({company})")}),
    );
    create(
        &c,
        "accounts",
        json!({"name": "Bound", "msdyn_customergroupid@odata.bind": format!("/msdyn_customergroups({group})")}),
    );
    let deep = call(
        &c,
        "POST",
        "accounts",
        &[],
        Some(&json!({"name": "Deep", "msdyn_customergroupid": {"msdyn_groupid": "DEEP"}})),
    );
    assert_eq!(deep.status, 204, "{}", deep.text());
    let deep_id = id_of(&deep);
    let expanded = get(
        &c,
        &format!(
            "accounts({deep_id})?$select=name&$expand=msdyn_customergroupid($select=msdyn_groupid)"
        ),
    );
    assert_eq!(
        expanded["msdyn_customergroupid"]["msdyn_groupid"],
        json!("DEEP")
    );
    let failing = call(
        &c,
        "POST",
        "accounts",
        &[],
        Some(&json!({"name": "N".repeat(200), "msdyn_customergroupid": {"msdyn_groupid": "GONE"}})),
    );
    assert_eq!(failing.status, 400);
    assert_eq!(
        get(&c, "msdyn_customergroups?$filter=msdyn_groupid eq 'GONE'")["value"],
        json!([]),
        "the nested create rolled back"
    );

    // Delete.
    assert_eq!(
        call(&c, "DELETE", &format!("accounts({new_id})"), &[], None).status,
        204
    );
    assert_eq!(
        call(&c, "GET", &format!("accounts({new_id})"), &[], None).status,
        404
    );
}

#[test]
fn item6_error_codes_and_annotations() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    create(
        &c,
        "cdm_companies",
        json!({"cdm_companycode": "ERR", "cdm_name": "Errors"}),
    );
    let body = json!({"name": "Dup", "accountnumber": "D-1", "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='ERR')"});
    create(&c, "accounts", body.clone());
    let dup = call(&c, "POST", "accounts", &[], Some(&body));
    assert_eq!(
        (dup.status, dup.json()["error"]["code"].clone()),
        (412, json!("0x80060892"))
    );
    assert!(dup.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("Entity Key msdyn_accountnumberkey violated."));

    let id = create(&c, "accounts", json!({"name": "Same id"}));
    let same = call(
        &c,
        "POST",
        "accounts",
        &[],
        Some(&json!({"accountid": id, "name": "Again"})),
    );
    assert_eq!(
        (same.status, same.json()["error"]["code"].clone()),
        (412, json!("0x80040237"))
    );

    let long = call(
        &c,
        "POST",
        "accounts",
        &[],
        Some(&json!({"name": "x".repeat(161)})),
    );
    assert_eq!(long.status, 400);
    assert_eq!(
        long.json()["error"],
        json!({"code": "0x80044331", "message": "A validation error occurred.  The length of the 'name' attribute of the 'account' entity exceeded the maximum allowed length of '160'."})
    );

    let required = call(
        &c,
        "POST",
        "msdyn_customergroups",
        &[],
        Some(&json!({"msdyn_description": "no id"})),
    );
    assert_eq!(
        (required.status, required.json()["error"]["code"].clone()),
        (400, json!("0x80040203"))
    );

    let lookup = call(
        &c,
        "POST",
        "accounts",
        &[],
        Some(
            &json!({"name": "x", "msdyn_customergroupid@odata.bind": "/msdyn_customergroups(00000000-0000-0000-0000-0000000000aa)"}),
        ),
    );
    assert_eq!(
        (lookup.status, lookup.json()["error"]["code"].clone()),
        (404, json!("0x80040217"))
    );

    let unknown = call(
        &c,
        "POST",
        "accounts",
        &[],
        Some(&json!({"name": "x", "colour": "red"})),
    );
    assert_eq!(
        (unknown.status, unknown.json()["error"]["code"].clone()),
        (400, json!("0x80048d19"))
    );

    let annotated = call(
        &c,
        "POST",
        "accounts",
        &[("Prefer", "odata.include-annotations=\"*\"")],
        Some(&json!({"name": "x".repeat(161)})),
    );
    let e = annotated.json()["error"].clone();
    for key in [
        "@Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus",
        "@Microsoft.PowerApps.CDS.HelpLink",
        "@Microsoft.PowerApps.CDS.TraceText",
        "@Microsoft.PowerApps.CDS.InnerError.Message",
    ] {
        assert!(e.get(key).is_some(), "error lacks {key}: {e}");
    }

    let read = call(&c, "GET", "accounts?$select=name,customertypecode,_msdyn_customergroupid_value&$filter=accountnumber eq 'CRM-101'", &[("Prefer", "odata.include-annotations=\"*\"")], None);
    let row = read.json()["value"][0].clone();
    assert_eq!(
        row["customertypecode@OData.Community.Display.V1.FormattedValue"],
        json!("Customer")
    );
    assert_eq!(
        row["_msdyn_customergroupid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        json!("msdyn_customergroup")
    );
    assert_eq!(
        row["_msdyn_customergroupid_value@OData.Community.Display.V1.FormattedValue"],
        json!("CRM")
    );
}

#[test]
fn item7_auth_challenge_and_audience() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let url = format!("{}/api/data/v9.2/accounts", c.dataverse_base(ORG));
    let anonymous = h.send("GET", &url, &[], &[]).expect("answered");
    assert_eq!(anonymous.status, 401);
    let challenge = anonymous
        .header("WWW-Authenticate")
        .expect("challenge")
        .to_string();
    let tenant = c.harness["tenant_id"].as_str().expect("tenant");
    assert_eq!(
        challenge,
        format!(
            "Bearer authorization_uri={}/{tenant}/oauth2/authorize, resource_id={}/",
            h.endpoints().entra,
            c.dataverse_base(ORG)
        )
    );
    let other = format!(
        "Bearer {}",
        c.token("https://otherorg.crm.dynamics.com")
            .expect("token for another org")
    );
    assert_eq!(
        h.send("GET", &url, &[("Authorization", &other)], &[])
            .expect("answered")
            .status,
        401
    );
    let garbage = h
        .send("GET", &url, &[("Authorization", "Bearer not-a-token")], &[])
        .expect("answered");
    assert_eq!(garbage.status, 401);
}

/// Deleting a row clears the lookups that pointed at it (RemoveLink, the cascade every
/// relationship's metadata shows), so no row is left pointing at a deleted one.
#[test]
fn a_delete_clears_the_lookups_that_pointed_at_the_row() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let group = create(
        &c,
        "msdyn_customergroups",
        json!({"msdyn_groupid": "RL1", "msdyn_description": "Linked"}),
    );
    let account = create(
        &c,
        "accounts",
        json!({"name": "Linked account", "msdyn_customergroupid@odata.bind": format!("/msdyn_customergroups({group})")}),
    );
    let path = format!("accounts({account})?$select=_msdyn_customergroupid_value");
    assert_eq!(get(&c, &path)["_msdyn_customergroupid_value"], json!(group));
    let r = call(
        &c,
        "DELETE",
        &format!("msdyn_customergroups({group})"),
        &[],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(get(&c, &path)["_msdyn_customergroupid_value"], Value::Null);
}
