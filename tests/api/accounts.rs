//! Register, login, logout, me, API tokens, registration modes and admin bootstrap.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchyard::config::{AdminBootstrap, Registration};

use crate::helpers::{
    PASSWORD, TestApp, assert_error, assert_invalid, header, json_body, spawn_app, spawn_app_with,
};

async fn register_form(app: &TestApp, form: &str) -> reqwest::Response {
    app.send(
        Method::POST,
        "/auth/register",
        None,
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes().to_vec()),
    )
    .await
}

async fn new_token(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.call(Method::POST, "/auth/tokens", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn registering_with_json_answers_the_new_account() {
    let app = spawn_app().await;
    let response = app.register("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        json_body(response).await,
        json!({"username": "alice", "role": "admin", "projects": []})
    );
}

#[tokio::test]
async fn registering_with_a_form_works_too() {
    let app = spawn_app().await;
    let response = register_form(&app, "username=alice&password=correct+horse+battery").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_body(response).await["username"], "alice");
    // The form's `+` is a space: the password is the one the helpers use.
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_first_user_is_admin_and_the_next_are_users() {
    let app = spawn_app().await;
    let first = json_body(app.register("alice", PASSWORD).await).await;
    let second = json_body(app.register("bob", PASSWORD).await).await;
    let third = json_body(app.register("carol", PASSWORD).await).await;
    assert_eq!(first["role"], "admin");
    assert_eq!(second["role"], "user");
    assert_eq!(third["role"], "user");
}

#[tokio::test]
async fn a_taken_name_is_409() {
    let app = spawn_app().await;
    app.user("alice").await;
    let response = app.register("alice", "another password").await;
    assert_error(response, StatusCode::CONFLICT, "username_taken").await;
    // The original password still works: nothing was overwritten.
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_user_names_are_422_naming_the_username() {
    let app = spawn_app().await;
    let too_long = "a".repeat(33);
    for name in [
        "Alice",
        too_long.as_str(),
        "admin",
        "auth",
        "health",
        "-alice",
        "_alice",
        "",
        "al ice",
        "al/ice",
        "ålice",
    ] {
        let response = app.register(name, PASSWORD).await;
        let body = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(body["error"]["details"][0]["field"], "username", "{name:?}");
    }
}

#[tokio::test]
async fn names_at_the_limits_are_accepted() {
    let app = spawn_app().await;
    for name in ["a".repeat(32), "0".to_owned(), "a1_-z".to_owned()] {
        let response = app.register(&name, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{name}");
    }
}

#[tokio::test]
async fn bad_passwords_are_422_naming_the_password() {
    let app = spawn_app().await;
    let too_long = "p".repeat(1025);
    for password in ["", "short", "7chars!", too_long.as_str()] {
        let response = app.register("alice", password).await;
        assert_invalid(response, "password").await;
    }
    assert_eq!(
        app.register("alice", "8 chars!").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_bad_name_and_a_bad_password_are_both_named() {
    let app = spawn_app().await;
    let response = app.register("Bad Name", "x").await;
    let body = assert_error(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert_eq!(fields, ["username", "password"]);
}

#[tokio::test]
async fn login_with_json_gives_a_bearer_token() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let response = app.login("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "cache-control"), "no-store");
    let body = json_body(response).await;
    assert!(
        body["access_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("sy_")),
        "{body}"
    );
    assert_eq!(body["token_type"], "bearer");
    assert!(body["expires_in"].as_i64().is_some_and(|s| s > 0), "{body}");
}

#[tokio::test]
async fn login_with_the_oauth2_password_form_gives_a_bearer_token() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let form = "grant_type=password&username=alice&password=correct%20horse%20battery&scope=";
    let response = app
        .send(
            Method::POST,
            "/auth/login",
            None,
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(form.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json_body(response).await;
    assert_eq!(body["token_type"], "bearer");
    let token = body["access_token"].as_str().expect("access_token");
    let me = app.call(Method::GET, "/auth/me", Some(token), None).await;
    assert_eq!(json_body(me).await["username"], "alice");
}

#[tokio::test]
async fn login_with_another_grant_type_is_422() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let response = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(&json!({"username": "alice", "password": PASSWORD, "grant_type": "client_credentials"})),
        )
        .await;
    assert_invalid(response, "grant_type").await;
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_401() {
    let app = spawn_app().await;
    app.register("alice", PASSWORD).await;
    let wrong = app.login("alice", "not the password").await;
    assert_eq!(header(&wrong, "www-authenticate"), "Bearer");
    let wrong = assert_error(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let unknown = app.login("nobody", PASSWORD).await;
    let unknown = assert_error(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
}

#[tokio::test]
async fn logout_ends_the_token() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let other = json_body(app.login(&alice.name, &alice.password).await).await;
    let other = other["access_token"].as_str().expect("token").to_owned();
    let response = app
        .call(Method::POST, "/auth/logout", Some(&alice.token), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let me = app
        .call(Method::GET, "/auth/me", Some(&alice.token), None)
        .await;
    assert_error(me, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let again = app
        .call(Method::POST, "/auth/logout", Some(&alice.token), None)
        .await;
    assert_error(again, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Another session of the same user is not affected.
    let me = app.call(Method::GET, "/auth/me", Some(&other), None).await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_without_a_token_is_401() {
    let app = spawn_app().await;
    let response = app.call(Method::POST, "/auth/logout", None, None).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn me_tells_who_i_am_with_my_projects() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&bob, "zeta").await;
    app.project(&bob, "alpha").await;
    app.project(&alice, "mine").await;
    let me = app
        .call(Method::GET, "/auth/me", Some(&bob.token), None)
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(
        json_body(me).await,
        json!({"username": "bob", "role": "user", "projects": ["alpha", "zeta"]})
    );
    let me = app
        .call(Method::GET, "/auth/me", Some(&alice.token), None)
        .await;
    assert_eq!(
        json_body(me).await,
        json!({"username": "alice", "role": "admin", "projects": ["mine"]})
    );
}

#[tokio::test]
async fn me_without_a_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let response = app.get("/auth/me").await;
    assert_eq!(header(&response, "www-authenticate"), "Bearer");
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn api_tokens_are_shown_once_and_listed_without_their_secret() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = new_token(&app, &alice.token, &json!({"name": "ci"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(header(&response, "cache-control"), "no-store");
    let created = json_body(response).await;
    let secret = created["token"].as_str().expect("token").to_owned();
    assert!(secret.starts_with("sy_"), "{secret}");
    assert_eq!(created["name"], "ci");
    assert!(created["expires_at"].is_null());
    let id = created["id"].as_str().expect("id").to_owned();

    let list = app
        .call(Method::GET, "/auth/tokens", Some(&alice.token), None)
        .await;
    assert_eq!(list.status(), StatusCode::OK);
    let text = list.text().await.expect("body");
    assert!(!text.contains(&secret), "the secret is never shown again");
    let list: Value = serde_json::from_str(&text).expect("JSON");
    let tokens = list["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 1, "login sessions are not listed: {list}");
    assert_eq!(tokens[0]["id"], id.as_str());
    assert_eq!(tokens[0]["name"], "ci");
    assert!(tokens[0].get("token").is_none());
}

#[tokio::test]
async fn tokens_are_listed_only_to_their_owner() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    new_token(&app, &alice.token, &json!({"name": "alices"})).await;
    let list = app
        .call(Method::GET, "/auth/tokens", Some(&bob.token), None)
        .await;
    assert_eq!(json_body(list).await, json!({"tokens": []}));
}

#[tokio::test]
async fn an_api_token_works_for_admin_calls() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let created = json_body(new_token(&app, &alice.token, &json!({"name": "ci"})).await).await;
    let secret = created["token"].as_str().expect("token");
    let response = app
        .call(
            Method::POST,
            "/admin/projects",
            Some(secret),
            Some(&json!({"name": "demo"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_body(response).await["owner"]["username"], "alice");
    let me = app.call(Method::GET, "/auth/me", Some(secret), None).await;
    assert_eq!(json_body(me).await["projects"], json!(["demo"]));
}

#[tokio::test]
async fn a_revoked_token_stops_working() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let created = json_body(new_token(&app, &alice.token, &json!({"name": "ci"})).await).await;
    let secret = created["token"].as_str().expect("token");
    let id = created["id"].as_str().expect("id");
    let response = app
        .call(
            Method::DELETE,
            &format!("/auth/tokens/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let me = app.call(Method::GET, "/auth/me", Some(secret), None).await;
    assert_error(me, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let list = app
        .call(Method::GET, "/auth/tokens", Some(&alice.token), None)
        .await;
    assert_eq!(json_body(list).await, json!({"tokens": []}));
    let again = app
        .call(
            Method::DELETE,
            &format!("/auth/tokens/{id}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(again, StatusCode::NOT_FOUND, "token_not_found").await;
}

#[tokio::test]
async fn deleting_someone_elses_or_an_unknown_token_is_404() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let created = json_body(new_token(&app, &alice.token, &json!({"name": "ci"})).await).await;
    let secret = created["token"].as_str().expect("token");
    let id = created["id"].as_str().expect("id");
    for path in [
        format!("/auth/tokens/{id}"),
        "/auth/tokens/tok_unknown".to_owned(),
    ] {
        let response = app
            .call(Method::DELETE, &path, Some(&bob.token), None)
            .await;
        assert_error(response, StatusCode::NOT_FOUND, "token_not_found").await;
    }
    // Alice's token survived bob's attempt.
    let me = app.call(Method::GET, "/auth/me", Some(secret), None).await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_lifetimes_are_validated() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for expires_in in [
        json!(0),
        json!(10 * 365 * 24 * 3600 + 1),
        json!(-1),
        json!("soon"),
    ] {
        let response = new_token(
            &app,
            &alice.token,
            &json!({"name": "ci", "expires_in": expires_in}),
        )
        .await;
        let body = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(
            body["error"]["details"][0]["field"], "expires_in",
            "{expires_in}"
        );
    }
    let response = new_token(
        &app,
        &alice.token,
        &json!({"name": "ci", "expires_in": 3600}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = json_body(response).await;
    assert!(body["expires_at"].is_string(), "{body}");
}

#[tokio::test]
async fn a_token_needs_a_name() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let too_long = "n".repeat(65);
    for body in [json!({"name": "   "}), json!({"name": too_long}), json!({})] {
        let response = new_token(&app, &alice.token, &body).await;
        let error = assert_error(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(error["error"]["details"][0]["field"], "name", "{body}");
    }
}

#[tokio::test]
async fn tokens_cannot_be_made_or_listed_without_a_token() {
    let app = spawn_app().await;
    let response = new_token(&app, "sy_not_a_real_token", &json!({"name": "ci"})).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = app.get("/auth/tokens").await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

fn closed_with_admin(config: &mut switchyard::config::Config) {
    config.registration = Some(Registration::Closed);
    config.admin = Some(AdminBootstrap {
        username: "root".into(),
        password: "root password".into(),
    });
}

#[tokio::test]
async fn closed_registration_refuses_anonymous_sign_ups() {
    let app = spawn_app_with(closed_with_admin).await;
    let response = app.register("alice", PASSWORD).await;
    assert_error(response, StatusCode::FORBIDDEN, "registration_closed").await;
    let response = register_form(&app, "username=alice&password=longenough").await;
    assert_error(response, StatusCode::FORBIDDEN, "registration_closed").await;
    // Nothing was created.
    let login = app.login("alice", PASSWORD).await;
    assert_error(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn closed_registration_refuses_even_the_first_user() {
    let app = spawn_app_with(|c| c.registration = Some(Registration::Closed)).await;
    let response = app.register("alice", PASSWORD).await;
    assert_error(response, StatusCode::FORBIDDEN, "registration_closed").await;
}

#[tokio::test]
async fn closed_registration_lets_an_admin_create_accounts() {
    let app = spawn_app_with(closed_with_admin).await;
    let login = json_body(app.login("root", "root password").await).await;
    let session = login["access_token"].as_str().expect("token");
    let created = json_body(new_token(&app, session, &json!({"name": "provisioning"})).await).await;
    let admin_token = created["token"].as_str().expect("token");

    let response = app
        .call(
            Method::POST,
            "/auth/register",
            Some(admin_token),
            Some(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_body(response).await["role"], "user");
    let response = app
        .call(
            Method::POST,
            "/auth/register",
            Some(admin_token),
            Some(&json!({"username": "ops", "password": PASSWORD, "role": "admin"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_body(response).await["role"], "admin");
    assert_eq!(app.login("alice", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn closed_registration_refuses_a_plain_user_too() {
    let app = spawn_app_with(closed_with_admin).await;
    let login = json_body(app.login("root", "root password").await).await;
    let root = login["access_token"].as_str().expect("token");
    app.call(
        Method::POST,
        "/auth/register",
        Some(root),
        Some(&json!({"username": "alice", "password": PASSWORD})),
    )
    .await;
    let login = json_body(app.login("alice", PASSWORD).await).await;
    let alice = login["access_token"].as_str().expect("token");
    let response = app
        .call(
            Method::POST,
            "/auth/register",
            Some(alice),
            Some(&json!({"username": "carol", "password": PASSWORD})),
        )
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "registration_closed").await;
}

#[tokio::test]
async fn a_bootstrapped_admin_can_log_in_and_is_admin() {
    let app = spawn_app_with(|c| {
        c.admin = Some(AdminBootstrap {
            username: "root".into(),
            password: "root password".into(),
        });
    })
    .await;
    let login = app.login("root", "root password").await;
    assert_eq!(login.status(), StatusCode::OK);
    let login = json_body(login).await;
    let token = login["access_token"].as_str().expect("token");
    let me = app.call(Method::GET, "/auth/me", Some(token), None).await;
    assert_eq!(json_body(me).await["role"], "admin");
    // The bootstrapped admin is the first user, so the next one to register is a user.
    let response = app.register("alice", PASSWORD).await;
    assert_eq!(json_body(response).await["role"], "user");
}

#[tokio::test]
async fn a_bootstrapped_admin_survives_a_restart() {
    let app = spawn_app_with(|c| {
        c.admin = Some(AdminBootstrap {
            username: "root".into(),
            password: "root password".into(),
        });
    })
    .await;
    let app = app.restart().await;
    assert_eq!(
        app.login("root", "root password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_non_admin_may_not_choose_a_role() {
    let app = spawn_app().await;
    let _alice = app.user("alice").await;
    let bob = app.user("bob").await;
    for token in [Some(bob.token.as_str()), None] {
        for role in ["admin", "user"] {
            let response = app
                .call(
                    Method::POST,
                    "/auth/register",
                    token,
                    Some(&json!({"username": "carol", "password": PASSWORD, "role": role})),
                )
                .await;
            assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
    let login = app.login("carol", PASSWORD).await;
    assert_error(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn an_admin_may_choose_a_role() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/auth/register",
            Some(&alice.token),
            Some(&json!({"username": "ops", "password": PASSWORD, "role": "admin"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(json_body(response).await["role"], "admin");
}

#[tokio::test]
async fn an_unknown_role_is_422() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let response = app
        .call(
            Method::POST,
            "/auth/register",
            Some(&alice.token),
            Some(&json!({"username": "ops", "password": PASSWORD, "role": "root"})),
        )
        .await;
    assert_invalid(response, "role").await;
}

#[tokio::test]
async fn registering_with_a_bad_token_is_401_not_anonymous() {
    let app = spawn_app().await;
    let response = app
        .call(
            Method::POST,
            "/auth/register",
            Some("sy_revoked_or_made_up"),
            Some(&json!({"username": "alice", "password": PASSWORD})),
        )
        .await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn sessions_and_api_tokens_expire() {
    let app = spawn_app_with(|c| c.session_ttl = std::time::Duration::from_secs(1)).await;
    let alice = app.user("alice").await;
    let created = json_body(
        new_token(
            &app,
            &alice.token,
            &json!({"name": "brief", "expires_in": 1}),
        )
        .await,
    )
    .await;
    let api = created["token"].as_str().expect("token").to_owned();
    let login = json_body(app.login("alice", PASSWORD).await).await;
    assert_eq!(login["expires_in"], 1);
    let session = login["access_token"].as_str().expect("token").to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for token in [&session, &api] {
        let me = app.call(Method::GET, "/auth/me", Some(token), None).await;
        assert_error(me, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let fresh = json_body(app.login("alice", PASSWORD).await).await;
    let fresh = fresh["access_token"].as_str().expect("token");
    let list = app
        .call(Method::GET, "/auth/tokens", Some(fresh), None)
        .await;
    assert_eq!(
        json_body(list).await,
        json!({"tokens": []}),
        "expired tokens are not listed"
    );
}

#[test]
fn a_public_address_with_open_registration_and_no_admin_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::helpers::db_url(&dir.path().join("public.db"));
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--listen", "0.0.0.0", "--port", "0", "--db", &db])
            .args(extra)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the binary")
    };
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("0.0.0.0")
            && message.contains("SWITCHYARD_ADMIN_USER")
            && message.contains("--registration open"),
        "the message says why and what to do: {message}"
    );
    assert!(
        !dir.path().join("public.db").exists(),
        "refused before anything was created"
    );
}
