//! Runs a scenario end to end through the public HTTP surface (over either transport),
//! then checks the cross-system invariants. The runner never reaches into the World: it
//! reads state through the admin export, as any client could.

use crate::client::{enc, Client};
use crate::invariants;
use crate::scenario::{Action, Expect, LegalEntities, Master, Scenario};
use crate::transport::{Http, InProcess, Transport};
use anyhow::{anyhow, bail, Result};
use dwsim_model::dualwrite::Side;
use dwsim_model::{SeedData, World, WorldSpec};
use dwsim_protocol::Sim;
use serde::Serialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How the runner reaches the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TransportKind {
    /// Real HTTP on loopback, through the wiremock shell.
    Http,
    /// Direct calls into the routers, no sockets.
    InProcess,
}

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct Options {
    /// The world seed (ids, timestamps, generated data).
    pub seed: u64,
    /// The seeded data set.
    pub data: SeedData,
    /// The transport.
    pub transport: TransportKind,
}

/// The invariants every scenario is checked against (determinism is checked across runs).
pub const INVARIANTS: [&str; 8] = [
    "steps",
    "convergence",
    "no-loss",
    "company-integrity",
    "idempotence",
    "master-rule",
    "atomic-live-sync",
    "live-round-trip",
];

/// One invariant's (or the steps') verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The invariant, as listed in [`INVARIANTS`].
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Why not, when it did not (empty when it held).
    pub detail: String,
    /// How long the check took (not serialized: reports stay byte-identical).
    #[serde(skip)]
    pub elapsed: Duration,
}

/// One step as it ran.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    /// The step's line in the scenario file.
    pub line: usize,
    /// The action's name, as written in the file.
    pub action: String,
    /// Whether the action and its expectations passed.
    pub ok: bool,
    /// What the action did, or why the step failed.
    pub detail: String,
}

/// A whole scenario run: its steps, its invariants and the end state.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRun {
    /// The scenario id.
    pub scenario: String,
    /// The transport it ran over.
    pub transport: TransportKind,
    /// The world seed.
    pub seed: u64,
    /// The steps up to the first that failed.
    pub steps: Vec<StepOutcome>,
    /// The "steps" outcome, then every invariant in [`INVARIANTS`] order.
    pub invariants: Vec<Outcome>,
    /// The end state, as snapshotted.
    pub end_state: Value,
    /// Wall time of the run (not serialized).
    #[serde(skip)]
    pub elapsed: Duration,
}

impl ScenarioRun {
    /// Whether the steps and every invariant passed.
    pub fn passed(&self) -> bool {
        self.invariants.iter().all(|o| o.passed)
    }
    /// The outcome named `name`, if it ran.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.invariants.iter().find(|o| o.name == name)
    }
}

/// Where the scenario is: the environments its steps act on, and what the checks need.
struct Ctx<'c> {
    client: Client<'c>,
    fno_env: Option<String>,
    lcs_env: Option<String>,
    dataverse: Option<String>,
    health_passed: Option<bool>,
    executions: Vec<Value>,
    /// Worlds whose rows must all survive (the start, and each fresh deployment).
    baselines: Vec<World>,
    /// (world before an initial sync, the maps it ran with their masters).
    master_checks: Vec<(World, Vec<(String, Side)>)>,
    bootstrapped: Vec<String>,
}

/// Runs `scenario` on a fresh world: each step and its expectations, then the invariants.
pub fn run(scenario: &Scenario, options: &Options) -> Result<ScenarioRun> {
    let started = Instant::now();
    let spec = WorldSpec {
        seed: options.seed,
        fno: scenario.start.fno,
        dataverse: scenario.start.dataverse,
        data: start_data(scenario, &options.data)?,
        clock_start_ms: 0,
    };
    let sim = Sim::new(spec).map_err(|e| anyhow!("building the starting world: {e}"))?;
    let http;
    let in_process;
    let transport: &dyn Transport = match options.transport {
        TransportKind::Http => {
            http = Http::https(sim)?;
            &http
        }
        TransportKind::InProcess => {
            in_process = InProcess { sim };
            &in_process
        }
    };
    let mut ctx = Ctx::at_start(Client::connect(transport)?)?;
    let steps = run_steps(&mut ctx, scenario);
    let end_state = ctx.client.end_state()?;
    let mut outcomes = vec![steps_outcome(scenario, &steps)];
    // A failed step stops the scenario: the invariants would judge a setup left half-done
    // and bury the one failure that matters under others it caused.
    if steps.iter().all(|s| s.ok) {
        outcomes.extend(check_invariants(&ctx)?);
    }
    outcomes.sort_by_key(|o| INVARIANTS.iter().position(|n| *n == o.name));
    Ok(ScenarioRun {
        scenario: scenario.id.clone(),
        transport: options.transport,
        seed: options.seed,
        steps,
        invariants: outcomes,
        end_state,
        elapsed: started.elapsed(),
    })
}

/// The data set a scenario starts from: the run's, with the scenario's own merged in.
pub fn start_data(scenario: &Scenario, data: &SeedData) -> Result<SeedData> {
    let mut data = data.clone();
    if let Some(path) = &scenario.start.data {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow!(
                "{}: the scenario's data set {}: {e}",
                scenario.path.display(),
                path.display()
            )
        })?;
        let own: SeedData =
            serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        data.merge(own);
    }
    Ok(data)
}

impl<'c> Ctx<'c> {
    /// The context before the first step: the environments the starting world has, and
    /// that world as the first baseline.
    fn at_start(client: Client<'c>) -> Result<Self> {
        let start = client.export()?;
        let fno_env = start.fno.keys().next().cloned();
        let lcs_env = fno_env.as_ref().and_then(|name| {
            start
                .lcs
                .environments
                .values()
                .find(|e| &e.fno_env == name)
                .map(|e| e.id.clone())
        });
        Ok(Ctx {
            client,
            fno_env,
            lcs_env,
            dataverse: start.dataverse.keys().next().cloned(),
            health_passed: None,
            executions: Vec::new(),
            baselines: vec![start],
            master_checks: Vec::new(),
            bootstrapped: Vec::new(),
        })
    }
}

/// Runs the first `count` steps of `scenario` (and their expectations) on `sim`, in
/// process: what `serve --through-step` serves afterwards. Stops at the first that fails.
pub fn run_first_steps(sim: &Sim, scenario: &Scenario, count: usize) -> Result<Vec<StepOutcome>> {
    let transport = InProcess { sim: sim.clone() };
    let mut ctx = Ctx::at_start(Client::connect(&transport)?)?;
    let mut first = scenario.clone();
    first.steps.truncate(count);
    Ok(run_steps(&mut ctx, &first))
}

/// Runs the steps in order, each followed by its expectations, up to the first that fails.
fn run_steps(ctx: &mut Ctx, scenario: &Scenario) -> Vec<StepOutcome> {
    let mut steps = Vec::new();
    for step in &scenario.steps {
        ctx.executions.clear();
        let result =
            execute(ctx, &step.action).and_then(|detail| check(ctx, &step.expect).map(|_| detail));
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(e) => (false, format!("{e:#}")),
        };
        steps.push(StepOutcome {
            line: step.line,
            action: step.action.name().into(),
            ok,
            detail,
        });
        if !ok {
            break;
        }
    }
    steps
}

/// The "steps" outcome: passed when every step did, else naming the first failure as
/// file:line, the way sqllogictest reports a record.
fn steps_outcome(scenario: &Scenario, steps: &[StepOutcome]) -> Outcome {
    let failed = steps.iter().find(|s| !s.ok);
    Outcome {
        name: "steps".into(),
        passed: failed.is_none(),
        detail: failed
            .map(|s| {
                format!(
                    "{}:{} {}: {}",
                    scenario.path.display(),
                    s.line,
                    s.action,
                    s.detail
                )
            })
            .unwrap_or_default(),
        elapsed: Duration::ZERO,
    }
}

/// Every cross-system invariant on the world the steps left, each timed.
fn check_invariants(ctx: &Ctx) -> Result<Vec<Outcome>> {
    let mut outcomes = Vec::new();
    let end = ctx.client.export()?;
    let mut check_one = |name: &str, f: &mut dyn FnMut() -> Result<()>| {
        let t = Instant::now();
        let r = f();
        outcomes.push(Outcome {
            name: name.into(),
            passed: r.is_ok(),
            detail: r.err().map(|e| format!("{e:#}")).unwrap_or_default(),
            elapsed: t.elapsed(),
        });
    };
    check_one("convergence", &mut || {
        invariants::convergence(&end).map_err(|e| anyhow!(e))
    });
    check_one("no-loss", &mut || {
        ctx.baselines
            .iter()
            .try_for_each(|b| invariants::no_loss(b, &end))
            .map_err(|e| anyhow!(e))
    });
    check_one("company-integrity", &mut || {
        invariants::company_integrity(&end).map_err(|e| anyhow!(e))
    });
    check_one("master-rule", &mut || {
        for (before, runs) in &ctx.master_checks {
            let env = ctx.fno_env.clone().unwrap_or_default();
            for (map, master) in runs {
                invariants::master_rule(before, &end, &env, map, *master)
                    .map_err(|e| anyhow!(e))?;
            }
        }
        Ok(())
    });
    check_one("idempotence", &mut || idempotence(ctx));
    check_one("atomic-live-sync", &mut || atomic_live_sync(ctx));
    check_one("live-round-trip", &mut || live_round_trip(ctx));
    Ok(outcomes)
}

fn fno_env(ctx: &Ctx) -> Result<String> {
    ctx.fno_env
        .clone()
        .ok_or_else(|| anyhow!("no F&O environment yet: deploy one first"))
}

fn dataverse(ctx: &Ctx) -> Result<String> {
    ctx.dataverse
        .clone()
        .ok_or_else(|| anyhow!("no Dataverse environment yet"))
}

fn lcs_env(ctx: &Ctx) -> Result<String> {
    ctx.lcs_env
        .clone()
        .ok_or_else(|| anyhow!("no LCS environment yet"))
}

fn execute(ctx: &mut Ctx, action: &Action) -> Result<String> {
    match action {
        Action::LcsDeploy {
            environment,
            demo_data,
        } => lcs_deploy(ctx, environment, demo_data),
        Action::LcsPowerPlatform {
            template,
            dataverse: which,
        } => lcs_power_platform(ctx, template, which),
        Action::LcsDualWriteSetup {} | Action::LcsDualWriteLink {} => lcs_dual_write(ctx, action),
        Action::BapCreateEnvironment {
            domain,
            display_name,
            dual_write_packages,
        } => bap_create_environment(ctx, domain, display_name, dual_write_packages),
        Action::DataverseCreateAppUsers {} => create_app_users_step(ctx),
        Action::FnoCreateCompany { company, name } => fno_create_company(ctx, company, name),
        Action::HealthCheck {} => health_check(ctx),
        Action::Link { legal_entities } => link(ctx, legal_entities),
        Action::AddLegalEntities {
            companies,
            skip_initial_writes,
        } => add_legal_entities(ctx, companies, skip_initial_writes),
        Action::Bootstrap { company } => bootstrap_step(ctx, company),
        Action::StopMaps { maps } => stop_maps(ctx, maps),
        Action::RunMaps {
            maps,
            initial_sync,
            master,
        } => run_maps_step(ctx, maps, initial_sync, master),
    }
}

/// `lcs.deploy`: Deploy an F&O environment from LCS and wait for it.
fn lcs_deploy(ctx: &mut Ctx, environment: &str, demo_data: &bool) -> Result<String> {
    let c = &ctx.client;
    let project = c.project();
    let started = c.lcs(
        "POST",
        &format!(
            "/environment/v1/deploy/project/{project}?environmentName={}&demoData={demo_data}",
            enc(environment)
        ),
    )?;
    let env_id = started["EnvironmentId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let activity = started["OperationActivityId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    c.lcs_wait(&env_id, &activity)?;
    ctx.fno_env = Some(environment.to_string());
    ctx.lcs_env = Some(env_id.clone());
    let world = ctx.client.export()?;
    ctx.baselines.push(world);
    Ok(format!("environment {environment} ({env_id}) deployed"))
}

/// `lcs.power-platform`: Set up the Power Platform integration with a new or the current Dataverse.
fn lcs_power_platform(ctx: &mut Ctx, template: &str, which: &str) -> Result<String> {
    let c = &ctx.client;
    let project = c.project();
    let env = lcs_env(ctx)?;
    let existing = match which {
        "new" => String::new(),
        "existing" => format!("&dataverseEnvironment={}", enc(&dataverse(ctx)?)),
        other => bail!("dataverse must be \"new\" or \"existing\", not {other:?}"),
    };
    let started = c.lcs("POST", &format!("/environment/v1/powerplatform/project/{project}/environment/{env}?template={}{existing}", enc(template)))?;
    c.lcs_wait(
        &env,
        started["OperationActivityId"].as_str().unwrap_or_default(),
    )?;
    let meta = c.lcs(
        "GET",
        &format!("/environmentinfo/v1/detail/project/{project}/?environmentId={env}"),
    )?;
    let org = meta["Data"][0]["PowerPlatformIntegration"]["EnvironmentName"]
        .as_str()
        .ok_or_else(|| anyhow!("no Power Platform environment in the metadata"))?;
    ctx.dataverse = Some(org.to_string());
    Ok(format!("linked to Dataverse {org}"))
}

/// `lcs.dual-write-setup and lcs.dual-write-link`: The dual-write application setup or link, from LCS.
fn lcs_dual_write(ctx: &mut Ctx, action: &Action) -> Result<String> {
    let c = &ctx.client;
    let project = c.project();
    let env = lcs_env(ctx)?;
    let verb = if matches!(action, Action::LcsDualWriteSetup {}) {
        "setup"
    } else {
        "link"
    };
    let started = c.lcs(
        "POST",
        &format!("/environment/v1/dualwrite/{verb}/project/{project}/environment/{env}"),
    )?;
    c.lcs_wait(
        &env,
        started["OperationActivityId"].as_str().unwrap_or_default(),
    )?;
    Ok(format!("dual-write {verb} completed"))
}

/// `bap.create-environment`: Create a Dataverse environment through the Power Platform admin API.
fn bap_create_environment(
    ctx: &mut Ctx,
    domain: &str,
    display_name: &str,
    dual_write_packages: &bool,
) -> Result<String> {
    let c = &ctx.client;
    let packages: Vec<Value> = if *dual_write_packages {
        vec![
            json!({"applicationUniqueName": "msdyn_DualWriteAppCoreAnchor"}),
            json!({"applicationUniqueName": "msdyn_Dynamics365FinanceExtendedAnchor"}),
        ]
    } else {
        Vec::new()
    };
    let body = json!({
        "location": "unitedstates",
        "properties": {
            "displayName": display_name, "environmentSku": "Sandbox", "databaseType": "CommonDataService",
            "linkedEnvironmentMetadata": {
                "domainName": domain, "baseLanguage": 1033, "currency": {"code": "USD"},
                "templates": ["D365_Sales"], "templateMetadata": {"PostProvisioningPackages": packages},
            },
        },
    });
    c.bap_create(&body)?;
    ctx.dataverse = Some(domain.to_string());
    Ok(format!("Dataverse {domain} created"))
}

/// `dataverse.create-app-users`: The dual-write application users in Dataverse.
fn create_app_users_step(ctx: &mut Ctx) -> Result<String> {
    let c = &ctx.client;
    let created = create_app_users(c, &dataverse(ctx)?)?;
    Ok(format!("{created} application users created"))
}

/// `fno.create-company`: Create a legal entity in F&O.
fn fno_create_company(ctx: &mut Ctx, company: &str, name: &str) -> Result<String> {
    let c = &ctx.client;
    let r = c.fno(
        "POST",
        &fno_env(ctx)?,
        "LegalEntities",
        Some(&json!({"LegalEntityId": company, "Name": name})),
    )?;
    if r.status != 201 {
        bail!("creating company {company}: HTTP {} {}", r.status, r.text());
    }
    Ok(format!("company {company} created"))
}

/// `dual-write.health-check`: Run the dual-write health check.
fn health_check(ctx: &mut Ctx) -> Result<String> {
    let c = &ctx.client;
    let r = c.dual_write(
        &fno_env(ctx)?,
        "DualWriteConnectionService",
        "getHealthCheck",
        json!({"dataverseEnvironment": dataverse(ctx)?}),
    )?;
    let passed = r["passed"].as_bool().unwrap_or(false);
    ctx.health_passed = Some(passed);
    let failed: Vec<String> = r["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["passed"] != json!(true))
        .map(|c| c["message"].as_str().unwrap_or("").to_string())
        .collect();
    Ok(if passed {
        "every check passed".into()
    } else {
        format!("failed: {}", failed.join("; "))
    })
}

/// `dual-write.link`: Link dual-write with these legal entities.
fn link(ctx: &mut Ctx, legal_entities: &LegalEntities) -> Result<String> {
    let c = &ctx.client;
    let env = fno_env(ctx)?;
    let les: Vec<String> = match legal_entities {
        LegalEntities::All(s) if s == "all" => c.dual_write(
            &env,
            "DualWriteLegalEntityService",
            "getLegalEntities",
            json!({}),
        )?["companies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        LegalEntities::All(other) => {
            bail!("legal_entities must be \"all\" or a list, not {other:?}")
        }
        LegalEntities::List(l) => l.clone(),
    };
    c.dual_write(
        &env,
        "DualWriteConnectionService",
        "link",
        json!({"dataverseEnvironment": dataverse(ctx)?, "legalEntities": les}),
    )?;
    Ok(format!("linked with {}", les.join(", ")))
}

/// `dual-write.add-legal-entities`: Add legal entities to the connection.
fn add_legal_entities(
    ctx: &mut Ctx,
    companies: &[String],
    skip_initial_writes: &bool,
) -> Result<String> {
    let c = &ctx.client;
    let r = c.dual_write(
        &fno_env(ctx)?,
        "DualWriteLegalEntityService",
        "addLegalEntities",
        json!({"legalEntities": companies, "skipInitialWrites": skip_initial_writes}),
    )?;
    ctx.executions = r["executions"].as_array().cloned().unwrap_or_default();
    Ok(format!(
        "{} added, {} initial writes",
        companies.join(", "),
        ctx.executions.len()
    ))
}

/// `dataverse.bootstrap`: Give company-less Dataverse rows a company (the bootstrap sample).
fn bootstrap_step(ctx: &mut Ctx, company: &str) -> Result<String> {
    let n = bootstrap(&ctx.client, &dataverse(ctx)?, company)?;
    ctx.bootstrapped.push(company.to_string());
    Ok(format!("{n} rows given company {company}"))
}

/// `dual-write.stop-maps`: Stop maps.
fn stop_maps(ctx: &mut Ctx, maps: &[String]) -> Result<String> {
    let c = &ctx.client;
    let env = fno_env(ctx)?;
    for m in maps {
        c.dual_write(&env, "DualWriteMapService", "stopMap", json!({"map": m}))?;
    }
    Ok(format!("stopped {}", maps.join(", ")))
}

/// `dual-write.run-maps`: Run maps with their related maps, upstream first.
fn run_maps_step(
    ctx: &mut Ctx,
    maps: &[String],
    initial_sync: &bool,
    master: &Master,
) -> Result<String> {
    let c = &ctx.client;
    let env = fno_env(ctx)?;
    let runs = run_maps(&ctx.client, &env, maps, *initial_sync, *master)?;
    let before = ctx.client.export()?;
    let r = c.dual_write(&env, "DualWriteMapService", "runMaps", json!({"maps": runs.iter().map(|(m, _)| json!({"map": m, "initialSync": initial_sync, "master": master.wire()})).collect::<Vec<_>>()}))?;
    ctx.executions = r["executions"].as_array().cloned().unwrap_or_default();
    if *initial_sync {
        let side = if *master == Master::Fno {
            Side::Fno
        } else {
            Side::Dataverse
        };
        ctx.master_checks.push((
            before,
            runs.iter().map(|(m, _)| (m.clone(), side)).collect(),
        ));
    }
    Ok(format!(
        "ran {}",
        runs.iter()
            .map(|(m, _)| m.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The maps to run: each requested map's related maps, upstream first, that are not
/// running yet.
fn run_maps(
    c: &Client,
    env: &str,
    maps: &[String],
    _initial_sync: bool,
    _master: Master,
) -> Result<Vec<(String, String)>> {
    let current = c.dual_write(env, "DualWriteMapService", "getMaps", json!({}))?;
    let status = |id: &str| {
        current
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["map"] == json!(id))
            .and_then(|m| m["status"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for m in maps {
        let related = c.dual_write(
            env,
            "DualWriteMapService",
            "getRelatedMaps",
            json!({"map": m}),
        )?;
        for r in related
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
        {
            let s = status(r);
            let wanted = r == m || s == "Not running";
            if wanted && !out.iter().any(|(x, _)| x == r) {
                out.push((r.to_string(), s));
            }
        }
    }
    Ok(out)
}

/// Prerequisite 4: the dual-write application users in Dataverse, bound to the root
/// business unit, created through the Web API unless they exist. Answers how many it made.
pub fn create_app_users(c: &Client, org: &str) -> Result<usize> {
    let root = c.dv_all(
        org,
        "businessunits?$select=businessunitid&$filter=_parentbusinessunitid_value eq null",
    )?;
    let root = root
        .first()
        .and_then(|r| r["businessunitid"].as_str())
        .ok_or_else(|| anyhow!("no root business unit"))?
        .to_string();
    let mut created = 0;
    for (app, name) in [
        (
            dwsim_model::entra::DUAL_WRITE_RUNTIME_APP,
            "Dual-write runtime",
        ),
        (dwsim_model::entra::DUAL_WRITE_APP, "Dual-write"),
    ] {
        let existing = c.dv_all(
            org,
            &format!("systemusers?$select=systemuserid&$filter=applicationid eq {app}"),
        )?;
        if !existing.is_empty() {
            continue;
        }
        let body = json!({"applicationid": app, "fullname": name, "businessunitid@odata.bind": format!("/businessunits({root})")});
        let r = c.dv("POST", org, "systemusers", Some(&body))?;
        if r.status != 204 {
            bail!(
                "creating application user {app}: HTTP {} {}",
                r.status,
                r.text()
            );
        }
        created += 1;
    }
    Ok(created)
}

/// The bootstrap sample's `-apply`: every company-striped row without a company gets
/// `company`, customer groups first so that lookups resolve. Answers how many changed.
pub fn bootstrap(c: &Client, org: &str, company: &str) -> Result<usize> {
    let mut changed = 0;
    // Every company-striped table of the catalogue, a partner's own included, each after
    // the tables its lookups point at (groups before the accounts in them), since a row
    // joining a company is dual-written with its lookups resolved in that company.
    let catalogue = dwsim_model::Catalogue::shared().map_err(|e| anyhow!("{e}"))?;
    let mut left: Vec<&dwsim_model::schema::DvTable> = catalogue
        .dv_tables
        .values()
        .filter(|t| t.company_lookup.as_deref() == Some("msdyn_company"))
        .collect();
    let mut striped: Vec<(&str, &str)> = Vec::new();
    while !left.is_empty() {
        let names: Vec<&str> = left.iter().map(|t| t.logical_name.as_str()).collect();
        let ready = left
            .iter()
            .position(|t| {
                t.columns.iter().filter(|c| c.kind.is_lookup()).all(|c| {
                    c.targets()
                        .iter()
                        .all(|x| *x == t.logical_name || !names.contains(x))
                })
            })
            .unwrap_or(0);
        let t = left.remove(ready);
        striped.push((t.entity_set.as_str(), t.primary_id.as_str()));
    }
    for (set, id) in striped {
        let rows = c.dv_all(
            org,
            &format!("{set}?$select={id}&$filter=_msdyn_company_value eq null"),
        )?;
        for row in rows {
            let rid = row[id].as_str().unwrap_or_default();
            let body = json!({"msdyn_company@odata.bind": format!("/cdm_companies(cdm_companycode='{company}')")});
            let r = c.dv("PATCH", org, &format!("{set}({rid})"), Some(&body))?;
            if r.status != 204 {
                bail!(
                    "bootstrapping {set}({rid}) with {company}: HTTP {} {}",
                    r.status,
                    r.json()["error"]["message"].as_str().unwrap_or(&r.text())
                );
            }
            changed += 1;
        }
    }
    Ok(changed)
}

/// Checks a step's expectations, each against what the servers answer now.
fn check(ctx: &Ctx, expect: &Expect) -> Result<()> {
    if let Some(want) = &expect.executions {
        for e in &ctx.executions {
            if e["status"].as_str() != Some(want) {
                bail!(
                    "expected initial sync {want}, {} ended {}: {}",
                    e["map"],
                    e["status"],
                    e["log"].as_str().unwrap_or("")
                );
            }
        }
    }
    if let Some(want) = &expect.lcs_state {
        check_lcs_state(ctx, want)?;
    }
    if expect.maps.is_some() || expect.all_maps.is_some() {
        check_maps(ctx, expect)?;
    }
    if let Some(want) = &expect.legal_entities {
        check_legal_entities(ctx, want)?;
    }
    if let Some(want) = expect.health_check {
        if ctx.health_passed != Some(want) {
            bail!(
                "expected the health check to {}, it {}",
                if want { "pass" } else { "fail" },
                if ctx.health_passed == Some(true) {
                    "passed"
                } else {
                    "failed or did not run"
                }
            );
        }
    }
    if let Some(want) = &expect.solutions {
        check_solutions(ctx, want)?;
    }
    if expect.counts.is_some() || expect.rows.is_some() {
        let world = ctx.client.export()?;
        if let Some(want) = &expect.counts {
            check_counts(&world, want)?;
        }
        for row in expect.rows.iter().flatten() {
            check_row(&world, row)?;
        }
    }
    for leg in expect.legs.iter().flatten() {
        check_leg(ctx, leg)?;
    }
    Ok(())
}

/// The rows of `product/table`, each with its company code (Dataverse: the code of the
/// company its company lookup points at; F&O: `dataAreaId`), read straight from the stores.
fn rows_of<'w>(world: &'w World, table: &str) -> Result<Vec<(String, &'w dwsim_model::Row)>> {
    let (product, name) = table.split_once('/').ok_or_else(|| {
        anyhow!("'{table}' is not product/table (dataverse/account, fno/CustomersV3)")
    })?;
    match product {
        "dataverse" => {
            let dv = world
                .dataverse
                .values()
                .next()
                .ok_or_else(|| anyhow!("no Dataverse environment"))?;
            let attr = world
                .catalogue
                .dv_tables
                .get(name)
                .ok_or_else(|| anyhow!("no Dataverse table '{name}'"))?
                .company_attribute();
            Ok(dv
                .store
                .rows(name)
                .map(|(_, r)| {
                    let code = attr
                        .as_ref()
                        .and_then(|a| r.get(a))
                        .and_then(Value::as_str)
                        .and_then(|id| dv.store.get("cdm_company", id))
                        .and_then(|c| c.get("cdm_companycode"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    (code, r)
                })
                .collect())
        }
        "fno" => {
            let fno = world
                .fno
                .values()
                .next()
                .ok_or_else(|| anyhow!("no F&O environment"))?;
            if !world.catalogue.fno_entities.contains_key(name) {
                bail!("no F&O entity '{name}'");
            }
            Ok(fno
                .store
                .rows(name)
                .map(|(_, r)| {
                    let code = r
                        .get("dataAreaId")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    (code, r)
                })
                .collect())
        }
        other => bail!("'{other}' is not a product: dataverse or fno"),
    }
}

fn check_counts(world: &World, want: &std::collections::BTreeMap<String, usize>) -> Result<()> {
    for (key, n) in want {
        let (table, company) = match key.split_once('@') {
            Some((t, c)) => (t, Some(c)),
            None => (key.as_str(), None),
        };
        let found = rows_of(world, table)?
            .iter()
            .filter(|(code, _)| company.is_none_or(|c| code.eq_ignore_ascii_case(c)))
            .count();
        if found != *n {
            bail!("expected {n} rows in {key}, found {found}");
        }
    }
    Ok(())
}

/// A TOML value against a stored JSON one: numbers by value, everything else exactly.
fn same(want: &toml::Value, got: Option<&Value>) -> bool {
    let got = got.unwrap_or(&Value::Null);
    match want {
        toml::Value::Integer(i) => got.as_f64() == Some(*i as f64),
        toml::Value::Float(f) => got.as_f64() == Some(*f),
        toml::Value::String(s) => got.as_str() == Some(s.as_str()),
        toml::Value::Boolean(b) => got.as_bool() == Some(*b),
        other => serde_json::to_value(other).ok().as_ref() == Some(got),
    }
}

fn check_row(world: &World, want: &crate::scenario::RowExpect) -> Result<()> {
    let rows = rows_of(world, &want.table)?;
    let matching: Vec<&(String, &dwsim_model::Row)> = rows
        .iter()
        .filter(|(code, r)| {
            want.filter.iter().all(|(k, v)| match (k.as_str(), v) {
                ("company", toml::Value::String(c)) if want.table.starts_with("dataverse/") => {
                    code.eq_ignore_ascii_case(c)
                }
                _ => same(v, r.get(k)),
            })
        })
        .collect();
    let [(_, row)] = matching.as_slice() else {
        bail!(
            "expected one row in {} where {:?}, found {}",
            want.table,
            want.filter,
            matching.len()
        );
    };
    for (k, v) in &want.values {
        if !same(v, row.get(k)) {
            bail!(
                "{} where {:?}: expected {k} = {v}, found {}",
                want.table,
                want.filter,
                row.get(k).unwrap_or(&Value::Null)
            );
        }
    }
    Ok(())
}

fn check_leg(ctx: &Ctx, want: &crate::scenario::LegExpect) -> Result<()> {
    use crate::scenario::LegWay;
    let direction = match want.direction {
        LegWay::ToDataverse => "FinanceAndOperations to Dataverse",
        LegWay::ToFno => "Dataverse to FinanceAndOperations",
    };
    let leg = ctx
        .executions
        .iter()
        .filter(|e| e["map"] == json!(want.map))
        .flat_map(|e| e["legs"].as_array().cloned().unwrap_or_default())
        .find(|l| {
            l["direction"] == json!(direction)
                && l["company"]
                    .as_str()
                    .is_some_and(|c| c.eq_ignore_ascii_case(&want.company))
        })
        .ok_or_else(|| {
            anyhow!(
                "expected a {direction} leg of {} for {}; the step ran none",
                want.map,
                want.company
            )
        })?;
    for (name, n) in [
        ("exported", want.exported),
        ("inserted", want.inserted),
        ("updated", want.updated),
        ("errors", want.errors),
    ] {
        if let Some(n) = n {
            if leg[name] != json!(n) {
                bail!(
                    "{} {direction} leg for {}: expected {name} {n}, found {}",
                    want.map,
                    want.company,
                    leg[name]
                );
            }
        }
    }
    Ok(())
}

/// The LCS deployment state, as the environment's detail page shows it.
fn check_lcs_state(ctx: &Ctx, want: &str) -> Result<()> {
    let c = &ctx.client;
    let meta = c.lcs(
        "GET",
        &format!(
            "/environmentinfo/v1/detail/project/{}/?environmentId={}",
            c.project(),
            lcs_env(ctx)?
        ),
    )?;
    let got = meta["Data"][0]["DeploymentStatusDisplay"]
        .as_str()
        .unwrap_or_default();
    if got != want {
        bail!("expected LCS state {want}, found {got}");
    }
    Ok(())
}

/// Each named map's state, and (with `all_maps`) that every published map is in one state.
fn check_maps(ctx: &Ctx, expect: &Expect) -> Result<()> {
    let c = &ctx.client;
    let maps = c.dual_write(&fno_env(ctx)?, "DualWriteMapService", "getMaps", json!({}))?;
    let list = maps.as_array().cloned().unwrap_or_default();
    if let Some(all) = &expect.all_maps {
        if list.is_empty() {
            bail!("expected every map {all}, but no maps are published");
        }
        for m in &list {
            if m["status"].as_str() != Some(all) {
                bail!(
                    "expected every map {all}, but {} is {}",
                    m["map"],
                    m["status"]
                );
            }
        }
    }
    for (id, want) in expect.maps.iter().flatten() {
        let got = list
            .iter()
            .find(|m| m["map"] == json!(id))
            .and_then(|m| m["status"].as_str())
            .unwrap_or("missing");
        if got != want {
            bail!("expected map {id} {want}, found {got}");
        }
    }
    Ok(())
}

/// The legal entities on the dual-write connection, in order.
fn check_legal_entities(ctx: &Ctx, want: &[String]) -> Result<()> {
    let c = &ctx.client;
    let conn = c.dual_write(
        &fno_env(ctx)?,
        "DualWriteConnectionService",
        "getConnection",
        json!({}),
    )?;
    let got: Vec<String> = conn["legalEntities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    if got != want {
        bail!("expected legal entities {want:?}, found {got:?}");
    }
    Ok(())
}

/// Every named solution is installed in the Dataverse environment.
fn check_solutions(ctx: &Ctx, want: &[String]) -> Result<()> {
    let c = &ctx.client;
    let got: Vec<String> = c
        .dv_all(&dataverse(ctx)?, "solutions?$select=uniquename")?
        .iter()
        .filter_map(|s| s["uniquename"].as_str().map(str::to_string))
        .collect();
    for s in want {
        if !got.contains(s) {
            bail!(
                "expected solution {s} in {}, found {got:?}",
                dataverse(ctx)?
            );
        }
    }
    Ok(())
}

/// Running initial sync again (stop, run) and bootstrap again change nothing.
fn idempotence(ctx: &Ctx) -> Result<()> {
    let c = &ctx.client;
    let Some(env) = ctx.fno_env.clone() else {
        return Ok(());
    };
    let org = dataverse(ctx)?;
    for company in &ctx.bootstrapped {
        let n = bootstrap(c, &org, company)?;
        if n != 0 {
            bail!("bootstrap with {company} again changed {n} rows");
        }
    }
    // A map that went live without initial sync (or whose rows came by live sync) may still
    // have work for its first initial sync, such as setting owners; the second must do none.
    let rerun_all = |strict: bool| -> Result<()> {
        let maps = c.dual_write(&env, "DualWriteMapService", "getMaps", json!({}))?;
        for m in maps
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["status"] == json!("Running"))
        {
            let id = m["map"].as_str().unwrap_or_default();
            c.dual_write(&env, "DualWriteMapService", "stopMap", json!({"map": id}))?;
            let r = c.dual_write(
                &env,
                "DualWriteMapService",
                "runMaps",
                json!({"maps": [{"map": id, "initialSync": true, "master": m["master"]}]}),
            )?;
            for e in r["executions"].as_array().into_iter().flatten() {
                for leg in e["legs"].as_array().into_iter().flatten() {
                    let changed = leg["inserted"] != json!(0) || leg["updated"] != json!(0);
                    if leg["errors"] != json!(0) || (strict && changed) {
                        bail!("initial sync of {id} again changed rows: {leg}");
                    }
                }
            }
        }
        Ok(())
    };
    rerun_all(false)?;
    let before = invariants::business_rows(&c.export()?);
    rerun_all(true)?;
    let after = invariants::business_rows(&c.export()?);
    let strip = |rows: &std::collections::BTreeMap<(String, String), dwsim_model::Row>| -> Vec<(String, String, Value)> {
        rows.iter()
            .map(|((t, id), r)| {
                let mut r = r.clone();
                for k in ["versionnumber", "modifiedon", "_modifiedby_value", "RecVersion", "ModifiedDateTime"] {
                    r.remove(k);
                }
                (t.clone(), id.clone(), r.into_value())
            })
            .collect()
    };
    if strip(&before) != strip(&after) {
        bail!("rows changed when initial sync ran again");
    }
    Ok(())
}

/// What the live checks write through: a running map, one of its rows synced in a
/// connected company (found by reading both stores, not through the runtime), and a plain
/// text field the map keeps equal both ways. Any running map serves, so a partner's
/// scenario that runs only its own maps is checked the same way.
struct LiveSample {
    env: String,
    org: String,
    map: String,
    /// The F&O entity set and the row's key segment, `CustomerGroups(dataAreaId='usmf',…)`.
    fno_path: String,
    entity_set: String,
    /// The F&O key fields and values, for making a new row like this one.
    fno_row: dwsim_model::Row,
    fno_keys: Vec<(String, usize)>,
    /// The map's key fields with their Dataverse columns.
    key_columns: Vec<(String, String)>,
    dv_set: String,
    dv_id: String,
    fno_field: String,
    dv_column: String,
    /// The longest value both sides hold.
    max_len: usize,
}

fn key_literal(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

/// The first running map, in catalogue order, with a synced row and a plain `=` text field.
fn live_sample(ctx: &Ctx) -> Result<Option<LiveSample>> {
    use dwsim_model::dualwrite::MapState;
    use dwsim_model::schema::{Direction, DvType, FnoType};
    let env = fno_env(ctx)?;
    let org = dataverse(ctx)?;
    let world = ctx.client.export()?;
    let Some(conn) = world.connections.get(&env) else {
        return Ok(None);
    };
    let (Some(fno), Some(dv)) = (world.fno.get(&env), world.dataverse.get(&org)) else {
        return Ok(None);
    };
    let catalogue = &world.catalogue;
    for map in &catalogue.maps {
        // A new legal entity is not in the connection until added to it: the company map
        // is no place for a create that must cross.
        if conn.maps.get(&map.id).map(|m| m.state) != Some(MapState::Running)
            || map.fno_entity == dwsim_model::fno::LEGAL_ENTITIES
        {
            continue;
        }
        let (Some(entity), Some(table)) = (
            catalogue.fno_entities.get(&map.fno_entity),
            catalogue.dv_tables.get(&map.dv_table),
        ) else {
            continue;
        };
        // The integration key's Dataverse columns: plain columns only.
        let key_columns: Option<Vec<(String, String)>> = map
            .key
            .iter()
            .map(|k| {
                let dv = map.field_for_fno(k)?.dv.clone()?;
                (!dv.contains('.')).then(|| (k.clone(), dv))
            })
            .collect();
        let Some(key_columns) = key_columns else {
            continue;
        };
        let field = map.fields.iter().find_map(|f| {
            let (fo, dvc) = (f.fno.as_ref()?, f.dv.as_ref()?);
            let fno_field = entity.field(fo)?;
            let column = table.column(dvc)?;
            let plain = f.dir == Direction::Both
                && f.value_map.is_empty()
                && !dvc.contains('.')
                && !map.key.contains(fo)
                && fno_field.kind == FnoType::String
                && matches!(column.kind, DvType::String | DvType::Memo)
                && !column.read_only;
            let max = fno_field
                .max_length
                .unwrap_or(usize::MAX)
                .min(column.max_length.unwrap_or(usize::MAX));
            (plain && max >= 8).then(|| (fo.clone(), dvc.clone(), max))
        });
        let Some((fno_field, dv_column, max_len)) = field else {
            continue;
        };
        let company_attr = table.company_attribute();
        for (_, row) in fno.store.rows(&map.fno_entity) {
            let area = row
                .get("dataAreaId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if entity.company_specific && !conn.is_connected(area) {
                continue;
            }
            let company_id = dv
                .store
                .rows("cdm_company")
                .find(|(_, r)| {
                    r.get("cdm_companycode")
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.eq_ignore_ascii_case(area))
                })
                .map(|(id, _)| id.to_string());
            let counterpart = dv.store.rows(&map.dv_table).find(|(_, d)| {
                let same_key = key_columns.iter().all(|(fo, dvc)| {
                    let (a, b) = (row.get(fo), d.get(dvc));
                    a.is_some() && !a.is_some_and(Value::is_null) && a == b
                });
                let same_company = match (&company_attr, entity.company_specific) {
                    (Some(attr), true) => {
                        d.get(attr).and_then(Value::as_str) == company_id.as_deref()
                    }
                    _ => true,
                };
                same_key && same_company
            });
            let Some((dv_id, _)) = counterpart else {
                continue;
            };
            let keys: Vec<String> = entity
                .keys
                .iter()
                .map(|k| format!("{k}={}", key_literal(row.get(k).unwrap_or(&Value::Null))))
                .collect();
            let fno_keys = map
                .key
                .iter()
                .filter_map(|k| {
                    let f = entity.field(k)?;
                    (f.kind == FnoType::String).then(|| (k.clone(), f.max_length.unwrap_or(20)))
                })
                .collect();
            return Ok(Some(LiveSample {
                env: env.clone(),
                org: org.clone(),
                map: map.id.clone(),
                fno_path: format!("{}({})", entity.entity_set, keys.join(",")),
                entity_set: entity.entity_set.clone(),
                fno_row: row.clone(),
                fno_keys,
                key_columns: key_columns.clone(),
                dv_set: table.entity_set.clone(),
                dv_id: dv_id.to_string(),
                fno_field,
                dv_column,
                max_len,
            }));
        }
    }
    Ok(None)
}

impl LiveSample {
    fn value(&self, text: &str) -> String {
        text.chars().take(self.max_len).collect()
    }

    fn fno_value(&self, c: &Client) -> Result<Value> {
        let r = c.fno("GET", &self.env, &self.fno_path, None)?;
        if r.status != 200 {
            bail!(
                "reading F&O {}: HTTP {} {}",
                self.fno_path,
                r.status,
                r.text()
            );
        }
        Ok(r.json()[&self.fno_field].clone())
    }

    fn dv_value(&self, c: &Client) -> Result<Value> {
        let path = format!("{}({})?$select={}", self.dv_set, self.dv_id, self.dv_column);
        let r = c.dv("GET", &self.org, &path, None)?;
        if r.status != 200 {
            bail!("reading Dataverse {path}: HTTP {} {}", r.status, r.text());
        }
        Ok(r.json()[&self.dv_column].clone())
    }

    fn patch_fno(&self, c: &Client, value: &str) -> Result<crate::transport::Reply> {
        c.fno(
            "PATCH",
            &self.env,
            &self.fno_path,
            Some(&json!({ self.fno_field.clone(): value })),
        )
    }

    fn patch_dv(&self, c: &Client, value: &str) -> Result<crate::transport::Reply> {
        c.dv(
            "PATCH",
            &self.org,
            &format!("{}({})", self.dv_set, self.dv_id),
            Some(&json!({ self.dv_column.clone(): value })),
        )
    }

    fn faults(&self, c: &Client, plan: Value) -> Result<()> {
        let r = c.transport.send(
            "PUT",
            &format!("{}/_dwsim/faults", c.endpoints.lcs),
            &[("Content-Type", "application/json")],
            plan.to_string().as_bytes(),
        )?;
        if r.status != 200 {
            bail!("setting the fault plan: HTTP {} {}", r.status, r.text());
        }
        Ok(())
    }
}

/// A write whose other side fails is rolled back on both sides: with the counterpart's
/// write made to fail (a plug-in on Dataverse, an Infolog error in F&O), an update of a
/// synced row answers an error and leaves the field as it was on both sides.
fn atomic_live_sync(ctx: &Ctx) -> Result<()> {
    let c = &ctx.client;
    let Some(s) = live_sample(ctx)? else {
        return Ok(());
    };
    let (fno_before, dv_before) = (s.fno_value(c)?, s.dv_value(c)?);
    let steps = [
        (
            json!({"faults": [{"side": "Dataverse", "table": s.dv_set, "count": 1, "kind": "pluginFailure"}]}),
            true,
        ),
        (
            json!({"faults": [{"side": "FinanceAndOperations", "table": s.entity_set, "count": 1, "kind": "infologWriteFailure"}]}),
            false,
        ),
    ];
    for (plan, from_fno) in steps {
        s.faults(c, plan)?;
        let value = s.value("dwsim atomic check");
        let r = if from_fno {
            s.patch_fno(c, &value)?
        } else {
            s.patch_dv(c, &value)?
        };
        s.faults(c, json!({"faults": []}))?;
        let side = if from_fno { "F&O" } else { "Dataverse" };
        if r.status < 400 {
            bail!(
                "map {}: a {side} update whose counterpart failed answered HTTP {}",
                s.map,
                r.status
            );
        }
        let (fno_now, dv_now) = (s.fno_value(c)?, s.dv_value(c)?);
        if fno_now != fno_before || dv_now != dv_before {
            bail!(
                "map {}: a failed {side} update left F&O {} = {fno_now} (was {fno_before}) and Dataverse {} = {dv_now} (was {dv_before})",
                s.map,
                s.fno_field,
                s.dv_column
            );
        }
    }
    Ok(())
}

/// A create and an update on each side show up on the other: the synced row's text field
/// is updated from F&O, then from Dataverse; a copy of the F&O row under a new key reaches
/// Dataverse, and its delete removes the counterpart. The row keeps its value at the end.
fn live_round_trip(ctx: &Ctx) -> Result<()> {
    let c = &ctx.client;
    let Some(s) = live_sample(ctx)? else {
        return Ok(());
    };
    let original = s.fno_value(c)?;
    for (from_fno, text) in [(true, "dwsim round trip F"), (false, "dwsim round trip D")] {
        let value = s.value(text);
        let r = if from_fno {
            s.patch_fno(c, &value)?
        } else {
            s.patch_dv(c, &value)?
        };
        if r.status != 204 {
            bail!(
                "map {}: updating {}: HTTP {} {}",
                s.map,
                if from_fno { &s.fno_path } else { &s.dv_set },
                r.status,
                r.text()
            );
        }
        let other = if from_fno {
            s.dv_value(c)?
        } else {
            s.fno_value(c)?
        };
        if other != json!(value) {
            bail!(
                "map {}: the {} update of {} did not reach the other side (it holds {other})",
                s.map,
                if from_fno { "F&O" } else { "Dataverse" },
                s.fno_path
            );
        }
    }
    if let Some(v) = original.as_str() {
        s.patch_fno(c, v)?;
    }
    // A new row like the synced one, under a new key.
    if s.fno_keys.is_empty() {
        return Ok(());
    }
    let mut row = s.fno_row.clone();
    for k in ["RecId", "RecVersion", "ModifiedDateTime"] {
        row.remove(k);
    }
    let mut new_keys = Vec::new();
    for (k, max) in &s.fno_keys {
        let v: String = "DWSIM-RT".chars().take(*max).collect();
        row.insert(k.as_str().into(), json!(v));
        new_keys.push((k.clone(), v));
    }
    let created = c.fno("POST", &s.env, &s.entity_set, Some(&row.to_value()))?;
    if created.status != 201 {
        bail!(
            "map {}: creating a copy of {} in F&O: HTTP {} {}",
            s.map,
            s.fno_path,
            created.status,
            created.text()
        );
    }
    let filter: Vec<String> = new_keys
        .iter()
        .filter_map(|(k, v)| {
            let (_, dv) = s.key_columns.iter().find(|(fo, _)| fo == k)?;
            Some(format!("{dv} eq {}", key_literal(&json!(v))))
        })
        .collect();
    let query = format!("{}?$filter={}", s.dv_set, enc(&filter.join(" and ")));
    if c.dv_all(&s.org, &query)?.is_empty() {
        bail!(
            "map {}: the F&O create of a copy of {} did not reach Dataverse",
            s.map,
            s.fno_path
        );
    }
    let entity_keys: Vec<String> = s
        .fno_path
        .split_once('(')
        .map(|(_, k)| k.trim_end_matches(')'))
        .unwrap_or_default()
        .split(',')
        .map(|part| {
            let name = part.split('=').next().unwrap_or_default();
            match new_keys.iter().find(|(k, _)| k == name) {
                Some((k, v)) => format!("{k}={}", key_literal(&json!(v))),
                None => part.to_string(),
            }
        })
        .collect();
    let copy = format!("{}({})", s.entity_set, entity_keys.join(","));
    let deleted = c.fno("DELETE", &s.env, &copy, None)?;
    if deleted.status != 204 {
        bail!(
            "map {}: deleting the copy {copy}: HTTP {} {}",
            s.map,
            deleted.status,
            deleted.text()
        );
    }
    if !c.dv_all(&s.org, &query)?.is_empty() {
        bail!(
            "map {}: the F&O delete of {copy} did not reach Dataverse",
            s.map
        );
    }
    Ok(())
}
