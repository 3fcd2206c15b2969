//! Signed JSON Web Tokens, as Entra issues them: RS256 over a header carrying the key id, the
//! public key published as a JSON Web Key Set, so a partner can verify what dwsim issues with
//! any JWT library.
//!
//! The signing key is a fixed 2048-bit RSA test key compiled into the binary
//! (`sim/model/keys/entra-signing-key.pk8`, PKCS#8 DER). It is no secret: it only signs tokens
//! of simulated tenants. Being fixed, and RSASSA-PKCS1-v1_5 being deterministic, the same
//! claims give the same token bytes in every run.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, RsaKeyPair};
use serde_json::{json, Map, Value};
use std::sync::{Arc, OnceLock};

const PKCS8: &[u8] = include_bytes!("../../keys/entra-signing-key.pk8");

/// The signing key and the identifiers Entra publishes for it.
struct SigningKey {
    pair: RsaKeyPair,
    /// The key id (`kid`), also its `x5t`: the base64url SHA-1 of the public key.
    kid: String,
}

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        // The key is compiled in and checked by this module's tests.
        let pair = RsaKeyPair::from_pkcs8(PKCS8).expect("the compiled-in signing key is valid");
        let digest = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            pair.public().as_ref(),
        );
        SigningKey {
            kid: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            pair,
        }
    })
}

/// The id of the key tokens are signed with, as their header and the key set name it.
pub fn key_id() -> &'static str {
    &key().kid
}

/// Signs `claims` as a compact JWS: `base64url(header).base64url(claims).base64url(signature)`.
pub fn sign(claims: &Value) -> String {
    let key = key();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5t": key.kid, "kid": key.kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.pair.public().modulus_len()];
    // PKCS#1 v1.5 is deterministic; the random source only blinds the private operation.
    key.pair
        .sign(
            &signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .expect("RSA signing with a valid key and a buffer of the modulus length");
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts with a JSON header and payload.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The header names another algorithm or key.
    #[error("the token is not signed with a key of this tenant")]
    UnknownKey,
    /// The signature does not match.
    #[error("the token's signature is invalid")]
    BadSignature,
}

/// A verified token's claims, shared.
type Claims = Arc<Map<String, Value>>;
type Verified = std::sync::Mutex<std::collections::HashMap<String, Claims>>;

/// Tokens already verified and their claims, so a client that sends the same bearer token on
/// every request pays for one RSA verification, not one per request. A signature never stops
/// being valid for the same bytes; the cache is only bounded, cleared when full.
fn verified() -> &'static Verified {
    static VERIFIED: OnceLock<Verified> = OnceLock::new();
    VERIFIED.get_or_init(Default::default)
}

/// Tokens the verification cache holds at most.
const VERIFIED_LIMIT: usize = 4096;

/// Verifies a compact JWS signed by [`sign`] and answers its claims (shared with the cache,
/// so a request that checks its token copies none of them).
pub fn verify(token: &str) -> Result<Claims, JwtError> {
    let cache = || verified().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(claims) = cache().get(token) {
        return Ok(claims.clone());
    }
    let claims = Arc::new(verify_signature(token)?);
    let mut cache = cache();
    if cache.len() >= VERIFIED_LIMIT {
        cache.clear();
    }
    cache.insert(token.to_string(), claims.clone());
    Ok(claims)
}

fn verify_signature(token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwtError::Malformed)
    };
    let header: Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| JwtError::Malformed)?;
    if header["alg"] != "RS256" || header["kid"] != key_id() {
        return Err(JwtError::UnknownKey);
    }
    let signed = &token[..token.len() - signature.len() - 1];
    signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        key().pair.public().as_ref(),
    )
    .verify(signed.as_bytes(), &decode(signature)?)
    .map_err(|_| JwtError::BadSignature)?;
    match serde_json::from_slice(&decode(payload)?) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(JwtError::Malformed),
    }
}

/// The public key as one JSON Web Key (RFC 7517), the shape of an entry of Entra's `keys`.
pub fn jwk(issuer: &str) -> Value {
    let key = key();
    let public: PublicKeyComponents<Vec<u8>> = key.pair.public().into();
    json!({
        "kty": "RSA",
        "use": "sig",
        "kid": key.kid,
        "x5t": key.kid,
        "n": URL_SAFE_NO_PAD.encode(&public.n),
        "e": URL_SAFE_NO_PAD.encode(&public.e),
        "issuer": issuer,
    })
}

/// Base64url without padding of a JSON value, as `client_info` carries its object.
pub fn encode_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let token = sign(&json!({"aud": "https://org.crm.dynamics.com", "n": 1}));
        assert_eq!(verify(&token).unwrap()["n"], 1);
        assert_eq!(
            token,
            sign(&json!({"aud": "https://org.crm.dynamics.com", "n": 1}))
        );
        let (head, _) = token.rsplit_once('.').unwrap();
        let forged = format!(
            "{}.{}.{}",
            head.split('.').next().unwrap(),
            URL_SAFE_NO_PAD.encode(r#"{"aud":"https://org.crm.dynamics.com","n":2}"#),
            token.rsplit('.').next().unwrap()
        );
        assert_eq!(verify(&forged), Err(JwtError::BadSignature));
        assert_eq!(verify("a.b"), Err(JwtError::Malformed));
    }

    #[test]
    fn the_key_set_carries_the_modulus_and_exponent() {
        let jwk = jwk("https://login.example/t/v2.0");
        assert_eq!(jwk["kid"], key_id());
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["n"].as_str().unwrap())
                .unwrap()
                .len(),
            256
        );
    }
}
