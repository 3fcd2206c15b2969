//! The Power Platform admin (BAP) API: creating a Dataverse environment outside LCS, as a
//! lifecycle operation the client polls through its Location URL.

use crate::clock::Instant;
use crate::error::{SimError, SimResult};
use crate::world::World;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Minutes a new environment with a database takes on the virtual clock.
pub const PROVISION_MINUTES: i64 = 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PowerPlatform {
    pub environments: BTreeMap<String, PpEnvironment>,
    pub operations: BTreeMap<String, PpOperation>,
}

/// `properties.provisioningState` of a Power Platform environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProvisioningState {
    LinkedDatabaseProvisioning,
    Succeeded,
    Failed,
}

/// `state.id` of a lifecycle operation; `Succeeded` and `Failed` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LifecycleState {
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PpEnvironment {
    pub id: String,
    pub display_name: String,
    pub domain_name: String,
    pub location: String,
    pub sku: String,
    /// `Succeeded` once the database exists.
    pub provisioning_state: ProvisioningState,
    pub created: Instant,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PpOperation {
    pub id: String,
    pub environment_id: String,
    pub started: Instant,
    pub completes: Instant,
    pub state: LifecycleState,
    /// Templates and post-provisioning packages asked for.
    pub templates: Vec<String>,
    pub packages: Vec<String>,
}

/// Application packages that carry the dual-write solutions when named in templateMetadata.
const DUAL_WRITE_PACKAGES: [&str; 2] = [
    "msdyn_DualWriteAppCoreAnchor",
    "msdyn_Dynamics365FinanceExtendedAnchor",
];

impl World {
    /// Starts creating an environment; answers the lifecycle operation id.
    pub fn bap_create_environment(
        &mut self,
        display_name: &str,
        domain_name: &str,
        location: &str,
        sku: &str,
        templates: Vec<String>,
        packages: Vec<String>,
    ) -> SimResult<String> {
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
        if self.dataverse.contains_key(domain_name)
            || self
                .power_platform
                .environments
                .values()
                .any(|e| e.domain_name == domain_name)
        {
            return Err(SimError::conflict(format!(
                "The domain name '{domain_name}' is already in use."
            )));
        }
        let now = self.clock.now();
        let env_id = self.ids.guid();
        let op_id = self.ids.guid();
        self.power_platform.environments.insert(
            env_id.clone(),
            PpEnvironment {
                id: env_id.clone(),
                display_name: display_name.into(),
                domain_name: domain_name.into(),
                location: location.into(),
                sku: sku.into(),
                provisioning_state: ProvisioningState::LinkedDatabaseProvisioning,
                created: now,
            },
        );
        self.power_platform.operations.insert(
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

    pub(crate) fn settle_power_platform(&mut self) {
        let now = self.clock.now();
        let due: Vec<PpOperation> = self
            .power_platform
            .operations
            .values()
            .filter(|o| o.state == LifecycleState::Running && o.completes <= now)
            .cloned()
            .collect();
        for op in due {
            let Some(env) = self
                .power_platform
                .environments
                .get(&op.environment_id)
                .cloned()
            else {
                continue;
            };
            let d365 = !op.templates.is_empty();
            let dual_write = op
                .packages
                .iter()
                .any(|p| DUAL_WRITE_PACKAGES.contains(&p.as_str()));
            let provisioned = self
                .provision_dataverse(&env.domain_name, d365, dual_write, false)
                .is_ok();
            if let Some(o) = self.power_platform.operations.get_mut(&op.id) {
                o.state = if provisioned {
                    LifecycleState::Succeeded
                } else {
                    LifecycleState::Failed
                };
            }
            if let Some(e) = self.power_platform.environments.get_mut(&op.environment_id) {
                e.provisioning_state = if provisioned {
                    ProvisioningState::Succeeded
                } else {
                    ProvisioningState::Failed
                };
            }
        }
    }
}
