//! Lifecycle Services: one project, its F&O environments, and the long-running operations
//! (deployment, Power Platform integration, dual-write application setup and link) that a
//! client starts and then polls through fetchstatus. Operations finish on the virtual clock.

use crate::clock::Instant;
use crate::context::Cx;
use crate::dataverse::DvEnv;
use crate::error::{SimError, SimResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Minutes each operation takes on the virtual clock. The docs give "60–90 minutes" for the
/// Power Platform integration, "30 minutes or less" for dual-write setup and "less than 5
/// minutes" for the link; a deployment takes a few hours.
pub const DEPLOY_MINUTES: i64 = 180;
/// Minutes the Power Platform integration setup takes ("60–90 minutes").
pub const POWER_PLATFORM_MINUTES: i64 = 75;
/// Minutes the dual-write application setup takes ("30 minutes or less").
pub const DUAL_WRITE_SETUP_MINUTES: i64 = 30;
/// Minutes the link takes ("less than 5 minutes").
pub const DUAL_WRITE_LINK_MINUTES: i64 = 5;

/// The Power Platform integration templates LCS offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Template {
    /// Dynamics 365 Standard.
    Standard,
    /// Dynamics 365 Standard with dual-write (installs the map solutions).
    StandardWithDualWrite,
    /// Project Operations.
    ProjectOperations,
}

impl Template {
    /// Every template, in the order LCS lists them.
    pub const ALL: [Template; 3] = [
        Template::Standard,
        Template::StandardWithDualWrite,
        Template::ProjectOperations,
    ];

    /// The template's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Standard => "standard",
            Template::StandardWithDualWrite => "standard-with-dual-write",
            Template::ProjectOperations => "project-operations",
        }
    }

    /// The template a client names, or the refusal that lists the known ones.
    pub fn parse(name: &str) -> SimResult<Template> {
        Template::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Template::ALL.iter().map(|t| t.as_str()).collect();
                SimError::bad_request(format!(
                    "Unknown template '{name}'. Use one of: {}.",
                    known.join(", ")
                ))
            })
    }
}

/// The one LCS project of a world.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lcs {
    /// The project id.
    pub project_id: i64,
    /// The project name.
    pub project_name: String,
    /// Environments by LCS environment id (32 hex digits).
    pub environments: BTreeMap<String, LcsEnvironment>,
    /// Operations by activity id.
    pub operations: BTreeMap<String, LcsOperation>,
    /// Recent calls per rate-limit bucket, for the per-endpoint limits.
    pub calls: BTreeMap<String, Vec<Instant>>,
    /// Dataverse database capacity of the tenant; a new environment needs at least 1 GB.
    #[serde(default = "default_capacity_mb")]
    pub dataverse_capacity_mb: i64,
}

fn default_capacity_mb() -> i64 {
    10 * 1024
}

/// Dataverse capacity a new environment from the Power Platform integration needs.
pub const REQUIRED_CAPACITY_MB: i64 = 1024;

/// The deployment state of an LCS environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentState {
    /// The deployment is running.
    Deploying,
    /// Deployed and usable.
    Deployed,
    /// The deployment failed.
    Failed,
}

impl DeploymentState {
    /// The state as LCS shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Deploying => "Deploying",
            DeploymentState::Deployed => "Deployed",
            DeploymentState::Failed => "Failed",
        }
    }
}

/// Where the dual-write application setup of an environment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DualWriteApplication {
    /// Not set up yet.
    NotConfigured,
    /// Setup is running.
    Configuring,
    /// Set up: the environment can be linked.
    Configured,
    /// Setup failed.
    Failed,
}

impl DualWriteApplication {
    /// The state as LCS shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            DualWriteApplication::NotConfigured => "NotConfigured",
            DualWriteApplication::Configuring => "Configuring",
            DualWriteApplication::Configured => "Configured",
            DualWriteApplication::Failed => "Failed",
        }
    }
}

/// The `OperationStatus` values an LCS operation (and its history item) goes through here;
/// the API's enum has more (`NotStarted`, `SignedOff`, the rollback states) that dwsim never
/// reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationStatus {
    /// Still running.
    InProgress,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
}

impl OperationStatus {
    /// The status as fetchstatus answers it.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::InProgress => "InProgress",
            OperationStatus::Completed => "Completed",
            OperationStatus::Failed => "Failed",
        }
    }
}

/// What an environment history item records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryKind {
    /// The deployment of the environment.
    Deployment,
    /// A servicing operation started later.
    Servicing,
}

/// An F&O environment of the LCS project.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LcsEnvironment {
    /// The LCS environment id (32 hex digits).
    pub id: String,
    /// The environment name.
    pub name: String,
    /// Key of the F&O environment in the world (same as `name`).
    pub fno_env: String,
    /// Where the deployment stands.
    pub state: DeploymentState,
    /// Whether it was deployed with demo data.
    pub demo_data: bool,
    /// When the deployment finished.
    pub deployed_on: Option<Instant>,
    /// Its Power Platform integration, once started.
    pub power_platform: Option<PowerPlatformIntegration>,
    /// Where the dual-write application setup stands.
    pub dual_write_application: DualWriteApplication,
    /// Whether "Link to Power Platform environment" has completed.
    pub dual_write_linked: bool,
    /// Its operations, oldest first.
    pub history: Vec<HistoryItem>,
}

/// The Power Platform integration of an LCS environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PowerPlatformIntegration {
    /// The template it was set up with.
    pub template: Template,
    /// The Dataverse organization it links to (new or existing).
    pub dataverse_org: String,
    /// Where the setup stands.
    pub status: OperationStatus,
    /// Whether the setup creates the Dataverse environment.
    pub new_environment: bool,
}

/// One entry of an environment's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryItem {
    /// What was done.
    pub name: String,
    /// Deployment or servicing.
    pub kind: HistoryKind,
    /// The operation's activity id.
    pub activity_id: String,
    /// When it started.
    pub started: Instant,
    /// When it ended, once it has.
    pub ended: Option<Instant>,
    /// How it stands or ended.
    pub status: OperationStatus,
}

/// What a long-running LCS operation does when it completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LcsOperationKind {
    /// Deploys the F&O environment.
    Deploy {
        /// With the demo companies and their data.
        demo_data: bool,
    },
    /// Sets up the Power Platform integration.
    PowerPlatformIntegration {
        /// The template asked for.
        template: Template,
        /// The existing organization to link, or none for a new one.
        existing_org: Option<String>,
    },
    /// Sets up the dual-write application.
    DualWriteSetup,
    /// Links dual-write to the Power Platform environment.
    DualWriteLink,
}

impl LcsOperationKind {
    /// The name the environment history gives the operation.
    pub fn history_name(&self) -> &'static str {
        match self {
            LcsOperationKind::Deploy { .. } => "Deploy environment",
            LcsOperationKind::PowerPlatformIntegration { .. } => "Power Platform integration setup",
            LcsOperationKind::DualWriteSetup => "Dual-write application setup",
            LcsOperationKind::DualWriteLink => "Link to Power Platform environment",
        }
    }
}

/// A long-running LCS operation, polled through fetchstatus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LcsOperation {
    /// The activity id.
    pub id: String,
    /// The LCS environment it runs on.
    pub environment_id: String,
    /// What it does.
    pub kind: LcsOperationKind,
    /// When it started.
    pub started: Instant,
    /// When it completes on the virtual clock.
    pub completes: Instant,
    /// How it stands or ended.
    pub status: OperationStatus,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Lcs {
    /// Records a call in `bucket` and answers the seconds to wait if more than `limit` calls
    /// fell within the last `window_seconds`.
    pub fn rate_limit(
        &mut self,
        bucket: &str,
        limit: usize,
        window_seconds: i64,
        now: Instant,
    ) -> Option<i64> {
        let calls = self.calls.entry(bucket.to_string()).or_default();
        calls.retain(|t| t.0 > now.0 - window_seconds * 1000);
        if calls.len() >= limit {
            let oldest = calls.first().map_or(now.0, |t| t.0);
            return Some(((oldest + window_seconds * 1000 - now.0) / 1000).max(1));
        }
        calls.push(now);
        None
    }

    /// The LCS environment of an F&O environment.
    pub fn environment_by_fno(&self, fno_env: &str) -> Option<&LcsEnvironment> {
        self.environments.values().find(|e| e.fno_env == fno_env)
    }
}

impl Lcs {
    /// An environment by LCS id, or LCS's error for an unknown one.
    pub fn environment(&self, environment_id: &str) -> SimResult<&LcsEnvironment> {
        self.environments.get(environment_id).ok_or_else(|| {
            SimError::not_found(format!(
                "Environment {environment_id} was not found in project {}.",
                self.project_id
            ))
        })
    }

    fn start_operation(
        &mut self,
        cx: &mut Cx,
        environment_id: &str,
        kind: LcsOperationKind,
        minutes: i64,
    ) -> String {
        let id = cx.ids.guid();
        let now = cx.now;
        if let Some(env) = self.environments.get_mut(environment_id) {
            env.history.push(HistoryItem {
                name: kind.history_name().into(),
                kind: HistoryKind::Servicing,
                activity_id: id.clone(),
                started: now,
                ended: None,
                status: OperationStatus::InProgress,
            });
        }
        self.operations.insert(
            id.clone(),
            LcsOperation {
                id: id.clone(),
                environment_id: environment_id.to_string(),
                kind,
                started: now,
                completes: now.plus_minutes(minutes),
                status: OperationStatus::InProgress,
                error: None,
            },
        );
        id
    }

    /// Starts deploying a new F&O environment, empty or with demo data; `name_taken` says
    /// whether an F&O environment of that name exists already.
    /// Answers (environment id, activity id).
    pub fn deploy(
        &mut self,
        cx: &mut Cx,
        name: &str,
        name_taken: bool,
        demo_data: bool,
    ) -> SimResult<(String, String)> {
        let valid = !name.is_empty()
            && name.len() <= 20
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(SimError::bad_request(format!(
                "The environment name '{name}' is not valid. Use 1 to 20 lower-case letters, digits or hyphens."
            )));
        }
        if name_taken || self.environments.values().any(|e| e.name == name) {
            return Err(SimError::conflict(format!(
                "An environment with the name '{name}' already exists in this project."
            )));
        }
        let env_id = cx.ids.hex(16);
        self.environments.insert(
            env_id.clone(),
            LcsEnvironment {
                id: env_id.clone(),
                name: name.to_string(),
                fno_env: name.to_string(),
                state: DeploymentState::Deploying,
                demo_data,
                deployed_on: None,
                power_platform: None,
                dual_write_application: DualWriteApplication::NotConfigured,
                dual_write_linked: false,
                history: Vec::new(),
            },
        );
        let op = self.start_operation(
            cx,
            &env_id,
            LcsOperationKind::Deploy { demo_data },
            DEPLOY_MINUTES,
        );
        Ok((env_id, op))
    }

    /// Starts the Power Platform integration with a new Dataverse (`existing` None) or an
    /// existing one, which must have Dynamics 365 apps and share tenant and geography.
    pub fn start_power_platform(
        &mut self,
        cx: &mut Cx,
        environment_id: &str,
        template: &str,
        existing: Option<ExistingDataverse>,
    ) -> SimResult<String> {
        let env = self.environment(environment_id)?;
        if env.state != DeploymentState::Deployed {
            return Err(SimError::conflict(
                "The environment must be deployed before Power Platform integration can be set up.",
            ));
        }
        if let Some(pp) = &env.power_platform {
            if pp.status != OperationStatus::Failed {
                return Err(SimError::conflict(
                    "Power Platform integration is already set up for this environment. The link cannot be reversed.",
                ));
            }
        }
        let template = Template::parse(template)?;
        if let Some(existing) = &existing {
            existing.check()?;
        }
        let existing_org = existing.map(|e| e.org.to_string());
        // Resuming a failed setup keeps the environment it was creating.
        let resumed = env
            .power_platform
            .as_ref()
            .filter(|p| {
                p.status == OperationStatus::Failed && p.new_environment && existing_org.is_none()
            })
            .map(|p| p.dataverse_org.clone());
        let org = match (&existing_org, resumed) {
            (Some(o), _) => o.clone(),
            (None, Some(o)) => o,
            (None, None) => format!("org{}", cx.ids.hex(4)),
        };
        if let Some(env) = self.environments.get_mut(environment_id) {
            env.power_platform = Some(PowerPlatformIntegration {
                template,
                dataverse_org: org,
                status: OperationStatus::InProgress,
                new_environment: existing_org.is_none(),
            });
        }
        let kind = LcsOperationKind::PowerPlatformIntegration {
            template,
            existing_org,
        };
        Ok(self.start_operation(cx, environment_id, kind, POWER_PLATFORM_MINUTES))
    }

    /// Starts the dual-write application setup (needs a completed Power Platform integration).
    pub fn start_dual_write_setup(
        &mut self,
        cx: &mut Cx,
        environment_id: &str,
    ) -> SimResult<String> {
        let env = self.environment(environment_id)?;
        if env.power_platform.as_ref().map(|p| p.status) != Some(OperationStatus::Completed) {
            return Err(SimError::conflict(
                "Power Platform integration must be completed before the dual-write application can be configured.",
            ));
        }
        if matches!(
            env.dual_write_application,
            DualWriteApplication::Configured | DualWriteApplication::Configuring
        ) {
            return Err(SimError::conflict(
                "The dual-write application is already configured for this environment.",
            ));
        }
        if let Some(env) = self.environments.get_mut(environment_id) {
            env.dual_write_application = DualWriteApplication::Configuring;
        }
        Ok(self.start_operation(
            cx,
            environment_id,
            LcsOperationKind::DualWriteSetup,
            DUAL_WRITE_SETUP_MINUTES,
        ))
    }

    /// Starts "Link to Power Platform environment".
    pub fn start_dual_write_link(
        &mut self,
        cx: &mut Cx,
        environment_id: &str,
    ) -> SimResult<String> {
        let env = self.environment(environment_id)?;
        if env.dual_write_application != DualWriteApplication::Configured {
            return Err(SimError::conflict(
                "The dual-write application must be configured before linking.",
            ));
        }
        if env.dual_write_linked {
            return Err(SimError::conflict(
                "The environment is already linked to its Power Platform environment.",
            ));
        }
        Ok(self.start_operation(
            cx,
            environment_id,
            LcsOperationKind::DualWriteLink,
            DUAL_WRITE_LINK_MINUTES,
        ))
    }

    /// An operation of an environment by activity id.
    pub fn operation(&self, environment_id: &str, activity_id: &str) -> SimResult<&LcsOperation> {
        self.operations
            .get(activity_id)
            .filter(|o| o.environment_id == environment_id)
            .ok_or_else(|| {
                SimError::not_found(format!("Operation activity {activity_id} was not found."))
            })
    }

    /// The operations in progress that are due at `now`, in completion order.
    pub fn due(&self, now: Instant) -> Vec<LcsOperation> {
        let mut due: Vec<LcsOperation> = self
            .operations
            .values()
            .filter(|o| o.status == OperationStatus::InProgress && o.completes <= now)
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.completes, &a.id).cmp(&(b.completes, &b.id)));
        due
    }

    /// Records how a due operation ended (its effects on the products were applied by the
    /// world): the operation, its history item and the environment's state.
    pub fn finish(&mut self, op: &LcsOperation, outcome: SimResult<()>) {
        let (status, error) = match outcome {
            Ok(()) => (OperationStatus::Completed, None),
            Err(e) => (OperationStatus::Failed, Some(e.message)),
        };
        if let Some(o) = self.operations.get_mut(&op.id) {
            o.status = status;
            o.error = error;
        }
        let Some(env) = self.environments.get_mut(&op.environment_id) else {
            return;
        };
        if let Some(h) = env.history.iter_mut().find(|h| h.activity_id == op.id) {
            h.status = status;
            h.ended = Some(op.completes);
        }
        let failed = status == OperationStatus::Failed;
        match &op.kind {
            LcsOperationKind::Deploy { .. } => {
                env.state = if failed {
                    DeploymentState::Failed
                } else {
                    DeploymentState::Deployed
                };
                env.deployed_on = Some(op.completes);
            }
            LcsOperationKind::PowerPlatformIntegration { .. } => {
                if let Some(pp) = env.power_platform.as_mut() {
                    pp.status = status;
                }
            }
            LcsOperationKind::DualWriteSetup => {
                env.dual_write_application = if failed {
                    DualWriteApplication::Failed
                } else {
                    DualWriteApplication::Configured
                };
            }
            LcsOperationKind::DualWriteLink => env.dual_write_linked = !failed,
        }
    }
}

/// An existing Dataverse environment offered to the Power Platform integration, with what
/// LCS checks of it.
pub struct ExistingDataverse<'a> {
    /// The organization name given.
    pub org: &'a str,
    /// The organization, if it exists.
    pub env: Option<&'a DvEnv>,
    /// The tenant of the LCS project.
    pub tenant_id: &'a str,
}

impl ExistingDataverse<'_> {
    fn check(&self) -> SimResult<()> {
        let org = self.org;
        let dv = self.env.ok_or_else(|| {
            SimError::not_found(format!(
                "The Power Platform environment '{org}' was not found."
            ))
        })?;
        if !dv.d365_apps_enabled {
            return Err(SimError::conflict(format!(
                "The Power Platform environment '{org}' was not created with Dynamics 365 apps enabled."
            )));
        }
        if dv.tenant_id != self.tenant_id {
            return Err(SimError::conflict(format!(
                "The Power Platform environment '{org}' is in another tenant."
            )));
        }
        if dv.geography != crate::dataverse::GEOGRAPHY {
            return Err(SimError::conflict(format!(
                "The Power Platform environment '{org}' is in another geography."
            )));
        }
        if dv.fno_integration.is_some() {
            return Err(SimError::conflict(format!(
                "The Power Platform environment '{org}' is already linked to a finance and operations environment."
            )));
        }
        Ok(())
    }
}
