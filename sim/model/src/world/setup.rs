//! The setup operations that cross products, on the world: LCS and Power Platform calls
//! delegate to their own types, and when an operation is due the world applies its effects
//! to the other products (deploying F&O, provisioning Dataverse, installing the dual-write
//! solutions, registering the dual-write apps, linking) before the operation records how
//! it ended.

use super::World;
use crate::context::Cx;
use crate::dualwrite::{MapRun, Side};
use crate::entra;
use crate::error::{SimError, SimResult};
use crate::lcs::{
    ExistingDataverse, LcsOperation, LcsOperationKind, Template, REQUIRED_CAPACITY_MB,
};
use crate::power_platform::EnvironmentRequest;
use crate::schema::SolutionGroup;

impl World {
    /// Starts deploying a new F&O environment. Answers (environment id, activity id).
    pub fn lcs_deploy(&mut self, name: &str, demo_data: bool) -> SimResult<(String, String)> {
        let taken = self.fno.contains_key(name);
        let cx = &mut Cx {
            now: self.clock.now(),
            ids: &mut self.ids,
        };
        self.lcs.deploy(cx, name, taken, demo_data)
    }

    /// Starts the Power Platform integration with a new or an existing Dataverse.
    pub fn lcs_power_platform(
        &mut self,
        environment_id: &str,
        template: &str,
        existing_org: Option<&str>,
    ) -> SimResult<String> {
        let existing = existing_org.map(|org| ExistingDataverse {
            org,
            env: self.dataverse.get(org),
            tenant_id: &self.tenant.id,
        });
        let cx = &mut Cx {
            now: self.clock.now(),
            ids: &mut self.ids,
        };
        self.lcs
            .start_power_platform(cx, environment_id, template, existing)
    }

    /// Starts the dual-write application setup of an LCS environment.
    pub fn lcs_dual_write_setup(&mut self, environment_id: &str) -> SimResult<String> {
        let cx = &mut Cx {
            now: self.clock.now(),
            ids: &mut self.ids,
        };
        self.lcs.start_dual_write_setup(cx, environment_id)
    }

    /// Starts "Link to Power Platform environment".
    pub fn lcs_dual_write_link(&mut self, environment_id: &str) -> SimResult<String> {
        let cx = &mut Cx {
            now: self.clock.now(),
            ids: &mut self.ids,
        };
        self.lcs.start_dual_write_link(cx, environment_id)
    }

    /// An LCS operation of an environment, by activity id.
    pub fn lcs_operation(
        &self,
        environment_id: &str,
        activity_id: &str,
    ) -> SimResult<&LcsOperation> {
        self.lcs.operation(environment_id, activity_id)
    }

    /// Starts creating a Power Platform environment; answers the lifecycle operation id.
    pub fn bap_create_environment(&mut self, request: EnvironmentRequest) -> SimResult<String> {
        let taken = self.dataverse.contains_key(&request.domain_name);
        let cx = &mut Cx {
            now: self.clock.now(),
            ids: &mut self.ids,
        };
        self.power_platform.create_environment(cx, request, taken)
    }

    /// Finishes the LCS operations that are due, in completion order.
    pub(crate) fn settle_lcs(&mut self) {
        for op in self.lcs.due(self.clock.now()) {
            let outcome = self.apply_lcs_operation(&op);
            self.lcs.finish(&op, outcome);
        }
    }

    /// Creates the Dataverse environments whose lifecycle operation is due.
    pub(crate) fn settle_power_platform(&mut self) {
        for (op, env) in self.power_platform.due(self.clock.now()) {
            let d365 = !op.templates.is_empty();
            let dual_write = op.has_dual_write_packages();
            let provisioned = self
                .provision_dataverse(&env.domain_name, d365, dual_write, false)
                .is_ok();
            self.power_platform.finish(&op, provisioned);
        }
    }

    fn apply_lcs_operation(&mut self, op: &LcsOperation) -> SimResult<()> {
        let env = self.lcs.environment(&op.environment_id)?.clone();
        let org = env
            .power_platform
            .as_ref()
            .map(|p| p.dataverse_org.clone())
            .unwrap_or_default();
        match &op.kind {
            LcsOperationKind::Deploy { demo_data } => {
                let demo = demo_data.then(|| self.spec.data.fno.clone());
                self.provision_fno(&env.fno_env, demo.as_ref())
            }
            LcsOperationKind::PowerPlatformIntegration {
                template,
                existing_org,
            } => {
                if existing_org.is_none() && !self.dataverse.contains_key(&org) {
                    let capacity = self.lcs.dataverse_capacity_mb;
                    if capacity < REQUIRED_CAPACITY_MB {
                        return Err(SimError::conflict(format!(
                            "Power Platform environment setup failed: the tenant has {capacity} MB of Dataverse database capacity and a new environment needs at least 1 GB. Add capacity, then select Resume."
                        )));
                    }
                    self.provision_dataverse(&org, true, false, false)?;
                }
                self.install_solutions(&org, SolutionGroup::DualWriteCore)?;
                if *template != Template::Standard {
                    self.install_solutions(&org, SolutionGroup::DualWriteMaps)?;
                }
                if let Some(dv) = self.dataverse.get_mut(&org) {
                    dv.fno_integration = Some(env.fno_env.clone());
                }
                if let Some(fno) = self.fno.get_mut(&env.fno_env) {
                    fno.power_platform_dataverse = Some(org);
                }
                Ok(())
            }
            LcsOperationKind::DualWriteSetup => {
                self.ensure_dual_write_app_users(&org)?;
                if let Some(fno) = self.fno.get_mut(&env.fno_env) {
                    fno.entra_apps
                        .insert(entra::DUAL_WRITE_DV_TO_FNO_APP.into());
                    fno.entra_apps.insert(entra::DUAL_WRITE_APP.into());
                }
                Ok(())
            }
            LcsOperationKind::DualWriteLink => {
                self.link(&env.fno_env, &org, &["DAT".to_string()])?;
                // "Table maps are enabled for live synchronization": every map, no initial sync.
                let runs: Vec<MapRun> = self
                    .connections
                    .get(&env.fno_env)
                    .map(|c| {
                        c.maps
                            .keys()
                            .map(|id| MapRun {
                                map: id.clone(),
                                initial_sync: false,
                                master: Side::Dataverse,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let ordered = self.order_upstream_first(runs);
                self.dual_write(&env.fno_env)?.run(&ordered).map(|_| ())
            }
        }
    }
}
