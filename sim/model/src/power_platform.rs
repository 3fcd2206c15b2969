//! The Power Platform admin (BAP) API: creating a Dataverse environment outside LCS, as a
//! lifecycle operation the client polls through its Location URL.

use crate::clock::Instant;
use crate::context::Cx;
use crate::error::{SimError, SimResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Minutes a new environment with a database takes on the virtual clock.
pub const PROVISION_MINUTES: i64 = 20;

/// The environments created through the Power Platform admin API, and their operations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PowerPlatform {
    /// Environments by id.
    pub environments: BTreeMap<String, PpEnvironment>,
    /// Lifecycle operations by id.
    pub operations: BTreeMap<String, PpOperation>,
}

/// `properties.provisioningState` of a Power Platform environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProvisioningState {
    /// The database is being created.
    LinkedDatabaseProvisioning,
    /// The environment and its database exist.
    Succeeded,
    /// Creating the database failed.
    Failed,
}

/// `state.id` of a lifecycle operation; `Succeeded` and `Failed` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleState {
    /// Still running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
}

/// An environment created through the admin API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PpEnvironment {
    /// The environment id.
    pub id: String,
    /// Its display name.
    pub display_name: String,
    /// The domain name, which becomes the Dataverse organization name.
    pub domain_name: String,
    /// The region it was created in.
    pub location: String,
    /// The SKU asked for (`Sandbox`, `Production`, …).
    pub sku: String,
    /// `Succeeded` once the database exists.
    pub provisioning_state: ProvisioningState,
    /// When it was created.
    pub created: Instant,
}

/// A lifecycle operation, polled through its Location URL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PpOperation {
    /// The operation id.
    pub id: String,
    /// The environment it creates.
    pub environment_id: String,
    /// When it started.
    pub started: Instant,
    /// When it completes on the virtual clock.
    pub completes: Instant,
    /// How it stands or ended.
    pub state: LifecycleState,
    /// Templates and post-provisioning packages asked for.
    pub templates: Vec<String>,
    /// The post-provisioning packages asked for.
    pub packages: Vec<String>,
}

/// Application packages that carry the dual-write solutions when named in templateMetadata.
const DUAL_WRITE_PACKAGES: [&str; 2] = [
    "msdyn_DualWriteAppCoreAnchor",
    "msdyn_Dynamics365FinanceExtendedAnchor",
];

/// What a client asks for when it creates an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRequest {
    /// The display name (under 20 characters).
    pub display_name: String,
    /// The domain name (lower-case letters and digits).
    pub domain_name: String,
    /// The region.
    pub location: String,
    /// The SKU.
    pub sku: String,
    /// Templates and post-provisioning packages asked for.
    pub templates: Vec<String>,
    /// The post-provisioning packages (the dual-write ones install its solutions).
    pub packages: Vec<String>,
}

impl PpOperation {
    /// Whether the packages asked for carry the dual-write solutions.
    pub fn has_dual_write_packages(&self) -> bool {
        self.packages
            .iter()
            .any(|p| DUAL_WRITE_PACKAGES.contains(&p.as_str()))
    }
}

impl PowerPlatform {
    /// Starts creating an environment; `domain_taken` says whether a Dataverse
    /// organization of that name exists already. Answers the lifecycle operation id.
    pub fn create_environment(
        &mut self,
        cx: &mut Cx,
        request: EnvironmentRequest,
        domain_taken: bool,
    ) -> SimResult<String> {
        let EnvironmentRequest {
            display_name,
            domain_name,
            location,
            sku,
            templates,
            packages,
        } = request;
        if display_name.is_empty() || display_name.chars().count() >= 20 {
            return Err(SimError::bad_request(
                "The environment display name must be set and under 20 characters.",
            ));
        }
        let domain_ok = !domain_name.is_empty()
            && domain_name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !domain_ok {
            return Err(SimError::bad_request(format!(
                "The domain name '{domain_name}' is not valid. Use lower-case letters and digits."
            )));
        }
        if domain_taken
            || self
                .environments
                .values()
                .any(|e| e.domain_name == domain_name)
        {
            return Err(SimError::conflict(format!(
                "The domain name '{domain_name}' is already in use."
            )));
        }
        let now = cx.now;
        let env_id = cx.ids.guid();
        let op_id = cx.ids.guid();
        self.environments.insert(
            env_id.clone(),
            PpEnvironment {
                id: env_id.clone(),
                display_name,
                domain_name,
                location,
                sku,
                provisioning_state: ProvisioningState::LinkedDatabaseProvisioning,
                created: now,
            },
        );
        self.operations.insert(
            op_id.clone(),
            PpOperation {
                id: op_id.clone(),
                environment_id: env_id,
                started: now,
                completes: now.plus_minutes(PROVISION_MINUTES),
                state: LifecycleState::Running,
                templates,
                packages,
            },
        );
        Ok(op_id)
    }

    /// The running operations due at `now`, with their environment, in operation-id order.
    pub fn due(&self, now: Instant) -> Vec<(PpOperation, PpEnvironment)> {
        self.operations
            .values()
            .filter(|o| o.state == LifecycleState::Running && o.completes <= now)
            .filter_map(|o| {
                let env = self.environments.get(&o.environment_id)?;
                Some((o.clone(), env.clone()))
            })
            .collect()
    }

    /// Records whether the database of a due operation's environment was created.
    pub fn finish(&mut self, op: &PpOperation, provisioned: bool) {
        if let Some(o) = self.operations.get_mut(&op.id) {
            o.state = if provisioned {
                LifecycleState::Succeeded
            } else {
                LifecycleState::Failed
            };
        }
        if let Some(e) = self.environments.get_mut(&op.environment_id) {
            e.provisioning_state = if provisioned {
                ProvisioningState::Succeeded
            } else {
                ProvisioningState::Failed
            };
        }
    }
}
