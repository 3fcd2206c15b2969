//! Scenario files: `scenarios/<id>.toml`, one per setup scenario of the guidance. A
//! scenario names its starting world and lists steps, each one user action, with optional
//! expectations. Unknown fields and actions are errors that name the file and line.

use anyhow::{anyhow, Context, Result};
use dwsim_model::Start;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The starting world: each product new (empty), or existing with data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartSpec {
    /// F&O's start.
    pub fno: Start,
    /// Dataverse's start.
    pub dataverse: Start,
    /// A data set of the scenario's own (`demo-data.json` format), merged into the run's
    /// data set; the path is relative to the scenario file and resolved when it is read.
    #[serde(default)]
    pub data: Option<PathBuf>,
}

/// Which side wins a conflict in initial sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Master {
    /// Dataverse wins.
    #[default]
    #[serde(rename = "dataverse")]
    Dataverse,
    /// F&O wins.
    #[serde(rename = "fno")]
    Fno,
}

impl Master {
    /// The value the dual-write service takes (`Dataverse`, `FinanceAndOperations`).
    pub fn wire(self) -> &'static str {
        match self {
            Master::Dataverse => "Dataverse",
            Master::Fno => "FinanceAndOperations",
        }
    }
}

/// The legal entities a link starts with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum LegalEntities {
    /// `"all"`: every legal entity of the F&O environment.
    All(String),
    /// The legal entities named.
    List(Vec<String>),
}

/// One user action of the guidance.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", deny_unknown_fields)]
pub enum Action {
    /// Deploy an F&O environment from LCS, empty or with demo data.
    #[serde(rename = "lcs.deploy")]
    LcsDeploy {
        /// The environment's name.
        environment: String,
        /// Deploy with the demo data companies.
        #[serde(default)]
        demo_data: bool,
    },
    /// Power Platform integration with a new Dataverse, or the current existing one.
    #[serde(rename = "lcs.power-platform")]
    LcsPowerPlatform {
        /// The Dataverse template (for example `Dynamics365Standard`).
        template: String,
        /// `new` or `existing`.
        dataverse: String,
    },
    /// Run the dual-write setup from LCS (the Dataverse solutions).
    #[serde(rename = "lcs.dual-write-setup")]
    LcsDualWriteSetup {},
    /// Open the link to dual-write from LCS (the connection).
    #[serde(rename = "lcs.dual-write-link")]
    LcsDualWriteLink {},
    /// Create a Dataverse environment through the Power Platform admin API.
    #[serde(rename = "bap.create-environment")]
    BapCreateEnvironment {
        /// The environment's domain (its host name).
        domain: String,
        /// The environment's display name.
        display_name: String,
        /// Install the dual-write packages with it.
        #[serde(default)]
        dual_write_packages: bool,
    },
    /// Prerequisite: the dual-write application users in Dataverse.
    #[serde(rename = "dataverse.create-app-users")]
    DataverseCreateAppUsers {},
    #[serde(rename = "fno.create-company")]
    /// Create a legal entity in F&O.
    FnoCreateCompany {
        /// The company code.
        company: String,
        /// The company's name.
        name: String,
    },
    /// Run the dual-write health check.
    #[serde(rename = "dual-write.health-check")]
    HealthCheck {},
    #[serde(rename = "dual-write.link")]
    /// Link F&O and Dataverse in the dual-write workspace.
    Link {
        /// The legal entities the connection starts with.
        legal_entities: LegalEntities,
    },
    /// Add legal entities to the connection.
    #[serde(rename = "dual-write.add-legal-entities")]
    AddLegalEntities {
        /// The companies to add.
        companies: Vec<String>,
        /// Add them without initial writes.
        #[serde(default)]
        skip_initial_writes: bool,
    },
    /// Give company-less Dataverse rows a company code (the bootstrap sample's `-apply`).
    #[serde(rename = "dataverse.bootstrap")]
    Bootstrap {
        /// The company code the rows get.
        company: String,
    },
    #[serde(rename = "dual-write.stop-maps")]
    /// Stop maps.
    StopMaps {
        /// The maps to stop.
        maps: Vec<String>,
    },
    /// Run maps (with their related maps, upstream first).
    #[serde(rename = "dual-write.run-maps")]
    RunMaps {
        /// The maps to run.
        maps: Vec<String>,
        /// Whether to run initial sync first.
        initial_sync: bool,
        /// The side that wins conflicts.
        #[serde(default)]
        master: Master,
    },
}

impl Action {
    /// The action's name, as written in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            Action::LcsDeploy { .. } => "lcs.deploy",
            Action::LcsPowerPlatform { .. } => "lcs.power-platform",
            Action::LcsDualWriteSetup {} => "lcs.dual-write-setup",
            Action::LcsDualWriteLink {} => "lcs.dual-write-link",
            Action::BapCreateEnvironment { .. } => "bap.create-environment",
            Action::DataverseCreateAppUsers {} => "dataverse.create-app-users",
            Action::FnoCreateCompany { .. } => "fno.create-company",
            Action::HealthCheck {} => "dual-write.health-check",
            Action::Link { .. } => "dual-write.link",
            Action::AddLegalEntities { .. } => "dual-write.add-legal-entities",
            Action::Bootstrap { .. } => "dataverse.bootstrap",
            Action::StopMaps { .. } => "dual-write.stop-maps",
            Action::RunMaps { .. } => "dual-write.run-maps",
        }
    }
}

/// What must hold after a step, checked through the public HTTP surface.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// LCS deployment state of the scenario's F&O environment.
    pub lcs_state: Option<String>,
    /// Map id → status, as the dual-write workspace shows it.
    pub maps: Option<BTreeMap<String, String>>,
    /// Every published map has this status.
    pub all_maps: Option<String>,
    /// Legal entities in the connection, in order.
    pub legal_entities: Option<Vec<String>>,
    /// Whether every health check passes.
    pub health_check: Option<bool>,
    /// Solutions that must be installed in the current Dataverse.
    pub solutions: Option<Vec<String>>,
    /// Status of every initial-sync execution the step produced.
    pub executions: Option<String>,
    /// Row counts by `product/table` or `product/table@COMPANY`
    /// (`"dataverse/account@USMF" = 4`, `"fno/CustomersV3@usmf" = 6`), read from the stores.
    pub counts: Option<BTreeMap<String, usize>>,
    /// Rows that must exist, found by column values, with the values they must hold.
    pub rows: Option<Vec<RowExpect>>,
    /// Legs the step's initial syncs must have run, with their counts.
    pub legs: Option<Vec<LegExpect>>,
}

/// A row a step must leave: `{ in = "dataverse/account", where = { accountnumber =
/// "US-001", company = "USMF" }, values = { name = "Contoso Retail San Diego" } }`. In
/// `where`, `company` names a Dataverse row's company by code; F&O rows use `dataAreaId`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowExpect {
    /// `dataverse/<table>` or `fno/<entity set>`.
    #[serde(rename = "in")]
    pub table: String,
    /// Column values that pick the row (exactly one must match).
    #[serde(rename = "where")]
    pub filter: BTreeMap<String, toml::Value>,
    /// Column values it must hold.
    #[serde(default)]
    pub values: BTreeMap<String, toml::Value>,
}

/// A leg a step's initial sync must have run: `{ map = "customersv3-accounts", direction
/// = "to-dataverse", company = "USMF", inserted = 4 }`; counts left out are not checked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegExpect {
    /// The map id.
    pub map: String,
    /// `to-dataverse` or `to-fno`.
    pub direction: LegWay,
    /// The company code, or `global`.
    pub company: String,
    /// Rows the source exported.
    pub exported: Option<usize>,
    /// Counterparts created.
    pub inserted: Option<usize>,
    /// Counterparts changed.
    pub updated: Option<usize>,
    /// Rows that failed.
    pub errors: Option<usize>,
}

/// Which way a leg went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegWay {
    /// F&O rows to Dataverse.
    ToDataverse,
    /// Dataverse rows to F&O.
    ToFno,
}

/// One step: an action and what must hold after it.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the user does.
    pub action: Action,
    /// What must hold after it.
    pub expect: Expect,
    /// Line of the step's `[[step]]` header, for messages.
    pub line: usize,
}

/// A scenario file, read.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The id (the file name without `.toml`).
    pub id: String,
    /// A one-line title.
    pub title: String,
    /// The guidance section it follows.
    pub guidance: String,
    /// The starting world.
    pub start: StartSpec,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The file it was read from (for file:line in failures).
    pub path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    id: String,
    title: String,
    guidance: String,
    start: StartSpec,
    #[serde(default)]
    step: Vec<toml::Spanned<toml::Table>>,
}

impl Scenario {
    /// Parses a scenario from `text`; errors name `path` and the line.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario> {
        let raw: Raw = toml::from_str(text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        // A step's line is where the parser's span of its table starts: its `[[step]]`
        // header, however the file is laid out.
        let line_of = |offset: usize| text.get(..offset).unwrap_or(text).matches('\n').count() + 1;
        let mut steps = Vec::new();
        for (i, spanned) in raw.step.into_iter().enumerate() {
            let line = line_of(spanned.span().start);
            let mut table = spanned.into_inner();
            let at = || format!("{}:{line}: step {}", path.display(), i + 1);
            let expect = match table.remove("expect") {
                Some(v) => v
                    .try_into::<Expect>()
                    .map_err(|e| anyhow!("{}: expect: {e}", at()))?,
                None => Expect::default(),
            };
            let action: Action = toml::Value::Table(table)
                .try_into()
                .map_err(|e| anyhow!("{}: {e}", at()))?;
            steps.push(Step {
                action,
                expect,
                line,
            });
        }
        let mut start = raw.start;
        if let Some(data) = &start.data {
            start.data = Some(path.parent().unwrap_or(Path::new(".")).join(data));
        }
        Ok(Scenario {
            id: raw.id,
            title: raw.title,
            guidance: raw.guidance,
            start,
            steps,
            path: path.to_path_buf(),
        })
    }

    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Scenario::parse(path, &text)
    }
}

/// The six scenario ids, in the guidance's order.
pub const SCENARIO_IDS: [&str; 6] = [
    "new-new",
    "new-existing",
    "new-demo-new",
    "new-demo-existing",
    "existing-new",
    "existing-existing",
];

/// Loads every `*.toml` of `dir`, the guidance's six first in its order.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort_by_key(|p| {
        let stem = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        (
            SCENARIO_IDS
                .iter()
                .position(|id| *id == stem)
                .unwrap_or(usize::MAX),
            stem,
        )
    });
    paths.iter().map(|p| Scenario::load(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_action_and_field_name_file_and_line() {
        let text = "id = \"x\"\ntitle = \"t\"\nguidance = \"g\"\n[start]\nfno = \"new\"\ndataverse = \"new\"\n\n[[step]]\naction = \"lcs.deploy\"\nenvironment = \"a\"\n\n[[step]]\naction = \"lcs.teleport\"\n";
        let err = Scenario::parse(Path::new("s.toml"), text)
            .expect_err("unknown action")
            .to_string();
        assert!(err.starts_with("s.toml:12: step 2"), "{err}");
        let text = text.replace(
            "\"lcs.teleport\"",
            "\"lcs.deploy\"\nenvironment = \"b\"\ncolour = \"red\"",
        );
        let err = Scenario::parse(Path::new("s.toml"), &text)
            .expect_err("unknown field")
            .to_string();
        assert!(err.contains("s.toml:12") && err.contains("colour"), "{err}");
    }
}
