//! The client tier (issue #8 item 8): published client libraries, pinned and unchanged, run
//! against `dwsim serve` over HTTPS — as s3s tests itself with the real AWS SDK. The scripts
//! live in `tests/clients/` (DynamicsWebApi and MSAL for Node; MSAL for Python); this test
//! installs their pinned packages under `target/client-tier/` (`npm ci`, a Python venv), starts
//! the real `dwsim serve` on free ports with a CA of its own, hands the scripts the origins,
//! credentials and CA exactly as `serve` prints them, and requires every step to pass.
//!
//! Needs Node.js 20+ with npm and Python 3.11+ (both on the CI machine) and the npm and PyPI
//! registries for the first install; later runs reuse the install while the pins are the same.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn tier_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("client-tier")
}

/// Runs a setup command, failing the test with its output when it fails.
fn setup(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A folder that holds `files` copied from `tests/clients/` and has been installed by
/// `install` once for their current contents (a marker file remembers which).
fn installed(name: &str, files: &[&str], install: impl FnOnce(&Path)) -> PathBuf {
    let dir = tier_dir().join(name);
    std::fs::create_dir_all(&dir).expect("client tier folder");
    let mut pins = String::new();
    for file in files {
        let text = std::fs::read_to_string(source_dir().join(file)).expect("client tier file");
        std::fs::write(dir.join(file), &text).expect("copying a client tier file");
        if !file.ends_with(".mjs") && !file.ends_with(".py") {
            pins.push_str(&text);
        }
    }
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(pins.as_str()) {
        install(&dir);
        std::fs::write(&marker, pins).expect("install marker");
    }
    dir
}

/// `dwsim serve` on free ports, stopped when dropped.
struct Served {
    child: Child,
    harness: Value,
    ca: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn start(name: &str) -> Served {
        let ca_dir = tier_dir().join(format!("ca-{name}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_dwsim"))
            .args(["serve", "--scenario", "existing-existing", "--ca-dir"])
            .arg(&ca_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dwsim serve starts");
        let stdout = child.stdout.take().expect("stdout");
        // The last line of the banner names the harness endpoint; the admin key comes before.
        let (mut harness_url, mut admin_key) = (None, None);
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("serve's output");
            if let Some(rest) = line.trim_start().strip_prefix("admin key") {
                admin_key = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(rest) = line.split("also at GET ").nth(1) {
                harness_url = rest
                    .split_whitespace()
                    .next()
                    .map(|u| u.trim_end_matches('.').to_string());
                break;
            }
        }
        let harness_url = harness_url.expect("serve printed the harness endpoint");
        let ca = ca_dir.join("dwsim-ca.pem");
        let pem = std::fs::read(&ca).expect("serve wrote its CA");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                        ureq::tls::Certificate::from_pem(&pem).expect("a PEM certificate"),
                    ])))
                    .build(),
            )
            .build()
            .into();
        let admin_key = admin_key.expect("serve printed its admin key");
        let text = agent
            .get(&harness_url)
            .header("Authorization", &format!("Bearer {admin_key}"))
            .call()
            .expect("harness endpoint answers")
            .body_mut()
            .read_to_string()
            .expect("harness body");
        let harness: Value = serde_json::from_str(&text).expect("harness JSON");
        Served { child, harness, ca }
    }

    /// The environment the scripts read, from `GET /_dwsim/harness`.
    fn env(&self) -> Vec<(&'static str, String)> {
        let h = |k: &str| match &self.harness[k] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let ca = self.ca.display().to_string();
        vec![
            ("DWSIM_TENANT", h("tenant_id")),
            ("DWSIM_CLIENT_ID", h("client_id")),
            ("DWSIM_CLIENT_SECRET", h("client_secret")),
            ("DWSIM_USERNAME", h("username")),
            ("DWSIM_PASSWORD", h("password")),
            ("DWSIM_ENTRA", h("entra")),
            ("DWSIM_LCS", h("lcs")),
            ("DWSIM_LCS_PROJECT", h("lcs_project_id")),
            (
                "DWSIM_DATAVERSE",
                self.harness["dataverse"][0]["url"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            (
                "DWSIM_FNO",
                self.harness["fno"][0]["url"].as_str().unwrap().to_string(),
            ),
            ("NODE_EXTRA_CA_CERTS", ca.clone()),
            ("REQUESTS_CA_BUNDLE", ca.clone()),
            ("SSL_CERT_FILE", ca),
        ]
    }
}

/// Runs a client script and requires every step to pass.
fn run_script(served: &Served, dir: &Path, program: &Path, script: &str) {
    let out = Command::new(program)
        .arg(script)
        .current_dir(dir)
        .envs(served.env())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("all steps passed"),
        "{script} against dwsim serve ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("FAIL "), "{stdout}");
}

#[test]
fn dynamics_web_api_and_msal_node_work_unchanged() {
    let dir = installed(
        "node",
        &["package.json", "package-lock.json", "dynamicswebapi.mjs"],
        |dir| {
            setup(
                "npm ci",
                Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                    .current_dir(dir),
            )
        },
    );
    let served = Served::start("node");
    run_script(&served, &dir, Path::new("node"), "dynamicswebapi.mjs");
}

#[test]
fn msal_for_python_works_unchanged() {
    let dir = installed("python", &["requirements.txt", "msal_client.py"], |dir| {
        let venv = dir.join("venv");
        let _ = std::fs::remove_dir_all(&venv);
        setup(
            "python3 -m venv",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        );
        setup(
            "pip install",
            Command::new(venv.join("bin/pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                    "requirements.txt",
                ])
                .current_dir(dir),
        );
    });
    let served = Served::start("python");
    run_script(
        &served,
        &dir,
        &dir.join("venv/bin/python"),
        "msal_client.py",
    );
}
