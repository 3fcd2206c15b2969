//! `dwsim bench --ready N`: how soon a started `dwsim serve` answers. Each run starts this
//! binary's `serve` on free ports, polls Entra's OpenID configuration until it answers 200,
//! and takes the time from spawning the process; plain HTTP with a raw socket, HTTPS with
//! a client that trusts the run's CA (kept in a folder, as `--ca-dir` lets partners do).

use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port nothing listens on now (the OS picks it; `serve` binds it right after).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn plain_get(port: u16, path: &str) -> Option<bool> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    Some(head.starts_with(b"HTTP/1.1 200"))
}

/// Milliseconds from spawning `serve` to Entra's first 200.
fn once(tls: Option<&ureq::Agent>, ca_dir: &std::path::Path) -> Result<f64> {
    let port = free_port()?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--port-base", &port.to_string(), "--no-admin-auth"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match tls {
        Some(_) => cmd.arg("--ca-dir").arg(ca_dir),
        None => cmd.arg("--plain-http"),
    };
    let path = "/common/v2.0/.well-known/openid-configuration";
    let started = Instant::now();
    let _served = Served(cmd.spawn().context("starting dwsim serve")?);
    while started.elapsed() < Duration::from_secs(10) {
        let ok = match tls {
            None => plain_get(port, path),
            Some(agent) => agent
                .get(&format!("https://localhost:{port}{path}"))
                .call()
                .ok()
                .map(|r| r.status() == 200),
        };
        match ok {
            Some(true) => return Ok(started.elapsed().as_secs_f64() * 1e3),
            Some(false) => bail!("Entra answered, but not 200"),
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    bail!("dwsim serve did not answer within 10 s")
}

/// Starts `serve` `times` times each way and prints min, median and max.
pub fn run(times: usize) -> Result<bool> {
    let ca_dir = std::env::temp_dir().join(format!("dwsim-ready-{}", std::process::id()));
    std::fs::create_dir_all(&ca_dir)?;
    // A first start writes the CA the HTTPS runs then reuse and trust.
    let authority = dwsim_http::tls::Authority::in_dir(&ca_dir)?;
    let ca = ureq::tls::Certificate::from_pem(authority.ca_pem().as_bytes())
        .map_err(|e| anyhow!("the CA: {e}"))?
        .to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    ca,
                ])))
                .build(),
        )
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    println!("bench ready: process start to Entra's first 200, {times} starts each");
    println!(
        "{:>10} {:>9} {:>9} {:>9}",
        "", "min ms", "median ms", "max ms"
    );
    for (name, tls) in [("plain HTTP", None), ("HTTPS", Some(&agent))] {
        let mut ms = (0..times.max(1))
            .map(|_| once(tls, &ca_dir))
            .collect::<Result<Vec<f64>>>()?;
        ms.sort_by(f64::total_cmp);
        println!(
            "{:>10} {:>9.1} {:>9.1} {:>9.1}",
            name,
            ms[0],
            ms[ms.len() / 2],
            ms[ms.len() - 1]
        );
    }
    std::fs::remove_dir_all(&ca_dir).ok();
    Ok(true)
}
