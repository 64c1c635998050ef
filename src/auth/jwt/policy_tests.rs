//! Policy tests: serde (what users write) and validation, error by field.

use serde_json::{Value, json};

use super::tests::{ED25519, P256, RSA, SECRET};
use super::*;

fn parse(value: Value) -> Result<JwtPolicy, String> {
    serde_json::from_value(value).map_err(|error| error.to_string())
}

/// The fields named by validation of `value` under the prefix `auth.`.
fn fields(value: Value) -> Vec<(String, String)> {
    let policy = parse(value).expect("parses");
    let mut errors = Vec::new();
    policy.validate("auth.", &mut errors);
    errors
        .into_iter()
        .map(|error| (error.field, error.message))
        .collect()
}

fn names(value: Value) -> Vec<String> {
    fields(value).into_iter().map(|(field, _)| field).collect()
}

fn base() -> Value {
    json!({"issuer": "https://issuer.example", "audience": "api"})
}

fn with(mut value: Value, extra: Value) -> Value {
    for (name, field) in extra.as_object().expect("object") {
        value[name] = field.clone();
    }
    value
}

#[test]
fn defaults_and_round_trip() {
    let policy = parse(with(
        base(),
        json!({"algorithms": ["RS256"], "jwks_url": "https://k.example/jwks"}),
    ))
    .expect("parses");
    assert_eq!(policy.leeway_secs, DEFAULT_LEEWAY_SECS);
    assert_eq!(policy.jwks_refresh_min_secs, DEFAULT_JWKS_REFRESH_MIN_SECS);
    assert_eq!(policy.jwks_timeout_ms, DEFAULT_JWKS_TIMEOUT_MS);
    assert_eq!(policy.jwks_max_age_secs, DEFAULT_JWKS_MAX_AGE_SECS);
    assert_eq!(policy.audience.as_slice(), ["api".to_owned()]);
    let text = serde_json::to_string(&policy).expect("serializes");
    assert_eq!(
        parse(serde_json::from_str(&text).expect("json")).expect("again"),
        policy
    );
    assert!(!text.contains("secret"));

    let hmac = parse(with(
        base(),
        json!({"algorithms": ["HS256"], "secret": SECRET, "audience": ["a", "b"]}),
    ))
    .expect("parses");
    let value = serde_json::to_value(&hmac).expect("serializes");
    assert_eq!(
        value["secret"],
        json!(SECRET),
        "the admin API round-trips the secret"
    );
    assert_eq!(value["audience"], json!(["a", "b"]));
    assert_eq!(parse(value).expect("again"), hmac);
}

#[test]
fn redacted_hides_the_secret() {
    let hmac = parse(with(
        base(),
        json!({"algorithms": ["HS256"], "secret": SECRET}),
    ))
    .expect("parses");
    let redacted = hmac.redacted();
    assert_eq!(redacted.secret.as_deref(), Some(REDACTED));
    let logged = format!(
        "{redacted:?} {}",
        serde_json::to_string(&redacted).expect("json")
    );
    assert!(!logged.contains(SECRET));
    assert_eq!(redacted.issuer, hmac.issuer);
    let public = parse(with(
        base(),
        json!({"algorithms": ["ES256"], "jwks_url": "https://k.example"}),
    ))
    .expect("parses");
    assert_eq!(public.redacted(), public);
}

#[test]
fn serde_refuses_unknown_fields_none_and_bad_types() {
    let error = parse(with(
        base(),
        json!({"algorithms": ["RS256"], "jwks_uri": "https://k"}),
    ))
    .expect_err("unknown");
    assert!(error.contains("jwks_uri"), "{error}");
    let error = parse(with(base(), json!({"algorithms": ["none"]}))).expect_err("none");
    assert!(error.contains("none"), "{error}");
    assert!(parse(with(base(), json!({"algorithms": ["rs256"]}))).is_err());
    let error = parse(with(
        base(),
        json!({"algorithms": ["RS256"], "audience": 5}),
    ))
    .expect_err("audience");
    assert!(error.contains("a string or a list of strings"), "{error}");
    let error = parse(json!({"algorithms": ["RS256"], "audience": "a"})).expect_err("issuer");
    assert!(error.contains("issuer"), "{error}");
    assert!(
        parse(json!({"issuer": "i", "audience": "a"})).is_err(),
        "algorithms are required"
    );
}

#[test]
fn valid_policies_have_no_errors() {
    assert_eq!(
        names(with(
            base(),
            json!({"algorithms": ["HS256", "HS512"], "secret": SECRET})
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        names(with(
            base(),
            json!({"algorithms": ["RS256", "ES256"], "jwks_url": "http://keys.local:8080/jwks"})
        )),
        Vec::<String>::new()
    );
    let jwks = json!({"keys": [RSA.jwk("a"), P256.jwk("b"), ED25519.jwk("c")]});
    assert_eq!(
        names(with(
            base(),
            json!({"algorithms": ["PS256", "ES256", "EdDSA"], "jwks": jwks})
        )),
        Vec::<String>::new()
    );
}

#[test]
fn algorithms() {
    assert_eq!(
        names(with(base(), json!({"algorithms": [], "secret": SECRET}))),
        ["auth.algorithms"]
    );
    let mixed = fields(with(
        base(),
        json!({"algorithms": ["HS256", "RS256"], "secret": SECRET}),
    ));
    assert_eq!(mixed[0].0, "auth.algorithms");
    assert!(mixed[0].1.contains("mix"), "{}", mixed[0].1);
    assert_eq!(
        names(with(
            base(),
            json!({"algorithms": ["RS256", "RS256"], "jwks_url": "https://k.example"})
        )),
        ["auth.algorithms"]
    );
}

#[test]
fn hmac_needs_a_long_secret_and_no_key_set() {
    assert_eq!(
        names(with(base(), json!({"algorithms": ["HS256"]}))),
        ["auth.secret"]
    );
    let short = fields(with(
        base(),
        json!({"algorithms": ["HS384"], "secret": "too short"}),
    ));
    assert_eq!(short[0].0, "auth.secret");
    assert!(
        !short[0].1.contains("too short"),
        "the message does not repeat the secret"
    );
    assert_eq!(
        names(with(
            base(),
            json!({"algorithms": ["HS256"], "secret": SECRET, "jwks_url": "https://k.example", "jwks": {"keys": []}})
        )),
        ["auth.jwks", "auth.jwks_url"]
    );
}

#[test]
fn public_keys_need_exactly_one_source() {
    assert_eq!(
        names(with(base(), json!({"algorithms": ["RS256"]}))),
        ["auth.jwks_url"]
    );
    let both = with(
        base(),
        json!({"algorithms": ["RS256"], "jwks_url": "https://k.example", "jwks": {"keys": [RSA.jwk("a")]}}),
    );
    assert_eq!(names(both), ["auth.jwks_url"]);
    assert_eq!(
        names(with(
            base(),
            json!({"algorithms": ["ES256"], "secret": SECRET, "jwks_url": "https://k.example"})
        )),
        ["auth.secret"]
    );
    for url in [
        "ftp://k.example/jwks",
        "/jwks.json",
        "not a url",
        "https://user:pw@k.example/",
    ] {
        assert_eq!(
            names(with(
                base(),
                json!({"algorithms": ["RS256"], "jwks_url": url})
            )),
            ["auth.jwks_url"],
            "{url}"
        );
    }
}

#[test]
fn inline_key_sets_name_the_bad_key() {
    let check = |jwks: Value, algorithms: Value| {
        fields(with(
            base(),
            json!({"algorithms": algorithms, "jwks": jwks}),
        ))
    };
    assert_eq!(
        check(json!([RSA.jwk("a")]), json!(["RS256"]))[0].0,
        "auth.jwks"
    );
    assert_eq!(
        check(json!({"keys": "x"}), json!(["RS256"]))[0].0,
        "auth.jwks"
    );
    assert_eq!(
        check(json!({"keys": []}), json!(["RS256"]))[0].0,
        "auth.jwks.keys"
    );
    // An EC key under RSA-only algorithms: named by its index.
    let errors = check(
        json!({"keys": [RSA.jwk("a"), P256.jwk("b")]}),
        json!(["RS256"]),
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, "auth.jwks.keys[1]");
    assert!(
        errors[0].1.contains("P-256") && errors[0].1.contains("RS256"),
        "{}",
        errors[0].1
    );

    let mut small = RSA.jwk("a");
    small["n"] = json!(tests::b64(&[0xC5; 128]));
    let mut bad_b64 = P256.jwk("b");
    bad_b64["x"] = json!("not base64!");
    let mut short_x = ED25519.jwk("c");
    short_x["x"] = json!(tests::b64(&[1; 31]));
    let mut private = ED25519.jwk("d");
    private["d"] = json!(tests::b64(&[1; 32]));
    let mut wrong_alg = RSA.jwk("e");
    wrong_alg["alg"] = json!("ES256");
    let mut encryption = RSA.jwk("f");
    encryption["use"] = json!("enc");
    let mut even = RSA.jwk("g");
    even["e"] = json!(tests::b64(&[1, 0, 0]));
    let keys = json!({"keys": [
        small, bad_b64, short_x, private, wrong_alg, encryption, even,
        {"kty": "oct", "k": "c2VjcmV0"}, {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "RSA"}, "a string", {"kty": "OKP", "crv": "X25519", "x": "AA"}
    ]});
    let errors = check(keys, json!(["RS256", "ES256", "EdDSA"]));
    let named: Vec<&str> = errors.iter().map(|(field, _)| field.as_str()).collect();
    assert_eq!(
        named,
        (0..12)
            .map(|index| format!("auth.jwks.keys[{index}]"))
            .collect::<Vec<_>>()
    );
    assert!(errors[0].1.contains("1024 bits"), "{}", errors[0].1);
    assert!(errors[3].1.contains("private"), "{}", errors[3].1);
    // Messages never hold key material.
    for (_, message) in &errors {
        assert!(
            !message.contains("c2VjcmV0") && !message.contains("xcXF"),
            "{message}"
        );
    }
}

#[test]
fn claims_and_timing_settings() {
    let errors = names(with(
        json!({"issuer": "", "audience": ["ok", ""]}),
        json!({"algorithms": ["HS256"], "secret": SECRET, "leeway_secs": 601, "jwks_timeout_ms": 0,
               "jwks_refresh_min_secs": 0, "jwks_max_age_secs": 1}),
    ));
    assert_eq!(
        errors,
        [
            "auth.issuer",
            "auth.audience[1]",
            "auth.leeway_secs",
            "auth.jwks_timeout_ms",
            "auth.jwks_refresh_min_secs",
            "auth.jwks_max_age_secs"
        ]
    );
    assert_eq!(
        names(with(
            json!({"issuer": "i", "audience": []}),
            json!({"algorithms": ["HS256"], "secret": SECRET})
        )),
        ["auth.audience"]
    );
    assert_eq!(
        names(with(
            json!({"issuer": "i", "audience": ""}),
            json!({"algorithms": ["HS256"], "secret": SECRET})
        )),
        ["auth.audience"]
    );
    assert_eq!(
        names(with(
            base(),
            json!({"algorithms": ["HS256"], "secret": SECRET, "leeway_secs": 600})
        )),
        Vec::<String>::new()
    );
}
