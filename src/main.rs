//! The `dwsim` command: `run` the setup scenarios, `serve` the simulated products, `bench`,
//! `replay` a model-based test's failure bundle.

mod load;
mod ready;
mod scale;

/// Counts live heap bytes for `bench --scale` (a relaxed add per allocation).
#[global_allocator]
static ALLOCATOR: scale::Counting = scale::Counting;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use dwsim::report::{self, Row};
use dwsim_harness::runner::{self, Options, TransportKind};
use dwsim_harness::scenario::Scenario;
use dwsim_http::{Authority, Options as ServeOptions, Servers};
use dwsim_model::{Catalogue, WorldSpec};
use dwsim_protocol::Server;
use dwsim_protocol::Sim;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "dwsim",
    version,
    about = "Dynamics 365 dual-write simulator: LCS, F&O, Dataverse and Entra on localhost",
    after_help = "Exit codes: 0 every scenario and check passed; 1 a scenario or check failed; 2 a usage or setup error (or a report that could not be written after a passing run)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// A partner catalogue folder: Dataverse tables, F&O entities, table maps, solutions
    /// and a data set in the built-in files' formats, merged into the built-in ones
    /// (docs/partners.md).
    #[arg(long, global = true, value_name = "DIR")]
    catalogue: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transports {
    /// Real HTTP, then in-process, and compare the two end states.
    Both,
    Http,
    InProcess,
}

/// How `dwsim run` reports on stdout.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A line per scenario as it finishes, then a summary.
    Human,
    /// The JSON report, once every scenario has run.
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReplayTransport {
    Http,
    InProcess,
}

#[derive(Subcommand)]
enum Command {
    /// Run the setup scenarios on embedded servers and check every invariant.
    Run {
        /// Only this scenario (repeatable).
        #[arg(long = "scenario")]
        scenarios: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = Transports::Both)]
        transport: Transports,
        /// Folder of scenario files (default ./scenarios, else the built-in ones).
        #[arg(long)]
        scenarios_dir: Option<PathBuf>,
        /// Also write the JSON report to this file (`-`: stdout).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write a JUnit XML report to this file (`-`: stdout).
        #[arg(long)]
        junit: Option<PathBuf>,
        /// What stdout shows.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Print only failures and the summary.
        #[arg(short, long)]
        quiet: bool,
        /// Compare each scenario's steps and end state with DIR/<id>.json, and fail the
        /// scenario on a difference (the new state goes to DIR/<id>.json.new); a missing
        /// file is written. For CI outside cargo; snapshots/ holds the built-in ones.
        #[arg(long, value_name = "DIR")]
        snapshots: Option<PathBuf>,
        /// Compare each scenario with its committed insta snapshot in snapshots/ (as
        /// `cargo test --test scenarios` does), and fail it on a difference or a missing
        /// snapshot: for CI outside cargo.
        #[arg(long)]
        check_snapshots: bool,
    },
    /// Serve the four products with a scenario's starting world until interrupted.
    Serve {
        #[arg(long, default_value = "existing-existing")]
        scenario: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Entra on this port, LCS on the next, then one port per F&O or Dataverse
        /// environment in the order they come into being.
        #[arg(long)]
        port_base: Option<u16>,
        #[arg(long)]
        scenarios_dir: Option<PathBuf>,
        /// Serve plain HTTP instead of HTTPS (Microsoft's client libraries refuse it).
        #[arg(long)]
        plain_http: bool,
        /// Keep the local CA in this folder and reuse it on later runs, so clients trust it
        /// once (default: a new CA per run, written to a temporary folder).
        #[arg(long, conflicts_with = "plain_http")]
        ca_dir: Option<PathBuf>,
        /// Where the virtual clock starts: `now` (the wall clock, so tokens and timestamps
        /// look current to your own code), `epoch` (2026-01-01T00:00:00Z, as scenario runs:
        /// the same seed then gives the same bytes) or a time such as 2026-06-01T09:00:00Z.
        #[arg(long, default_value = "now")]
        start_time: String,
        /// Close a connection idle (or sending its headers) this many seconds.
        #[arg(long, default_value_t = 30)]
        idle_timeout: u64,
        /// Refuse request bodies over this many MiB with 413.
        #[arg(long, default_value_t = 32)]
        max_body_mb: usize,
        /// Serve the world after the scenario's first N steps (their expectations checked),
        /// e.g. a linked world with running maps, instead of its starting world.
        #[arg(long, value_name = "N")]
        through_step: Option<usize>,
        /// The key the admin verbs under /_dwsim/ require as `Authorization: Bearer <key>`
        /// (default: a new random key, printed at start).
        #[arg(long, conflicts_with = "no_admin_auth")]
        admin_key: Option<String>,
        /// Leave the admin verbs open to any local caller (the Host and cross-site checks
        /// stay).
        #[arg(long)]
        no_admin_auth: bool,
    },
    /// Re-run a failed model-based test case from its bundle and print the transcript;
    /// exits 1 if the servers still diverge from the reference model.
    Replay {
        bundle: PathBuf,
        /// Override the bundle's transport.
        #[arg(long, value_enum)]
        transport: Option<ReplayTransport>,
    },
    /// Time the six scenarios over HTTP and in-process.
    Bench {
        #[arg(long, default_value_t = 5)]
        iterations: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Instead of the scenarios, soak a served world with this many requests over HTTPS
        /// (GET by key and create) and print throughput, latency and memory.
        #[arg(long)]
        load: Option<usize>,
        /// Client threads for --load, each with its own connection.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// For --load: one create in every N requests, the rest GET by key (0: no creates).
        #[arg(long, default_value_t = 4)]
        write_every: usize,
        /// Instead of the scenarios, measure cost against data size: comma-separated F&O
        /// customer counts in one legal entity (import, initial sync, GET, filter, create,
        /// heap), e.g. 1000,10000,100000,500000,1000000.
        #[arg(long, value_delimiter = ',')]
        scale: Vec<usize>,
        /// Instead of the scenarios, start `dwsim serve` this many times (plain HTTP and
        /// HTTPS) and time process start to the first answer from Entra.
        #[arg(long)]
        ready: Option<usize>,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Some(dir) = &cli.catalogue {
        let installed =
            dwsim_model::Catalogue::with_partner_dir(dir).and_then(dwsim_model::Catalogue::install);
        if let Err(e) = installed {
            eprintln!("dwsim: --catalogue {}: {}", dir.display(), e.message);
            std::process::exit(2);
        }
    }
    let result = match cli.command {
        Command::Run {
            scenarios,
            seed,
            transport,
            scenarios_dir,
            json,
            junit,
            format,
            quiet,
            snapshots,
            check_snapshots,
        } => run(RunArgs {
            only: scenarios,
            seed,
            transport,
            dir: scenarios_dir,
            json,
            junit,
            format,
            quiet,
            snapshots,
            check_snapshots,
        }),
        Command::Serve {
            scenario,
            seed,
            port_base,
            scenarios_dir,
            plain_http,
            ca_dir,
            start_time,
            idle_timeout,
            max_body_mb,
            admin_key,
            no_admin_auth,
            through_step,
        } => serve(ServeArgs {
            id: scenario,
            through_step,
            seed,
            port_base,
            dir: scenarios_dir,
            plain_http,
            ca_dir,
            start_time,
            admin_key: if no_admin_auth {
                None
            } else {
                Some(admin_key.unwrap_or_else(random_key))
            },
            limits: dwsim_http::Limits {
                header_timeout: std::time::Duration::from_secs(idle_timeout.max(1)),
                max_body_bytes: max_body_mb.saturating_mul(1024 * 1024),
                ..Default::default()
            },
        }),
        Command::Bench { scale, .. } if !scale.is_empty() => scale::run(&scale),
        Command::Bench {
            ready: Some(times), ..
        } => ready::run(times),
        Command::Bench {
            load: Some(requests),
            clients,
            write_every,
            ..
        } => load::run(requests, clients, write_every),
        Command::Bench {
            iterations, seed, ..
        } => bench(iterations, seed),
        Command::Replay { bundle, transport } => dwsim_harness::replay::run(
            &bundle,
            transport.map(|t| match t {
                ReplayTransport::Http => dwsim_harness::model_based::Carrier::Http,
                ReplayTransport::InProcess => dwsim_harness::model_based::Carrier::InProcess,
            }),
        ),
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("dwsim: {e:#}");
            std::process::exit(2);
        }
    }
}

/// What `dwsim run` was asked for.
struct RunArgs {
    only: Vec<String>,
    seed: u64,
    transport: Transports,
    dir: Option<PathBuf>,
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    format: Format,
    quiet: bool,
    snapshots: Option<PathBuf>,
    check_snapshots: bool,
}

/// The scenarios of `dir` (or the built-in ones), only those named in `only` if any; an
/// unknown name is a usage error that lists the known ones.
fn select_scenarios(dir: Option<&Path>, only: &[String]) -> Result<Vec<Scenario>> {
    let mut scenarios = dwsim_harness::load_scenarios(dir)?;
    for id in only {
        if !scenarios.iter().any(|s| &s.id == id) {
            bail!(
                "no scenario {id}; known: {}",
                scenarios
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if !only.is_empty() {
        scenarios.retain(|s| only.contains(&s.id));
    }
    Ok(scenarios)
}

/// A scenario that ran: the main run, and with `both` the in-process run's verdict on
/// determinism and its time.
struct Ran {
    run: runner::ScenarioRun,
    determinism: Option<Result<(), String>>,
    other_ms: Option<f64>,
}

impl Ran {
    fn row(&self) -> Row<'_> {
        Row {
            run: &self.run,
            determinism: self.determinism.clone(),
            other_ms: self.other_ms,
        }
    }
}

/// One scenario on the asked-for transports.
fn run_scenario(
    sc: &Scenario,
    seed: u64,
    transport: Transports,
    data: &dwsim_model::SeedData,
) -> Result<Ran> {
    let main_kind = if transport == Transports::InProcess {
        TransportKind::InProcess
    } else {
        TransportKind::Http
    };
    let options = |transport| Options {
        seed,
        data: data.clone(),
        transport,
    };
    let main =
        runner::run(sc, &options(main_kind)).with_context(|| format!("scenario {}", sc.id))?;
    if transport != Transports::Both {
        return Ok(Ran {
            run: main,
            determinism: None,
            other_ms: None,
        });
    }
    let other = runner::run(sc, &options(TransportKind::InProcess))
        .with_context(|| format!("scenario {} in-process", sc.id))?;
    Ok(Ran {
        determinism: Some(dwsim_harness::same_end_state(&main, &other)),
        other_ms: Some(other.elapsed.as_secs_f64() * 1000.0),
        run: main,
    })
}

/// The snapshot of a run, as `--snapshots` keeps it: the steps and the end state.
fn snapshot_of(run: &runner::ScenarioRun) -> serde_json::Value {
    serde_json::json!({
        "scenario": run.scenario,
        "seed": run.seed,
        "steps": run.steps.iter().map(|s| format!("{} (line {}): {}", s.action, s.line, s.detail)).collect::<Vec<_>>(),
        "end_state": run.end_state,
    })
}

/// `--snapshots DIR`: compares the run with `DIR/<id>.json`, writing it when missing and
/// `DIR/<id>.json.new` when it differs (and removing a stale one when it matches).
fn check_snapshot(dir: &Path, run: &runner::ScenarioRun) -> Result<runner::Outcome> {
    let started = Instant::now();
    let path = dir.join(format!("{}.json", run.scenario));
    let mut text = serde_json::to_string_pretty(&snapshot_of(run))?;
    text.push('\n');
    let new = dir.join(format!("{}.json.new", run.scenario));
    let detail = match std::fs::read_to_string(&path) {
        Ok(kept) if kept == text => {
            // A difference an earlier run left beside it is stale now (as insta drops
            // a `.snap.new` once the snapshot passes).
            if new.exists() {
                std::fs::remove_file(&new)
                    .with_context(|| format!("removing {}", new.display()))?;
            }
            String::new()
        }
        Ok(_) => {
            std::fs::write(&new, &text).with_context(|| format!("writing {}", new.display()))?;
            format!(
                "the run differs from {}; it is in {} (diff them, then move it over to accept)",
                path.display(),
                new.display()
            )
        }
        Err(_) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            String::new()
        }
    };
    Ok(runner::Outcome {
        name: "snapshot".into(),
        passed: detail.is_empty(),
        detail,
        elapsed: started.elapsed(),
    })
}

/// `--check-snapshots`: the run against `dir/scenario__<id>.snap`, the snapshot
/// `tests/scenarios.rs` keeps (an insta header, then the JSON it shows here).
fn check_insta_snapshot(dir: &Path, sc: &Scenario, run: &runner::ScenarioRun) -> runner::Outcome {
    let started = Instant::now();
    let path = dir.join(format!("scenario__{}.snap", sc.id));
    let now = serde_json::json!({
        "scenario": sc.id,
        "title": sc.title,
        "seed": run.seed,
        "steps": run.steps.iter().map(|s| format!("{} (line {}): {}", s.action, s.line, s.detail)).collect::<Vec<_>>(),
        "invariants": run.invariants.iter().map(|o| (o.name.clone(), if o.passed { "pass" } else { "FAIL" })).collect::<std::collections::BTreeMap<_, _>>(),
        "end_state": run.end_state,
    });
    let kept = std::fs::read_to_string(&path)
        .map_err(|e| format!("no snapshot {}: {e}", path.display()))
        .and_then(|text| {
            // The JSON starts after the header's closing `---` line.
            let body = text.splitn(3, "---\n").nth(2).unwrap_or_default();
            serde_json::from_str::<serde_json::Value>(body)
                .map_err(|e| format!("{} is not a scenario snapshot: {e}", path.display()))
        });
    let detail = match kept {
        Ok(kept) if kept == now => String::new(),
        Ok(_) => format!(
            "the run differs from {} (cargo insta test --test scenarios shows the diff)",
            path.display()
        ),
        Err(e) => e,
    };
    runner::Outcome {
        name: "snapshot".into(),
        passed: detail.is_empty(),
        detail,
        elapsed: started.elapsed(),
    }
}

fn run(args: RunArgs) -> Result<bool> {
    let scenarios = select_scenarios(args.dir.as_deref(), &args.only)?;
    let data = Catalogue::shared()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .demo
        .clone();
    // Human lines go to stderr when a report takes stdout, so the two never mix.
    let stdout_taken = args.format == Format::Json
        || [&args.json, &args.junit]
            .iter()
            .any(|p| p.as_deref() == Some(Path::new("-")));
    let mut human: Box<dyn Write> = if stdout_taken {
        Box::new(anstream::stderr())
    } else {
        Box::new(anstream::stdout())
    };
    let started = Instant::now();
    let mut runs = Vec::new();
    for sc in &scenarios {
        let mut ran = run_scenario(sc, args.seed, args.transport, &data)?;
        if let Some(dir) = &args.snapshots {
            let outcome = check_snapshot(dir, &ran.run)?;
            ran.run.invariants.push(outcome);
        }
        if args.check_snapshots {
            let outcome = check_insta_snapshot(Path::new("snapshots"), sc, &ran.run);
            ran.run.invariants.push(outcome);
        }
        let row = ran.row();
        if args.format == Format::Human && !(args.quiet && report::passed(&row)) {
            write!(human, "{}", report::scenario_line(&row))?;
        }
        runs.push(ran);
    }
    let rows: Vec<Row> = runs.iter().map(Ran::row).collect();
    let passed = rows.iter().all(report::passed);
    if args.format == Format::Human {
        write!(
            human,
            "{}",
            report::summary(&rows, started.elapsed().as_secs_f64())
        )?;
    }
    let json = serde_json::to_vec_pretty(&report::json_report(&rows))?;
    if args.format == Format::Json {
        std::io::stdout().write_all(&json)?;
        println!();
    }
    let mut written = Ok(());
    if let Some(path) = &args.json {
        written = written.and(write_report(path, &json));
    }
    if let Some(path) = &args.junit {
        let xml =
            report::junit(&rows).map_err(|e| anyhow::anyhow!("building the JUnit report: {e}"));
        written = written.and(xml.and_then(|x| write_report(path, x.as_bytes())));
    }
    if let Err(e) = written {
        // The run's result stands; a passing run whose report is missing is a setup error.
        if passed {
            return Err(e);
        }
        eprintln!("dwsim: {e:#}");
        return Ok(false);
    }
    Ok(passed)
}

/// Writes a report to a file, or to stdout for `-`.
fn write_report(path: &Path, bytes: &[u8]) -> Result<()> {
    if path == Path::new("-") {
        std::io::stdout().write_all(bytes)?;
        return Ok(());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// `dwsim serve`'s arguments.
struct ServeArgs {
    id: String,
    through_step: Option<usize>,
    seed: u64,
    port_base: Option<u16>,
    dir: Option<PathBuf>,
    plain_http: bool,
    ca_dir: Option<PathBuf>,
    start_time: String,
    limits: dwsim_http::Limits,
    admin_key: Option<String>,
}

/// A fresh admin key: 128 random bits in hex.
fn random_key() -> String {
    let mut bytes = [0u8; 16];
    // The system source cannot fail on the platforms dwsim runs on; a fixed key would be
    // worse than none, so fall back to the process id and time only if it ever does.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (t ^ u128::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds after the fixed epoch that `--start-time` names.
fn clock_start(text: &str) -> Result<i64> {
    let epoch_ms = dwsim_model::clock::EPOCH_UNIX_SECONDS * 1000;
    let ms = match text {
        "epoch" => 0,
        "now" => {
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("reading the wall clock")?;
            // Whole seconds, as tokens and timestamps carry them.
            wall.as_secs() as i64 * 1000 - epoch_ms
        }
        other => {
            let at = dwsim_model::clock::Instant::parse_iso(other).ok_or_else(|| {
                anyhow::anyhow!("--start-time takes now, epoch or a UTC time such as 2026-06-01T09:00:00Z, not '{other}'")
            })?;
            at.0
        }
    };
    if ms < 0 {
        anyhow::bail!("--start-time cannot be before the epoch, 2026-01-01T00:00:00Z");
    }
    Ok(ms)
}

/// The CA `serve` speaks HTTPS with, and the file clients are told to trust.
fn local_ca(ca_dir: Option<&Path>) -> Result<(Arc<Authority>, PathBuf)> {
    let authority = match ca_dir {
        Some(dir) => Authority::in_dir(dir)?,
        None => Authority::generate()?,
    };
    let path = match authority.ca_path() {
        Some(path) => path.to_path_buf(),
        None => {
            let dir = std::env::temp_dir().join(format!("dwsim-{}", std::process::id()));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join(dwsim_http::tls::CA_CERT_FILE);
            authority.write_ca(&path)?;
            path
        }
    };
    Ok((Arc::new(authority), path))
}

/// One line per environment origin: which product, which environment, where.
fn origin_line(server: &Server, origin: &str) -> String {
    match server {
        Server::Fno(env) => format!("  F&O        {env:<16} {origin}   (/data, /api/services, /Metadata)"),
        Server::Dataverse(org) => format!("  Dataverse  {org:<16} {origin}   (/api/data/v9.2)"),
        Server::Entra => format!("  Entra      {:<16} {origin}", ""),
        Server::Lcs => format!("  LCS        {:<16} {origin}   (Power Platform admin API below /providers/Microsoft.BusinessAppPlatform)", ""),
    }
}

/// `println!` that shrugs off a closed stdout (`dwsim serve | head`): the servers keep
/// serving when nobody reads what they print.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn serve(args: ServeArgs) -> Result<bool> {
    let scenarios = select_scenarios(args.dir.as_deref(), std::slice::from_ref(&args.id))?;
    let sc = &scenarios[0];
    let catalogue = Catalogue::shared().map_err(|e| anyhow::anyhow!("{e}"))?;
    let data = runner::start_data(sc, &catalogue.demo)?;
    let start_ms = clock_start(&args.start_time)?;
    let build = |clock_start_ms: i64| {
        Sim::new(WorldSpec {
            seed: args.seed,
            fno: sc.start.fno,
            dataverse: sc.start.dataverse,
            data: data.clone(),
            clock_start_ms,
        })
        .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let mut sim = build(start_ms)?;
    let mut served = "the starting world".to_string();
    if let Some(n) = args.through_step {
        if n > sc.steps.len() {
            bail!(
                "--through-step {n}: scenario {} has {} steps",
                sc.id,
                sc.steps.len()
            );
        }
        if args.start_time == "now" {
            // The steps move the virtual clock (deployments, syncs): run them once to see
            // how far, then start that much earlier, so that the served clock and the
            // tokens it signs stand at the wall clock.
            let before = sim.world().clock.now().0;
            runner::run_first_steps(&sim, sc, n)?;
            let moved = sim.world().clock.now().0 - before;
            sim = build(start_ms - moved)?;
        }
        let steps = runner::run_first_steps(&sim, sc, n)?;
        if let Some(failed) = steps.iter().find(|s| !s.ok) {
            bail!(
                "--through-step {n}: {}:{} {} failed: {}",
                sc.path.display(),
                failed.line,
                failed.action,
                failed.detail
            );
        }
        if let Some(last) = steps.last() {
            served = format!(
                "the world after step {n} ({}, line {})",
                last.action, last.line
            );
        }
    }
    sim.set_admin_key(args.admin_key.clone());
    let ca = if args.plain_http {
        None
    } else {
        Some(local_ca(args.ca_dir.as_deref())?)
    };
    let options = ServeOptions {
        port_base: args.port_base.unwrap_or(0),
        tls: ca.as_ref().map(|(authority, _)| authority.clone()),
        limits: args.limits,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let servers = Servers::start(sim.clone(), options).await.context("binding the servers")?;
        let endpoints = servers.endpoints();
        let harness = {
            let world = sim.world();
            dwsim_protocol::admin::harness(&world, &endpoints)
        };
        let scheme = if args.plain_http { "plain HTTP" } else { "HTTPS" };
        let now = sim.world().clock.now().iso();
        let clock = if args.through_step.is_some() { "the clock stands at" } else { "the clock starts at" };
        say!("dwsim serving {served} of scenario {} (seed {}) over {scheme}; {clock} {now}", args.id, args.seed);
        let mut shown = std::collections::BTreeSet::new();
        for (server, origin) in servers.origins() {
            say!("{}", origin_line(&server, &origin));
            shown.insert(server);
        }
        say!("  tenant          {}", harness["tenant_id"].as_str().unwrap_or_default());
        say!("  client id       {}", harness["client_id"].as_str().unwrap_or_default());
        say!("  client secret   {}", harness["client_secret"].as_str().unwrap_or_default());
        say!("  user / password {} / {}", harness["username"].as_str().unwrap_or_default(), harness["password"].as_str().unwrap_or_default());
        say!("  lcs project     {}", harness["lcs_project_id"]);
        say!("  token endpoint  {}", harness["token_endpoint_v2"].as_str().unwrap_or_default());
        if let Some((_, path)) = &ca {
            let path = path.display();
            say!("Trust the local CA, written to {path}:");
            say!("  Python (requests, httpx, MSAL):  export REQUESTS_CA_BUNDLE={path} SSL_CERT_FILE={path}");
            say!("  Node (MSAL, DynamicsWebApi):     export NODE_EXTRA_CA_CERTS={path}");
            say!("  curl:                            curl --cacert {path} ...");
        }
        match &args.admin_key {
            Some(key) => say!("  admin key       {key}   (the /_dwsim/ verbs need Authorization: Bearer <admin key>)"),
            None => say!("  admin key       none: --no-admin-auth leaves /_dwsim/ open to local callers"),
        }
        say!("Environments created later are listed as they come. Everything above is also at GET {}/_dwsim/harness (with the admin key). Ctrl-C stops.", endpoints.lcs);
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                stopped = &mut ctrl_c => { stopped.context("waiting for Ctrl-C")?; break; }
                _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {
                    for (server, origin) in servers.origins() {
                        if shown.insert(server.clone()) {
                            say!("{}", origin_line(&server, &origin));
                        }
                    }
                }
            }
        }
        drop(servers);
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(true)
}

fn bench(iterations: usize, seed: u64) -> Result<bool> {
    let scenarios = dwsim_harness::load_scenarios(None)?;
    let data = Catalogue::shared()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .demo
        .clone();
    println!(
        "six scenarios, {iterations} iterations each (steps and invariant checks), seed {seed}"
    );
    let mut ok = true;
    for kind in [TransportKind::Http, TransportKind::InProcess] {
        let mut totals = Vec::new();
        for _ in 0..iterations.max(1) {
            let t = Instant::now();
            for sc in &scenarios {
                let run = runner::run(
                    sc,
                    &Options {
                        seed,
                        data: data.clone(),
                        transport: kind,
                    },
                )?;
                ok &= run.passed();
            }
            totals.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        totals.sort_by(f64::total_cmp);
        println!(
            "{:<10} min {:>8.1} ms   median {:>8.1} ms   max {:>8.1} ms   (all six scenarios)",
            if kind == TransportKind::Http {
                "http"
            } else {
                "in-process"
            },
            totals[0],
            totals[totals.len() / 2],
            totals[totals.len() - 1]
        );
    }
    Ok(ok)
}
