//! Verification tests: tokens signed here with `ring` (the RSA key is a fixed test key in
//! `src/auth/testdata/`; EC and Ed25519 keys are generated per run).

use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};

use super::*;

pub(super) const NOW: u64 = 1_700_000_000;
pub(super) const ISSUER: &str = "https://issuer.example";
pub(super) const AUDIENCE: &str = "api://switchyard";
pub(super) const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

pub(super) static RSA_PUBLIC: &str = include_str!("../testdata/rsa2048.pub.json");

/// A test signing key.
pub(super) enum Signer {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Hmac(Vec<u8>),
}

pub(super) static RSA: LazyLock<Signer> = LazyLock::new(|| {
    Signer::Rsa(
        RsaKeyPair::from_pkcs8(include_bytes!("../testdata/rsa2048.pk8")).expect("test RSA key"),
    )
});

pub(super) fn p256() -> Signer {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate P-256");
    Signer::P256(EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).expect("P-256 key"))
}

pub(super) fn p384() -> Signer {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P384_SHA384_FIXED_SIGNING;
    let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate P-384");
    Signer::P384(EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).expect("P-384 key"))
}

pub(super) fn ed25519() -> Signer {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("generate Ed25519");
    Signer::Ed25519(Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("Ed25519 key"))
}

pub(super) static P256: LazyLock<Signer> = LazyLock::new(p256);
pub(super) static P384: LazyLock<Signer> = LazyLock::new(p384);
pub(super) static ED25519: LazyLock<Signer> = LazyLock::new(ed25519);
pub(super) static HMAC: LazyLock<Signer> = LazyLock::new(|| Signer::Hmac(SECRET.into()));

pub(super) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Signer {
    /// The public JWK, with `kid`.
    pub(super) fn jwk(&self, kid: &str) -> Value {
        let mut jwk = match self {
            Signer::Rsa(_) => serde_json::from_str(RSA_PUBLIC).expect("test RSA JWK"),
            Signer::P256(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
            }
            Signer::P384(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-384", "x": b64(&point[1..49]), "y": b64(&point[49..])})
            }
            Signer::Ed25519(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())})
            }
            Signer::Hmac(_) => json!({}),
        };
        jwk["kid"] = json!(kid);
        jwk
    }

    fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(pair) => {
                let padding: &dyn signature::RsaEncoding = match alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &rng, message, &mut out)
                    .expect("RSA sign");
                out
            }
            Signer::P256(pair) | Signer::P384(pair) => pair
                .sign(&rng, message)
                .expect("ECDSA sign")
                .as_ref()
                .to_vec(),
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Hmac(secret) => {
                let hmac = match alg {
                    "HS384" => ring::hmac::HMAC_SHA384,
                    "HS512" => ring::hmac::HMAC_SHA512,
                    _ => ring::hmac::HMAC_SHA256,
                };
                let key = ring::hmac::Key::new(hmac, secret);
                ring::hmac::sign(&key, message).as_ref().to_vec()
            }
        }
    }

    /// A compact JWS of `claims` with `header`.
    pub(super) fn token_with(&self, header: &Value, claims: &Value) -> String {
        let alg = header["alg"].as_str().unwrap_or_default().to_owned();
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self.sign(&alg, signed.as_bytes());
        format!("{signed}.{}", b64(&signature))
    }

    /// A token with `alg` and `kid` (none for HMAC).
    pub(super) fn token(&self, alg: &str, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        self.token_with(&header, claims)
    }
}

/// Valid claims at [`NOW`], expiring in an hour.
pub(super) fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": NOW - 10,
        "exp": NOW + 3600,
    })
}

pub(super) fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().map(|map| map.remove(name));
    } else {
        claims[name] = value;
    }
    claims
}

pub(super) fn policy(algorithms: Value, keys: Value) -> JwtPolicy {
    let mut policy = json!({
        "algorithms": algorithms,
        "issuer": ISSUER,
        "audience": AUDIENCE,
    });
    for (name, value) in keys.as_object().expect("keys object") {
        policy[name] = value.clone();
    }
    serde_json::from_value(policy).expect("test policy")
}

fn verifier(algorithms: Value, keys: Value) -> Verifier {
    Verifier::new(&policy(algorithms, keys)).expect("test verifier")
}

/// A policy accepting every public-key algorithm, with the three test keys inline.
fn public_verifier() -> Verifier {
    verifier(
        json!([
            "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"
        ]),
        json!({"jwks": {"keys": [RSA.jwk("rsa"), P256.jwk("ec"), P384.jwk("ec384"), ED25519.jwk("ed")]}}),
    )
}

fn hmac_verifier() -> Verifier {
    verifier(json!(["HS256", "HS512"]), json!({"secret": SECRET}))
}

fn invalid(result: Result<Verified, Rejection>) -> Reason {
    match result {
        Err(Rejection::Invalid(reason)) => reason,
        Err(other) => panic!("expected an invalid token, got {other:?}"),
        Ok(verified) => panic!("expected a rejection, got {verified:?}"),
    }
}

fn malformed(result: Result<Verified, Rejection>) -> &'static str {
    match result {
        Err(Rejection::Malformed(why)) => why,
        other => panic!("expected a malformed token, got {other:?}"),
    }
}

#[test]
fn garbage_is_malformed() {
    let verifier = public_verifier();
    for token in ["", "abc", "a.b", "a.b.c.d", "..", ".e30.", "a..b"] {
        malformed(verifier.verify(token, NOW));
    }
    // Bad base64 in the header, and a header that is not JSON.
    malformed(verifier.verify("!!!.e30.c2ln", NOW));
    malformed(verifier.verify(&format!("{}.e30.c2ln", b64(b"not json")), NOW));
    malformed(verifier.verify(&format!("{}.e30.c2ln", b64(b"{\"typ\":\"JWT\"}")), NOW));
    // Padding is not base64url without padding.
    let token = RSA.token("RS256", Some("rsa"), &claims());
    malformed(verifier.verify(&format!("{token}="), NOW));
    // A signed payload that is not JSON.
    let header = b64(br#"{"alg":"HS256"}"#);
    let signed = format!("{header}.{}", b64(b"[1, 2"));
    let tag = HMAC.sign("HS256", signed.as_bytes());
    malformed(hmac_verifier().verify(&format!("{signed}.{}", b64(&tag)), NOW));
    // Too long.
    let long = format!("{}.{}.x", "a".repeat(9000), "b".repeat(9000));
    malformed(verifier.verify(&long, NOW));
}

#[test]
fn each_algorithm_verifies() {
    let verifier = public_verifier();
    for (signer, alg, kid) in [
        (&*RSA, "RS256", "rsa"),
        (&*RSA, "RS384", "rsa"),
        (&*RSA, "RS512", "rsa"),
        (&*RSA, "PS256", "rsa"),
        (&*P256, "ES256", "ec"),
        (&*P384, "ES384", "ec384"),
        (&*ED25519, "EdDSA", "ed"),
    ] {
        let token = signer.token(alg, Some(kid), &claims());
        let verified = verifier
            .verify(&token, NOW)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified.subject.as_deref(), Some("user-1"), "{alg}");
        assert_eq!(verified.expires_at, NOW + 3600);
    }
    let hmac = hmac_verifier();
    for alg in ["HS256", "HS512"] {
        let token = HMAC.token(alg, None, &claims());
        hmac.verify(&token, NOW)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
    }
    let hs384 =
        Verifier::new(&policy(json!(["HS384"]), json!({"secret": SECRET}))).expect("HS384 policy");
    hs384
        .verify(&HMAC.token("HS384", None, &claims()), NOW)
        .expect("HS384");
    // HS384 is not in that policy.
    let token = HMAC.token("HS384", None, &claims());
    assert_eq!(
        invalid(hmac.verify(&token, NOW)),
        Reason::DisallowedAlgorithm("HS384".into())
    );
}

#[test]
fn a_token_without_kid_tries_the_keys_of_its_family() {
    let verifier = public_verifier();
    let token = P256.token("ES256", None, &claims());
    assert!(verifier.verify(&token, NOW).is_ok());
    // Another P-256 key, not in the set.
    let token = p256().token("ES256", None, &claims());
    assert_eq!(invalid(verifier.verify(&token, NOW)), Reason::BadSignature);
}

#[test]
fn wrong_secret_or_key_is_a_bad_signature() {
    let token = Signer::Hmac(b"another secret, also 32 bytes long!!".to_vec()).token(
        "HS256",
        None,
        &claims(),
    );
    assert_eq!(
        invalid(hmac_verifier().verify(&token, NOW)),
        Reason::BadSignature
    );
    // An Ed25519 key not in the set, claiming the set's kid.
    let token = ed25519().token("EdDSA", Some("ed"), &claims());
    assert_eq!(
        invalid(public_verifier().verify(&token, NOW)),
        Reason::BadSignature
    );
}

#[test]
fn expiry_with_leeway() {
    let verifier = public_verifier();
    let expired = RSA.token(
        "RS256",
        Some("rsa"),
        &with(claims(), "exp", json!(NOW - 31)),
    );
    let rejection = verifier.verify(&expired, NOW).expect_err("expired");
    assert_eq!(rejection, Rejection::Invalid(Reason::Expired));
    assert!(rejection.to_string().contains("expired"), "{rejection}");
    // Within the 30 s leeway.
    let late = RSA.token(
        "RS256",
        Some("rsa"),
        &with(claims(), "exp", json!(NOW - 29)),
    );
    assert!(verifier.verify(&late, NOW).is_ok());
    // A fractional and a negative date.
    let fractional = RSA.token(
        "RS256",
        Some("rsa"),
        &with(claims(), "exp", json!(NOW as f64 + 0.5)),
    );
    assert!(verifier.verify(&fractional, NOW).is_ok());
    let negative = RSA.token("RS256", Some("rsa"), &with(claims(), "exp", json!(-5)));
    assert_eq!(invalid(verifier.verify(&negative, NOW)), Reason::Expired);
    // No leeway.
    let mut strict = policy(json!(["HS256"]), json!({"secret": SECRET}));
    strict.leeway_secs = 0;
    let strict = Verifier::new(&strict).expect("strict");
    let token = HMAC.token("HS256", None, &with(claims(), "exp", json!(NOW)));
    assert_eq!(invalid(strict.verify(&token, NOW)), Reason::Expired);
    assert!(strict.verify(&token, NOW - 1).is_ok());
}

#[test]
fn exp_is_required_and_dates_are_numbers() {
    let verifier = hmac_verifier();
    let token = HMAC.token("HS256", None, &with(claims(), "exp", Value::Null));
    assert_eq!(invalid(verifier.verify(&token, NOW)), Reason::MissingExpiry);
    for name in ["exp", "nbf", "iat"] {
        let token = HMAC.token("HS256", None, &with(claims(), name, json!("soon")));
        assert!(malformed(verifier.verify(&token, NOW)).contains(name));
    }
}

#[test]
fn not_yet_valid() {
    let verifier = hmac_verifier();
    let token = HMAC.token("HS256", None, &with(claims(), "nbf", json!(NOW + 31)));
    let rejection = verifier.verify(&token, NOW).expect_err("nbf");
    assert_eq!(rejection, Rejection::Invalid(Reason::NotYetValid));
    assert!(rejection.to_string().contains("not yet valid"));
    let token = HMAC.token("HS256", None, &with(claims(), "nbf", json!(NOW + 29)));
    assert!(verifier.verify(&token, NOW).is_ok());
    let token = HMAC.token("HS256", None, &with(claims(), "iat", json!(NOW + 120)));
    assert_eq!(invalid(verifier.verify(&token, NOW)), Reason::NotYetValid);
}

#[test]
fn issuer_and_audience() {
    let verifier = hmac_verifier();
    for iss in [
        json!("https://other.example"),
        json!(null),
        json!(["https://issuer.example"]),
    ] {
        let token = HMAC.token("HS256", None, &with(claims(), "iss", iss));
        assert_eq!(invalid(verifier.verify(&token, NOW)), Reason::WrongIssuer);
    }
    for aud in [
        json!("api://other"),
        json!(["a", "b"]),
        json!(null),
        json!(7),
        json!([7]),
    ] {
        let token = HMAC.token("HS256", None, &with(claims(), "aud", aud));
        assert_eq!(invalid(verifier.verify(&token, NOW)), Reason::WrongAudience);
    }
    let token = HMAC.token(
        "HS256",
        None,
        &with(claims(), "aud", json!(["a", AUDIENCE])),
    );
    assert!(verifier.verify(&token, NOW).is_ok());
    // A policy with several audiences accepts any of them.
    let mut many = policy(json!(["HS256"]), json!({"secret": SECRET}));
    many.audience = Audience::Many(vec!["one".into(), "two".into()]);
    let many = Verifier::new(&many).expect("audiences");
    let token = HMAC.token("HS256", None, &with(claims(), "aud", json!("two")));
    assert!(many.verify(&token, NOW).is_ok());
    let token = HMAC.token("HS256", None, &with(claims(), "aud", json!(["x", "one"])));
    assert!(many.verify(&token, NOW).is_ok());
    let token = HMAC.token("HS256", None, &claims());
    assert_eq!(invalid(many.verify(&token, NOW)), Reason::WrongAudience);
}

#[test]
fn unknown_kid() {
    let token = RSA.token("RS256", Some("rotated"), &claims());
    let rejection = public_verifier()
        .verify(&token, NOW)
        .expect_err("unknown kid");
    assert_eq!(
        rejection,
        Rejection::Invalid(Reason::UnknownKid {
            kid: "rotated".into(),
            refreshable: false
        })
    );
    // Inline keys: a refresh cannot help.
    assert!(!rejection.needs_refresh());
    // A policy whose keys come from a URL, before its first fetch.
    let remote = verifier(
        json!(["RS256"]),
        json!({"jwks_url": "https://keys.example/jwks.json"}),
    );
    let rejection = remote.verify(&token, NOW).expect_err("not fetched");
    assert!(rejection.needs_refresh(), "{rejection:?}");
    // A hostile kid is cut to printable ASCII.
    let token = RSA.token(
        "RS256",
        Some(&format!("a\u{7}b\n{}", "k".repeat(200))),
        &claims(),
    );
    let reason = invalid(public_verifier().verify(&token, NOW));
    let Reason::UnknownKid { kid, .. } = reason else {
        panic!("{reason:?}")
    };
    assert!(
        kid.starts_with("abkkk") && kid.chars().count() == 65,
        "{kid}"
    );
}

#[test]
fn algorithm_confusion_is_refused() {
    let rsa_only = verifier(
        json!(["RS256"]),
        json!({"jwks": {"keys": [RSA.jwk("rsa")]}}),
    );
    // HS256 signed with the RSA public key (its JWK text, and its modulus) as the secret.
    let modulus = URL_SAFE_NO_PAD
        .decode(RSA.jwk("rsa")["n"].as_str().expect("n"))
        .expect("modulus");
    for secret in [RSA_PUBLIC.as_bytes().to_vec(), modulus] {
        for kid in [None, Some("rsa")] {
            let token = Signer::Hmac(secret.clone()).token("HS256", kid, &claims());
            assert_eq!(
                invalid(rsa_only.verify(&token, NOW)),
                Reason::DisallowedAlgorithm("HS256".into())
            );
        }
    }
    // `none`, with and without a signature.
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims().to_string().as_bytes());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.c2ln"),
    ] {
        assert_eq!(
            invalid(rsa_only.verify(&token, NOW)),
            Reason::DisallowedAlgorithm("none".into())
        );
        assert_eq!(
            invalid(hmac_verifier().verify(&token, NOW)),
            Reason::DisallowedAlgorithm("none".into())
        );
    }
    // Algorithms outside the policy: another RSA one, EC, a lower-case spelling.
    let token = RSA.token("RS384", Some("rsa"), &claims());
    assert_eq!(
        invalid(rsa_only.verify(&token, NOW)),
        Reason::DisallowedAlgorithm("RS384".into())
    );
    let token = P256.token("ES256", Some("rsa"), &claims());
    assert_eq!(
        invalid(rsa_only.verify(&token, NOW)),
        Reason::DisallowedAlgorithm("ES256".into())
    );
    let token = RSA.token("rs256", Some("rsa"), &claims());
    assert_eq!(
        invalid(rsa_only.verify(&token, NOW)),
        Reason::DisallowedAlgorithm("rs256".into())
    );
    // An allowed alg, but the kid names a key of another family.
    let token = P256.token("ES256", Some("rsa"), &claims());
    assert_eq!(
        invalid(public_verifier().verify(&token, NOW)),
        Reason::BadSignature
    );
}

#[test]
fn a_key_restricted_by_its_alg() {
    let mut jwk = RSA.jwk("rsa");
    jwk["alg"] = json!("PS256");
    let verifier = verifier(json!(["RS256", "PS256"]), json!({"jwks": {"keys": [jwk]}}));
    assert!(
        verifier
            .verify(&RSA.token("PS256", Some("rsa"), &claims()), NOW)
            .is_ok()
    );
    let token = RSA.token("RS256", Some("rsa"), &claims());
    assert_eq!(invalid(verifier.verify(&token, NOW)), Reason::BadSignature);
}

#[test]
fn critical_headers_are_refused() {
    let header = json!({"alg": "HS256", "crit": ["exp"], "exp": 1});
    let token = HMAC.token_with(&header, &claims());
    assert!(malformed(hmac_verifier().verify(&token, NOW)).contains("critical"));
}

#[test]
fn tampering_is_a_bad_signature() {
    let verifier = public_verifier();
    for (signer, alg, kid) in [
        (&*RSA, "RS256", "rsa"),
        (&*P256, "ES256", "ec"),
        (&*ED25519, "EdDSA", "ed"),
    ] {
        let token = signer.token(alg, Some(kid), &claims());
        let (signed, signature) = token.rsplit_once('.').expect("three parts");
        let (header, _) = signed.split_once('.').expect("three parts");
        let forged = b64(with(claims(), "sub", json!("admin")).to_string().as_bytes());
        let tampered = format!("{header}.{forged}.{signature}");
        assert_eq!(
            invalid(verifier.verify(&tampered, NOW)),
            Reason::BadSignature,
            "{alg}"
        );
        // A flipped signature bit.
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("signature");
        bytes[5] ^= 1;
        let flipped = format!("{signed}.{}", b64(&bytes));
        assert_eq!(
            invalid(verifier.verify(&flipped, NOW)),
            Reason::BadSignature,
            "{alg}"
        );
        // A truncated signature.
        let short = format!("{signed}.{}", b64(&bytes[..bytes.len() - 1]));
        assert_eq!(
            invalid(verifier.verify(&short, NOW)),
            Reason::BadSignature,
            "{alg}"
        );
    }
    let token = HMAC.token("HS256", None, &claims());
    let (_, signature) = token.rsplit_once('.').expect("three parts");
    let forged = format!(
        "{}.{}.{signature}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(with(claims(), "sub", json!("admin")).to_string().as_bytes())
    );
    assert_eq!(
        invalid(hmac_verifier().verify(&forged, NOW)),
        Reason::BadSignature
    );
}

#[test]
fn subject_scopes_and_permissions() {
    let verifier = hmac_verifier();
    let token = HMAC.token(
        "HS256",
        None,
        &with(
            with(claims(), "scope", json!("read:items  write:items")),
            "permissions",
            json!(["delete:items", 7, "admin"]),
        ),
    );
    let verified = verifier.verify(&token, NOW).expect("valid");
    assert_eq!(verified.subject.as_deref(), Some("user-1"));
    assert_eq!(
        &*verified.scopes,
        &["read:items".into(), "write:items".into()] as &[Box<str>]
    );
    assert!(verified.has_scope("write:items") && !verified.has_scope("read"));
    assert_eq!(
        &*verified.permissions,
        &["delete:items".into(), "admin".into()] as &[Box<str>]
    );
    assert!(verified.has_permission("admin"));
    assert_eq!(verified.claims["iss"], json!(ISSUER));

    let token = HMAC.token(
        "HS256",
        None,
        &with(with(claims(), "scp", json!(["a", "b"])), "sub", json!(5)),
    );
    let verified = verifier.verify(&token, NOW).expect("valid");
    assert_eq!(&*verified.scopes, &["a".into(), "b".into()] as &[Box<str>]);
    assert!(verified.subject.is_none() && verified.permissions.is_empty());

    let token = HMAC.token("HS256", None, &with(claims(), "scp", json!("x y")));
    let verified = verifier.verify(&token, NOW).expect("valid");
    assert_eq!(verified.scopes.len(), 2);
}

#[test]
fn the_cache_answers_repeats_and_still_checks_time() {
    let verifier = public_verifier();
    let token = RSA.token(
        "RS256",
        Some("rsa"),
        &with(claims(), "exp", json!(NOW + 60)),
    );
    let first = verifier.verify(&token, NOW).expect("valid");
    let second = verifier.verify(&token, NOW + 1).expect("cached");
    assert!(
        Arc::ptr_eq(&first.0, &second.0),
        "a hit returns the cached claims"
    );
    assert_eq!(verifier.cache.len(), 1);
    // Past exp + leeway the cached token is refused.
    assert_eq!(
        invalid(verifier.verify(&token, NOW + 60 + 30)),
        Reason::Expired
    );
    // And before its nbf (a clock that went back).
    assert_eq!(
        invalid(verifier.verify(&token, NOW - 100)),
        Reason::NotYetValid
    );

    // A different token with the same prefix (the signature's last character changed) is
    // a miss, and fails its own check.
    let mut other = token.clone();
    let last = other.pop().expect("not empty");
    other.push(if last == 'A' { 'B' } else { 'A' });
    assert!(verifier.verify(&other, NOW).is_err());
    assert_eq!(verifier.cache.len(), 1, "a refused token is not cached");
    // Another valid token is another entry.
    let another = RSA.token("RS256", Some("rsa"), &with(claims(), "jti", json!("2")));
    let verified = verifier.verify(&another, NOW).expect("valid");
    assert!(!Arc::ptr_eq(&first.0, &verified.0));
    assert_eq!(verifier.cache.len(), 2);
}

#[test]
fn the_cache_is_bounded() {
    let verifier = hmac_verifier();
    for index in 0..(cache::SHARDS * cache::SLOTS + 500) {
        let token = HMAC.token("HS256", None, &with(claims(), "jti", json!(index)));
        verifier.verify(&token, NOW).expect("valid");
    }
    assert!(verifier.cache.len() <= cache::SHARDS * cache::SLOTS);
    assert!(verifier.cache.len() > cache::SHARDS * cache::SLOTS / 2);
}

#[test]
fn messages_hold_no_token_or_key() {
    let verifier = public_verifier();
    let good = RSA.token("RS256", Some("rsa"), &claims());
    let (signed, signature) = good.rsplit_once('.').expect("parts");
    let (header, payload) = signed.split_once('.').expect("parts");
    let expired = RSA.token(
        "RS256",
        Some("rsa"),
        &with(claims(), "exp", json!(NOW - 100)),
    );
    let tokens = [
        format!("{header}.{payload}.{}", &signature[..20]),
        format!("{header}.{}.{signature}", b64(b"{}")),
        expired.clone(),
        format!("{header}.{payload}"),
    ];
    let n = RSA.jwk("rsa")["n"].as_str().expect("n").to_owned();
    for token in &tokens {
        let message = verifier
            .verify(token, NOW)
            .expect_err("refused")
            .to_string();
        for part in token.split('.').filter(|part| part.len() > 8) {
            assert!(!message.contains(part), "{message}");
        }
        assert!(!message.contains(&n[..16]), "{message}");
    }
}

#[test]
fn new_refuses_an_invalid_policy() {
    let mut bad = policy(json!(["HS256"]), json!({"secret": "short"}));
    let Err(JwtError::Policy(errors)) = Verifier::new(&bad) else {
        panic!("a short secret")
    };
    assert_eq!(errors[0].field, "secret");
    bad.secret = Some(SECRET.into());
    assert!(Verifier::new(&bad).is_ok());
    let error = Verifier::new(&policy(json!([]), json!({}))).expect_err("no algorithms");
    assert!(error.to_string().contains("algorithms"), "{error}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_never_panics_on_strings(token in ".{0,300}") {
        let _ = public_verifier_shared().verify(&token, NOW);
        let _ = hmac_verifier_shared().verify(&token, NOW);
    }

    #[test]
    fn verify_never_panics_on_base64_parts(
        header in proptest::collection::vec(any::<u8>(), 0..80),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        signature in proptest::collection::vec(any::<u8>(), 0..300),
        alg in prop::sample::select(vec!["RS256", "ES256", "EdDSA", "HS256", "none", "PS256"]),
        kid in prop::sample::select(vec![None, Some("rsa"), Some("ec"), Some("ed"), Some("x")]),
        structured in any::<bool>(),
    ) {
        let header = if structured {
            let mut value = json!({"alg": alg});
            if let Some(kid) = kid {
                value["kid"] = json!(kid);
            }
            value.to_string().into_bytes()
        } else {
            header
        };
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        prop_assert!(public_verifier_shared().verify(&token, NOW).is_err());
        prop_assert!(hmac_verifier_shared().verify(&token, NOW).is_err());
    }

    #[test]
    fn verify_never_panics_on_signed_garbage_claims(payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let header = b64(br#"{"alg":"HS256"}"#);
        let signed = format!("{header}.{}", b64(&payload));
        let tag = HMAC.sign("HS256", signed.as_bytes());
        let _ = hmac_verifier_shared().verify(&format!("{signed}.{}", b64(&tag)), NOW);
    }
}

fn public_verifier_shared() -> &'static Verifier {
    static SHARED: LazyLock<Verifier> = LazyLock::new(public_verifier);
    &SHARED
}

fn hmac_verifier_shared() -> &'static Verifier {
    static SHARED: LazyLock<Verifier> = LazyLock::new(hmac_verifier);
    &SHARED
}
