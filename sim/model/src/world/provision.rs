//! Building environments: an F&O environment with its companies (and the demo data when
//! deployed with it), a Dataverse environment with its business unit, team, users and
//! solutions, and the rows an existing Dataverse starts with.

use super::{obj, World, GEOGRAPHY};
use crate::dataverse::{DvEnv, WriteContext};
use crate::entra;
use crate::error::{SimError, SimResult};
use crate::fno::{value_text, FnoEnv, LEGAL_ENTITIES};
use crate::schema::SolutionGroup;
use crate::seed::{CompanySeed, CustomerSeed, DvSeed, FnoSeed};
use crate::store::{Row, Store};
use serde_json::{json, Value};
use std::collections::BTreeMap;

impl World {
    /// Creates an F&O environment with the DAT company, and the demo companies if given.
    pub fn provision_fno(&mut self, name: &str, demo: Option<&FnoSeed>) -> SimResult<()> {
        let catalogue = self.catalogue.clone();
        let now = self.clock.now();
        let mut env = FnoEnv::new(name, &self.tenant.id);
        env.declare_indexes(&catalogue);
        env.entra_apps.insert(self.harness.client_id.clone());
        let mut rows = fno_base_rows(demo);
        for company in demo.iter().flat_map(|seed| &seed.companies) {
            rows.extend(company_demo_rows(company));
        }
        for (set, row) in rows {
            let entity = catalogue.fno_entities.get(set).ok_or_else(|| {
                SimError::bad_request(format!("catalogue has no F&O entity {set}"))
            })?;
            let company = value_text(row.get("LegalEntityId"));
            if set == LEGAL_ENTITIES && env.has_company(&company) {
                continue;
            }
            env.insert_row(&catalogue, entity, row, now)?;
        }
        // A data set's rows of any entity (a partner's own), after the typed ones they
        // may refer to.
        if demo.is_some() {
            for (set, rows) in &self.spec.data.rows.fno {
                let entity = catalogue.fno_entities.get(set).ok_or_else(|| {
                    SimError::bad_request(format!("the data set has rows for {set}, which is not an F&O entity in the catalogue"))
                })?;
                for row in rows {
                    env.insert_row(&catalogue, entity, row.clone(), now)
                        .map_err(|e| {
                            SimError::bad_request(format!(
                                "the data set's {set} row {}: {}",
                                row.to_value(),
                                e.message
                            ))
                        })?;
                }
            }
        }
        self.fno.insert(name.to_string(), env);
        Ok(())
    }

    /// Creates a Dataverse environment: root business unit and team, the harness's
    /// application user, the Dynamics 365 apps, and the dual-write solutions if asked.
    pub fn provision_dataverse(
        &mut self,
        org: &str,
        d365_apps: bool,
        dual_write_solutions: bool,
        dual_write_app_users: bool,
    ) -> SimResult<()> {
        let root_bu = self.ids.guid();
        let mut env = DvEnv {
            org: org.to_string(),
            organization_id: self.ids.guid(),
            tenant_id: self.tenant.id.clone(),
            geography: GEOGRAPHY.into(),
            d365_apps_enabled: d365_apps,
            dual_write_plugins_enabled: false,
            root_business_unit: root_bu.clone(),
            fno_integration: None,
            base_currency: None,
            next_version: 1_000_000,
            store: Store::default(),
        };
        env.declare_indexes(&self.catalogue);
        let mut bu = Row::new();
        bu.insert("businessunitid".into(), json!(root_bu));
        bu.insert("name".into(), json!(org));
        bu.insert("_parentbusinessunitid_value".into(), Value::Null);
        env.store.put("businessunit", &root_bu, bu);
        let catalogue = self.catalogue.clone();
        let now = self.clock.now();
        let mut cx = WriteContext {
            catalogue: &catalogue,
            ids: &mut self.ids,
            now,
            caller: String::new(),
            owner: None,
        };
        env.put_team(&mut cx, org, &root_bu, true);
        // Every organization has a base currency.
        let usd = cx.ids.guid();
        env.store.put(
            "transactioncurrency",
            &usd,
            obj(json!({"transactioncurrencyid": usd, "isocurrencycode": "USD", "currencyname": "US Dollar", "exchangerate": 1, "statecode": 0})),
        );
        env.base_currency = Some(usd);
        let harness_user = put_user(
            &mut env,
            &mut cx,
            "dwsim harness",
            Some(&self.harness.client_id),
        )?;
        cx.caller = harness_user.clone();
        put_user(&mut env, &mut cx, "Contoso Admin", None)?;
        if dual_write_app_users {
            put_user(
                &mut env,
                &mut cx,
                "Dual-write runtime",
                Some(entra::DUAL_WRITE_RUNTIME_APP),
            )?;
            put_user(&mut env, &mut cx, "Dual-write", Some(entra::DUAL_WRITE_APP))?;
        }
        self.dataverse.insert(org.to_string(), env);
        let groups: Vec<SolutionGroup> = [
            d365_apps.then_some(SolutionGroup::Base),
            dual_write_solutions.then_some(SolutionGroup::DualWriteCore),
            dual_write_solutions.then_some(SolutionGroup::DualWriteMaps),
        ]
        .into_iter()
        .flatten()
        .collect();
        for g in groups {
            self.install_solutions(org, g)?;
        }
        Ok(())
    }

    /// Installs the catalogue's solutions of one group; installing the core solution
    /// enables the dual-write plug-ins.
    pub fn install_solutions(&mut self, org: &str, group: SolutionGroup) -> SimResult<()> {
        let catalogue = self.catalogue.clone();
        let env = self.dataverse.get_mut(org).ok_or_else(|| {
            SimError::not_found(format!("Dataverse environment {org} does not exist"))
        })?;
        for s in catalogue.solutions.iter().filter(|s| s.group == group) {
            if env.has_solution(&s.uniquename) {
                continue;
            }
            let id = self.ids.guid();
            let row = obj(json!({
                "solutionid": id,
                "uniquename": s.uniquename,
                "friendlyname": s.friendlyname,
                "version": s.version,
                "ismanaged": true,
            }));
            env.store.put("solution", &id, row);
        }
        if group == SolutionGroup::DualWriteCore {
            env.dual_write_plugins_enabled = true;
        }
        Ok(())
    }

    /// Existing Dataverse rows: customer groups, accounts and contacts with no company.
    pub(super) fn seed_dataverse(&mut self, org: &str, seed: &DvSeed) -> SimResult<()> {
        let catalogue = self.catalogue.clone();
        let now = self.clock.now();
        let env = self
            .dataverse
            .get_mut(org)
            .ok_or_else(|| SimError::not_found(org.to_string()))?;
        let caller = env
            .find_by("systemuser", &[("fullname".into(), json!("Contoso Admin"))])
            .map(|(id, _)| id)
            .unwrap_or_default();
        let mut cx = WriteContext {
            catalogue: &catalogue,
            ids: &mut self.ids,
            now,
            caller,
            owner: None,
        };
        let mut currency_ids: BTreeMap<String, String> = env
            .store
            .rows("transactioncurrency")
            .map(|(id, r)| (value_text(r.get("isocurrencycode")), id.to_string()))
            .collect();
        for c in &seed.currencies {
            if currency_ids.contains_key(&c.code) {
                continue;
            }
            let (id, _) = env.create(
                &mut cx,
                "transactioncurrency",
                obj(json!({
                    "isocurrencycode": c.code,
                    "currencyname": c.name,
                    "exchangerate": c.exchange_rate.unwrap_or(1.0),
                })),
            )?;
            currency_ids.insert(c.code.clone(), id);
        }
        let currency = |c: &Option<String>| c.as_ref().and_then(|c| currency_ids.get(c)).cloned();
        let mut group_ids = BTreeMap::new();
        for g in &seed.customer_groups {
            let (id, _) = env.create(
                &mut cx,
                "msdyn_customergroup",
                obj(json!({"msdyn_groupid": g.id, "msdyn_description": g.description})),
            )?;
            group_ids.insert(g.id.clone(), id);
        }
        let group = |g: &Option<String>| g.as_ref().and_then(|g| group_ids.get(g)).cloned();
        for a in seed.all_accounts() {
            let mut row = obj(json!({"name": a.name, "customertypecode": a.customertypecode}));
            put_opt(&mut row, "accountnumber", a.accountnumber.clone());
            put_opt(&mut row, "emailaddress1", a.email.clone());
            put_opt(&mut row, "_msdyn_customergroupid_value", group(&a.group));
            put_opt(
                &mut row,
                "_transactioncurrencyid_value",
                currency(&a.currency),
            );
            if let Some(l) = a.creditlimit {
                row.insert("creditlimit".into(), json!(l));
            }
            env.create(&mut cx, "account", row)?;
        }
        for c in seed.all_contacts() {
            let mut row = obj(json!({"lastname": c.lastname, "msdyn_sellable": c.sellable}));
            put_opt(&mut row, "firstname", c.firstname.clone());
            put_opt(&mut row, "msdyn_contactpersonid", c.contactpersonid.clone());
            put_opt(&mut row, "emailaddress1", c.email.clone());
            put_opt(&mut row, "_msdyn_customergroupid_value", group(&c.group));
            env.create(&mut cx, "contact", row)?;
        }
        // A data set's rows of any table (a partner's own).
        for (table, rows) in &self.spec.data.rows.dataverse {
            for row in rows {
                env.insert(&mut cx, table, row.clone()).map_err(|e| {
                    SimError::bad_request(format!(
                        "the data set's {table} row {}: {}",
                        row.to_value(),
                        e.message
                    ))
                })?;
            }
        }
        Ok(())
    }
}

fn put_user(
    env: &mut DvEnv,
    cx: &mut WriteContext,
    name: &str,
    app: Option<&str>,
) -> SimResult<String> {
    let mut row = obj(json!({"fullname": name, "isdisabled": false}));
    row.insert(
        "_businessunitid_value".into(),
        json!(env.root_business_unit.clone()),
    );
    if let Some(app) = app {
        row.insert("applicationid".into(), json!(app));
    }
    if cx.caller.is_empty() {
        let id = cx.ids.guid();
        cx.caller = id.clone();
        row.insert("systemuserid".into(), json!(id));
        let (id, _) = env.create(cx, "systemuser", row)?;
        cx.caller = String::new();
        return Ok(id);
    }
    env.create(cx, "systemuser", row).map(|(id, _)| id)
}

fn put_opt(row: &mut Row, key: &str, v: Option<String>) {
    if let Some(v) = v {
        row.insert(key.into(), json!(v));
    }
}

/// Every F&O environment's currencies (USD, and the demo ones) and companies (DAT, and the
/// demo ones), in the order they are created.
fn fno_base_rows(demo: Option<&FnoSeed>) -> Vec<(&'static str, Row)> {
    let mut rows = vec![(
        "Currencies",
        obj(json!({"CurrencyCode": "USD", "Name": "US Dollar"})),
    )];
    for c in demo.iter().flat_map(|seed| &seed.currencies) {
        rows.push((
            "Currencies",
            obj(json!({"CurrencyCode": c.code, "Name": c.name})),
        ));
    }
    rows.push((
        LEGAL_ENTITIES,
        obj(json!({"LegalEntityId": "DAT", "Name": "Company accounts data"})),
    ));
    for c in demo.iter().flat_map(|seed| &seed.companies) {
        rows.push((
            LEGAL_ENTITIES,
            obj(json!({"LegalEntityId": c.id, "Name": c.name})),
        ));
    }
    rows
}

/// One demo company's rows: terms of payment, customer groups, vendor groups, vendors and
/// customers, each referring only to rows before it.
fn company_demo_rows(c: &CompanySeed) -> Vec<(&'static str, Row)> {
    let area = c.id.to_lowercase();
    let mut rows = Vec::new();
    for t in &c.payment_terms {
        let row = obj(json!({"dataAreaId": area, "Name": t.id, "Description": t.description}));
        rows.push(("PaymentTerms", row));
    }
    for g in &c.customer_groups {
        let mut row =
            obj(json!({"dataAreaId": area, "CustomerGroupId": g.id, "Description": g.description}));
        if let Some(t) = &g.payment_term {
            row.insert("PaymentTermId".into(), json!(t));
        }
        rows.push(("CustomerGroups", row));
    }
    for g in &c.vendor_groups {
        let row =
            obj(json!({"dataAreaId": area, "VendorGroupId": g.id, "Description": g.description}));
        rows.push(("VendorGroups", row));
    }
    for v in c.all_vendors() {
        let mut row = obj(
            json!({"dataAreaId": area, "VendorAccountNumber": v.account, "VendorOrganizationName": v.name, "VendorGroupId": v.group}),
        );
        if let Some(cur) = &v.currency {
            row.insert("CurrencyCode".into(), json!(cur));
        }
        rows.push(("VendorsV2", row));
    }
    for (n, cu) in c.all_customers().enumerate() {
        rows.push(("CustomersV3", customer_row(&area, n, &cu)));
    }
    rows
}

fn customer_row(area: &str, n: usize, cu: &CustomerSeed) -> Row {
    let mut row = obj(json!({
        "dataAreaId": area,
        "CustomerAccount": cu.account,
        "PartyType": cu.party_type,
        "CustomerGroupId": cu.group,
        "PartyNumber": format!("{:09}", 1000 + n),
    }));
    if cu.party_type == "Person" {
        row.insert("PersonFirstName".into(), json!(cu.first_name));
        row.insert("PersonLastName".into(), json!(cu.last_name));
    } else {
        row.insert("OrganizationName".into(), json!(cu.name));
    }
    if let Some(cur) = &cu.currency {
        row.insert("SalesCurrencyCode".into(), json!(cur));
    }
    if let Some(l) = cu.credit_limit {
        row.insert("CreditLimit".into(), json!(l));
    }
    if let Some(e) = &cu.email {
        row.insert("PrimaryContactEmail".into(), json!(e));
    }
    row
}
