//! The `dwsim` command: `run` the setup scenarios, `serve` the simulated products, `bench`,
//! `replay` a model-based test's failure bundle.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use dwsim::report::{self, Row};
use dwsim_harness::runner::{self, Options, TransportKind};
use dwsim_harness::scenario::Scenario;
use dwsim_http::{Ports, Servers};
use dwsim_model::{Catalogue, WorldSpec};
use dwsim_protocol::Sim;
use std::io::Write;
use std::path::Path;
use std::path::PathBuf;
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
    },
    /// Serve the four products with a scenario's starting world until interrupted.
    Serve {
        #[arg(long, default_value = "existing-existing")]
        scenario: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Entra on this port, then LCS, F&O and Dataverse on the next three.
        #[arg(long)]
        port_base: Option<u16>,
        #[arg(long)]
        scenarios_dir: Option<PathBuf>,
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
    },
}

fn main() {
    let cli = Cli::parse();
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
        } => run(RunArgs {
            only: scenarios,
            seed,
            transport,
            dir: scenarios_dir,
            json,
            junit,
            format,
            quiet,
        }),
        Command::Serve {
            scenario,
            seed,
            port_base,
            scenarios_dir,
        } => serve(&scenario, seed, port_base, scenarios_dir),
        Command::Bench { iterations, seed } => bench(iterations, seed),
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

fn run(args: RunArgs) -> Result<bool> {
    let scenarios = select_scenarios(args.dir.as_deref(), &args.only)?;
    let data = Catalogue::builtin()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .demo;
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
        let ran = run_scenario(sc, args.seed, args.transport, &data)?;
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

fn serve(id: &str, seed: u64, port_base: Option<u16>, dir: Option<PathBuf>) -> Result<bool> {
    let scenarios = select_scenarios(dir.as_deref(), &[id.to_string()])?;
    let sc = &scenarios[0];
    let data = Catalogue::builtin()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .demo;
    let sim = Sim::new(WorldSpec {
        seed,
        fno: sc.start.fno,
        dataverse: sc.start.dataverse,
        data,
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let ports = port_base.map(Ports::from_base).unwrap_or_default();
        let servers = Servers::start_on(sim.clone(), ports).await.context("binding the servers")?;
        let endpoints = servers.endpoints();
        let harness = {
            let world = sim.world();
            dwsim_protocol::admin::harness(&world, &endpoints)
        };
        println!("dwsim serving the starting world of scenario {id} (seed {seed})");
        println!("  entra      {}", endpoints.entra);
        println!("  lcs        {}   (Power Platform admin API below /providers/Microsoft.BusinessAppPlatform)", endpoints.lcs);
        println!("  fno        {}/<environment>", endpoints.fno);
        println!("  dataverse  {}/<org>/api/data/v9.2", endpoints.dataverse);
        println!("  tenant          {}", harness["tenant_id"].as_str().unwrap_or_default());
        println!("  client id       {}", harness["client_id"].as_str().unwrap_or_default());
        println!("  client secret   {}", harness["client_secret"].as_str().unwrap_or_default());
        println!("  user / password {} / {}", harness["username"].as_str().unwrap_or_default(), harness["password"].as_str().unwrap_or_default());
        println!("  lcs project     {}", harness["lcs_project_id"]);
        for f in harness["fno"].as_array().into_iter().flatten() {
            println!("  F&O environment {}", f.as_str().unwrap_or_default());
        }
        for d in harness["dataverse"].as_array().into_iter().flatten() {
            println!("  Dataverse       {}", d.as_str().unwrap_or_default());
        }
        println!("  token endpoint  {}", harness["token_endpoint_v2"].as_str().unwrap_or_default());
        println!("Everything above is also at GET {}/_dwsim/harness. Ctrl-C stops.", endpoints.lcs);
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        drop(servers);
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(true)
}

fn bench(iterations: usize, seed: u64) -> Result<bool> {
    let scenarios = dwsim_harness::load_scenarios(None)?;
    let data = Catalogue::builtin()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .demo;
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
