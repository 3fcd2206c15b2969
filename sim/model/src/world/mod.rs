//! The World: every simulated product in one value, built from a seed and a starting
//! shape. Operations that span products (provisioning, live sync) are methods here; the
//! per-product rules live in `fno.rs`, `dataverse.rs`, `lcs.rs` and `dualwrite/`.

mod dual_write;
pub mod endstate;
mod setup;

use crate::catalogue::Catalogue;
use crate::clock::Clock;
use crate::config::Config;
use crate::dataverse::{DvEnv, WriteContext};
use crate::entra::{self, AppRegistration, Tenant, User};
use crate::error::{SimError, SimResult};
use crate::fno::{value_text, FnoEnv, LEGAL_ENTITIES};
use crate::ids::Ids;
use crate::lcs::{
    DeploymentState, DualWriteApplication, HistoryItem, HistoryKind, Lcs, LcsEnvironment,
    OperationStatus,
};
use crate::limits::Limits;
use crate::power_platform::PowerPlatform;
use crate::schema::SolutionGroup;
use crate::seed::{DvSeed, FnoSeed, SeedData};
use crate::store::{Row, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether an environment exists when the scenario starts or is created during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    New,
    Existing,
}

/// What a world starts from: the seed, the shape, and the data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldSpec {
    pub seed: u64,
    pub fno: Start,
    pub dataverse: Start,
    pub data: SeedData,
}

/// Names of the environments an existing world starts with.
pub const EXISTING_FNO: &str = "contosoprod";
pub const EXISTING_DATAVERSE: &str = "contosocrm";
pub use crate::dataverse::GEOGRAPHY;

/// The credentials the harness (and a partner using `dwsim serve`) signs in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Harness {
    pub tenant_id: String,
    pub tenant_domain: String,
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
    pub lcs_project_id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub spec: WorldSpec,
    #[serde(skip, default = "default_catalogue")]
    pub catalogue: Arc<Catalogue>,
    pub clock: Clock,
    pub ids: Ids,
    pub harness: Harness,
    pub tenant: Tenant,
    pub lcs: Lcs,
    pub power_platform: PowerPlatform,
    pub fno: BTreeMap<String, FnoEnv>,
    pub dataverse: BTreeMap<String, DvEnv>,
    /// The settings the world runs under (limits, dual-write settings, fault plan).
    #[serde(default)]
    pub config: Config,
    /// Dataverse service protection: each caller's recent requests.
    #[serde(default)]
    pub limits: Limits,
    /// Dual-write connections by F&O environment: the runtime owns them, not the products.
    #[serde(default)]
    pub connections: BTreeMap<String, crate::dualwrite::Connection>,
    /// The dual-write transaction in flight (the records of an F&O `$batch` change set,
    /// the virtual time of the outermost transaction); never part of an export.
    #[serde(skip)]
    pub in_flight: crate::dualwrite::InFlight,
    /// Table maps customized in this world, by id; they replace the catalogue's definition.
    #[serde(default)]
    pub custom_maps: BTreeMap<String, crate::schema::TableMap>,
}

fn default_catalogue() -> Arc<Catalogue> {
    Arc::new(Catalogue::builtin().unwrap_or_else(|e| panic!("built-in catalogue is invalid: {e}")))
}

impl World {
    /// Builds the starting world of `spec` with the built-in catalogue.
    pub fn new(spec: WorldSpec) -> SimResult<World> {
        World::with_catalogue(spec, Arc::new(Catalogue::builtin()?))
    }

    pub fn with_catalogue(spec: WorldSpec, catalogue: Arc<Catalogue>) -> SimResult<World> {
        let mut ids = Ids::new(spec.seed);
        let tenant_id = ids.guid();
        let domain = "contoso.onmicrosoft.com".to_string();
        let harness = Harness {
            tenant_id: tenant_id.clone(),
            tenant_domain: domain.clone(),
            client_id: ids.guid(),
            client_secret: format!("dws~{}", ids.hex(15)),
            username: format!("admin@{domain}"),
            password: format!("Pw-{}", ids.hex(6)),
            lcs_project_id: 1_000_000 + (ids.next_u64() % 9_000_000) as i64,
        };
        let mut apps = BTreeMap::new();
        apps.insert(
            harness.client_id.clone(),
            AppRegistration {
                client_id: harness.client_id.clone(),
                display_name: "dwsim harness".into(),
                secret: harness.client_secret.clone(),
            },
        );
        let mut users = BTreeMap::new();
        users.insert(
            harness.username.clone(),
            User {
                upn: harness.username.clone(),
                object_id: ids.guid(),
                display_name: "Contoso Admin".into(),
                password: harness.password.clone(),
            },
        );
        let tenant = Tenant {
            id: tenant_id,
            domain,
            apps,
            users,
            tokens: BTreeMap::new(),
        };
        let lcs = Lcs {
            project_id: harness.lcs_project_id,
            project_name: "Contoso dual-write".into(),
            environments: BTreeMap::new(),
            operations: BTreeMap::new(),
            calls: BTreeMap::new(),
            dataverse_capacity_mb: 10 * 1024,
        };
        let mut world = World {
            spec: spec.clone(),
            catalogue,
            clock: Clock::default(),
            ids,
            harness,
            tenant,
            lcs,
            power_platform: PowerPlatform::default(),
            fno: BTreeMap::new(),
            dataverse: BTreeMap::new(),
            connections: BTreeMap::new(),
            config: Config::default(),
            limits: Limits::default(),
            in_flight: Default::default(),
            custom_maps: BTreeMap::new(),
        };
        if spec.fno == Start::Existing {
            world.provision_fno(EXISTING_FNO, Some(&spec.data.fno))?;
            let id = world.ids.hex(16);
            let now = world.clock.now();
            world.lcs.environments.insert(
                id.clone(),
                LcsEnvironment {
                    id: id.clone(),
                    name: EXISTING_FNO.into(),
                    fno_env: EXISTING_FNO.into(),
                    state: DeploymentState::Deployed,
                    demo_data: true,
                    deployed_on: Some(now),
                    power_platform: None,
                    dual_write_application: DualWriteApplication::NotConfigured,
                    dual_write_linked: false,
                    history: vec![HistoryItem {
                        name: "Deploy environment".into(),
                        kind: HistoryKind::Deployment,
                        activity_id: world.ids.guid(),
                        started: now,
                        ended: Some(now),
                        status: OperationStatus::Completed,
                    }],
                },
            );
            // An existing F&O was set up by its admin: the dual-write apps are registered.
            if let Some(env) = world.fno.get_mut(EXISTING_FNO) {
                env.entra_apps
                    .insert(entra::DUAL_WRITE_DV_TO_FNO_APP.into());
                env.entra_apps.insert(entra::DUAL_WRITE_APP.into());
            }
        }
        if spec.dataverse == Start::Existing {
            world.provision_dataverse(EXISTING_DATAVERSE, true, true, false)?;
            world.seed_dataverse(EXISTING_DATAVERSE, &spec.data.dataverse)?;
        }
        Ok(world)
    }

    /// Creates an F&O environment with the DAT company, and the demo companies if given.
    pub fn provision_fno(&mut self, name: &str, demo: Option<&FnoSeed>) -> SimResult<()> {
        let catalogue = self.catalogue.clone();
        let now = self.clock.now();
        let mut env = FnoEnv::new(name, &self.tenant.id);
        env.entra_apps.insert(self.harness.client_id.clone());
        let entity = |set: &str| {
            catalogue
                .fno_entities
                .get(set)
                .ok_or_else(|| SimError::bad_request(format!("catalogue has no F&O entity {set}")))
        };
        let legal = entity(LEGAL_ENTITIES)?;
        let currencies = entity("Currencies")?;
        let mut currency_rows = vec![("USD".to_string(), "US Dollar".to_string())];
        if let Some(seed) = demo {
            currency_rows.extend(
                seed.currencies
                    .iter()
                    .map(|c| (c.code.clone(), c.name.clone())),
            );
        }
        for (code, name) in currency_rows {
            env.insert(
                &catalogue,
                currencies,
                obj(json!({"CurrencyCode": code, "Name": name})),
                now,
            )?;
        }
        let mut companies = vec![("DAT".to_string(), "Company accounts data".to_string())];
        if let Some(seed) = demo {
            companies.extend(
                seed.companies
                    .iter()
                    .map(|c| (c.id.clone(), c.name.clone())),
            );
        }
        for (id, name) in companies {
            if env.has_company(&id) {
                continue;
            }
            let row = obj(json!({"LegalEntityId": id, "Name": name}));
            let key = id.to_lowercase();
            env.insert(&catalogue, legal, row, now)?;
            debug_assert!(env.has_company(&key));
        }
        if let Some(seed) = demo {
            let groups = entity("CustomerGroups")?;
            let customers = entity("CustomersV3")?;
            let terms = entity("PaymentTerms")?;
            let vendor_groups = entity("VendorGroups")?;
            let vendors = entity("VendorsV2")?;
            for c in &seed.companies {
                let area = c.id.to_lowercase();
                for t in &c.payment_terms {
                    let row = obj(
                        json!({"dataAreaId": area, "Name": t.id, "Description": t.description}),
                    );
                    env.insert(&catalogue, terms, row, now)?;
                }
                for g in &c.customer_groups {
                    let mut row = obj(
                        json!({"dataAreaId": area, "CustomerGroupId": g.id, "Description": g.description}),
                    );
                    if let Some(t) = &g.payment_term {
                        row.insert("PaymentTermId".into(), json!(t));
                    }
                    env.insert(&catalogue, groups, row, now)?;
                }
                for g in &c.vendor_groups {
                    let row = obj(
                        json!({"dataAreaId": area, "VendorGroupId": g.id, "Description": g.description}),
                    );
                    env.insert(&catalogue, vendor_groups, row, now)?;
                }
                for v in &c.vendors {
                    let mut row = obj(
                        json!({"dataAreaId": area, "VendorAccountNumber": v.account, "VendorOrganizationName": v.name, "VendorGroupId": v.group}),
                    );
                    if let Some(cur) = &v.currency {
                        row.insert("CurrencyCode".into(), json!(cur));
                    }
                    env.insert(&catalogue, vendors, row, now)?;
                }
                for (n, cu) in c.customers.iter().enumerate() {
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
                    env.insert(&catalogue, customers, row, now)?;
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
    fn seed_dataverse(&mut self, org: &str, seed: &DvSeed) -> SimResult<()> {
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
            .map(|(id, r)| (value_text(r.get("isocurrencycode")), id.clone()))
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
        for a in &seed.accounts {
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
        for c in &seed.contacts {
            let mut row = obj(json!({"lastname": c.lastname, "msdyn_sellable": c.sellable}));
            put_opt(&mut row, "firstname", c.firstname.clone());
            put_opt(&mut row, "msdyn_contactpersonid", c.contactpersonid.clone());
            put_opt(&mut row, "emailaddress1", c.email.clone());
            put_opt(&mut row, "_msdyn_customergroupid_value", group(&c.group));
            env.create(&mut cx, "contact", row)?;
        }
        Ok(())
    }

    /// Advances the virtual clock and finishes every operation that is now due.
    pub fn advance(&mut self, minutes: i64) {
        self.clock.advance_ms(minutes.max(0) * 60_000);
        self.settle_lcs();
        self.settle_power_platform();
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

pub use crate::store::obj;

/// Savepoints on every store of a world, for work that must commit or roll back as one
/// (an OData `$batch` changeset).
#[derive(Debug, Clone)]
pub struct WorldSavepoint {
    fno: Vec<(String, crate::store::Savepoint)>,
    dataverse: Vec<(String, crate::store::Savepoint)>,
}

impl World {
    /// Opens a transaction on every store. Nested dual-write transactions inside it commit
    /// into it; [`World::rollback_all`] undoes all of them.
    pub fn begin_all(&mut self) -> WorldSavepoint {
        WorldSavepoint {
            fno: self
                .fno
                .iter_mut()
                .map(|(n, e)| (n.clone(), e.store.begin()))
                .collect(),
            dataverse: self
                .dataverse
                .iter_mut()
                .map(|(n, d)| (n.clone(), d.store.begin()))
                .collect(),
        }
    }

    pub fn commit_all(&mut self, sp: WorldSavepoint) {
        for (n, s) in sp.fno {
            if let Some(e) = self.fno.get_mut(&n) {
                e.store.commit(s);
            }
        }
        for (n, s) in sp.dataverse {
            if let Some(d) = self.dataverse.get_mut(&n) {
                d.store.commit(s);
            }
        }
    }

    pub fn rollback_all(&mut self, sp: WorldSavepoint) {
        for (n, s) in sp.fno {
            if let Some(e) = self.fno.get_mut(&n) {
                e.store.rollback(s);
            }
        }
        for (n, s) in sp.dataverse {
            if let Some(d) = self.dataverse.get_mut(&n) {
                d.store.rollback(s);
            }
        }
    }
}
