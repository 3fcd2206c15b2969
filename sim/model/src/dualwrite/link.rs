//! Linking: the health check the link wizard runs, the companies a connection may hold,
//! and registering a legal entity (its cdm_company, whose plug-in makes the business unit
//! and owner team).

use super::{Connection, DualWrite, HealthCheck, MapRuntime, MapState, Side};
use crate::catalogue::Catalogue;
use crate::clock::Instant;
use crate::dataverse::{DvEnv, WriteContext};
use crate::entra;
use crate::error::{ErrorKind, SimError, SimResult};
use crate::fno::{FnoEnv, LEGAL_ENTITIES};
use crate::store::obj;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// "Saving connection set failed!": duplicate or blank company names.
const SAVE_CONNECTION_FAILED: &str =
    "Saving connection set failed! An item with the same key has already been added.";

/// The prerequisite health check the link wizard runs, with the documented result texts.
pub fn health_check(fno: &FnoEnv, dv: &DvEnv) -> Vec<HealthCheck> {
    let check = |name: &str, passed: bool, ok: String, fail: String| HealthCheck {
        name: name.into(),
        passed,
        message: if passed { ok } else { fail },
    };
    let app_users = [entra::DUAL_WRITE_RUNTIME_APP, entra::DUAL_WRITE_APP];
    let missing_user = app_users.iter().find(|a| dv.application_user(a).is_none());
    let fo_apps = [entra::DUAL_WRITE_DV_TO_FNO_APP, entra::DUAL_WRITE_APP];
    let missing_app = fo_apps.iter().find(|a| !fno.entra_apps.contains(**a));
    vec![
        check(
            "ApplicationVersion",
            fno.platform_update >= 33,
            "App version is up to date".into(),
            "Dual Write is supported on finance and operations app environments with Platform Update PU 33 (App version 10.0.9) or above".into(),
        ),
        check(
            "CoreSolution",
            dv.has_solution("DualWriteCore"),
            "The dual-write core solution was found".into(),
            "The entity with a name 'msdyn_dualwriteentitymap' with namemapping='Logical' was not found in the MetadataCache.".into(),
        ),
        check(
            "DataverseToFinanceAndOperations",
            missing_app.is_none(),
            "The Dataverse can connect to the finance and operations app".into(),
            format!("App user with id {} does not exist in the finance and operations app", missing_app.copied().unwrap_or_default()),
        ),
        check(
            "FinanceAndOperationsToDataverse",
            missing_user.is_none(),
            "The finance and operations app can connect to the Dataverse".into(),
            format!("App user with id {} does not exist in Dataverse", missing_user.copied().unwrap_or_default()),
        ),
        check(
            "Plugins",
            dv.dual_write_plugins_enabled,
            "The dual-write registration and runtime plugins are enabled".into(),
            "To ensure listening into CRUD operations on the Dataverse, the dual-write plugins need to be enabled".into(),
        ),
        check(
            "SameTenant",
            dv.tenant_id == fno.tenant_id,
            "Apps in tenant".into(),
            "The finance and operations app and Dataverse must be in the same tenant.".into(),
        ),
    ]
}

/// The refusal of a link whose health check has a failed check.
pub fn health_check_failed(checks: &[HealthCheck]) -> Option<SimError> {
    let failed = checks.iter().find(|c| !c.passed)?;
    Some(SimError::new(
        ErrorKind::Conflict,
        "HealthCheckFailed",
        format!(
            "You can't link dual-write unless the whole health check passes. {}: {}",
            failed.name, failed.message
        ),
    ))
}

/// Every company must exist in F&O, and the connection's cdm_company names must be
/// unique and non-blank.
pub fn check_companies(fno: &FnoEnv, dv: Option<&DvEnv>, adding: &[String]) -> SimResult<()> {
    let mut names: Vec<String> = Vec::new();
    if let Some(dv) = dv {
        names.extend(dv.store.rows("cdm_company").map(|(_, r)| {
            r.get("cdm_name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        }));
    }
    for code in adding {
        let Some(le) = fno.get(LEGAL_ENTITIES, &code.to_lowercase()) else {
            return Err(SimError::not_found(format!(
                "Legal entity {code} does not exist."
            )));
        };
        let exists_in_dv = dv.is_some_and(|d| d.company_by_code(code).is_some());
        if !exists_in_dv {
            names.push(
                le.get("Name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            );
        }
    }
    let mut seen = BTreeSet::new();
    for n in &names {
        if n.trim().is_empty() || !seen.insert(n.to_lowercase()) {
            return Err(SimError::new(
                ErrorKind::Conflict,
                "",
                SAVE_CONNECTION_FAILED,
            ));
        }
    }
    Ok(())
}

impl Connection {
    /// A new connection to `org`: every map of the catalogue is published (Not running)
    /// when the dual-write map solutions are installed.
    pub fn new(
        catalogue: &Catalogue,
        org: &str,
        has_maps: bool,
        health_check: Vec<HealthCheck>,
        now: Instant,
    ) -> Connection {
        let maps = if has_maps {
            catalogue
                .maps
                .iter()
                .map(|m| {
                    (
                        m.id.clone(),
                        MapRuntime {
                            state: MapState::NotRunning,
                            master: Side::Dataverse,
                            initial_sync: true,
                            activity: vec![(now, "Map published".into())],
                            paused_at: None,
                            active_alerts: Vec::new(),
                            errors: Vec::new(),
                        },
                    )
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        Connection {
            dataverse: org.to_string(),
            legal_entities: Vec::new(),
            maps,
            health_check,
            executions: Vec::new(),
            queue: Vec::new(),
            catch_up_errors: Vec::new(),
            removed_legal_entities: Vec::new(),
            alert_rules: Vec::new(),
            notifications: Vec::new(),
            linked_at: now,
        }
    }
}

impl DualWrite<'_> {
    /// Adds a legal entity to the connection and makes sure its cdm_company exists (the
    /// plug-in then creates its business unit and owner team).
    pub(crate) fn register_company(&mut self, code: &str) -> SimResult<()> {
        let name = self
            .fno
            .get(LEGAL_ENTITIES, &code.to_lowercase())
            .and_then(|r| r.get("Name").cloned())
            .unwrap_or(Value::Null);
        let code_upper = code.to_uppercase();
        if self.dv.company_by_code(&code_upper).is_none() {
            let mut cx = WriteContext {
                catalogue: self.catalogue,
                ids: self.ids,
                now: self.clock.now(),
                caller: self.dv.dual_write_user(),
                owner: None,
            };
            self.dv.create(
                &mut cx,
                "cdm_company",
                obj(json!({"cdm_companycode": code_upper, "cdm_name": name})),
            )?;
        }
        if !self.conn.is_connected(&code_upper) {
            self.conn.legal_entities.push(code_upper);
        }
        Ok(())
    }
}
