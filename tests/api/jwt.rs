//! The `jwt` policy against the real server: RS256 and ES256 tokens signed here, a JWKS
//! served by a real HTTP server started in the test (fetched on first use, refreshed on an
//! unknown `kid`), HS256 with a shared secret, and the whole matrix of refusals, scopes,
//! permissions and subjects, each answer checked for its status, `WWW-Authenticate` and
//! JSON body.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::helpers::{TestApp, User, assert_error, header, json_body, spawn_app};

const ISSUER: &str = "https://tenant.example.auth0.com/";
const AUDIENCE: &str = "https://api.example.com";
const SECRET: &str = "a shared secret of at least thirty-two bytes";

static RSA: LazyLock<RsaKeyPair> = LazyLock::new(|| {
    RsaKeyPair::from_pkcs8(include_bytes!("../../src/auth/testdata/rsa2048.pk8")).expect("RSA")
});
static P256: LazyLock<(EcdsaKeyPair, Value)> = LazyLock::new(|| {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate P-256");
    let pair = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).expect("P-256");
    let point = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])});
    (pair, jwk)
});

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The RSA test key's public JWK, with `kid`.
fn rsa_jwk(kid: &str) -> Value {
    let mut jwk: Value =
        serde_json::from_str(include_str!("../../src/auth/testdata/rsa2048.pub.json"))
            .expect("JWK");
    jwk["kid"] = json!(kid);
    jwk
}

fn p256_jwk(kid: &str) -> Value {
    let mut jwk = P256.1.clone();
    jwk["kid"] = json!(kid);
    jwk
}

/// A compact JWS of `claims` with `header`, signed as its `alg` says.
fn token(header: Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let rng = SystemRandom::new();
    let signature = match header["alg"].as_str().unwrap_or_default() {
        "RS256" => {
            let mut out = vec![0; RSA.public().modulus_len()];
            RSA.sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut out,
            )
            .expect("sign");
            out
        }
        "ES256" => P256
            .0
            .sign(&rng, input.as_bytes())
            .expect("sign")
            .as_ref()
            .to_vec(),
        "HS256" => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
            ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
        }
        _ => Vec::new(),
    };
    format!("{input}.{}", b64(&signature))
}

/// Claims valid for an hour, with `extra` merged in.
fn claims(extra: Value) -> Value {
    let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1",
                            "iat": now() - 10, "exp": now() + 3600});
    if let (Some(map), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            map.insert(k.clone(), v.clone());
        }
    }
    claims
}

fn rs256(extra: Value) -> String {
    token(
        json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"}),
        &claims(extra),
    )
}

/// A JWKS server: answers every request with the current body, counting them.
struct Jwks {
    url: String,
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

impl Jwks {
    async fn start(keys: Value) -> Jwks {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().expect("addr")
        );
        let body = Arc::new(Mutex::new(json!({"keys": keys}).to_string()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (body.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().expect("body").clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Jwks { url, body, hits }
    }

    fn serve(&self, keys: Value) {
        *self.body.lock().expect("body") = json!({"keys": keys}).to_string();
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn mock(id: &str, path: &str, auth: Option<Value>) -> Value {
    let mut endpoint = json!({"id": id, "method": "GET", "path": path,
                              "response": {"json": {"endpoint": id}}});
    if let Some(auth) = auth {
        endpoint["auth"] = auth;
    }
    endpoint
}

/// Alice's `shop` under `policy` with the matrix's endpoints.
async fn shop(policy: Value) -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let endpoints = json!([
        mock("items", "/items", None),
        mock(
            "write",
            "/write",
            Some(json!({"scopes": ["read:items", "write:items"]}))
        ),
        mock(
            "perm",
            "/perm",
            Some(json!({"permissions": ["read:reports"]}))
        ),
        mock("m2m", "/m2m", Some(json!({"subjects": ["abc@clients"]}))),
        mock("open", "/open", Some(json!({"public": true}))),
    ]);
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(&alice.token),
            Some(&json!({"name": "shop", "auth": policy, "endpoints": endpoints})),
        )
        .await;
    let status = response.status();
    assert_eq!(status, StatusCode::CREATED, "{}", json_body(response).await);
    (app, alice)
}

fn rs_policy(jwks_url: &str) -> Value {
    json!({"type": "jwt", "algorithms": ["RS256", "ES256"], "jwks_url": jwks_url,
           "issuer": ISSUER, "audience": AUDIENCE, "jwks_refresh_min_secs": 1})
}

async fn call(app: &TestApp, path: &str, authorization: Option<&str>) -> reqwest::Response {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    app.send(Method::GET, path, None, &headers, None).await
}

async fn bearer(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    call(app, path, Some(&format!("Bearer {token}"))).await
}

/// Asserts a 401 `invalid_token` whose message contains `says`.
async fn invalid(response: reqwest::Response, says: &str) {
    assert_eq!(
        header(&response, "www-authenticate"),
        r#"Bearer realm="alice/shop", error="invalid_token""#
    );
    let body = assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{says}: {body}");
}

#[tokio::test]
async fn tokens_are_verified_against_the_jwks_and_refused_with_the_reason() {
    let jwks = Jwks::start(json!([rsa_jwk("rsa-1"), p256_jwk("ec-1")])).await;
    let (app, _) = shop(rs_policy(&jwks.url)).await;
    // No credentials, or another scheme: 401 with the bearer challenge.
    for authorization in [None, Some("Basic YWxpY2U6c2VjcmV0"), Some("Bearer ")] {
        let r = call(&app, "/alice/shop/items", authorization).await;
        assert_eq!(
            header(&r, "www-authenticate"),
            r#"Bearer realm="alice/shop""#
        );
        assert_error(r, StatusCode::UNAUTHORIZED, "credentials_required").await;
    }
    // Valid RS256 (the key set is fetched on first use) and ES256.
    let r = bearer(&app, "/alice/shop/items", &rs256(json!({}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_body(r).await, json!({"endpoint": "items"}));
    let es = token(json!({"alg": "ES256", "kid": "ec-1"}), &claims(json!({})));
    assert_eq!(
        bearer(&app, "/alice/shop/items", &es).await.status(),
        StatusCode::OK
    );
    assert_eq!(jwks.hits(), 1, "one fetch serves both");
    // The refusals, each with its reason; none ever repeats the token.
    let expired = rs256(json!({"exp": now() - 120}));
    invalid(bearer(&app, "/alice/shop/items", &expired).await, "expired").await;
    let early = rs256(json!({"nbf": now() + 600}));
    invalid(
        bearer(&app, "/alice/shop/items", &early).await,
        "not yet valid",
    )
    .await;
    let foreign = rs256(json!({"iss": "https://evil.example/"}));
    invalid(bearer(&app, "/alice/shop/items", &foreign).await, "issuer").await;
    let elsewhere = rs256(json!({"aud": ["https://other.example"]}));
    invalid(
        bearer(&app, "/alice/shop/items", &elsewhere).await,
        "audience",
    )
    .await;
    invalid(
        bearer(&app, "/alice/shop/items", "not.a.token").await,
        "malformed",
    )
    .await;
    invalid(
        bearer(&app, "/alice/shop/items", "garbage").await,
        "malformed",
    )
    .await;
    // HS256 to an RS256 policy (signed with the public key as the secret would be the
    // classic confusion; any HMAC is refused by the policy's list), and `alg: none`.
    let hs = token(json!({"alg": "HS256", "kid": "rsa-1"}), &claims(json!({})));
    invalid(bearer(&app, "/alice/shop/items", &hs).await, "HS256").await;
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims(json!({})).to_string().as_bytes())
    );
    invalid(bearer(&app, "/alice/shop/items", &none).await, "none").await;
    // A tampered payload.
    let good = rs256(json!({}));
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = b64(claims(json!({"sub": "admin"})).to_string().as_bytes());
    parts[1] = &forged;
    invalid(
        bearer(&app, "/alice/shop/items", &parts.join(".")).await,
        "signature",
    )
    .await;
    // An unknown kid: the set is fetched again (past the floor), and still lacks it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let unknown = token(json!({"alg": "RS256", "kid": "nobody"}), &claims(json!({})));
    invalid(bearer(&app, "/alice/shop/items", &unknown).await, "unknown").await;
    assert_eq!(jwks.hits(), 2);
    // The public endpoint answers whatever the token.
    let r = bearer(&app, "/alice/shop/open", &expired).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn scopes_permissions_and_subjects_decide_403s() {
    let jwks = Jwks::start(json!([rsa_jwk("rsa-1")])).await;
    let (app, _) = shop(rs_policy(&jwks.url)).await;
    let forbidden = |scope: &'static str| {
        move |r: reqwest::Response| async move {
            assert_eq!(
                header(&r, "www-authenticate"),
                format!(r#"Bearer realm="alice/shop", error="insufficient_scope"{scope}"#)
            );
            assert_error(r, StatusCode::FORBIDDEN, "insufficient_scope").await
        }
    };
    let write_scope = r#", scope="read:items write:items""#;
    // Scopes: missing, partly present, present.
    let r = bearer(&app, "/alice/shop/write", &rs256(json!({}))).await;
    forbidden(write_scope)(r).await;
    let r = bearer(
        &app,
        "/alice/shop/write",
        &rs256(json!({"scope": "read:items"})),
    )
    .await;
    let body = forbidden(write_scope)(r).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("write:items"),
        "{body}"
    );
    let r = bearer(
        &app,
        "/alice/shop/write",
        &rs256(json!({"scope": "openid read:items write:items"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Permissions: missing, wrong, present.
    for permissions in [json!(null), json!(["write:reports"])] {
        let r = bearer(
            &app,
            "/alice/shop/perm",
            &rs256(json!({"permissions": permissions})),
        )
        .await;
        let body = forbidden("")(r).await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("read:reports"),
            "{body}"
        );
    }
    let r = bearer(
        &app,
        "/alice/shop/perm",
        &rs256(json!({"permissions": ["read:reports"]})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Subjects: a machine-to-machine client allowed, a user not.
    let r = bearer(
        &app,
        "/alice/shop/m2m",
        &rs256(json!({"sub": "abc@clients"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bearer(&app, "/alice/shop/m2m", &rs256(json!({"sub": "user-1"}))).await;
    forbidden("")(r).await;
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_from_the_jwks() {
    let jwks = Jwks::start(json!([rsa_jwk("rsa-1")])).await;
    let (app, _) = shop(rs_policy(&jwks.url)).await;
    assert_eq!(
        bearer(&app, "/alice/shop/items", &rs256(json!({})))
            .await
            .status(),
        StatusCode::OK
    );
    // The issuer rotates: a new key (here the P-256 one) under a new kid.
    jwks.serve(json!([rsa_jwk("rsa-1"), p256_jwk("ec-2")]));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let rotated = token(json!({"alg": "ES256", "kid": "ec-2"}), &claims(json!({})));
    let r = bearer(&app, "/alice/shop/items", &rotated).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(jwks.hits(), 2);
    // Known kids never cause a fetch.
    for _ in 0..5 {
        let r = bearer(&app, "/alice/shop/items", &rotated).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(jwks.hits(), 2);
}

#[tokio::test]
async fn an_hs256_policy_and_a_script_that_sees_the_caller() {
    let (app, alice) = shop(
        json!({"type": "jwt", "algorithms": ["HS256"], "secret": SECRET,
                                   "issuer": ISSUER, "audience": [AUDIENCE, "other"]}),
    )
    .await;
    let script = r#"app.get("/me", (req) => req.auth);"#;
    let response = app
        .send(
            Method::PUT,
            "/admin/projects/alice/shop/script",
            Some(&alice.token),
            &[("content-type", "application/javascript")],
            Some(script.as_bytes().to_vec()),
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let hs = token(
        json!({"alg": "HS256"}),
        &claims(json!({"sub": "abc@clients", "scope": "read:items", "permissions": ["p"]})),
    );
    let r = bearer(&app, "/alice/shop/me", &hs).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me = json_body(r).await;
    assert_eq!(me["subject"], "abc@clients");
    assert_eq!(me["method"], "jwt");
    assert_eq!(me["scopes"], json!(["read:items"]));
    assert_eq!(me["permissions"], json!(["p"]));
    assert_eq!(me["claims"]["iss"], ISSUER);
    // An RS256 token to this HS256 policy is refused.
    invalid(
        bearer(&app, "/alice/shop/me", &rs256(json!({}))).await,
        "RS256",
    )
    .await;
    // A bad policy is refused by field, naming no secret.
    let response = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(
                &json!({"auth": {"type": "jwt", "algorithms": ["HS256"], "secret": "short",
                                  "issuer": ISSUER, "audience": AUDIENCE}}),
            ),
        )
        .await;
    let body = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["error"]["details"][0]["field"], "auth.secret");
    assert!(!body.to_string().contains("short"), "{body}");
    let response = app
        .call(
            Method::PATCH,
            "/admin/projects/alice/shop",
            Some(&alice.token),
            Some(&json!({"auth": {"type": "jwt", "algorithms": ["none"], "issuer": ISSUER, "audience": AUDIENCE}})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
