//! Entra as MSAL and azure-identity meet it (issue #8 item 3): the discovery documents with
//! every field OpenID Connect Discovery requires, a key set that verifies the tokens, instance
//! and user realm discovery, signed access tokens with Entra's claims, the password grant's
//! ID token, client info and refresh token, and the AADSTS errors for bad credentials.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dwsim_harness::client::{enc, Client};
use dwsim_harness::transport::{Http, Reply, Transport};
use dwsim_model::world::EXISTING_DATAVERSE;
use dwsim_model::Start;
use dwsim_protocol::Sim;
use serde_json::Value;

fn servers() -> Http {
    common::serve(common::world(7, Start::Existing, Start::Existing))
}

fn get(h: &Http, url: &str) -> Reply {
    h.send("GET", url, &[], &[]).expect("answered")
}

fn post_form(h: &Http, url: &str, form: &str) -> Reply {
    h.send(
        "POST",
        url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .expect("answered")
}

/// The claims of a compact JWT, without checking it.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

/// Verifies an RS256 JWT with a JSON Web Key, as a partner's JWT library would.
fn verifies_with(jwt: &str, jwk: &Value) -> bool {
    let (signed, signature) = jwt.rsplit_once('.').expect("signature");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(signed.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    if header["alg"] != "RS256" || header["kid"] != jwk["kid"] {
        return false;
    }
    let part = |k: &str| URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap();
    ring::signature::RsaPublicKeyComponents {
        n: part("n"),
        e: part("e"),
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signed.as_bytes(),
        &URL_SAFE_NO_PAD.decode(signature).unwrap(),
    )
    .is_ok()
}

#[test]
fn discovery_documents_name_every_required_field_on_the_served_origin() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let entra = h.endpoints().entra;
    let tenant = c.harness["tenant_id"].as_str().unwrap().to_string();
    assert!(entra.starts_with("https://127.0.0.1:"), "{entra}");

    for (path, issuer) in [
        (
            format!("{tenant}/v2.0/.well-known/openid-configuration"),
            format!("{entra}/{tenant}/v2.0"),
        ),
        (
            format!("{tenant}/.well-known/openid-configuration"),
            format!("{entra}/{tenant}/"),
        ),
    ] {
        let doc = get(&h, &format!("{entra}/{path}"));
        assert_eq!(doc.status, 200, "{path}");
        let doc = doc.json();
        // OpenID Connect Discovery 1.0 §3: the REQUIRED provider metadata.
        for field in [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        ] {
            assert!(!doc[field].is_null(), "{path} lacks {field}");
        }
        assert_eq!(doc["issuer"], issuer.as_str());
        for url in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
            assert!(
                doc[url]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{entra}/{tenant}/")),
                "{url}: {}",
                doc[url]
            );
        }
        let keys = get(&h, doc["jwks_uri"].as_str().unwrap());
        assert_eq!(keys.status, 200);
        assert_eq!(keys.json()["keys"][0]["kty"], "RSA");
    }
    // `common` carries the placeholder Entra puts there.
    let common = get(
        &h,
        &format!("{entra}/common/v2.0/.well-known/openid-configuration"),
    )
    .json();
    assert_eq!(common["issuer"], format!("{entra}/{{tenantid}}/v2.0"));

    let instance = get(
        &h,
        &format!(
            "{entra}/common/discovery/instance?api-version=1.1&authorization_endpoint={}",
            enc(&format!("{entra}/{tenant}/oauth2/v2.0/authorize"))
        ),
    );
    assert_eq!(instance.status, 200);
    let instance = instance.json();
    assert_eq!(
        instance["tenant_discovery_endpoint"],
        format!("{entra}/{tenant}/v2.0/.well-known/openid-configuration")
    );
    let host = entra.strip_prefix("https://").unwrap();
    assert_eq!(instance["metadata"][0]["aliases"][0], host);
    let missing = get(
        &h,
        &format!("{entra}/common/discovery/instance?api-version=1.1"),
    );
    assert_eq!(missing.status, 400);
    assert_eq!(missing.json()["error_codes"][0], 900144);

    let user = c.harness["username"].as_str().unwrap();
    let realm = get(
        &h,
        &format!("{entra}/common/userrealm/{user}?api-version=1.0"),
    )
    .json();
    assert_eq!(realm["account_type"], "Managed");
    let stranger = get(
        &h,
        &format!("{entra}/common/userrealm/nobody@example.com?api-version=1.0"),
    )
    .json();
    assert_eq!(stranger["account_type"], "Unknown");

    let unknown = get(
        &h,
        &format!("{entra}/no-such-tenant/v2.0/.well-known/openid-configuration"),
    );
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.json()["error_codes"][0], 90002);
}

#[test]
fn access_tokens_are_signed_jwts_with_entras_claims() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let entra = h.endpoints().entra;
    let tenant = c.harness["tenant_id"].as_str().unwrap().to_string();
    let dv = c.dataverse_base(EXISTING_DATAVERSE);
    let token = c.token(&dv).expect("token");

    let keys = get(&h, &format!("{entra}/{tenant}/discovery/v2.0/keys")).json();
    assert!(
        verifies_with(&token, &keys["keys"][0]),
        "signature verifies"
    );
    let claims = claims(&token);
    assert_eq!(claims["aud"], dv.as_str());
    assert_eq!(claims["iss"], format!("{entra}/{tenant}/"));
    assert_eq!(claims["tid"], tenant.as_str());
    assert_eq!(claims["appid"], c.harness["client_id"]);
    assert_eq!(claims["appidacr"], "1");
    assert_eq!(claims["ver"], "1.0");
    assert!(claims["roles"].is_array());
    assert!(claims["oid"].as_str().is_some_and(|o| o.len() == 36));
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["nbf"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert!(iat <= nbf && exp - iat == 3599, "{iat} {nbf} {exp}");

    // A token whose claims were changed is refused by the resource server.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut forged = claims.clone();
    forged["appid"] = Value::String("00000000-0000-0000-0000-000000000000".into());
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    let reply = h
        .send(
            "GET",
            &format!("{dv}/api/data/v9.2/WhoAmI"),
            &[("Authorization", &format!("Bearer {}", parts.join(".")))],
            &[],
        )
        .unwrap();
    assert_eq!(reply.status, 401);
    let good = h
        .send(
            "GET",
            &format!("{dv}/api/data/v9.2/WhoAmI"),
            &[("Authorization", &format!("Bearer {token}"))],
            &[],
        )
        .unwrap();
    assert_eq!(good.status, 200, "{}", good.text());
}

#[test]
fn a_user_sign_in_gets_an_id_token_client_info_and_a_refresh_token() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let entra = h.endpoints().entra;
    let tenant = c.harness["tenant_id"].as_str().unwrap().to_string();
    let dv = c.dataverse_base(EXISTING_DATAVERSE);
    let hv = |k: &str| c.harness[k].as_str().unwrap().to_string();
    let token_url = format!("{entra}/{tenant}/oauth2/v2.0/token");

    let signed_in = post_form(
        &h,
        &token_url,
        &format!(
            "grant_type=password&client_id={}&client_secret={}&username={}&password={}&scope={}",
            enc(&hv("client_id")),
            enc(&hv("client_secret")),
            enc(&hv("username")),
            enc(&hv("password")),
            enc(&format!("openid profile offline_access {dv}/.default"))
        ),
    );
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    let body = signed_in.json();
    let id = claims(body["id_token"].as_str().expect("id_token"));
    assert_eq!(id["aud"], hv("client_id").as_str());
    assert_eq!(id["iss"], format!("{entra}/{tenant}/v2.0"));
    assert_eq!(id["preferred_username"], hv("username").as_str());
    assert_eq!(id["ver"], "2.0");
    let info: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(body["client_info"].as_str().expect("client_info"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info["utid"], tenant.as_str());
    assert_eq!(info["uid"], id["oid"]);
    // MSAL caches the token under the scopes answered, so the `.default` asked for is among them.
    assert_eq!(
        body["scope"],
        format!("{dv}/user_impersonation {dv}/.default")
    );
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["upn"], hv("username").as_str());
    assert_eq!(access["scp"], "user_impersonation");

    // The refresh token gets a new access token for another resource, for this client only.
    let refresh = body["refresh_token"].as_str().expect("refresh_token");
    let fo = c.fno_base(dwsim_model::world::EXISTING_FNO);
    let refreshed = post_form(
        &h,
        &token_url,
        &format!(
            "grant_type=refresh_token&client_id={}&client_secret={}&refresh_token={}&scope={}",
            enc(&hv("client_id")),
            enc(&hv("client_secret")),
            enc(refresh),
            enc(&format!("{fo}/.default"))
        ),
    );
    assert_eq!(refreshed.status, 200, "{}", refreshed.text());
    assert_eq!(
        claims(refreshed.json()["access_token"].as_str().unwrap())["aud"],
        fo.as_str()
    );
    let tampered = post_form(
        &h,
        &token_url,
        &format!(
            "grant_type=refresh_token&client_id={}&refresh_token={}x&scope={}",
            enc(&hv("client_id")),
            enc(refresh),
            enc(&format!("{fo}/.default"))
        ),
    );
    assert_eq!(tampered.status, 400);
    assert_eq!(tampered.json()["error"], "invalid_grant");
}

#[test]
fn bad_credentials_get_entras_aadsts_errors() {
    let h = servers();
    let c = Client::connect(&h).expect("client");
    let entra = h.endpoints().entra;
    let tenant = c.harness["tenant_id"].as_str().unwrap().to_string();
    let dv = c.dataverse_base(EXISTING_DATAVERSE);
    let hv = |k: &str| c.harness[k].as_str().unwrap().to_string();
    let scope = enc(&format!("{dv}/.default"));
    let cases = [
        // The password grant checks the secret a confidential client sends.
        (
            format!(
                "grant_type=password&client_id={}&client_secret=wrong&username={}&password={}&scope={scope}",
                enc(&hv("client_id")),
                enc(&hv("username")),
                enc(&hv("password"))
            ),
            tenant.clone(),
            401,
            7000215,
        ),
        (
            format!(
                "grant_type=client_credentials&client_id={}&client_secret=wrong&scope={scope}",
                enc(&hv("client_id"))
            ),
            tenant.clone(),
            401,
            7000215,
        ),
        (
            format!(
                "grant_type=client_credentials&client_id=11111111-1111-1111-1111-111111111111&client_secret=x&scope={scope}"
            ),
            tenant.clone(),
            400,
            700016,
        ),
        (
            format!(
                "grant_type=password&client_id={}&username={}&password=wrong&scope={scope}",
                enc(&hv("client_id")),
                enc(&hv("username"))
            ),
            tenant.clone(),
            400,
            50126,
        ),
        (
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}&scope={scope}",
                enc(&hv("client_id")),
                enc(&hv("client_secret"))
            ),
            "no-such-tenant".to_string(),
            400,
            90002,
        ),
    ];
    for (form, tenant, status, code) in cases {
        let reply = post_form(&h, &format!("{entra}/{tenant}/oauth2/v2.0/token"), &form);
        assert_eq!(reply.status, status, "{form}: {}", reply.text());
        let body = reply.json();
        assert_eq!(body["error_codes"][0], code, "{form}");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .starts_with(&format!("AADSTS{code}:")));
    }
}

#[test]
fn tokens_keep_nothing_in_the_world() {
    let sim = Sim::from_world(common::world(7, Start::Existing, Start::Existing));
    let h = Http::https(sim.clone()).expect("servers");
    let c = Client::connect(&h).expect("client");
    let dv = c.dataverse_base(EXISTING_DATAVERSE);
    let before = serde_json::to_string(&sim.world().tenant).unwrap().len();
    for _ in 0..20 {
        c.token(&dv).unwrap();
        c.forget_tokens();
    }
    assert_eq!(
        serde_json::to_string(&sim.world().tenant).unwrap().len(),
        before
    );
}
