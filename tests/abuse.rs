//! What a hostile or careless client sends cannot crash a server, mislead it or wear it down
//! (issue #12): requests HTTP libraries would never send, written byte by byte on a socket,
//! get the product's envelope; the limits answer 413/414/431/408; a write whose answer HTTP
//! cannot carry is not committed; idle and slow connections are closed; and memory stays
//! bounded over many requests.

mod common;

use dwsim_harness::client::Client;
use dwsim_harness::transport::{Http, Transport};
use dwsim_http::{Limits, Options};
use dwsim_model::world::{EXISTING_DATAVERSE, EXISTING_FNO};
use dwsim_model::Start;
use dwsim_protocol::Sim;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn plain(limits: Limits) -> Http {
    let sim = Sim::from_world(common::world(9, Start::Existing, Start::Existing));
    Http::start(
        sim,
        Options {
            port_base: 0,
            tls: None,
            limits,
        },
    )
    .expect("servers")
}

/// Writes raw bytes to an origin and reads the answer until the server closes or stops
/// sending: (status, headers and body as text).
fn raw(origin: &str, bytes: &[u8]) -> (u16, String) {
    let addr = origin.strip_prefix("http://").expect("a plain origin");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&out);
                // One whole response is enough.
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head.lines().find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    });
                    if len.is_some_and(|n| body.len() >= n) {
                        break;
                    }
                }
            }
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn body_json(text: &str) -> Value {
    serde_json::from_str(text.split_once("\r\n\r\n").map_or("", |(_, b)| b)).unwrap_or(Value::Null)
}

#[test]
fn requests_no_library_would_send_get_the_products_envelope() {
    let h = plain(Limits::default());
    let c = Client::connect(&h).expect("client");
    let dv = c.dataverse_base(EXISTING_DATAVERSE);

    // A bare word as the request target (curl --request-target x).
    let (status, text) = raw(&dv, b"GET x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(status, 400, "{text}");
    assert!(body_json(&text)["error"]["message"].is_string(), "{text}");

    // A chunked body that is not chunked.
    let (status, text) = raw(
        &dv,
        b"POST /api/data/v9.2/accounts HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n",
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        body_json(&text)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{text}"
    );

    // Header values that are not UTF-8, and a method no one uses.
    let (status, text) = raw(
        &dv,
        b"BREW /api/data/v9.2/accounts HTTP/1.1\r\nHost: a\r\nX-Odd: \xff\xfe\r\n\r\n",
    );
    assert_eq!(status, 401, "unauthenticated, in the envelope: {text}");
    assert!(body_json(&text)["error"].is_object(), "{text}");

    // The F&O envelope on the F&O origin.
    let fo = c.fno_base(EXISTING_FNO);
    let (status, text) = raw(&fo, b"GET x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(status, 400, "{text}");
    assert!(
        body_json(&text)["error"]["innererror"].is_object(),
        "{text}"
    );
}

#[test]
fn limits_answer_413_414_431_and_408_in_the_envelope() {
    let h = plain(Limits {
        max_body_bytes: 64 * 1024,
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let c = Client::connect(&h).expect("client");
    let dv = c.dataverse_base(EXISTING_DATAVERSE);
    let api = format!("{dv}/api/data/v9.2");

    // A declared body over the limit is refused before it is read.
    let (status, text) = raw(
        &dv,
        b"POST /api/data/v9.2/accounts HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\n\r\n{",
    );
    assert_eq!(status, 413, "{text}");
    assert!(body_json(&text)["error"]["message"].is_string());
    // A chunked body that grows past it.
    let big = format!("{{\"name\":\"{}\"}}", "x".repeat(100 * 1024));
    let r = c
        .send_as(
            &dv,
            "POST",
            &format!("{api}/accounts"),
            &[("Content-Type", "application/json")],
            big.as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());

    let long = format!("{api}/accounts?$filter=name eq '{}'", "y".repeat(40_000));
    let r = c.send_as(&dv, "GET", &long, &[], &[]).unwrap();
    assert_eq!(r.status, 414, "{}", r.text());
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("characters"));

    let fat = "z".repeat(40 * 1024);
    let r = c
        .send_as(
            &dv,
            "GET",
            &format!("{api}/accounts"),
            &[("X-Fat", &fat)],
            &[],
        )
        .unwrap();
    assert_eq!(r.status, 431, "{}", r.text());
    // More header fields than the front parses (100): hyper's own 431, without a body;
    // the origin goes on answering.
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (status, text) = raw(
        &dv,
        format!("GET /api/data/v9.2/accounts HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes(),
    );
    assert_eq!(status, 431, "{text}");
    // An absolute-form target reaches the same path as its origin form.
    let (status, text) = raw(
        &dv,
        b"GET http://a/api/data/v9.2/accounts HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(status, 401, "unauthenticated, in the envelope: {text}");
    assert!(body_json(&text)["error"].is_object(), "{text}");

    // A body that stops arriving.
    let (status, text) = raw(
        &dv,
        b"POST /api/data/v9.2/accounts HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"na",
    );
    assert_eq!(status, 408, "{text}");
}

#[test]
fn a_write_whose_answer_http_cannot_carry_is_not_committed() {
    let h = plain(Limits::default());
    let c = Client::connect(&h).expect("client");
    let groups = |c: &Client| {
        c.fno(
            "GET",
            EXISTING_FNO,
            "CustomerGroups?cross-company=true",
            None,
        )
        .unwrap()
        .json()["value"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = groups(&c);
    // The key lands in the Location header; a NUL cannot.
    let r = c
        .fno(
            "POST",
            EXISTING_FNO,
            "CustomerGroups",
            Some(
                &json!({"dataAreaId": "usmf", "CustomerGroupId": "N\u{0}L", "Description": "nul"}),
            ),
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]["innererror"]["message"]
        .as_str()
        .unwrap()
        .contains("nothing was written"));
    assert_eq!(groups(&c), before, "the create was rolled back");
    // The server goes on answering.
    assert_eq!(
        c.fno("GET", EXISTING_FNO, "CustomerGroups", None)
            .unwrap()
            .status,
        200
    );
}

#[test]
fn slow_and_idle_connections_are_closed() {
    let h = plain(Limits {
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    });
    let dv = Client::connect(&h)
        .expect("client")
        .dataverse_base(EXISTING_DATAVERSE);
    let addr = dv.strip_prefix("http://").unwrap();
    // Headers that never finish.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /api/data/v9.2/ HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        .unwrap();
    // An idle connection that never sends anything.
    let mut idle = TcpStream::connect(addr).unwrap();
    for s in [&mut slow, &mut idle] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 512];
        // The server closes it (or answers its timeout and closes): the read ends.
        let mut got = Vec::new();
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                // A reset is a close too; a read that times out means the server kept it open.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("the server kept the connection open: {e}"),
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408"),
            "{text}"
        );
    }
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn memory_stays_bounded_over_many_requests() {
    let h = plain(Limits::default());
    let c = Client::connect(&h).expect("client");
    let dv = c.dataverse_base(EXISTING_DATAVERSE);
    let url = format!("{dv}/api/data/v9.2/WhoAmI");
    // Service protection would answer 429 past 6,000 requests in five minutes.
    h.servers.sim.world().config.service_protection.enabled = false;
    // A request carries a 4 KiB header, so a server that kept each request would grow by
    // more than that per request.
    let pad = "p".repeat(4096);
    let send = |n: usize| {
        for _ in 0..n {
            let r = c
                .send_as(&dv, "GET", &url, &[("X-Pad", &pad)], &[])
                .unwrap();
            assert_eq!(r.status, 200);
        }
    };
    send(12_000);
    let before = rss_kib();
    send(10_000);
    let grown = rss_kib().saturating_sub(before);
    // 10,000 kept requests would be over 40 MiB; allow a fifth of that for allocator noise.
    eprintln!("RSS grew by {grown} KiB over 10,000 requests");
    assert!(
        grown < 8 * 1024,
        "RSS grew by {grown} KiB over 10,000 requests"
    );
    let journal = h
        .send("GET", &format!("{dv}/_dwsim/journal"), &[], &[])
        .unwrap()
        .json();
    assert!(journal.as_array().unwrap().len() <= dwsim_protocol::JOURNAL_LIMIT);
}

/// `dwsim serve` with 1,024 file descriptors, a short idle timeout and plain HTTP; the
/// Dataverse origin it printed. Killed when dropped.
struct Constrained {
    child: std::process::Child,
    dataverse: String,
}

impl Drop for Constrained {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Constrained {
    fn start() -> Constrained {
        use std::io::BufRead;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 1024 && exec {} serve --plain-http --idle-timeout 2 --start-time epoch",
                env!("CARGO_BIN_EXE_dwsim")
            ))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("dwsim serve starts");
        let stdout = child.stdout.take().unwrap();
        let mut dataverse = None;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.trim_start().starts_with("Dataverse") {
                dataverse = line
                    .split_whitespace()
                    .find(|w| w.starts_with("http://"))
                    .map(str::to_string);
            }
            if line.contains("Ctrl-C stops") {
                break;
            }
        }
        Constrained {
            child,
            dataverse: dataverse.expect("serve printed the Dataverse origin"),
        }
    }
}

#[test]
fn a_full_file_table_does_not_silence_a_listener() {
    let served = Constrained::start();
    let addr = served
        .dataverse
        .strip_prefix("http://")
        .unwrap()
        .to_string();
    let (host, port) = addr.split_once(':').unwrap();
    // 1,100 idle connections from a process of their own (it raises its own limit), more
    // than the server has file descriptors for.
    let mut holder = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 4096 && exec python3 -c \"
import socket, sys
held = []
for _ in range(1100):
    try:
        held.append(socket.create_connection(('{host}', {port}), timeout=5))
    except OSError:
        pass
print(len(held), flush=True)
sys.stdin.read()
\""
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 holds the connections");
    let mut opened = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut opened,
    )
    .unwrap();
    assert!(
        opened.trim().parse::<usize>().unwrap_or(0) >= 1000,
        "held {opened}"
    );
    // A normal request is still answered: the idle ones time out and the listener, which
    // backs off while the table is full, accepts again.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let answer = agent
        .get(&format!("{}/api/data/v9.2/WhoAmI", served.dataverse))
        .call()
        .expect("answered after the idle connections");
    assert_eq!(
        answer.status(),
        401,
        "no token: the envelope, from a live server"
    );
    drop(holder.stdin.take());
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn a_server_answers_only_once_its_world_and_endpoints_are_set() {
    use std::io::BufRead;
    // Ports from a base below the ephemeral range, so the test can knock before serve says
    // it is ready (serve skips a port that is taken, so the knock may meet Entra: every
    // server answers the admin verbs).
    let base = 20_000 + (std::process::id() % 10_000) as u16;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dwsim"))
        .args([
            "serve",
            "--plain-http",
            "--no-admin-auth",
            "--port-base",
            &base.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let lcs = format!("http://127.0.0.1:{}", base + 1);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    // Knock until answered: the first answer is the whole harness, with real origins.
    let mut first = None;
    for _ in 0..2_000 {
        if let Ok(mut r) = agent.get(&format!("{lcs}/_dwsim/harness")).call() {
            first = Some((
                r.status().as_u16(),
                r.body_mut().read_to_string().unwrap_or_default(),
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (status, body) = first.expect("serve answered");
    assert_eq!(status, 200, "{body}");
    let harness: Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        harness["lcs"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{body}"
    );
    assert!(harness["dataverse"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let _ = child.kill();
    let _ = child.wait();
    // Drain what it printed, so the pipe does not hold it up.
    let _ = std::io::BufReader::new(child.stdout.take().unwrap())
        .lines()
        .count();
}

/// `PUT /_dwsim/state` over HTTP is read as it arrives (issue #10): the world stays the old
/// one, and answers, until the whole body has read; a body over the limit, one that stops
/// arriving, or one that is not a state export is refused with nothing imported.
#[test]
fn a_state_import_is_read_as_it_arrives_and_replaces_the_world_only_whole() {
    let h = plain(Limits {
        max_body_bytes: 8 * 1024 * 1024,
        body_timeout: Duration::from_millis(400),
        ..Limits::default()
    });
    let lcs = h.endpoints().lcs;
    let host = lcs.strip_prefix("http://").unwrap().to_string();
    let capacity = || {
        let r = h
            .send("GET", &format!("{lcs}/_dwsim/lcs"), &[], &[])
            .unwrap();
        r.json()["dataverse_capacity_mb"].as_i64().unwrap()
    };
    let before = capacity();
    let mut state = h
        .send("GET", &format!("{lcs}/_dwsim/state?secrets=true"), &[], &[])
        .unwrap()
        .json();
    state["lcs"]["dataverse_capacity_mb"] = json!(before + 1000);
    let body = state.to_string();
    let (first, rest) = body.as_bytes().split_at(body.len() / 2);
    let chunk = |bytes: &[u8]| {
        let mut c = format!("{:x}\r\n", bytes.len()).into_bytes();
        c.extend_from_slice(bytes);
        c.extend_from_slice(b"\r\n");
        c
    };
    let head = format!(
        "PUT /_dwsim/state HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let put = |parts: &[Vec<u8>], pause_after_first: bool| {
        let mut s = TcpStream::connect(&host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        for (i, part) in parts.iter().enumerate() {
            s.write_all(part).unwrap();
            if i == 0 && pause_after_first {
                // Half the state has arrived: the old world answers meanwhile.
                std::thread::sleep(Duration::from_millis(100));
                assert_eq!(capacity(), before, "the old world, until the import ends");
            }
        }
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status: u16 = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        (status, text)
    };

    // Stops arriving half way: 408, nothing imported.
    let (status, text) = put(&[chunk(first)], false);
    assert_eq!(status, 408, "{text}");
    assert_eq!(capacity(), before);
    // Over the body limit (the whole state, then blanks), though its JSON has ended: 413.
    let blanks = vec![b' '; 9 * 1024 * 1024];
    let (status, text) = put(&[chunk(body.as_bytes()), chunk(&blanks)], false);
    assert_eq!(status, 413, "{text}");
    assert!(
        body_json(&text)["ErrorMessage"].is_string(),
        "LCS's envelope: {text}"
    );
    assert_eq!(
        text.matches("content-type:").count(),
        1,
        "the envelope's content type, once: {text}"
    );
    assert_eq!(capacity(), before);
    // Not a state: 400, nothing imported.
    let (status, text) = put(
        &[chunk(b"{\"nonsense\": true"), b"0\r\n\r\n".to_vec()],
        false,
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not a dwsim world export"), "{text}");
    assert_eq!(capacity(), before);
    // Read as it arrives: a body that goes wrong in its first bytes is refused then, while
    // the rest has not come (a body read whole first would wait for it: 408).
    let (status, text) = put(&[chunk(b"nonsense")], false);
    assert_eq!(status, 400, "refused at once, not timed out: {text}");
    assert!(text.contains("not a dwsim world export"), "{text}");

    // In two pieces with a pause between them: 204, then the new world.
    let end = b"0\r\n\r\n".to_vec();
    let (status, text) = put(&[chunk(first), chunk(rest), end], true);
    assert_eq!(status, 204, "{text}");
    assert_eq!(capacity(), before + 1000);
    // The export (written in pieces and sent by the front) reads back as what was imported.
    let exported = h
        .send("GET", &format!("{lcs}/_dwsim/state?secrets=true"), &[], &[])
        .unwrap();
    assert_eq!(exported.header("content-type"), Some("application/json"));
    assert_eq!(exported.json(), state);
    // Both verbs are journalled with the status the client got.
    let journal = h
        .send("GET", &format!("{lcs}/_dwsim/journal"), &[], &[])
        .unwrap()
        .json();
    let state_verbs: Vec<(&str, u64)> = journal
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] == "/_dwsim/state")
        .map(|e| (e["method"].as_str().unwrap(), e["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        state_verbs,
        [
            ("GET", 200),
            ("PUT", 408),
            ("PUT", 413),
            ("PUT", 400),
            ("PUT", 400),
            ("PUT", 204),
            ("GET", 200)
        ]
    );

    // Refused by the admin checks before its body: answered at once, not after waiting for
    // a body that does not come (the socket's read gives up after 10 s, the body's after 60).
    let sim = Sim::from_world(common::world(9, Start::Existing, Start::Existing));
    sim.set_admin_key(Some("the-key".into()));
    let keyed = Http::start(sim, Options::plain()).expect("servers");
    let keyed_lcs = keyed.endpoints().lcs;
    let (status, text) = raw(
        &keyed_lcs,
        format!(
            "PUT /_dwsim/state HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{",
            keyed_lcs.strip_prefix("http://").unwrap()
        )
        .as_bytes(),
    );
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("connection: close"), "{text}");

    // The same import in process (the transport `dwsim run` uses) reads the same way.
    let sim = Sim::from_world(common::world(9, Start::Existing, Start::Existing));
    let mut req = dwsim_protocol::Request::new("PUT", "/_dwsim/state");
    req.body = body.clone().into();
    let resp = sim.handle(&dwsim_protocol::Server::Lcs, req);
    assert_eq!(resp.status, 204);
    assert_eq!(sim.world().lcs.dataverse_capacity_mb, before + 1000);
}
