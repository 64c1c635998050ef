//! Datasets: an uploaded table (`PUT …/datasets/{name}`) served by query, statistics and
//! schema endpoints — the iris service of the seeds reproduced as a project, checked against
//! values computed here, independently of the server.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, assert_error, assert_invalid, header, json_body, spawn_app};

const IRIS: &str = include_str!("../../src/dataset/testdata/iris.csv");
const COLUMNS: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/// One iris row as the test reads it.
#[derive(Debug, Clone)]
struct Iris {
    values: [f64; 4],
    species: String,
}

fn iris() -> Vec<Iris> {
    IRIS.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.trim_end().split(',').collect();
            let mut values = [0.0; 4];
            for (i, v) in values.iter_mut().enumerate() {
                *v = fields[i].parse().unwrap();
            }
            Iris {
                values,
                species: fields[4].to_owned(),
            }
        })
        .collect()
}

/// A row as the range endpoint answers it: every column, the species under `label`.
fn row_json(row: &Iris) -> Value {
    json!({
        "sepal_length": row.values[0], "sepal_width": row.values[1],
        "petal_length": row.values[2], "petal_width": row.values[3],
        "label": row.species,
    })
}

/// Uploads `body` as dataset `name` of `user`'s `project` with `query` appended.
async fn upload(
    app: &TestApp,
    user: &User,
    project: &str,
    name: &str,
    query: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> reqwest::Response {
    app.send(
        Method::PUT,
        &format!(
            "/admin/projects/{}/{project}/datasets/{name}{query}",
            user.name
        ),
        Some(&user.token),
        &[("content-type", content_type)],
        Some(body.into()),
    )
    .await
}

/// Uploads the iris dataset as `user`'s `project`'s dataset `iris` with `query`, asserting
/// it was created.
async fn upload_iris(app: &TestApp, user: &User, project: &str, query: &str) -> reqwest::Response {
    let response = upload(app, user, project, "iris", query, "text/csv", IRIS).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response
}

/// A project `iris` of a new user with the iris dataset and its standard endpoints.
async fn iris_app() -> (TestApp, User) {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "iris").await;
    upload_iris(&app, &alice, "iris", "?endpoints=default").await;
    (app, alice)
}

async fn post(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = app.call(Method::POST, path, None, Some(body)).await;
    let status = response.status();
    (status, json_body(response).await)
}

async fn range(app: &TestApp, body: Value) -> Vec<Value> {
    let (status, answer) = post(app, "/alice/iris/range/", &body).await;
    assert_eq!(status, StatusCode::OK, "{body} → {answer}");
    answer.as_array().expect("an array of rows").clone()
}

fn expected(rows: &[Iris], keep: impl Fn(&Iris) -> bool) -> Vec<Value> {
    rows.iter().filter(|r| keep(r)).map(row_json).collect()
}

#[tokio::test]
async fn an_upload_reports_its_schema_and_the_iris_range_query_answers_as_the_seed_does() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "iris").await;
    let response = upload_iris(&app, &alice, "iris", "?endpoints=default").await;
    let etag = header(&response, "etag");
    let body = json_body(response).await;
    assert_eq!(body["rows"], 150);
    assert_eq!(body["format"], "csv");
    assert_eq!(
        body["columns"],
        json!([
            {"name": "sepal_length", "type": "number", "nullable": false, "declared": false},
            {"name": "sepal_width", "type": "number", "nullable": false, "declared": false},
            {"name": "petal_length", "type": "number", "nullable": false, "declared": false},
            {"name": "petal_width", "type": "number", "nullable": false, "declared": false},
            {"name": "species", "type": "text", "nullable": false, "declared": false},
        ])
    );
    assert_eq!(
        body["endpoints"],
        json!([
            "iris-range",
            "iris-range-get",
            "iris-stats",
            "iris-stats-get",
            "iris-schema"
        ])
    );
    let revision = app.revision(&alice, "alice/iris").await;
    assert_eq!(
        etag,
        format!("\"{revision}\""),
        "one revision for data and endpoints"
    );
    // The seed's own example.
    let rows = iris();
    let answer = range(
        &app,
        json!({"species": "setosa", "lower": {"sepal_length": 5.0, "sepal_width": 3.0},
               "upper": {"sepal_length": 5.1}}),
    )
    .await;
    let want = expected(&rows, |r| {
        r.species == "setosa" && r.values[0] >= 5.0 && r.values[1] >= 3.0 && r.values[0] <= 5.1
    });
    assert!(!want.is_empty());
    assert_eq!(answer, want);
    // Both paths: with and without the trailing slash.
    let (status, bare) = post(&app, "/alice/iris/range", &json!({"species": "setosa"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bare.as_array().unwrap().len(), 50);
    // Everything, in file order.
    assert_eq!(range(&app, json!({})).await, expected(&rows, |_| true));
    // The admin API shows it.
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/iris/datasets/iris",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["rows"], 150);
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/iris/datasets",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(json_body(response).await[0]["name"], "iris");
}

#[tokio::test]
async fn categories_bounds_and_empty_intervals_filter_as_described() {
    let (app, _alice) = iris_app().await;
    let rows = iris();
    // One category, and a list of them.
    for species in ["setosa", "versicolor", "virginica"] {
        let answer = range(&app, json!({"species": species})).await;
        assert_eq!(answer, expected(&rows, |r| r.species == species));
    }
    let answer = range(&app, json!({"species": ["virginica", "setosa"]})).await;
    assert_eq!(
        answer,
        expected(&rows, |r| r.species == "virginica" || r.species == "setosa"),
        "file order, whatever the order of the list"
    );
    // Bounds are inclusive at a column's exact minimum and maximum.
    for (c, column) in COLUMNS.iter().enumerate() {
        let min = rows
            .iter()
            .map(|r| r.values[c])
            .fold(f64::INFINITY, f64::min);
        let max = rows
            .iter()
            .map(|r| r.values[c])
            .fold(f64::NEG_INFINITY, f64::max);
        let at_min = range(&app, json!({"upper": {*column: min}})).await;
        assert_eq!(
            at_min,
            expected(&rows, |r| r.values[c] == min),
            "{column} ≤ min"
        );
        let at_max = range(&app, json!({"lower": {*column: max}})).await;
        assert_eq!(
            at_max,
            expected(&rows, |r| r.values[c] == max),
            "{column} ≥ max"
        );
        let all = range(
            &app,
            json!({"lower": {*column: min}, "upper": {*column: max}}),
        )
        .await;
        assert_eq!(all.len(), 150);
    }
    // Bounds and categories together (AND), integers as bounds too.
    let answer = range(
        &app,
        json!({"species": ["versicolor", "virginica"], "lower": {"petal_length": 5},
               "upper": {"petal_width": 2}}),
    )
    .await;
    assert_eq!(
        answer,
        expected(&rows, |r| r.species != "setosa"
            && r.values[2] >= 5.0
            && r.values[3] <= 2.0)
    );
    // lower > upper is simply nothing; so is an interval no row falls in.
    assert!(
        range(
            &app,
            json!({"lower": {"sepal_length": 6}, "upper": {"sepal_length": 5}})
        )
        .await
        .is_empty()
    );
    assert!(
        range(
            &app,
            json!({"species": "setosa", "lower": {"petal_length": 3}})
        )
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn pages_cover_rows_and_groups_first_middle_last_and_past_the_end() {
    let (app, _alice) = iris_app().await;
    let rows = iris();
    let setosa = expected(&rows, |r| r.species == "setosa");
    let page =
        |page: u64, per_page: u64| json!({"species": "setosa", "page": page, "per_page": per_page});
    assert_eq!(range(&app, page(1, 20)).await, setosa[..20]);
    assert_eq!(range(&app, page(2, 20)).await, setosa[20..40]);
    assert_eq!(
        range(&app, page(3, 20)).await,
        setosa[40..],
        "the last page is partial"
    );
    assert!(range(&app, page(4, 20)).await.is_empty(), "past the end");
    // per_page alone starts at page 1; page alone is ignored.
    assert_eq!(
        range(&app, json!({"species": "setosa", "per_page": 7})).await,
        setosa[..7]
    );
    assert_eq!(
        range(&app, json!({"species": "setosa", "page": 3})).await,
        setosa
    );
    // The total before pagination is in a header.
    let response = app
        .call(Method::POST, "/alice/iris/range", None, Some(&page(2, 20)))
        .await;
    assert_eq!(header(&response, "x-total-count"), "50");
    // Over groups.
    let all = post(&app, "/alice/iris/stats/mean", &json!({})).await.1;
    assert_eq!(all.as_array().unwrap().len(), 3);
    for (p, want) in [(1, &all[0]), (2, &all[1]), (3, &all[2])] {
        let (_, one) = post(
            &app,
            "/alice/iris/stats/mean",
            &json!({"page": p, "per_page": 1}),
        )
        .await;
        assert_eq!(one, json!([want]));
    }
    let (_, two) = post(
        &app,
        "/alice/iris/stats/mean",
        &json!({"page": 2, "per_page": 2}),
    )
    .await;
    assert_eq!(two, json!([all[2]]), "last partial page of groups");
    let (_, none) = post(
        &app,
        "/alice/iris/stats/mean",
        &json!({"page": 3, "per_page": 2}),
    )
    .await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn every_bad_query_is_a_422_naming_its_field_and_non_json_is_400() {
    let (app, _alice) = iris_app().await;
    let cases = [
        (json!({"species": "rose"}), "species"),
        (json!({"species": ["setosa", "rose"]}), "species[1]"),
        (json!({"species": 3}), "species"),
        (json!({"lower": {"colour": 1}}), "lower.colour"),
        (
            json!({"upper": {"sepal_length": "5"}}),
            "upper.sepal_length",
        ),
        (json!({"lower": {"species": 1}}), "lower.species"),
        (json!({"page": 0, "per_page": 10}), "page"),
        (json!({"per_page": 0}), "per_page"),
        (json!({"per_page": -3}), "per_page"),
        (json!({"per_page": 1.5}), "per_page"),
        (json!({"per_page": 1_000_000}), "per_page"),
        (json!({"colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        for path in ["/alice/iris/range", "/alice/iris/stats/mean/"] {
            let response = app.call(Method::POST, path, None, Some(&body)).await;
            assert_invalid(response, field).await;
        }
    }
    let response = app
        .send(
            Method::POST,
            "/alice/iris/range",
            None,
            &[("content-type", "application/json")],
            Some(b"{nope".to_vec()),
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    // An unknown statistic names the path parameter.
    let response = app
        .call(
            Method::POST,
            "/alice/iris/stats/mode",
            None,
            Some(&json!({})),
        )
        .await;
    assert_invalid(response, "path.op").await;
    // GET form: unknown parameters and bad values too.
    let (status, body) = app.fetch("/alice/iris/range?colour=red").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = app.fetch("/alice/iris/range?sepal_length__gte=abc").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The exactly rounded sum of `values`: an exact i128 fixed-point sum (iris values have one
/// decimal and magnitudes below 10, so 2^64 as the unit loses nothing), rounded once.
fn exact_sum(values: &[f64]) -> f64 {
    let unit = 2f64.powi(64);
    let total: i128 = values
        .iter()
        .map(|v| {
            let scaled = v * unit;
            assert_eq!(scaled.fract(), 0.0, "{v} is exact at 2^-64");
            scaled as i128
        })
        .sum();
    total as f64 / unit
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[tokio::test]
async fn every_statistic_of_every_column_matches_an_independent_computation() {
    let (app, _alice) = iris_app().await;
    let rows = iris();
    let species = ["setosa", "versicolor", "virginica"];
    for op in ["mean", "min", "max", "sum", "count", "median", "std"] {
        let (status, answer) = post(&app, &format!("/alice/iris/stats/{op}/"), &json!({})).await;
        assert_eq!(status, StatusCode::OK, "{op}: {answer}");
        let groups = answer.as_array().unwrap();
        assert_eq!(groups.len(), 3);
        for (group, name) in groups.iter().zip(species) {
            assert_eq!(group["label"], name, "groups in order of first appearance");
            for (c, column) in COLUMNS.iter().enumerate() {
                let mut values: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.species == name)
                    .map(|r| r.values[c])
                    .collect();
                let n = values.len() as f64;
                let want = match op {
                    "mean" => json!(exact_sum(&values) / n),
                    "sum" => json!(exact_sum(&values)),
                    "min" => json!(values.iter().copied().fold(f64::INFINITY, f64::min)),
                    "max" => json!(values.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                    "count" => json!(values.len()),
                    "median" => json!(median(&mut values)),
                    _ => {
                        let mean = exact_sum(&values) / n;
                        let squares: Vec<f64> =
                            values.iter().map(|v| (v - mean) * (v - mean)).collect();
                        let std = (squares.iter().sum::<f64>() / (n - 1.0)).sqrt();
                        let got = group[format!("std_{column}")].as_f64().unwrap();
                        assert!(
                            (got - std).abs() < 1e-12,
                            "std_{column} of {name}: {got} vs {std}"
                        );
                        continue;
                    }
                };
                assert_eq!(
                    group[format!("{op}_{column}")],
                    want,
                    "{op}_{column} of {name}"
                );
            }
        }
    }
    // The seed's published means, to the last digit.
    let (_, means) = post(
        &app,
        "/alice/iris/stats/mean/",
        &json!({"species": ["setosa", "versicolor"]}),
    )
    .await;
    assert_eq!(
        means,
        json!([
            {"mean_sepal_length": 5.006, "mean_sepal_width": 3.428, "mean_petal_length": 1.462,
             "mean_petal_width": 0.24600000000000002, "label": "setosa"},
            {"mean_sepal_length": 5.936, "mean_sepal_width": 2.77, "mean_petal_length": 4.26,
             "mean_petal_width": 1.3259999999999998, "label": "versicolor"},
        ])
    );
    let (_, virginica) = post(
        &app,
        "/alice/iris/stats/mean",
        &json!({"species": "virginica"}),
    )
    .await;
    assert_eq!(virginica[0]["mean_sepal_length"], json!(6.587999999999999));
    // Statistics of a filtered selection: the seed's second example.
    let (_, filtered) = post(
        &app,
        "/alice/iris/stats/mean/",
        &json!({"species": ["setosa", "versicolor"], "lower": {"sepal_width": 3.0}, "upper": {"sepal_length": 6.1}}),
    )
    .await;
    for group in filtered.as_array().unwrap() {
        let name = group["label"].as_str().unwrap();
        let values: Vec<f64> = rows
            .iter()
            .filter(|r| r.species == name && r.values[1] >= 3.0 && r.values[0] <= 6.1)
            .map(|r| r.values[0])
            .collect();
        assert_eq!(
            group["mean_sepal_length"],
            json!(exact_sum(&values) / values.len() as f64)
        );
    }
}

#[tokio::test]
async fn get_forms_answer_as_the_bodies_do() {
    let (app, _alice) = iris_app().await;
    let pairs = [
        (
            "species=setosa&sepal_length__gte=5&per_page=10&page=2",
            json!({"species": "setosa", "lower": {"sepal_length": 5}, "per_page": 10, "page": 2}),
        ),
        (
            "species=setosa&species=virginica&petal_width__lte=1.5",
            json!({"species": ["setosa", "virginica"], "upper": {"petal_width": 1.5}}),
        ),
        ("", json!({})),
    ];
    for (query, body) in pairs {
        let (status, got) = app.fetch(&format!("/alice/iris/range/?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {got}");
        let got: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(got, json!(range(&app, body.clone()).await), "{query}");
        let (_, stats) = app.fetch(&format!("/alice/iris/stats/sum?{query}")).await;
        let (_, want) = post(&app, "/alice/iris/stats/sum", &body).await;
        assert_eq!(
            serde_json::from_str::<Value>(&stats).unwrap(),
            want,
            "{query}"
        );
    }
    // Exclusive bounds exist in the GET form.
    let (_, got) = app.fetch("/alice/iris/range?sepal_length__gt=7.6").await;
    let got: Value = serde_json::from_str(&got).unwrap();
    assert_eq!(got, json!(expected(&iris(), |r| r.values[0] > 7.6)));
}

/// A minimal CSV reader for answers: no quoting needed for iris.
fn parse_csv(text: &str) -> Vec<serde_json::Map<String, Value>> {
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            head.iter()
                .zip(line.split(','))
                .map(|(k, v)| {
                    let value = v
                        .parse::<f64>()
                        .map(|f| json!(f))
                        .unwrap_or_else(|_| json!(v));
                    ((*k).to_owned(), value)
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn csv_and_ndjson_answers_hold_the_same_rows_and_an_unsupported_accept_is_406() {
    let (app, _alice) = iris_app().await;
    let body = json!({"species": ["setosa", "virginica"], "lower": {"petal_width": 0.3}, "per_page": 30, "page": 2});
    for (path, want) in [
        ("/alice/iris/range", json!(range(&app, body.clone()).await)),
        (
            "/alice/iris/stats/median",
            post(&app, "/alice/iris/stats/median", &body).await.1,
        ),
    ] {
        let response = app
            .client
            .post(app.url(path))
            .header("accept", "text/csv")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "content-type").starts_with("text/csv"));
        let parsed = parse_csv(&response.text().await.unwrap());
        assert_eq!(json!(parsed), want, "{path} as CSV");
        let response = app
            .client
            .post(app.url(path))
            .header("accept", "application/x-ndjson")
            .json(&body)
            .send()
            .await
            .unwrap();
        let text = response.text().await.unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(json!(lines), want, "{path} as NDJSON");
    }
    let response = app
        .client
        .post(app.url("/alice/iris/range"))
        .header("accept", "application/xml")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::NOT_ACCEPTABLE, "not_acceptable").await;
    // `*/*` and a preference list pick JSON and CSV.
    let response = app
        .client
        .get(app.url("/alice/iris/range"))
        .header("accept", "text/html, */*;q=0.1")
        .send()
        .await
        .unwrap();
    assert!(header(&response, "content-type").starts_with("application/json"));
    let response = app
        .client
        .get(app.url("/alice/iris/range"))
        .header("accept", "application/json;q=0.5, text/csv")
        .send()
        .await
        .unwrap();
    assert!(header(&response, "content-type").starts_with("text/csv"));
}

#[tokio::test]
async fn the_schema_endpoint_gives_columns_types_and_row_count() {
    let (app, _alice) = iris_app().await;
    let (status, body) = app.fetch("/alice/iris/schema").await;
    assert_eq!(status, StatusCode::OK);
    let schema: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(schema["name"], "iris");
    assert_eq!(schema["rows"], 150);
    let names: Vec<&str> = schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sepal_length",
            "sepal_width",
            "petal_length",
            "petal_width",
            "species"
        ]
    );
    assert_eq!(schema["columns"][4]["type"], "text");
    assert_eq!(schema["columns"][4]["declared"], false);
}

#[tokio::test]
async fn a_declared_type_wins_over_inference_and_keeps_leading_zeros() {
    let app = spawn_app().await;
    let bob = app.user("bob").await;
    app.project(&bob, "places").await;
    let csv = "zip,city,population\n01234,Springfield,1200\n90210,Beverly Hills,34000\n00501,Holtsville,\n";
    let response = upload(
        &app,
        &bob,
        "places",
        "towns",
        "?types=zip:text&endpoints=default&category=city",
        "text/csv",
        csv,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = json_body(response).await;
    assert_eq!(
        body["columns"][0],
        json!({"name": "zip", "type": "text", "nullable": false, "declared": true})
    );
    assert_eq!(
        body["columns"][2],
        json!({"name": "population", "type": "integer", "nullable": true, "declared": false})
    );
    let (_, rows) = post(&app, "/bob/places/range", &json!({"city": "Holtsville"})).await;
    assert_eq!(
        rows,
        json!([{"zip": "00501", "label": "Holtsville", "population": null}])
    );
    let (_, rows) = post(
        &app,
        "/bob/places/range",
        &json!({"lower": {"population": 1200}}),
    )
    .await;
    assert_eq!(rows[0]["zip"], "01234");
    assert_eq!(
        rows.as_array().unwrap().len(),
        2,
        "a null never matches a bound"
    );
    // A bound on a text column is refused, even though its values look like numbers.
    let response = app
        .call(
            Method::POST,
            "/bob/places/range",
            None,
            Some(&json!({"lower": {"zip": 1}})),
        )
        .await;
    assert_invalid(response, "lower.zip").await;
}

#[tokio::test]
async fn a_bad_row_is_a_422_naming_line_and_column_and_nothing_changes() {
    let (app, alice) = iris_app().await;
    let revision = app.revision(&alice, "alice/iris").await;
    let bad = format!("{IRIS}7.0,3.2,4.7,oops,versicolor\n");
    let response = upload(
        &app,
        &alice,
        "iris",
        "iris",
        "?types=petal_width:number",
        "text/csv",
        bad,
    )
    .await;
    let body = assert_invalid(response, "petal_width").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("line 152"), "{message}");
    assert!(message.contains("petal_width"), "{message}");
    assert_eq!(app.revision(&alice, "alice/iris").await, revision);
    assert_eq!(
        range(&app, json!({})).await.len(),
        150,
        "the old version still answers"
    );
    // Other refusals: an unknown content type, bad declared types, a bad name.
    let response = upload(&app, &alice, "iris", "iris", "", "application/xml", "<a/>").await;
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let response = upload(
        &app,
        &alice,
        "iris",
        "iris",
        "?types=zip:colour",
        "text/csv",
        IRIS,
    )
    .await;
    assert_invalid(response, "query.types").await;
    let response = upload(&app, &alice, "iris", "Bad%20Name", "", "text/csv", IRIS).await;
    assert_invalid(response, "name").await;
    let response = app
        .call_with(
            Method::PUT,
            "/admin/projects/alice/iris/datasets/iris",
            Some(&alice.token),
            ("if-match", "\"1\""),
            None,
        )
        .await;
    assert_error(
        response,
        StatusCode::PRECONDITION_FAILED,
        "revision_mismatch",
    )
    .await;
    // Somebody else's project.
    let mallory = app.user("mallory").await;
    let response = upload(&app, &mallory, "iris", "iris", "", "text/csv", IRIS).await;
    assert!(
        response.status() == StatusCode::NOT_FOUND || response.status() == StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn json_and_json_lines_and_multipart_uploads_are_taken() {
    let app = spawn_app().await;
    let carol = app.user("carol").await;
    app.project(&carol, "data").await;
    let array = r#"[{"name": "a", "n": 1, "ok": true}, {"name": "b", "n": 2.5}]"#;
    let response = upload(&app, &carol, "data", "arr", "", "application/json", array).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body = json_body(response).await;
    assert_eq!(body["rows"], 2);
    assert_eq!(body["columns"][1]["type"], "number");
    assert_eq!(body["columns"][2]["nullable"], true);
    let lines = "{\"name\": \"a\", \"n\": 1}\n{\"name\": \"b\", \"n\": 2}\n";
    let response = upload(
        &app,
        &carol,
        "data",
        "lines",
        "",
        "application/x-ndjson",
        lines,
    )
    .await;
    assert_eq!(json_body(response).await["columns"][1]["type"], "integer");
    // Multipart, with the format from the file name.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(IRIS.as_bytes().to_vec()).file_name("iris.csv"),
    );
    let response =
        app.client
            .put(app.url(
                "/admin/projects/carol/data/datasets/flowers?endpoints=default&prefix=/flowers",
            ))
            .bearer_auth(&carol.token)
            .multipart(form)
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, rows) = post(
        &app,
        "/carol/data/flowers/range",
        &json!({"species": "setosa", "per_page": 2}),
    )
    .await;
    assert_eq!(
        (status, rows.as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    // Replacing is 200; the answer is the new version.
    let response = upload(
        &app,
        &carol,
        "data",
        "arr",
        "",
        "application/json",
        "[{\"x\": 1}]",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json_body(response).await["rows"], 1);
}

#[tokio::test]
async fn a_deleted_dataset_makes_its_endpoints_409_until_it_is_uploaded_again_and_data_survives_restarts()
 {
    let (app, alice) = iris_app().await;
    let app = app.restart().await;
    assert_eq!(
        range(&app, json!({"species": "virginica"})).await.len(),
        50,
        "read back after a restart"
    );
    let response = app
        .call(
            Method::DELETE,
            "/admin/projects/alice/iris/datasets/iris",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app
        .call(Method::POST, "/alice/iris/range", None, Some(&json!({})))
        .await;
    assert_error(response, StatusCode::CONFLICT, "dataset_missing").await;
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/iris/datasets/iris",
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "dataset_not_found").await;
    let response = app
        .call(
            Method::DELETE,
            "/admin/projects/alice/iris/datasets/iris",
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "dataset_not_found").await;
    let app = app.restart().await;
    let response = app
        .call(Method::POST, "/alice/iris/range", None, Some(&json!({})))
        .await;
    assert_error(response, StatusCode::CONFLICT, "dataset_missing").await;
    let response = upload(&app, &alice, "iris", "iris", "", "text/csv", IRIS).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(range(&app, json!({})).await.len(), 150);
}

/// The SHA-256 of `bytes` as 64 lowercase hex digits, computed here.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// GETs `owner/project`'s dataset `name` as `token`, or its `/file` with `file`.
async fn dataset_get(
    app: &TestApp,
    token: Option<&str>,
    project: &str,
    name: &str,
    file: bool,
) -> reqwest::Response {
    let tail = if file { "/file" } else { "" };
    app.call(
        Method::GET,
        &format!("/admin/projects/{project}/datasets/{name}{tail}"),
        token,
        None,
    )
    .await
}

/// Downloads `project`'s dataset `name` and checks it is `sent`, byte for byte, with the
/// headers of its `format` (`csv`, `json` or `jsonl`).
async fn assert_file(
    app: &TestApp,
    user: &User,
    project: &str,
    name: &str,
    sent: &[u8],
    content_type: &str,
    extension: &str,
) {
    let response = dataset_get(app, Some(&user.token), project, name, true).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), content_type);
    assert_eq!(header(&response, "content-length"), sent.len().to_string());
    assert_eq!(
        header(&response, "etag"),
        format!("\"{}\"", sha256_hex(sent))
    );
    assert_eq!(
        header(&response, "content-disposition"),
        format!("attachment; filename=\"{name}.{extension}\"")
    );
    let got = response.bytes().await.expect("the file");
    assert!(
        got.as_ref() == sent,
        "the file is not the upload: {} bytes, not {}",
        got.len(),
        sent.len()
    );
}

#[tokio::test]
async fn a_dataset_knows_the_sha256_of_its_bytes_and_gives_them_back_as_uploaded() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.project(&alice, "p").await;
    // CRLF, a quoted field and no final newline: bytes a re-encoding would not keep.
    let first: &[u8] = b"name,note\r\nann,\"a, b\"\r\nbo,  x ";
    let response = upload(&app, &alice, "p", "people", "", "text/csv", first).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let digest = sha256_hex(first);
    assert_eq!(json_body(response).await["sha256"], digest.as_str());
    let response = dataset_get(&app, Some(&alice.token), "alice/p", "people", false).await;
    assert_eq!(json_body(response).await["sha256"], digest.as_str());
    assert_file(&app, &alice, "alice/p", "people", first, "text/csv", "csv").await;

    // A new version, in another format: another digest, and its own bytes back.
    let second: &[u8] = b"{\"name\": \"cy\"}\n{\"name\":\"di\"}\n";
    let response = upload(
        &app,
        &alice,
        "p",
        "people",
        "",
        "application/x-ndjson",
        second,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let digest = sha256_hex(second);
    assert_eq!(json_body(response).await["sha256"], digest.as_str());
    assert_file(
        &app,
        &alice,
        "alice/p",
        "people",
        second,
        "application/x-ndjson",
        "jsonl",
    )
    .await;

    // A JSON array, and one larger than a stored chunk (1 MiB): the chunks come back in order.
    let array: &[u8] = b"[{\"x\": 1},\n {\"x\": 2.5}]";
    let response = upload(&app, &alice, "p", "xs", "", "application/json", array).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let big = generated(120_000, 1);
    assert!(big.len() > 2 << 20, "{} bytes", big.len());
    let response = upload(&app, &alice, "p", "big", "", "text/csv", big.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_file(&app, &alice, "alice/p", "big", &big, "text/csv", "csv").await;

    // Listed with the others' digests, and the same after a restart.
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/p/datasets",
            Some(&alice.token),
            None,
        )
        .await;
    let digests = |list: Value| -> Vec<(String, String)> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap_or("").to_owned(),
                    d["sha256"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let expected = vec![
        ("big".to_owned(), sha256_hex(&big)),
        ("people".to_owned(), sha256_hex(second)),
        ("xs".to_owned(), sha256_hex(array)),
    ];
    assert_eq!(digests(json_body(response).await), expected);
    let app = app.restart().await;
    let response = app
        .call(
            Method::GET,
            "/admin/projects/alice/p/datasets",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(digests(json_body(response).await), expected);
    assert_file(
        &app,
        &alice,
        "alice/p",
        "people",
        second,
        "application/x-ndjson",
        "jsonl",
    )
    .await;
    assert_file(
        &app,
        &alice,
        "alice/p",
        "xs",
        array,
        "application/json",
        "json",
    )
    .await;
    assert_file(&app, &alice, "alice/p", "big", &big, "text/csv", "csv").await;
}

#[tokio::test]
async fn a_dataset_file_is_for_its_owner_and_admins_and_an_unknown_one_is_404() {
    let app = spawn_app().await;
    let alice = app.user("alice").await; // the first user: an admin
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    app.project(&bob, "p").await;
    let sent: &[u8] = b"a\n1\n";
    let response = upload(&app, &bob, "p", "t", "", "text/csv", sent).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = dataset_get(&app, None, "bob/p", "t", true).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let response = dataset_get(&app, Some(&carol.token), "bob/p", "t", true).await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    assert_file(&app, &alice, "bob/p", "t", sent, "text/csv", "csv").await;
    let response = dataset_get(&app, Some(&bob.token), "bob/p", "nope", true).await;
    assert_error(response, StatusCode::NOT_FOUND, "dataset_not_found").await;
    let response = dataset_get(&app, Some(&bob.token), "bob/q", "t", true).await;
    assert_error(response, StatusCode::NOT_FOUND, "project_not_found").await;
    // A deleted dataset has no file.
    let response = app
        .call(
            Method::DELETE,
            "/admin/projects/bob/p/datasets/t",
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = dataset_get(&app, Some(&bob.token), "bob/p", "t", true).await;
    assert_error(response, StatusCode::NOT_FOUND, "dataset_not_found").await;
}

#[tokio::test]
async fn dataset_endpoints_are_validated_when_written() {
    let app = spawn_app().await;
    let dave = app.user("dave").await;
    app.project(&dave, "p").await;
    let cases = [
        (
            json!({"method": "POST", "path": "/s", "dataset": {"name": "d", "action": "stats"}}),
            "dataset.op",
        ),
        (
            json!({"method": "POST", "path": "/s/{op}", "dataset": {"name": "d", "action": "stats", "op": "mean"}}),
            "dataset.op",
        ),
        (
            json!({"method": "POST", "path": "/s", "dataset": {"name": "d", "action": "stats", "op": "mode"}}),
            "dataset.op",
        ),
        (
            json!({"method": "POST", "path": "/q", "dataset": {"name": "D!", "action": "query"}}),
            "dataset.name",
        ),
        (
            json!({"method": "POST", "path": "/q", "dataset": {"name": "d", "action": "query", "op": "mean"}}),
            "dataset.op",
        ),
    ];
    for (endpoint, field) in cases {
        let response = app.post_endpoint(&dave, "dave/p", &endpoint).await;
        assert_invalid(response, field).await;
    }
    // A fixed op, a custom label key; an endpoint may name a dataset not uploaded yet (409).
    let endpoint = json!({"id": "m", "method": "GET", "path": "/mean", "dataset": {"name": "d", "action": "stats", "op": "max", "category": "kind", "label_key": "kind"}});
    let response = app.post_endpoint(&dave, "dave/p", &endpoint).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, _) = app.fetch("/dave/p/mean").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let csv = "kind,w\nx,1\ny,5\nx,3\n";
    let response = upload(&app, &dave, "p", "d", "", "text/csv", csv).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, body) = app.fetch("/dave/p/mean/").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([{"max_w": 3, "kind": "x"}, {"max_w": 5, "kind": "y"}])
    );
    // The endpoint round-trips through the admin API.
    let project = app.read_project(&dave, "dave/p").await;
    assert_eq!(project["endpoints"][0]["dataset"]["op"], "max");
}

/// A CSV of `rows` rows: a category `g` of 7 values, a constant `v` naming the version, and
/// three numeric columns.
fn generated(rows: usize, version: u32) -> Vec<u8> {
    let mut out = String::with_capacity(rows * 40 + 32);
    out.push_str("g,v,x,y,z\n");
    for i in 0..rows {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "g{},{version},{},{}.5,{}",
            i % 7,
            i,
            i % 1000,
            (i * 7919) % 100_003
        );
    }
    out.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_million_rows_never_holds_up_queries_and_each_answer_is_one_version() {
    let app = spawn_app().await;
    let erin = app.user("erin").await;
    app.project(&erin, "big").await;
    upload_iris(&app, &erin, "big", "?endpoints=default&prefix=/iris").await;
    let response = upload(
        &app,
        &erin,
        "big",
        "t",
        "?endpoints=default&prefix=/t",
        "text/csv",
        generated(1000, 1),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let next = generated(1_000_000, 2);

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acknowledged = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each query answer: which version it came from, and whether the upload was already
    // acknowledged when it was sent.
    let querier = {
        let (client, url) = (app.client.clone(), app.url("/erin/big/t/range"));
        let (done, acknowledged) = (done.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let after_ack = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
                let response = client
                    .post(&url)
                    .json(&json!({"g": ["g3", "g4"], "lower": {"x": 10}, "per_page": 20}))
                    .send()
                    .await
                    .expect("a query answers");
                assert_eq!(response.status(), StatusCode::OK);
                let total: usize = header(&response, "x-total-count").parse().unwrap();
                let rows: Vec<Value> =
                    serde_json::from_str(&response.text().await.unwrap()).unwrap();
                assert_eq!(rows.len(), 20);
                let version = rows[0]["v"].as_i64().unwrap();
                assert!(
                    rows.iter().all(|r| r["v"] == version),
                    "one version per answer"
                );
                let want_total = match version {
                    1 => (0..1000)
                        .filter(|i| matches!(i % 7, 3 | 4) && *i >= 10)
                        .count(),
                    _ => (0..1_000_000)
                        .filter(|i| matches!(i % 7, 3 | 4) && *i >= 10)
                        .count(),
                };
                assert_eq!(
                    total, want_total,
                    "the total belongs to the version of the rows"
                );
                seen.push((version, after_ack));
            }
            seen
        })
    };
    let iris_querier = {
        let (client, url) = (app.client.clone(), app.url("/erin/big/iris/stats/mean"));
        let done = done.clone();
        tokio::spawn(async move {
            let mut answered = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let response = client
                    .post(&url)
                    .json(&json!({}))
                    .send()
                    .await
                    .expect("iris answers");
                assert_eq!(response.status(), StatusCode::OK);
                assert_eq!(
                    json_body(response).await[0]["mean_petal_width"],
                    json!(0.24600000000000002)
                );
                answered += 1;
            }
            answered
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let response = upload(&app, &erin, "big", "t", "", "text/csv", next).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap_or_default()
    );
    acknowledged.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = querier.await.unwrap();
    let iris_answers = iris_querier.await.unwrap();
    let before: Vec<_> = seen.iter().filter(|(v, _)| *v == 1).collect();
    assert!(
        before.len() > 3,
        "queries kept being answered from the old version during the upload: {}",
        before.len()
    );
    assert!(
        seen.iter().any(|(v, _)| *v == 2),
        "the new version answered after the swap"
    );
    assert!(
        seen.iter().all(|(v, after_ack)| !after_ack || *v == 2),
        "after the acknowledgement only the new version answers"
    );
    assert!(iris_answers > 3, "iris kept answering: {iris_answers}");
}
