//! Each environment at the root of its own origin, over HTTPS with the local CA (issue #8,
//! items 1 and 2): the URLs answers carry connect, ports follow `--port-base` in creation
//! order, tokens are for one origin, and a client that does not trust the CA is refused.

mod common;

use dwsim_harness::client::{enc, Client};
use dwsim_harness::transport::{Http, Transport};
use dwsim_http::{Authority, Options};
use dwsim_model::world::{EXISTING_DATAVERSE, EXISTING_FNO};
use dwsim_model::Start;
use dwsim_protocol::{Server, Sim};
use std::sync::Arc;

fn existing() -> Sim {
    Sim::from_world(common::world(7, Start::Existing, Start::Existing))
}

#[test]
fn every_environment_answers_at_the_root_of_its_own_https_origin() {
    let h = Http::https(existing()).expect("servers");
    let c = Client::connect(&h).expect("client");
    let dv = c.dataverse_base(EXISTING_DATAVERSE);
    let fo = c.fno_base(EXISTING_FNO);
    assert!(dv.starts_with("https://127.0.0.1:"), "{dv}");
    assert!(fo.starts_with("https://127.0.0.1:"), "{fo}");
    assert_ne!(dv, fo, "one origin per environment");
    for origin in [&dv, &fo, &h.endpoints().entra, &h.endpoints().lcs] {
        let rest = origin.strip_prefix("https://127.0.0.1:").expect("loopback");
        assert!(
            rest.parse::<u16>().is_ok(),
            "no path below the origin: {origin}"
        );
    }

    let doc = c
        .dv("GET", EXISTING_DATAVERSE, "", None)
        .expect("service document");
    assert_eq!(doc.status, 200);
    assert_eq!(
        doc.json()["@odata.context"],
        format!("{dv}/api/data/v9.2/$metadata")
    );
    let companies = c
        .fno("GET", EXISTING_FNO, "Companies", None)
        .expect("companies");
    assert_eq!(companies.status, 200);
    assert!(companies.json()["@odata.context"]
        .as_str()
        .is_some_and(|s| s.starts_with(&format!("{fo}/data/$metadata"))));

    // The harness lists every environment with its origin.
    assert_eq!(c.harness["fno"][0]["url"], fo.as_str());
    assert_eq!(c.harness["dataverse"][0]["url"], dv.as_str());
    assert_eq!(
        c.harness["dataverse"][0]["web_api"],
        format!("{dv}/api/data/v9.2")
    );

    // Under the old path prefix nothing is found: the environment is the host.
    let prefixed = c
        .send_as(
            &dv,
            "GET",
            &format!("{dv}/{EXISTING_DATAVERSE}/api/data/v9.2/accounts"),
            &[],
            &[],
        )
        .expect("answered");
    assert_eq!(prefixed.status, 404);
}

#[test]
fn a_token_is_for_one_origin() {
    let h = Http::https(existing()).expect("servers");
    let c = Client::connect(&h).expect("client");
    let dv = c.dataverse_base(EXISTING_DATAVERSE);
    let fo = c.fno_base(EXISTING_FNO);
    let fno_token = format!("Bearer {}", c.token(&fo).expect("F&O token"));
    let refused = h
        .send(
            "GET",
            &format!("{dv}/api/data/v9.2/WhoAmI"),
            &[("Authorization", &fno_token)],
            &[],
        )
        .expect("answered");
    assert_eq!(refused.status, 401, "an F&O token is no good for Dataverse");
    // The real host name is an audience for the same environment, as before.
    let real = format!(
        "Bearer {}",
        c.token(&format!("https://{EXISTING_DATAVERSE}.crm.dynamics.com"))
            .expect("token")
    );
    let who = h
        .send(
            "GET",
            &format!("{dv}/api/data/v9.2/WhoAmI"),
            &[("Authorization", &real)],
            &[],
        )
        .expect("answered");
    assert_eq!(who.status, 200);
}

/// Ten free consecutive loopback ports, so a fixed `port_base` is testable.
fn free_port_run() -> u16 {
    (20_000u16..60_000)
        .step_by(97)
        .find(|base| (0..10).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()))
        .expect("a free run of ports")
}

#[test]
fn ports_follow_the_port_base_and_a_new_environment_gets_the_next_one() {
    let base = free_port_run();
    let sim = Sim::from_world(common::world(3, Start::New, Start::New));
    let h = Http::start(
        sim,
        Options {
            port_base: base,
            tls: Some(Arc::new(Authority::generate().expect("CA"))),
            limits: Default::default(),
        },
    )
    .expect("servers");
    let e = h.endpoints();
    assert_eq!(e.entra, format!("https://127.0.0.1:{base}"));
    assert_eq!(e.lcs, format!("https://127.0.0.1:{}", base + 1));
    assert!(
        e.environments().is_empty(),
        "a new world has no environment"
    );

    // Deploy an F&O environment from LCS: LCS's answer names its URL, which connects.
    let c = Client::connect(&h).expect("client");
    let project = c.project();
    let started = c
        .lcs(
            "POST",
            &format!(
                "/environment/v1/deploy/project/{project}?environmentName={}&demoData=false",
                enc("contosonew")
            ),
        )
        .expect("deploy");
    let env_id = started["EnvironmentId"].as_str().expect("id").to_string();
    c.lcs_wait(
        &env_id,
        started["OperationActivityId"].as_str().expect("op"),
    )
    .expect("deployed");
    let meta = c
        .lcs(
            "GET",
            &format!("/environmentinfo/v1/detail/project/{project}/?environmentId={env_id}"),
        )
        .expect("metadata");
    let url = meta["Data"][0]["EnvironmentEndpointBaseUrl"]
        .as_str()
        .expect("the environment's URL")
        .to_string();
    assert_eq!(url, format!("https://127.0.0.1:{}/", base + 2));
    let origin = url.trim_end_matches('/');
    let companies = c
        .send_as(origin, "GET", &format!("{origin}/data/Companies"), &[], &[])
        .expect("answered");
    assert_eq!(companies.status, 200, "{}", companies.text());
    assert_eq!(companies.json()["value"][0]["DataArea"], "dat");
    assert!(h
        .servers
        .origins()
        .iter()
        .any(|(s, o)| *s == Server::Fno("contosonew".into()) && o == origin));
}

#[test]
fn plain_http_serves_the_same_answers_on_http_urls() {
    let h = Http::plain(existing()).expect("servers");
    let c = Client::connect(&h).expect("client");
    let dv = c.dataverse_base(EXISTING_DATAVERSE);
    assert!(dv.starts_with("http://127.0.0.1:"), "{dv}");
    let doc = c.dv("GET", EXISTING_DATAVERSE, "", None).expect("answered");
    assert_eq!(
        doc.json()["@odata.context"],
        format!("{dv}/api/data/v9.2/$metadata")
    );
}

#[test]
fn a_client_that_does_not_trust_the_local_ca_is_refused() {
    let h = Http::https(existing()).expect("servers");
    let url = format!("{}/_dwsim/harness", h.endpoints().lcs);
    // The public web PKI roots only: the local CA is not among them.
    let stranger: ureq::Agent = ureq::Agent::config_builder().build().into();
    let err = stranger
        .get(&url)
        .call()
        .expect_err("an untrusted certificate");
    assert!(
        err.to_string().to_ascii_lowercase().contains("certificate")
            || matches!(err, ureq::Error::Tls(_) | ureq::Error::Rustls(_)),
        "{err}"
    );
    // Trusting the CA PEM the servers give makes the same call work.
    let pem = h.servers.authority().expect("HTTPS").ca_pem().to_string();
    let ca = ureq::tls::Certificate::from_pem(pem.as_bytes()).expect("PEM");
    let friend: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ca])))
                .build(),
        )
        .build()
        .into();
    assert_eq!(friend.get(&url).call().expect("trusted").status(), 200);

    // Plain HTTP sent to the HTTPS origin is told so with a 400, not a dropped connection.
    let plain = url.replacen("https://", "http://", 1);
    let mut answer = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(&plain)
        .call()
        .expect("a plain HTTP answer");
    assert_eq!(answer.status(), 400);
    let body = answer.body_mut().read_to_string().expect("body");
    assert!(
        body.contains("plain HTTP request was sent to an HTTPS port"),
        "{body}"
    );
}

#[test]
fn a_ca_kept_in_a_folder_is_trusted_across_runs() {
    let dir = std::env::temp_dir().join(format!("dwsim-ca-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let first = Authority::in_dir(&dir).expect("made");
    let second = Authority::in_dir(&dir).expect("reused");
    assert_eq!(first.ca_pem(), second.ca_pem());
    assert_eq!(
        std::fs::read_to_string(dir.join(dwsim_http::tls::CA_CERT_FILE)).expect("written"),
        first.ca_pem()
    );
    // A server with a leaf from the reloaded CA is trusted by a client of the first PEM.
    let h = Http::start(
        existing(),
        Options {
            port_base: 0,
            tls: Some(Arc::new(second)),
            limits: Default::default(),
        },
    )
    .expect("servers");
    let ca = ureq::tls::Certificate::from_pem(first.ca_pem().as_bytes()).expect("PEM");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ca])))
                .build(),
        )
        .build()
        .into();
    let url = format!("{}/_dwsim/harness", h.endpoints().lcs);
    assert_eq!(agent.get(&url).call().expect("trusted").status(), 200);
    let _ = std::fs::remove_dir_all(&dir);
}
