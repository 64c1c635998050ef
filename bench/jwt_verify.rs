//! Microseconds of CPU per `auth::jwt::Verifier::verify`, by algorithm, uncached (every
//! call checks the signature: `verify_uncached`) and cached (the same token again, the
//! common case of a client reusing its token). `ring alone` is the signature check by
//! itself on the same bytes, so `uncached - ring alone` is this module's own work (base64,
//! header and claims JSON, claim checks, the result's allocations).
//!
//! ```text
//! cargo run --release --example jwt_verify [-- ITERATIONS]
//! ```
//! The RSA key is the test key of `src/auth/testdata/`; EC and Ed25519 keys are generated.

use std::hint::black_box;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};
use switchyard::auth::jwt::{JwtPolicy, Verifier};

const SECRET: &str = "a benchmark secret of at least thirty-two bytes";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token(alg: &str, kid: &str, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
    let signed = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = sign(signed.as_bytes());
    format!("{signed}.{}", b64(&signature))
}

fn policy(algorithms: Value, keys: Value) -> JwtPolicy {
    let mut policy = json!({
        "algorithms": algorithms,
        "issuer": "https://issuer.example",
        "audience": "api://bench",
    });
    for (name, value) in keys.as_object().expect("keys") {
        policy[name] = value.clone();
    }
    serde_json::from_value(policy).expect("policy")
}

fn measure(
    name: &str,
    verifier: &Verifier,
    token: &str,
    now: u64,
    iterations: u32,
    ring_alone: impl Fn(&[u8], &[u8]) -> bool,
) {
    verifier
        .verify(token, now)
        .expect("the benchmark token verifies");
    for _ in 0..iterations / 20 {
        let _ = black_box(verifier.verify_uncached(black_box(token), now));
    }
    let started = Instant::now();
    for _ in 0..iterations {
        let _ = black_box(verifier.verify_uncached(black_box(token), now));
    }
    let uncached = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    let started = Instant::now();
    for _ in 0..iterations {
        let _ = black_box(verifier.verify(black_box(token), now));
    }
    let cached = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    let (signed, signature) = token.rsplit_once('.').expect("three parts");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("signature");
    assert!(ring_alone(signed.as_bytes(), &signature));
    let started = Instant::now();
    for _ in 0..iterations {
        black_box(ring_alone(
            black_box(signed.as_bytes()),
            black_box(&signature),
        ));
    }
    let alone = started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    println!(
        "{name:<6} {:>5} B  uncached {uncached:>8.2} µs  cached {cached:>6.3} µs  ring alone {alone:>8.2} µs",
        token.len()
    );
}

fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("ITERATIONS is a number"))
        .unwrap_or(20_000);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = json!({
        "iss": "https://issuer.example",
        "aud": ["api://bench", "other"],
        "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
        "iat": now - 60,
        "exp": now + 3600,
        "scope": "read:items write:items openid profile",
        "permissions": ["read:items", "write:items"],
        "azp": "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW",
    });
    let rng = SystemRandom::new();

    let rsa = RsaKeyPair::from_pkcs8(include_bytes!("../src/auth/testdata/rsa2048.pk8"))
        .expect("test RSA key");
    let mut rsa_jwk: Value =
        serde_json::from_str(include_str!("../src/auth/testdata/rsa2048.pub.json"))
            .expect("RSA JWK");
    rsa_jwk["kid"] = json!("rsa");
    let ec_alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let ec_doc = EcdsaKeyPair::generate_pkcs8(ec_alg, &rng).expect("P-256");
    let ec = EcdsaKeyPair::from_pkcs8(ec_alg, ec_doc.as_ref(), &rng).expect("P-256");
    let point = ec.public_key().as_ref();
    let ec_jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec",
        "x": b64(&point[1..33]), "y": b64(&point[33..])});
    let ed_doc = Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519");
    let ed = Ed25519KeyPair::from_pkcs8(ed_doc.as_ref()).expect("Ed25519");
    let ed_jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed",
        "x": b64(ed.public_key().as_ref())});

    let public = Verifier::new(&policy(
        json!(["RS256", "ES256", "EdDSA"]),
        json!({"jwks": {"keys": [rsa_jwk, ec_jwk, ed_jwk]}}),
    ))
    .expect("public verifier");
    let hmac =
        Verifier::new(&policy(json!(["HS256"]), json!({"secret": SECRET}))).expect("hmac verifier");

    let rs256 = token("RS256", "rsa", &claims, |message| {
        let mut out = vec![0; rsa.public().modulus_len()];
        rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
            .expect("sign");
        out
    });
    let es256 = token("ES256", "ec", &claims, |message| {
        ec.sign(&rng, message).expect("sign").as_ref().to_vec()
    });
    let eddsa = token("EdDSA", "ed", &claims, |message| {
        ed.sign(message).as_ref().to_vec()
    });
    let hs256 = token("HS256", "hs", &claims, |message| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
        ring::hmac::sign(&key, message).as_ref().to_vec()
    });

    let rsa_public: Value =
        serde_json::from_str(include_str!("../src/auth/testdata/rsa2048.pub.json"))
            .expect("RSA JWK");
    let component = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(rsa_public[name].as_str().expect("component"))
            .expect("base64url")
    };
    let (n, e) = (component("n"), component("e"));
    let ec_point = ec.public_key().as_ref().to_vec();
    let ed_point = ed.public_key().as_ref().to_vec();
    let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());

    println!("{iterations} iterations each");
    measure("RS256", &public, &rs256, now, iterations, |message, sig| {
        signature::RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
            .is_ok()
    });
    measure("ES256", &public, &es256, now, iterations, |message, sig| {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &ec_point)
            .verify(message, sig)
            .is_ok()
    });
    measure("EdDSA", &public, &eddsa, now, iterations, |message, sig| {
        signature::UnparsedPublicKey::new(&signature::ED25519, &ed_point)
            .verify(message, sig)
            .is_ok()
    });
    measure("HS256", &hmac, &hs256, now, iterations, |message, sig| {
        ring::hmac::verify(&hmac_key, message, sig).is_ok()
    });
}
