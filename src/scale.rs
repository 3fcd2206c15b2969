//! `dwsim bench --scale 1000,100000,...`: how the cost grows with the data. For each size it
//! builds a world whose first legal entity holds that many F&O customers, then measures, in
//! process (release build for figures worth reading):
//!
//! - import: seeding the F&O rows (validation, keys, relations);
//! - initial sync of `customersv3-accounts` (F&O master), both legs;
//! - Dataverse GET by key (the whole record) and a `$filter` on a non-key column with
//!   `$top`, through the protocol layer;
//! - a create that must check the account's alternate key;
//! - the heap the world's data holds, counted by the binary's allocator;
//! - the state export and its import back through the admin verbs, with the heap's peak
//!   above what the world held.
//!
//! Nothing here is asserted: the figures go into the README and the session notes.

use anyhow::{anyhow, bail, Result};
use dwsim_harness::client::{enc, Client};
use dwsim_harness::transport::{InProcess, Transport};
use dwsim_model::dualwrite::initial_sync::ExecutionStatus;
use dwsim_model::dualwrite::{MapRun, Side};
use dwsim_model::world::{EXISTING_DATAVERSE, EXISTING_FNO};
use dwsim_model::{Catalogue, Start, World, WorldSpec};
use dwsim_protocol::Sim;
use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The binary's allocator, mimalloc, counting the bytes it has handed out and not had back.
/// mimalloc rather than the system's: a world is millions of small rows, and glibc's
/// malloc spent about a third of initial sync's time finding and merging free chunks.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The most `LIVE` has been since [`reset_peak`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Counts an allocation of `size` more bytes.
fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    // A read first: most allocations set no new peak, and a read does not take the cache
    // line from the other cores the way a write does.
    if live > PEAK.load(Ordering::Relaxed) {
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to mimalloc unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// The heap the process holds now, by the binary's allocator (in MiB).
pub fn live_mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

/// Starts a new peak at the heap held now.
fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// The most heap held since [`reset_peak`] (in MiB).
fn peak_mib() -> f64 {
    PEAK.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

/// One size's figures.
struct Figures {
    rows: usize,
    import_s: f64,
    sync_s: f64,
    get_us: f64,
    filter_ms: f64,
    create_us: f64,
    heap_mib: f64,
    stored_rows: usize,
    state_export_s: f64,
    state_mb: f64,
    state_import_s: f64,
    /// The heap at its highest during the export and the import, above the heap before.
    state_peak_mib: f64,
}

/// Runs every size and prints the table.
pub fn run(sizes: &[usize]) -> Result<bool> {
    println!("bench scale: N F&O customers, in process, in one legal entity (USMF) up to 500,000 (initial sync's limit per legal entity), the rest in the next");
    println!(
        "{:>9} {:>10} {:>10} {:>9} {:>11} {:>10} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "rows",
        "import s",
        "sync s",
        "sync µs/r",
        "GET µs",
        "filter ms",
        "create µs",
        "heap MiB",
        "B/row",
        "export s",
        "state MB",
        "import s",
        "peak +MiB"
    );
    for &n in sizes {
        let f = measure(n)?;
        println!(
            "{:>9} {:>10.3} {:>10.3} {:>9.1} {:>11.1} {:>10.3} {:>10.1} {:>12.1} {:>9.0} {:>9.2} {:>9.1} {:>9.2} {:>10.1}",
            f.rows,
            f.import_s,
            f.sync_s,
            f.sync_s * 1e6 / f.rows.max(1) as f64,
            f.get_us,
            f.filter_ms,
            f.create_us,
            f.heap_mib,
            f.heap_mib * 1024.0 * 1024.0 / f.stored_rows.max(1) as f64,
            f.state_export_s,
            f.state_mb,
            f.state_import_s,
            f.state_peak_mib
        );
    }
    Ok(true)
}

/// Initial sync's documented limit: rows per legal entity per execution.
const ROWS_PER_LEGAL_ENTITY: usize = 500_000;

/// The demo data set with its companies topped up with generated organisations to `n`
/// customers in all (the demo's own among them): the first company up to initial sync's
/// limit of 500,000 rows per legal entity, the next one with the rest, and so on. The
/// rows come from the data set's own `generate` field, as a partner's would.
fn generated(n: usize) -> Result<dwsim_model::seed::SeedData> {
    let mut data = Catalogue::shared()
        .map_err(|e| anyhow!("{e}"))?
        .demo
        .clone();
    let listed: usize = data.fno.companies.iter().map(|c| c.customers.len()).sum();
    let mut left = n.saturating_sub(listed);
    for company in data
        .fno
        .companies
        .iter_mut()
        .filter(|c| !c.customer_groups.is_empty())
    {
        let room = ROWS_PER_LEGAL_ENTITY.saturating_sub(company.customers.len());
        company.generate.customers = left.min(room);
        left -= company.generate.customers;
    }
    if left > 0 {
        bail!("{n} customers do not fit the demo's companies at {ROWS_PER_LEGAL_ENTITY} each");
    }
    Ok(data)
}

fn measure(n: usize) -> Result<Figures> {
    let data = generated(n)?;
    let heap_before = live_mib();
    let t = Instant::now();
    let mut world = World::new(WorldSpec {
        seed: 1,
        fno: Start::Existing,
        dataverse: Start::Existing,
        data,
        clock_start_ms: 0,
    })
    .map_err(|e| anyhow!("{e}"))?;
    let import_s = t.elapsed().as_secs_f64();
    world.config.service_protection.enabled = false;
    world
        .ensure_dual_write_app_users(EXISTING_DATAVERSE)
        .map_err(|e| anyhow!("{e}"))?;
    let companies = world.fno[EXISTING_FNO].companies();
    world
        .link(EXISTING_FNO, EXISTING_DATAVERSE, &companies)
        .map_err(|e| anyhow!("{e}"))?;
    let upstream: Vec<MapRun> = [
        "legalentities-companies",
        "currencies",
        "paymentterms",
        "customergroups",
    ]
    .iter()
    .map(|m| MapRun::new(*m, true, Side::Fno))
    .collect();
    world
        .dual_write(EXISTING_FNO)
        .map_err(|e| anyhow!("{e}"))?
        .run(&upstream)
        .map_err(|e| anyhow!("{e}"))?;
    let t = Instant::now();
    let executions = world
        .dual_write(EXISTING_FNO)
        .map_err(|e| anyhow!("{e}"))?
        .run(&[MapRun::new("customersv3-accounts", true, Side::Fno)])
        .map_err(|e| anyhow!("{e}"))?;
    let sync_s = t.elapsed().as_secs_f64();
    if let Some(failed) = executions
        .iter()
        .find(|e| e.status != ExecutionStatus::Completed)
    {
        bail!("initial sync of {n} customers failed: {:?}", failed.errors);
    }
    let stored_rows = world.fno[EXISTING_FNO].store.count("CustomersV3")
        + world.dataverse[EXISTING_DATAVERSE].store.count("account");
    let heap_mib = live_mib() - heap_before;

    let account = world.dataverse[EXISTING_DATAVERSE]
        .store
        .rows("account")
        .nth(n / 2)
        .map(|(id, _)| id.to_string())
        .ok_or_else(|| anyhow!("no accounts after the sync"))?;
    let company = world.dataverse[EXISTING_DATAVERSE]
        .store
        .rows("cdm_company")
        .next()
        .map(|(id, _)| id.to_string())
        .ok_or_else(|| anyhow!("no company in Dataverse"))?;
    let sim = Sim::from_world(world);
    let transport = InProcess { sim: sim.clone() };
    let client = Client::connect(&transport)?;
    let base = client.dataverse_base(EXISTING_DATAVERSE);
    let auth = format!("Bearer {}", client.token(&base)?);
    let headers = [("Authorization", auth.as_str())];
    let timed = |count: usize, url: &dyn Fn(usize) -> String, body: &dyn Fn(usize) -> String| {
        let t = Instant::now();
        for i in 0..count {
            let b = body(i);
            let method = if b.is_empty() { "GET" } else { "POST" };
            let mut h = headers.to_vec();
            if !b.is_empty() {
                h.push(("Content-Type", "application/json"));
            }
            let r = transport.send(method, &url(i), &h, b.as_bytes())?;
            if r.status >= 300 {
                bail!("{method} {} answered {}: {}", url(i), r.status, r.text());
            }
        }
        Ok(t.elapsed().as_secs_f64() / count as f64)
    };
    let api = format!("{base}/api/data/v9.2");
    let get_us = timed(2000, &|_| format!("{api}/accounts({account})"), &|_| {
        String::new()
    })? * 1e6;
    let filter = enc(&format!(
        "name eq 'Generated customer {}'",
        (n / 2).saturating_sub(10)
    ));
    let filter_ms = timed(
        5,
        &|_| format!("{api}/accounts?$select=name&$top=10&$filter={filter}"),
        &|_| String::new(),
    )? * 1e3;
    let create_us = timed(200, &|_| format!("{api}/accounts"), &|i| {
        format!(
            r#"{{"name":"Bench {i}","accountnumber":"BENCH-{i}","msdyn_company@odata.bind":"/cdm_companies({company})"}}"#
        )
    })? * 1e6;
    // The whole state out and back in through the admin verbs, as `serve` answers them;
    // the peak counts the body, the new world and the old one until it is replaced.
    let state = format!("{}/_dwsim/state", client.endpoints.lcs);
    let heap_before_state = live_mib();
    reset_peak();
    let t = Instant::now();
    let exported = transport.send("GET", &format!("{state}?secrets=true"), &[], b"")?;
    let state_export_s = t.elapsed().as_secs_f64();
    if exported.status != 200 {
        bail!("the state export answered {}", exported.status);
    }
    let t = Instant::now();
    let imported = transport.send(
        "PUT",
        &state,
        &[("Content-Type", "application/json")],
        &exported.body,
    )?;
    let state_import_s = t.elapsed().as_secs_f64();
    if imported.status != 204 {
        bail!(
            "the state import answered {}: {}",
            imported.status,
            imported.text()
        );
    }
    let state_mb = exported.body.len() as f64 / 1e6;
    drop(exported);
    let state_peak_mib = peak_mib() - heap_before_state;
    Ok(Figures {
        rows: n,
        import_s,
        sync_s,
        get_us,
        filter_ms,
        create_us,
        heap_mib,
        stored_rows,
        state_export_s,
        state_mb,
        state_import_s,
        state_peak_mib,
    })
}
