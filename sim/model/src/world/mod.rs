//! The World: every simulated product in one value, built from a seed and a starting
//! shape. Operations that span products (provisioning, live sync) are methods here; the
//! per-product rules live in `fno.rs`, `dataverse.rs`, `lcs.rs` and `dualwrite/`.

mod dual_write;
pub mod endstate;
mod provision;
mod savepoint;
mod setup;

use crate::catalogue::Catalogue;
use crate::clock::Clock;
use crate::config::Config;
use crate::dataverse::DvEnv;
use crate::entra::{self, AppRegistration, Tenant, User};
use crate::error::SimResult;
use crate::fno::FnoEnv;
use crate::ids::Ids;
use crate::lcs::{
    DeploymentState, DualWriteApplication, HistoryItem, HistoryKind, Lcs, LcsEnvironment,
    OperationStatus,
};
use crate::limits::Limits;
use crate::power_platform::PowerPlatform;
use crate::seed::SeedData;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether an environment exists when the scenario starts or is created during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// Created by a step of the scenario.
    New,
    /// There before the scenario starts, with its data.
    Existing,
}

/// What a world starts from: the seed, the shape, and the data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorldSpec {
    /// The seed of the id stream.
    pub seed: u64,
    /// Whether F&O exists at the start.
    pub fno: Start,
    /// Whether Dataverse exists at the start.
    pub dataverse: Start,
    /// The rows existing environments (and demo deployments) start with.
    pub data: SeedData,
    /// Where the clock starts, in milliseconds after the fixed epoch (2026-01-01T00:00:00Z):
    /// 0 for scenario runs; `serve` starts at the wall clock's now so tokens and timestamps
    /// look current to the partner's own code.
    #[serde(default)]
    pub clock_start_ms: i64,
}

/// Names of the environments an existing world starts with.
pub const EXISTING_FNO: &str = "contosoprod";
/// The Dataverse organization an existing world starts with.
pub const EXISTING_DATAVERSE: &str = "contosocrm";
pub use crate::dataverse::GEOGRAPHY;

/// The credentials the harness (and a partner using `dwsim serve`) signs in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Harness {
    /// The tenant id.
    pub tenant_id: String,
    /// The tenant's domain (`contoso.onmicrosoft.com`).
    pub tenant_domain: String,
    /// The harness app registration's client id.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// The admin user the password grant signs in.
    pub username: String,
    /// The admin user's password.
    pub password: String,
    /// The LCS project the user owns.
    pub lcs_project_id: i64,
}

/// Every simulated product and the dual-write runtime between them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    /// What the world was built from (reset builds it again).
    pub spec: WorldSpec,
    /// The product definitions, shared; a world's customized maps replace entries in its copy.
    #[serde(skip, default = "default_catalogue")]
    pub catalogue: Arc<Catalogue>,
    /// The virtual clock.
    pub clock: Clock,
    /// The seeded id stream.
    pub ids: Ids,
    /// The credentials the harness signs in with.
    pub harness: Harness,
    /// The Entra tenant: app registrations, users, issued tokens.
    pub tenant: Tenant,
    /// The LCS project and its environments and operations.
    pub lcs: Lcs,
    /// Environments created through the Power Platform admin API.
    pub power_platform: PowerPlatform,
    /// F&O environments by name.
    pub fno: BTreeMap<String, FnoEnv>,
    /// Dataverse environments by organization name.
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
    Catalogue::shared().unwrap_or_else(|e| panic!("built-in catalogue is invalid: {e}"))
}

impl World {
    /// Builds the starting world of `spec` with the built-in catalogue.
    pub fn new(spec: WorldSpec) -> SimResult<World> {
        World::with_catalogue(spec, Catalogue::shared()?)
    }

    /// Builds the starting world of `spec` with these definitions.
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
            clock: Clock::starting_at(spec.clock_start_ms),
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
        if let Some(problem) = spec
            .data
            .fno
            .companies
            .iter()
            .find_map(|c| c.generation_problem())
        {
            return Err(crate::error::SimError::bad_request(format!(
                "The data set is not valid: {problem}."
            )));
        }
        if spec.fno == Start::Existing {
            world.existing_fno(&spec.data.fno)?;
        }
        if spec.dataverse == Start::Existing {
            world.provision_dataverse(EXISTING_DATAVERSE, true, true, false)?;
            world.seed_dataverse(EXISTING_DATAVERSE, &spec.data.dataverse)?;
        }
        Ok(world)
    }

    /// The F&O environment an existing world starts with: deployed from LCS long ago with
    /// its data, and set up by its admin (the dual-write apps are registered).
    fn existing_fno(&mut self, data: &crate::seed::FnoSeed) -> SimResult<()> {
        self.provision_fno(EXISTING_FNO, Some(data))?;
        let id = self.ids.hex(16);
        let now = self.clock.now();
        let activity_id = self.ids.guid();
        self.lcs.environments.insert(
            id.clone(),
            LcsEnvironment {
                id,
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
                    activity_id,
                    started: now,
                    ended: Some(now),
                    status: OperationStatus::Completed,
                }],
            },
        );
        if let Some(env) = self.fno.get_mut(EXISTING_FNO) {
            env.entra_apps
                .insert(entra::DUAL_WRITE_DV_TO_FNO_APP.into());
            env.entra_apps.insert(entra::DUAL_WRITE_APP.into());
        }
        Ok(())
    }

    /// Advances the virtual clock and finishes every operation that is now due.
    pub fn advance(&mut self, minutes: i64) {
        self.clock.advance_ms(minutes.max(0).saturating_mul(60_000));
        self.settle_lcs();
        self.settle_power_platform();
    }
}

pub use crate::store::obj;
