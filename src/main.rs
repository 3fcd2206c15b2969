//! The `dwsim` command: `run` the setup scenarios, `serve` the simulated products, `bench`,
//! `replay` a model-based test's failure bundle.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use dwsim::report::{self, Row};
use dwsim_harness::runner::{self, Options, TransportKind};
use dwsim_http::{Ports, Servers};
use dwsim_model::{Catalogue, WorldSpec};
use dwsim_protocol::Sim;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "dwsim",
    version,
    about = "Dynamics 365 dual-write simulator: LCS, F&O, Dataverse and Entra on localhost"
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
        /// Also write a JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write a JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
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
        } => run(scenarios, seed, transport, scenarios_dir, json, junit),
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

fn run(
    only: Vec<String>,
    seed: u64,
    transport: Transports,
    dir: Option<PathBuf>,
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
) -> Result<bool> {
    let mut scenarios = dwsim_harness::load_scenarios(dir.as_deref())?;
    if !only.is_empty() {
        for id in &only {
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
        scenarios.retain(|s| only.contains(&s.id));
    }
    let data = Catalogue::builtin()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .demo;
    let mut runs = Vec::new();
    for sc in &scenarios {
        let main_kind = if transport == Transports::InProcess {
            TransportKind::InProcess
        } else {
            TransportKind::Http
        };
        let main = runner::run(
            sc,
            &Options {
                seed,
                data: data.clone(),
                transport: main_kind,
            },
        )
        .with_context(|| format!("scenario {}", sc.id))?;
        let (determinism, other_ms) = if transport == Transports::Both {
            let other = runner::run(
                sc,
                &Options {
                    seed,
                    data: data.clone(),
                    transport: TransportKind::InProcess,
                },
            )
            .with_context(|| format!("scenario {} in-process", sc.id))?;
            (
                Some(dwsim_harness::same_end_state(&main, &other)),
                Some(other.elapsed.as_secs_f64() * 1000.0),
            )
        } else {
            (None, None)
        };
        runs.push((main, determinism, other_ms));
    }
    let rows: Vec<Row> = runs
        .iter()
        .map(|(run, determinism, other_ms)| Row {
            run,
            determinism: determinism.clone(),
            other_ms: *other_ms,
        })
        .collect();
    print!("{}", report::table(&rows));
    if let Some(path) = json {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&report::json_report(&rows))?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = junit {
        std::fs::write(&path, report::junit(&rows))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(rows.iter().all(report::passed))
}

fn serve(id: &str, seed: u64, port_base: Option<u16>, dir: Option<PathBuf>) -> Result<bool> {
    let scenarios = dwsim_harness::load_scenarios(dir.as_deref())?;
    let sc = scenarios
        .iter()
        .find(|s| s.id == id)
        .with_context(|| format!("no scenario {id}"))?;
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
