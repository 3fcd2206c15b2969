//! The worked example of docs/partners.md, run as the page writes it: a partner catalogue
//! (own F&O entity, Dataverse table, map and rows), a scenario with the vendor map and the
//! partner's map in two companies, and the committed snapshot it must match.

use std::path::Path;
use std::process::Command;

fn dwsim(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dwsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("dwsim runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_worked_example_runs_as_written() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/partners.md"))
            .expect("docs/partners.md");
    let args = [
        "run",
        "--catalogue",
        "docs/partner-example/catalogue",
        "--scenarios-dir",
        "docs/partner-example/scenarios",
        "--snapshots",
        "docs/partner-example/snapshots",
    ];
    for a in &args[1..] {
        assert!(page.contains(a), "docs/partners.md no longer shows {a}");
    }
    let (ok, text) = dwsim(&args);
    assert!(ok, "{text}");
    assert!(
        text.contains("PASS") && text.contains("warehouses-and-vendors"),
        "{text}"
    );
    assert!(
        !Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/partner-example/snapshots/warehouses-and-vendors.json.new")
            .exists(),
        "the run differs from the committed snapshot"
    );
}

#[test]
fn a_catalogue_with_an_unknown_field_is_refused_with_the_file_named() {
    let dir = std::env::temp_dir().join(format!("dwsim-bad-catalogue-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("table-maps.json"),
        r#"[{"id": "x", "name": "x", "version": "1", "fno_entity": "CustomerGroups", "dv_table": "msdyn_customergroup", "key": ["CustomerGroupId"], "fields": [], "mastr": "fno"}]"#,
    )
    .expect("write");
    let (ok, text) = dwsim(&["run", "--catalogue", dir.to_str().unwrap_or_default()]);
    assert!(!ok);
    assert!(
        text.contains("table-maps.json") && text.contains("mastr"),
        "{text}"
    );
}

#[test]
fn a_missing_catalogue_folder_is_refused() {
    let (ok, text) = dwsim(&["serve", "--catalogue", "docs/partner-example/nowhere"]);
    assert!(!ok);
    assert!(text.contains("not a catalogue directory"), "{text}");
}

#[test]
fn the_partner_entity_and_table_are_served_with_their_rows() {
    use dwsim_harness::client::Client;
    use dwsim_harness::transport::InProcess;
    use dwsim_model::world::{EXISTING_DATAVERSE as ORG, EXISTING_FNO as FO};
    use dwsim_model::{Catalogue, Start, World, WorldSpec};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/partner-example/catalogue");
    let catalogue = Catalogue::with_partner_dir(&dir).expect("the example catalogue loads");
    let data = catalogue.demo.clone();
    let world = World::with_catalogue(
        WorldSpec {
            seed: 1,
            fno: Start::Existing,
            dataverse: Start::Existing,
            data,
            clock_start_ms: 0,
        },
        std::sync::Arc::new(catalogue),
    )
    .expect("the example's world builds");
    let t = InProcess {
        sim: dwsim_protocol::Sim::from_world(world),
    };
    let c = Client::connect(&t).expect("client");
    let fo = c.fno_raw("GET", FO, "ContosoWarehouses?cross-company=true", "");
    assert_eq!(fo.status, 200, "{}", fo.text());
    assert_eq!(fo.json()["value"].as_array().map(Vec::len), Some(3));
    let dv = c
        .dv(
            "GET",
            ORG,
            "contoso_warehouses?$select=contoso_code,contoso_name",
            None,
        )
        .expect("dataverse");
    assert_eq!(dv.status, 200, "{}", dv.text());
    assert_eq!(
        dv.json()["value"][0]["contoso_code"],
        serde_json::json!("WH-9")
    );
    let defs = c
        .dv(
            "GET",
            ORG,
            "EntityDefinitions(LogicalName='contoso_warehouse')?$select=EntitySetName",
            None,
        )
        .expect("metadata");
    assert_eq!(
        defs.json()["EntitySetName"],
        serde_json::json!("contoso_warehouses")
    );
}

/// `serve --through-step N` serves the world after the scenario's first N steps: here a
/// linked world whose customer maps run, read back through the admin export.
#[test]
fn serve_through_a_step_serves_the_linked_world() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_dwsim"))
            .args([
                "serve",
                "--through-step",
                "7",
                "--plain-http",
                "--no-admin-auth",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dwsim serve starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(
        first.contains("the world after step 7 (dual-write.run-maps"),
        "{first}"
    );
    let lcs = lines
        .map_while(Result::ok)
        .find_map(|l| {
            l.trim_start()
                .strip_prefix("LCS")
                .and_then(|r| r.split_whitespace().next().map(str::to_string))
        })
        .expect("the LCS origin is printed");
    let text = ureq::get(format!("{lcs}/_dwsim/state"))
        .call()
        .expect("state")
        .body_mut()
        .read_to_string()
        .expect("body");
    let state: serde_json::Value = serde_json::from_str(&text).expect("json");
    let maps = &state["connections"]["contosoprod"]["maps"];
    assert_eq!(
        maps["customersv3-accounts"]["state"],
        serde_json::json!("Running"),
        "{maps}"
    );
}

#[test]
fn serve_through_more_steps_than_the_scenario_has_is_refused() {
    let (ok, text) = dwsim(&["serve", "--through-step", "99"]);
    assert!(!ok);
    assert!(
        text.contains("--through-step 99: scenario existing-existing has 7 steps"),
        "{text}"
    );
}

#[test]
fn a_scenario_brings_its_own_data_set() {
    let (ok, text) = dwsim(&[
        "run",
        "--catalogue",
        "docs/partner-example/catalogue",
        "--scenarios-dir",
        "docs/partner-example/scenarios",
        "--scenario",
        "warehouses-own-data",
        "--transport",
        "in-process",
    ]);
    assert!(ok, "{text}");
    // Its expectations name the Hamburg warehouse only its own data set has.
    let scenario = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs/partner-example/scenarios/warehouses-own-data.toml"),
    )
    .expect("scenario");
    assert!(
        scenario.contains("data = \"warehouses-extra-data.json\"") && scenario.contains("WH-3")
    );
}

#[test]
fn a_data_set_asks_for_generated_rows() {
    // tests/data/volume: USRT with 2,000 generated customers and 300 vendors, and 600
    // accounts and 200 contacts generated in the existing Dataverse, synced both ways;
    // the scenario's expectations count them.
    let (ok, text) = dwsim(&[
        "run",
        "--scenarios-dir",
        "tests/data/volume",
        "--scenario",
        "generated-tenant",
        "--transport",
        "in-process",
    ]);
    assert!(ok, "{text}");
}

#[test]
fn generated_customers_need_a_group_to_belong_to() {
    let dir = std::env::temp_dir().join(format!("dwsim-generate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("data.json"),
        r#"{"fno": {"companies": [{"id": "ZZ01", "name": "No groups", "generate": {"customers": 5}}]}, "dataverse": {}}"#,
    )
    .expect("data set");
    let scenario = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/volume/generated-tenant.toml"),
    )
    .expect("scenario")
    .replace("generated-tenant.json", "data.json");
    std::fs::write(dir.join("generated-tenant.toml"), scenario).expect("scenario");
    let (ok, text) = dwsim(&[
        "run",
        "--scenarios-dir",
        dir.to_str().expect("utf-8 path"),
        "--transport",
        "in-process",
    ]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok, "{text}");
    assert!(
        text.contains("company ZZ01 asks for 5 generated customers but has no customer group"),
        "{text}"
    );
}
