//! `dwsim bench --load N`: a soak of a served world over HTTPS, as a partner's test traffic
//! would hit it. Client threads, each with its own keep-alive connection, send GET by key and
//! creates (three to one) to the Dataverse origin; the run prints throughput, latency
//! percentiles and how the process's resident memory moved against the data it now holds.

use anyhow::{anyhow, Context, Result};
use dwsim_harness::client::Client;
use dwsim_harness::transport::{Http, Transport};
use dwsim_model::world::EXISTING_DATAVERSE;
use dwsim_model::{Catalogue, Start, WorldSpec};
use dwsim_protocol::Sim;
use std::sync::Arc;
use std::time::Instant;

/// Resident memory of this process, in MiB (0 where /proc is not there).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// Runs `requests` requests from `clients` threads, one create in every `write_every` (none
/// for 0), and prints the figures.
pub fn run(requests: usize, clients: usize, write_every: usize) -> Result<bool> {
    let data = Catalogue::shared()
        .map_err(|e| anyhow!("{e}"))?
        .demo
        .clone();
    let sim = Sim::new(WorldSpec {
        seed: 1,
        fno: Start::Existing,
        dataverse: Start::Existing,
        data,
        clock_start_ms: 0,
    })
    .map_err(|e| anyhow!("{e}"))?;
    sim.world().config.service_protection.enabled = false;
    let http = Arc::new(Http::https(sim.clone()).context("starting the servers")?);
    let (dv, token, company, account) = {
        let c = Client::connect(http.as_ref())?;
        let dv = c.dataverse_base(EXISTING_DATAVERSE);
        let token = c.token(&dv)?;
        // The starting world has no company in Dataverse yet: the soak makes one.
        c.dv(
            "POST",
            EXISTING_DATAVERSE,
            "cdm_companies",
            Some(&serde_json::json!({"cdm_companycode": "SOAK", "cdm_name": "Soak"})),
        )?;
        let company = c.dv_all(
            EXISTING_DATAVERSE,
            "cdm_companies?$select=cdm_companyid&$top=1",
        )?;
        let account = c.dv_all(EXISTING_DATAVERSE, "accounts?$select=accountid&$top=1")?;
        let id = |rows: &[serde_json::Value], k: &str| {
            rows.first()
                .and_then(|r| r[k].as_str())
                .map(str::to_string)
                .ok_or_else(|| anyhow!("the starting world has no {k}"))
        };
        (
            dv.clone(),
            token,
            id(&company, "cdm_companyid")?,
            id(&account, "accountid")?,
        )
    };
    let rows_before = sim.world().dataverse[EXISTING_DATAVERSE]
        .store
        .count("contact");
    let state_before = serde_json::to_vec(&*sim.world())?.len();
    let rss_before = rss_mib();
    let heap_before = crate::scale::live_mib();
    let per_client = requests / clients.max(1);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients.max(1))
        .map(|t| {
            let (http, dv, token, company, account) = (
                http.clone(),
                dv.clone(),
                token.clone(),
                company.clone(),
                account.clone(),
            );
            std::thread::spawn(move || -> Result<(Vec<u32>, Vec<u32>, usize)> {
                let auth = format!("Bearer {token}");
                let get = format!("{dv}/api/data/v9.2/accounts({account})?$select=name");
                let post = format!("{dv}/api/data/v9.2/contacts");
                let (mut gets, mut posts, mut failed) = (Vec::new(), Vec::new(), 0);
                for i in 0..per_client {
                    let t0 = Instant::now();
                    let reply = if write_every != 0 && i % write_every == write_every - 1 {
                        let body = format!(
                            r#"{{"lastname":"Soak {t}-{i}","msdyn_company@odata.bind":"/cdm_companies({company})"}}"#
                        );
                        http.send("POST", &post, &[("Authorization", &auth), ("Content-Type", "application/json")], body.as_bytes())?
                    } else {
                        http.send("GET", &get, &[("Authorization", &auth)], &[])?
                    };
                    let micros = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    if reply.status >= 300 {
                        failed += 1;
                    }
                    if write_every != 0 && i % write_every == write_every - 1 {
                        posts.push(micros);
                    } else {
                        gets.push(micros);
                    }
                }
                Ok((gets, posts, failed))
            })
        })
        .collect();
    let (mut gets, mut posts, mut failed) = (Vec::new(), Vec::new(), 0);
    for t in threads {
        let (g, p, f) = t
            .join()
            .map_err(|_| anyhow!("a client thread panicked"))??;
        gets.extend(g);
        posts.extend(p);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_after = rss_mib();
    let rows_after = sim.world().dataverse[EXISTING_DATAVERSE]
        .store
        .count("contact");
    let state_after = serde_json::to_vec(&*sim.world())?.len();
    // What the run added to the heap (the rows and their indexes, the bounded journal),
    // counted by the binary's allocator: RSS also counts pages the allocator keeps.
    let heap_growth = crate::scale::live_mib() - heap_before;
    gets.sort_unstable();
    posts.sort_unstable();
    let total = gets.len() + posts.len();
    println!("load: {total} requests over HTTPS from {clients} clients (one create in every {write_every}, the rest GET by key), service protection off");
    println!(
        "  throughput {:>9.0} req/s   ({elapsed:.1} s)   failed {failed}",
        total as f64 / elapsed
    );
    println!(
        "  GET by key  p50 {:>6.2} ms   p99 {:>6.2} ms      create  p50 {:>6.2} ms   p99 {:>6.2} ms",
        percentile(&gets, 0.5),
        percentile(&gets, 0.99),
        percentile(&posts, 0.5),
        percentile(&posts, 0.99)
    );
    println!(
        "  memory  RSS {rss_before:.1} → {rss_after:.1} MiB (+{:.1}); rows created {}; world state {:.1} → {:.1} MiB as JSON",
        rss_after - rss_before,
        rows_after - rows_before,
        state_before as f64 / 1048576.0,
        state_after as f64 / 1048576.0
    );
    println!(
        "  heap +{heap_growth:.1} MiB by the allocator's count (rows, indexes, the bounded journal); RSS beyond it +{:.1} MiB",
        rss_after - rss_before - heap_growth
    );
    Ok(failed == 0)
}
