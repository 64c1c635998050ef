use std::sync::Arc;

use std::net::IpAddr;

use http::header::WWW_AUTHENTICATE;

use super::keys::{self, KeySet, NewKey};
use super::*;
use crate::error::Code;

/// A check that answers at once, as every `api_key` check does.
trait Now {
    fn now(self) -> Result<Option<Identity>, ApiError>;
}

impl Now for Result<Checked, ApiError> {
    fn now(self) -> Result<Option<Identity>, ApiError> {
        match self? {
            Checked::Now(identity) => Ok(identity),
            Checked::Later(_) => panic!("an api_key check never waits"),
        }
    }
}

fn head(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut request = http::Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap().into_parts().0
}

fn keyed(policy: AuthPolicy, keys: &[&NewKey]) -> Arc<ProjectAuth> {
    let records: Vec<_> = keys.iter().map(|k| k.record.clone()).collect();
    Arc::new(ProjectAuth::compile(
        &policy,
        "/alice/shop",
        Arc::new(KeySet::from_records(&records)),
    ))
}

fn header_policy() -> AuthPolicy {
    AuthPolicy::ApiKey {
        header: None,
        query: None,
        subject_header: None,
    }
}

fn challenge(error: &ApiError) -> &str {
    let (name, value) = &**error.header.as_ref().expect("a challenge header");
    assert_eq!(name, WWW_AUTHENTICATE);
    value.to_str().unwrap()
}

#[test]
fn an_open_project_looks_at_nothing() {
    let auth = Arc::new(ProjectAuth::compile(
        &AuthPolicy::None,
        "/alice/shop",
        Arc::default(),
    ));
    assert!(auth.is_open());
    let request = head("/x", &[("authorization", "Bearer garbage")]);
    assert!(auth.check(None, &request, 0).now().unwrap().is_none());
    let strict = EndpointAuth {
        scopes: vec!["read".into()],
        ..EndpointAuth::default()
    };
    assert!(
        auth.check(Some(&strict), &request, 0)
            .now()
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_key_in_its_header_identifies_the_caller() {
    let key = keys::generate("ci", vec!["read".into()], 1, None);
    let auth = keyed(header_policy(), &[&key]);
    let identity = auth
        .check(None, &head("/x", &[("x-api-key", &key.key)]), 2)
        .now()
        .unwrap()
        .unwrap();
    assert_eq!(&*identity.subject, "ci");
    assert_eq!(identity.method, "api_key");
    assert_eq!(identity.scopes(), &["read".into()] as &[Box<str>]);
}

#[test]
fn no_key_is_a_401_with_a_challenge() {
    let auth = keyed(header_policy(), &[]);
    let error = auth.check(None, &head("/x", &[]), 2).now().unwrap_err();
    assert_eq!(error.code, Code::CredentialsRequired);
    assert_eq!(
        challenge(&error),
        "ApiKey realm=\"alice/shop\", header=\"x-api-key\""
    );
    assert!(error.message.contains("x-api-key"), "{}", error.message);
    // An empty header is no key either.
    let error = auth
        .check(None, &head("/x", &[("x-api-key", "")]), 2)
        .now()
        .unwrap_err();
    assert_eq!(error.code, Code::CredentialsRequired);
}

#[test]
fn a_wrong_or_expired_key_is_invalid_and_never_echoed() {
    let key = keys::generate("ci", vec![], 1, Some(1_000));
    let auth = keyed(header_policy(), &[&key]);
    let wrong = format!("{}x", &key.key[..key.key.len() - 1]);
    for (presented, now, says) in [
        (wrong.as_str(), 2, "not one of this project's"),
        ("garbage", 2, "not one of this project's"),
        (key.key.as_str(), 1_000, "expired"),
    ] {
        let error = auth
            .check(None, &head("/x", &[("x-api-key", presented)]), now)
            .now()
            .unwrap_err();
        assert_eq!(error.code, Code::InvalidToken);
        assert!(error.message.contains(says), "{}", error.message);
        assert!(!error.message.contains(presented));
        assert!(challenge(&error).ends_with("error=\"invalid_token\""));
    }
}

#[test]
fn a_key_in_a_query_parameter() {
    let key = keys::generate("ci", vec![], 1, None);
    let policy = AuthPolicy::ApiKey {
        header: None,
        query: Some("api_key".into()),
        subject_header: None,
    };
    let auth = keyed(policy, &[&key]);
    let uri = format!("/x?page=2&api_key={}", key.key);
    assert!(
        auth.check(None, &head(&uri, &[]), 2)
            .now()
            .unwrap()
            .is_some()
    );
    // Not in the header.
    let error = auth
        .check(None, &head("/x", &[("x-api-key", &key.key)]), 2)
        .now()
        .unwrap_err();
    assert_eq!(error.code, Code::CredentialsRequired);
    assert!(challenge(&error).contains("query=\"api_key\""));
}

#[test]
fn a_custom_header() {
    let key = keys::generate("ci", vec![], 1, None);
    let policy = AuthPolicy::ApiKey {
        header: Some("X-Shop-Key".into()),
        query: None,
        subject_header: None,
    };
    let auth = keyed(policy, &[&key]);
    assert!(
        auth.check(None, &head("/x", &[("x-shop-key", &key.key)]), 2)
            .now()
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_public_endpoint_asks_for_nothing() {
    let auth = keyed(header_policy(), &[]);
    let public = EndpointAuth {
        public: true,
        ..EndpointAuth::default()
    };
    let request = head(
        "/x",
        &[("x-api-key", "garbage"), ("authorization", "Basic !!")],
    );
    assert!(
        auth.check(Some(&public), &request, 2)
            .now()
            .unwrap()
            .is_none()
    );
}

#[test]
fn scopes_permissions_and_subjects_are_required() {
    let reader = keys::generate("reader", vec!["read".into()], 1, None);
    let both = keys::generate("both", vec!["read".into(), "write".into()], 1, None);
    let auth = keyed(header_policy(), &[&reader, &both]);
    let needs = |scopes: &[&str], permissions: &[&str], subjects: &[&str]| EndpointAuth {
        public: false,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        permissions: permissions.iter().map(|s| s.to_string()).collect(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
    };
    let call = |key: &NewKey, required: &EndpointAuth| {
        auth.check(Some(required), &head("/x", &[("x-api-key", &key.key)]), 2)
            .now()
    };
    let write = needs(&["read", "write"], &[], &[]);
    assert!(call(&both, &write).is_ok());
    let error = call(&reader, &write).unwrap_err();
    assert_eq!(error.code, Code::InsufficientScope);
    assert_eq!(error.code.status(), http::StatusCode::FORBIDDEN);
    assert!(error.message.contains("`write`"), "{}", error.message);
    assert_eq!(
        challenge(&error),
        "ApiKey realm=\"alice/shop\", error=\"insufficient_scope\", scope=\"read write\""
    );
    let only_both = needs(&[], &[], &["both"]);
    assert!(call(&both, &only_both).is_ok());
    let error = call(&reader, &only_both).unwrap_err();
    assert_eq!(error.code, Code::InsufficientScope);
    assert!(error.message.contains("`reader`"), "{}", error.message);
    // A key holds no permissions.
    let error = call(&both, &needs(&[], &["read:items"], &[])).unwrap_err();
    assert_eq!(error.code, Code::InsufficientScope);
    assert!(error.message.contains("read:items"), "{}", error.message);
}

#[test]
fn query_values_are_found_by_exact_name() {
    assert_eq!(query_value("a=1&api_key=k&b=2", "api_key"), Some("k"));
    assert_eq!(query_value("xapi_key=k", "api_key"), None);
    assert_eq!(query_value("api_key", "api_key"), None);
    assert_eq!(query_value("", "api_key"), None);
}

#[test]
fn other_keys_keep_the_policy() {
    let key = keys::generate("ci", vec![], 1, None);
    let auth = keyed(header_policy(), &[]);
    let records = [key.record.clone()];
    let more = Arc::new(auth.with_keys(Arc::new(KeySet::from_records(&records))));
    assert!(
        more.check(None, &head("/x", &[("x-api-key", &key.key)]), 2)
            .now()
            .unwrap()
            .is_some()
    );
}

#[test]
fn an_address_sending_invalid_keys_is_held_back_and_others_are_not() {
    let key = keys::generate("ci", vec![], 1, None);
    let auth = keyed(header_policy(), &[&key]);
    let from = |ip: [u8; 4], presented: &str| {
        auth.check_from(
            None,
            &head("/x", &[("x-api-key", presented)]),
            2,
            IpAddr::from(ip),
            None,
        )
    };
    let guesser = [203, 0, 113, 7];
    for _ in 0..FAILURES_PER_MINUTE {
        let error = from(guesser, "garbage").now().unwrap_err();
        assert_eq!(error.code, Code::InvalidToken);
    }
    let error = from(guesser, "garbage").now().unwrap_err();
    assert_eq!(error.code, Code::TooManyRequests);
    assert!(error.header.is_some(), "Retry-After");
    // Held back: even a right key waits, unchecked.
    let error = from(guesser, &key.key).now().unwrap_err();
    assert_eq!(error.code, Code::TooManyRequests);
    // Another address is not.
    assert!(from([198, 51, 100, 1], &key.key).now().unwrap().is_some());
    assert_eq!(
        from([198, 51, 100, 1], "garbage").now().unwrap_err().code,
        Code::InvalidToken
    );
}
