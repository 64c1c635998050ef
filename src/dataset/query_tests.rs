//! Tests of query parsing and validation (`query.rs`), and helpers the other query test
//! files share.

use proptest::prelude::*;
use serde_json::json;

use super::*;

pub(super) const IRIS: &str = include_str!("testdata/iris.csv");

/// A dataset from CSV text, types inferred.
pub(super) fn dataset(csv: &str) -> Dataset {
    dataset_with(csv, &[])
}

/// A dataset from CSV text with some declared types.
pub(super) fn dataset_with(csv: &str, declared: &[(&str, ColumnType)]) -> Dataset {
    let declared = declared.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    let mut imp = Importer::new(Format::Csv, declared, Limits::default());
    imp.feed(csv.as_bytes()).expect("test CSV feeds");
    Dataset::new(imp.finish().expect("test CSV imports"))
}

pub(super) fn iris() -> Dataset {
    dataset(IRIS)
}

/// Settings with `species` as the category and the default label key.
pub(super) fn species() -> QuerySettings {
    QuerySettings {
        category: Some("species".to_owned()),
        ..QuerySettings::default()
    }
}

pub(super) fn body(ds: &Dataset, s: &QuerySettings, v: serde_json::Value) -> Query {
    match parse_body(ds, s, v.to_string().as_bytes()) {
        Ok(q) => q,
        Err(e) => panic!("body {v} refused: {e:?}"),
    }
}

pub(super) fn params(ds: &Dataset, s: &QuerySettings, qs: &str) -> Query {
    match parse_params(ds, s, Some(qs)) {
        Ok(q) => q,
        Err(e) => panic!("query string {qs} refused: {e:?}"),
    }
}

/// The field errors of a refused query.
fn invalid(r: Result<Query, QueryError>) -> Vec<(String, String)> {
    match r {
        Err(QueryError::Invalid(details)) => {
            details.into_iter().map(|d| (d.field, d.message)).collect()
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn body_errors(ds: &Dataset, s: &QuerySettings, v: serde_json::Value) -> Vec<(String, String)> {
    invalid(parse_body(ds, s, v.to_string().as_bytes()))
}

fn param_errors(ds: &Dataset, s: &QuerySettings, qs: &str) -> Vec<(String, String)> {
    invalid(parse_params(ds, s, Some(qs)))
}

/// The fields named by the errors.
fn fields(errors: &[(String, String)]) -> Vec<&str> {
    errors.iter().map(|(f, _)| f.as_str()).collect()
}

fn column(ds: &Dataset, name: &str) -> usize {
    ds.table().column_index(name).expect("column exists")
}

// ---- settings ----

#[test]
fn settings_check_accepts_a_text_category_and_no_category() {
    let ds = iris();
    assert_eq!(species().check(ds.table()), Ok(()));
    assert_eq!(QuerySettings::default().check(ds.table()), Ok(()));
}

#[test]
fn settings_check_refuses_a_missing_or_numeric_category() {
    let ds = iris();
    let missing = QuerySettings {
        category: Some("colour".into()),
        ..species()
    };
    let e = missing.check(ds.table()).unwrap_err();
    assert!(e.contains("`colour`") && e.contains("sepal_length"), "{e}");
    let numeric = QuerySettings {
        category: Some("sepal_width".into()),
        ..species()
    };
    assert!(numeric.check(ds.table()).unwrap_err().contains("numbers"));
}

#[test]
fn settings_check_refuses_a_label_key_clashing_with_a_column_or_stat_key() {
    let ds = iris();
    for key in ["sepal_length", "mean_petal_width", "std_sepal_width", ""] {
        let s = QuerySettings {
            label_key: key.into(),
            ..species()
        };
        assert!(s.check(ds.table()).is_err(), "label key {key:?} accepted");
    }
    // The category's own name is fine as a label key.
    let s = QuerySettings {
        label_key: "species".into(),
        ..species()
    };
    assert_eq!(s.check(ds.table()), Ok(()));
}

#[test]
fn settings_check_refuses_zero_limits() {
    let ds = iris();
    for s in [
        QuerySettings {
            max_per_page: 0,
            ..species()
        },
        QuerySettings {
            max_answer_rows: 0,
            ..species()
        },
    ] {
        assert!(s.check(ds.table()).is_err());
    }
}

#[test]
fn a_settings_category_missing_from_the_dataset_is_a_server_fault() {
    let ds = iris();
    let s = QuerySettings {
        category: Some("colour".into()),
        ..species()
    };
    let e = parse_body(&ds, &s, b"{}").unwrap_err();
    assert!(matches!(e, QueryError::Misconfigured(_)), "{e:?}");
    assert_eq!(e.code(), crate::error::Code::Internal);
    assert!(matches!(
        select(&ds, &s, &Query::all()),
        Err(QueryError::Misconfigured(_))
    ));
}

// ---- body: shape ----

#[test]
fn an_empty_or_blank_body_is_no_filter() {
    let ds = iris();
    for b in [&b""[..], b"  \r\n\t ", b"{}"] {
        let q = parse_body(&ds, &species(), b).unwrap();
        assert_eq!(q, Query::all());
    }
}

#[test]
fn a_body_that_is_not_json_is_malformed() {
    let ds = iris();
    for b in [
        &b"{"[..],
        b"species=setosa",
        b"{\"a\":1,}",
        b"\xff\xfe",
        b"[1,2",
    ] {
        let e = parse_body(&ds, &species(), b).unwrap_err();
        assert!(matches!(e, QueryError::Malformed(_)), "{e:?}");
        assert_eq!(e.code(), crate::error::Code::MalformedJson);
    }
}

#[test]
fn json_that_is_not_an_object_is_invalid_on_body() {
    let ds = iris();
    for v in [
        json!([]),
        json!("setosa"),
        json!(1),
        json!(null),
        json!(true),
    ] {
        let e = body_errors(&ds, &species(), v);
        assert_eq!(fields(&e), ["body"]);
    }
}

#[test]
fn an_unknown_key_is_named_and_the_accepted_ones_listed() {
    let ds = iris();
    let e = body_errors(&ds, &species(), json!({"colour": "red"}));
    assert_eq!(fields(&e), ["colour"]);
    assert!(e[0].1.contains("unknown field"), "{}", e[0].1);
    assert!(
        e[0].1.contains("species, lower, upper, page, per_page"),
        "{}",
        e[0].1
    );
}

#[test]
fn without_a_category_a_column_name_is_an_unknown_key() {
    let ds = iris();
    let s = QuerySettings::default();
    let e = body_errors(&ds, &s, json!({"species": "setosa"}));
    assert_eq!(fields(&e), ["species"]);
    assert!(!e[0].1.contains("species,"), "{}", e[0].1);
    // The label key is not a filter either.
    let e = body_errors(&ds, &species(), json!({"label": "setosa"}));
    assert_eq!(fields(&e), ["label"]);
}

#[test]
fn every_bad_field_is_reported_not_just_the_first() {
    let ds = iris();
    let e = body_errors(
        &ds,
        &species(),
        json!({
            "species": ["setosa", "rose", 3],
            "lower": {"petal": 1, "species": 2, "sepal_width": "x"},
            "upper": [],
            "page": 0,
            "per_page": 1.5,
            "extra": 1
        }),
    );
    assert_eq!(
        fields(&e),
        [
            "species[1]",
            "species[2]",
            "lower.petal",
            "lower.species",
            "lower.sepal_width",
            "upper",
            "page",
            "per_page",
            "extra"
        ]
    );
}

#[test]
fn errors_are_capped_so_a_huge_body_makes_a_bounded_answer() {
    let ds = iris();
    let values: Vec<String> = (0..10_000).map(|i| format!("x{i}")).collect();
    let e = body_errors(&ds, &species(), json!({ "species": values }));
    assert_eq!(e.len(), MAX_DETAILS);
}

// ---- body: category ----

#[test]
fn a_category_value_or_list_becomes_group_ids() {
    let ds = iris();
    let idx = ds
        .category_index(column(&ds, "species"))
        .expect("species is indexed");
    let setosa = idx.lookup(CategoryKey::Text("setosa")).unwrap();
    let virginica = idx.lookup(CategoryKey::Text("virginica")).unwrap();
    let q = body(&ds, &species(), json!({"species": "setosa"}));
    assert_eq!(q.categories(), Some(&[setosa][..]));
    let q = body(
        &ds,
        &species(),
        json!({"species": ["virginica", "setosa", "virginica"]}),
    );
    assert_eq!(q.categories(), Some(&[setosa, virginica][..]));
}

#[test]
fn an_unknown_category_value_lists_the_known_ones() {
    let ds = iris();
    let e = body_errors(&ds, &species(), json!({"species": "rose"}));
    assert_eq!(
        e,
        [(
            "species".to_owned(),
            "unknown value `rose`; one of setosa, versicolor, virginica".to_owned()
        )]
    );
    let e = body_errors(&ds, &species(), json!({"species": ["setosa", "rose"]}));
    assert_eq!(fields(&e), ["species[1]"]);
}

#[test]
fn the_known_values_listed_stop_at_twenty() {
    let mut csv = String::from("k,v\n");
    for i in 0..30 {
        csv.push_str(&format!("name{i},{i}\n"));
    }
    let ds = dataset(&csv);
    let s = QuerySettings {
        category: Some("k".into()),
        ..QuerySettings::default()
    };
    let e = body_errors(&ds, &s, json!({"k": "zzz"}));
    let msg = &e[0].1;
    assert!(msg.contains("name19, …"), "{msg}");
    assert!(!msg.contains("name20"), "{msg}");
}

#[test]
fn a_category_value_of_the_wrong_type_null_or_an_empty_list_is_invalid() {
    let ds = iris();
    for (v, field) in [
        (json!({"species": 1}), "species"),
        (json!({"species": null}), "species"),
        (json!({"species": true}), "species"),
        (json!({"species": {"a": 1}}), "species"),
        (json!({"species": []}), "species"),
        (json!({"species": [null]}), "species[0]"),
        (json!({"species": [["setosa"]]}), "species[0]"),
    ] {
        let e = body_errors(&ds, &species(), v.clone());
        assert_eq!(fields(&e), [field], "{v}");
    }
    let e = body_errors(&ds, &species(), json!({"species": null}));
    assert!(e[0].1.contains("null"), "{}", e[0].1);
}

const PETS: &str =
    "id,legs,tame,weight\n1,4,true,3.5\n2,2,false,0.4\n3,4,true,30\n4,0,,0.01\n5,,false,\n";

#[test]
fn an_integer_category_takes_integers_only() {
    let ds = dataset(PETS);
    let s = QuerySettings {
        category: Some("legs".into()),
        ..QuerySettings::default()
    };
    let q = body(&ds, &s, json!({"legs": [4, 0]}));
    assert_eq!(q.categories().map(<[u32]>::len), Some(2));
    for bad in [json!("4"), json!(4.0), json!(4.5), json!(true)] {
        let e = body_errors(&ds, &s, json!({ "legs": bad }));
        assert_eq!(fields(&e), ["legs"]);
        assert!(e[0].1.contains("integer"), "{}", e[0].1);
    }
    let e = body_errors(&ds, &s, json!({"legs": 3}));
    assert_eq!(e[0].1, "unknown value `3`; one of 4, 2, 0");
    let e = body_errors(&ds, &s, json!({"legs": u64::MAX}));
    assert!(e[0].1.starts_with("unknown value `18446744073709551615`"));
    // GET: integer text.
    let q = params(&ds, &s, "legs=4&legs=%2B2");
    assert_eq!(q.categories().map(<[u32]>::len), Some(2));
    let e = param_errors(&ds, &s, "legs=four");
    assert_eq!(
        e,
        [("query.legs".into(), "`four` is not an integer".into())]
    );
}

#[test]
fn a_boolean_category_takes_booleans_only() {
    let ds = dataset(PETS);
    let s = QuerySettings {
        category: Some("tame".into()),
        ..QuerySettings::default()
    };
    let q = body(&ds, &s, json!({"tame": false}));
    assert_eq!(q.categories().map(<[u32]>::len), Some(1));
    let e = body_errors(&ds, &s, json!({"tame": "true"}));
    assert_eq!(fields(&e), ["tame"]);
    assert_eq!(params(&ds, &s, "tame=FALSE"), q_with_source(q.clone()));
    let e = param_errors(&ds, &s, "tame=yes");
    assert_eq!(
        e,
        [("query.tame".into(), "`yes` is not true or false".into())]
    );
}

/// `q` as it would come from the GET form (only the source differs).
fn q_with_source(mut q: Query) -> Query {
    q.source = super::query::Source::Params;
    q
}

// ---- body: bounds ----

#[test]
fn bounds_compile_to_one_inclusive_range_per_column() {
    let ds = iris();
    let q = body(
        &ds,
        &species(),
        json!({"lower": {"sepal_width": 3, "sepal_length": 5.5}, "upper": {"sepal_length": 6}}),
    );
    assert_eq!(
        q.ranges(),
        [
            ColumnRange::Number {
                column: 0,
                lo: 5.5,
                hi: 6.0
            },
            ColumnRange::Number {
                column: 1,
                lo: 3.0,
                hi: f64::INFINITY
            },
        ]
    );
}

#[test]
fn bounds_on_unknown_non_numeric_or_with_non_numbers_are_invalid() {
    let ds = iris();
    let e = body_errors(&ds, &species(), json!({"lower": {"petal": 1}}));
    assert_eq!(fields(&e), ["lower.petal"]);
    assert!(e[0].1.contains("unknown column"), "{}", e[0].1);
    let e = body_errors(&ds, &species(), json!({"upper": {"species": 1}}));
    assert_eq!(fields(&e), ["upper.species"]);
    assert!(e[0].1.contains("not a numeric column"), "{}", e[0].1);
    for v in [
        json!("5"),
        json!(null),
        json!(true),
        json!([5]),
        json!({"a": 5}),
    ] {
        let e = body_errors(&ds, &species(), json!({"lower": {"sepal_length": v}}));
        assert_eq!(fields(&e), ["lower.sepal_length"]);
        assert!(e[0].1.contains("must be a number"), "{}", e[0].1);
    }
    for v in [json!(5), json!("x"), json!(null), json!([])] {
        let e = body_errors(&ds, &species(), json!({ "lower": v }));
        assert_eq!(fields(&e), ["lower"]);
    }
}

#[test]
fn a_number_too_large_for_f64_is_malformed_json() {
    let ds = iris();
    let e = parse_body(&ds, &species(), br#"{"lower": {"sepal_length": 1e400}}"#).unwrap_err();
    assert!(matches!(e, QueryError::Malformed(_)), "{e:?}");
}

#[test]
fn integer_column_bounds_round_inward_exactly() {
    let ds = dataset("n\n1\n2\n");
    let s = QuerySettings::default();
    let range = |v: serde_json::Value| body(&ds, &s, v).ranges()[0];
    let int = |lo, hi| ColumnRange::Integer { column: 0, lo, hi };
    assert_eq!(range(json!({"lower": {"n": 5.5}})), int(6, i64::MAX));
    assert_eq!(range(json!({"lower": {"n": -5.5}})), int(-5, i64::MAX));
    assert_eq!(range(json!({"upper": {"n": 5.5}})), int(i64::MIN, 5));
    assert_eq!(range(json!({"upper": {"n": -5.5}})), int(i64::MIN, -6));
    assert_eq!(range(json!({"lower": {"n": 5}})), int(5, i64::MAX));
    assert_eq!(
        range(json!({"lower": {"n": -1e300}})),
        int(i64::MIN, i64::MAX)
    );
    assert!(range(json!({"lower": {"n": 1e300}})).is_empty());
    assert!(range(json!({"lower": {"n": u64::MAX}})).is_empty());
    assert!(range(json!({"upper": {"n": -1e19}})).is_empty());
    // 2^63 as a float is just above i64::MAX.
    assert!(range(json!({"lower": {"n": 9223372036854775808.0}})).is_empty());
    assert_eq!(
        range(json!({"upper": {"n": 9223372036854775808.0}})),
        int(i64::MIN, i64::MAX)
    );
    assert_eq!(
        range(json!({"lower": {"n": i64::MAX}})),
        int(i64::MAX, i64::MAX)
    );
    // GET strict bounds.
    let range = |qs: &str| params(&ds, &s, qs).ranges()[0];
    assert_eq!(range("n__gt=5"), int(6, i64::MAX));
    assert_eq!(range("n__gt=5.5"), int(6, i64::MAX));
    assert_eq!(range("n__gt=-5.5"), int(-5, i64::MAX));
    assert_eq!(range("n__lt=5"), int(i64::MIN, 4));
    assert_eq!(range("n__lt=5.5"), int(i64::MIN, 5));
    assert!(range(&format!("n__gt={}", i64::MAX)).is_empty());
    assert!(range(&format!("n__lt={}", i64::MIN)).is_empty());
}

#[test]
fn number_column_bounds_beyond_2_pow_53_are_exact() {
    let ds = dataset("x\n1.5\n");
    let s = QuerySettings::default();
    let num = |lo, hi| ColumnRange::Number { column: 0, lo, hi };
    let two53 = 9_007_199_254_740_992.0_f64;
    // 2^53 + 1 is not an f64: x >= it means x >= the next f64 up, x <= it means x <= 2^53.
    let q = body(
        &ds,
        &s,
        json!({"lower": {"x": 9_007_199_254_740_993_i64}, "upper": {"x": 9_007_199_254_740_993_i64}}),
    );
    assert_eq!(q.ranges(), [num(two53 + 2.0, two53)]);
    assert!(q.matches_nothing());
    // Representable integers stay as they are; strict ones step to the neighbour.
    let q = params(&ds, &s, "x__gte=9007199254740992&x__lt=9007199254740994");
    assert_eq!(q.ranges(), [num(two53, two53)]);
    let q = params(&ds, &s, "x__gt=0.1&x__lt=0.1");
    assert_eq!(q.ranges(), [num(0.1f64.next_up(), 0.1f64.next_down())]);
    let q = params(&ds, &s, &format!("x__gt={}", u64::MAX));
    assert_eq!(q.ranges(), [num(18446744073709551616.0, f64::INFINITY)]);
}

// ---- body: pagination ----

#[test]
fn pagination_needs_per_page_and_page_defaults_to_one() {
    let ds = iris();
    let q = body(&ds, &species(), json!({"page": 3}));
    assert_eq!(q.page(), None);
    let q = body(&ds, &species(), json!({"per_page": 10}));
    assert_eq!(
        q.page(),
        Some(Page {
            page: 1,
            per_page: 10
        })
    );
    let q = body(&ds, &species(), json!({"per_page": 10, "page": 4}));
    assert_eq!(
        q.page(),
        Some(Page {
            page: 4,
            per_page: 10
        })
    );
}

#[test]
fn bad_page_or_per_page_is_invalid_on_that_field() {
    let ds = iris();
    for bad in [
        json!(0),
        json!(-1),
        json!(1.5),
        json!(2.0),
        json!("2"),
        json!(null),
        json!([1]),
        json!(1e30),
    ] {
        for key in ["page", "per_page"] {
            let e = body_errors(&ds, &species(), json!({ key: bad }));
            assert_eq!(fields(&e), [key], "{key}: {bad}");
        }
    }
    let e = body_errors(&ds, &species(), json!({"per_page": 1001}));
    assert_eq!(e, [("per_page".into(), "must be at most 1000".into())]);
    let q = body(&ds, &species(), json!({"per_page": 1000, "page": u64::MAX}));
    assert_eq!(q.page().unwrap().page, u64::MAX);
}

// ---- GET form ----

#[test]
fn no_query_string_or_an_empty_one_is_no_filter() {
    let ds = iris();
    for qs in [None, Some(""), Some("&&")] {
        let q = parse_params(&ds, &species(), qs).unwrap();
        assert_eq!(q, q_with_source(Query::all()), "{qs:?}");
    }
}

#[test]
fn get_parameters_are_percent_decoded() {
    let ds = dataset("name,n\nNew York,1\na&b=c,2\nx+y,3\n");
    let s = QuerySettings {
        category: Some("name".into()),
        ..QuerySettings::default()
    };
    let idx = ds.category_index(0).unwrap();
    let q = params(&ds, &s, "name=New+York&name=a%26b%3Dc&name=x%2By");
    assert_eq!(q.categories(), Some(&[0, 1, 2][..]));
    assert_eq!(idx.lookup(CategoryKey::Text("x+y")), Some(2));
    let q = params(&ds, &s, "n__gte=%31");
    assert_eq!(
        q.ranges(),
        [ColumnRange::Integer {
            column: 1,
            lo: 1,
            hi: i64::MAX
        }]
    );
}

#[test]
fn get_errors_are_named_query_dot_parameter() {
    let ds = iris();
    let e = param_errors(
        &ds,
        &species(),
        "species=rose&colour=red&petal__gte=1&species__gte=1&sepal_length__gte=x&sepal_length__eq=1&page=0&per_page=2000",
    );
    assert_eq!(
        fields(&e),
        [
            "query.species",
            "query.colour",
            "query.petal__gte",
            "query.species__gte",
            "query.sepal_length__gte",
            "query.sepal_length__eq",
            "query.page",
            "query.per_page"
        ]
    );
    assert!(e[0].1.starts_with("unknown value `rose`"), "{}", e[0].1);
    assert!(e[1].1.contains("unknown parameter"), "{}", e[1].1);
    assert!(e[2].1.contains("unknown column"), "{}", e[2].1);
    assert!(e[3].1.contains("not a numeric column"), "{}", e[3].1);
    assert!(e[4].1.contains("not a number"), "{}", e[4].1);
    assert_eq!(e[7].1, "must be at most 1000");
}

#[test]
fn get_numbers_follow_json_grammar() {
    let ds = iris();
    for ok in ["5", "-5", "5.5", "5e0", "1E-3", "0"] {
        params(&ds, &species(), &format!("sepal_length__gte={ok}"));
    }
    // `+` in a query string is a space.
    for bad in [
        "", "%2B5", "+5", "5+", ".5", "5.", "inf", "NaN", "0x10", "5 5", "1e400", "--1",
    ] {
        let e = param_errors(&ds, &species(), &format!("sepal_length__gte={bad}"));
        assert_eq!(fields(&e), ["query.sepal_length__gte"], "{bad:?}");
    }
    for bad in ["", "0", "00", "-1", "1.0", "+1", "x", "1e3"] {
        let e = param_errors(&ds, &species(), &format!("per_page={bad}"));
        assert_eq!(fields(&e), ["query.per_page"], "{bad:?}");
    }
    // A page number beyond u64 is simply far past the end.
    let q = params(&ds, &species(), "page=99999999999999999999999&per_page=5");
    assert_eq!(q.page().unwrap().page, u64::MAX);
}

#[test]
fn a_parameter_other_than_the_category_given_twice_is_invalid() {
    let ds = iris();
    for qs in [
        "page=1&page=2&per_page=3",
        "per_page=1&per_page=1",
        "page=1&_page=1&per_page=3",
        "sepal_length__gte=1&sepal_length__gte=2",
    ] {
        let e = param_errors(&ds, &species(), qs);
        assert_eq!(e.len(), 1, "{qs}");
        assert!(e[0].1.contains("more than once"), "{qs}: {e:?}");
    }
    // Different operators on one column, and a repeated category, are fine.
    params(
        &ds,
        &species(),
        "sepal_length__gte=1&sepal_length__gt=2&sepal_length__lt=3&species=setosa&species=virginica",
    );
}

#[test]
fn underscore_pagination_names_work_and_win_when_the_category_is_called_page() {
    let ds = iris();
    let q = params(&ds, &species(), "_page=2&_per_page=5");
    assert_eq!(
        q.page(),
        Some(Page {
            page: 2,
            per_page: 5
        })
    );
    let ds = dataset("page,n\nfront,1\nback,2\nfront,3\n");
    let s = QuerySettings {
        category: Some("page".into()),
        ..QuerySettings::default()
    };
    let q = params(&ds, &s, "page=back&_page=1&_per_page=1");
    assert_eq!(q.categories(), Some(&[1][..]));
    assert_eq!(
        q.page(),
        Some(Page {
            page: 1,
            per_page: 1
        })
    );
    // `per_page` is still pagination (only `page` is taken by the category): so given
    // with `_per_page` it is a repeat.
    let e = param_errors(&ds, &s, "_per_page=1&per_page=1");
    assert_eq!(fields(&e), ["query.per_page"]);
}

#[test]
fn get_form_equals_body_form() {
    let ds = iris();
    let s = QuerySettings {
        max_per_page: 50,
        ..species()
    };
    let pairs = [
        (json!({}), ""),
        (json!({"species": "setosa"}), "species=setosa"),
        (
            json!({"species": ["setosa", "virginica"]}),
            "species=setosa&species=virginica",
        ),
        (
            json!({"lower": {"sepal_length": 5}, "upper": {"sepal_length": 6.1}}),
            "sepal_length__gte=5&sepal_length__lte=6.1",
        ),
        (
            json!({"species": "versicolor", "lower": {"petal_width": 1.3}, "page": 2, "per_page": 7}),
            "species=versicolor&petal_width__gte=1.3&page=2&per_page=7",
        ),
        (
            json!({"upper": {"sepal_width": 3}, "per_page": 50}),
            "sepal_width__lte=3&_per_page=50",
        ),
        (json!({"page": 9}), "page=9"),
    ];
    for (b, qs) in pairs {
        let from_body = body(&ds, &s, b.clone());
        let from_params = params(&ds, &s, qs);
        assert_eq!(q_with_source(from_body.clone()), from_params, "{b} vs {qs}");
        let a = select(&ds, &s, &from_body).unwrap();
        let b2 = select(&ds, &s, &from_params).unwrap();
        assert_eq!(a, b2, "{b} vs {qs}");
        for op in Op::ALL {
            assert_eq!(
                stats(&ds, &s, &from_body, op).unwrap(),
                stats(&ds, &s, &from_params, op).unwrap()
            );
        }
    }
}

#[test]
fn strict_get_bounds_select_what_the_exclusive_comparison_selects() {
    let ds = iris();
    let s = QuerySettings {
        max_answer_rows: 1000,
        ..species()
    };
    let col = column(&ds, "sepal_length");
    for (qs, keep) in [
        (
            "sepal_length__gt=5.8",
            (|x: f64| x > 5.8) as fn(f64) -> bool,
        ),
        ("sepal_length__lt=5.8", |x| x < 5.8),
        ("sepal_length__gte=5.8", |x| x >= 5.8),
        ("sepal_length__lte=5.8", |x| x <= 5.8),
        ("sepal_length__gt=5", |x| x > 5.0),
        ("sepal_length__lt=5", |x| x < 5.0),
    ] {
        let sel = select(&ds, &s, &params(&ds, &s, qs)).unwrap();
        let expected: Vec<u32> = (0..150u32)
            .filter(|&r| match ds.table().value(r as usize, col) {
                Value::Number(x) => keep(x),
                _ => false,
            })
            .collect();
        assert_eq!(sel.rows(), expected, "{qs}");
    }
}

// ---- parameter docs ----

#[test]
fn get_parameters_lists_every_parameter() {
    let ds = iris();
    let docs = get_parameters(&ds, &species());
    let names: Vec<&str> = docs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names.len(), 1 + 4 * 4 + 2);
    assert_eq!(names[0], "species");
    assert_eq!(
        &names[1..5],
        [
            "sepal_length__gte",
            "sepal_length__gt",
            "sepal_length__lte",
            "sepal_length__lt"
        ]
    );
    assert_eq!(&names[17..], ["page", "per_page"]);
    assert_eq!(docs[0].ty, "string");
    assert!(docs[0].repeatable);
    assert_eq!(docs[1].ty, "number");
    assert_eq!(docs[18].ty, "integer");
    assert_eq!(docs[18].maximum, Some(1000));
    // Every documented parameter is accepted.
    let qs: Vec<String> = docs
        .iter()
        .map(|d| match d.ty {
            "string" => format!("{}=setosa", d.name),
            _ => format!("{}=1", d.name),
        })
        .collect();
    params(&ds, &species(), &qs.join("&"));
    // Without a category, and with a category called `page`.
    let docs = get_parameters(&ds, &QuerySettings::default());
    assert_eq!(docs.len(), 4 * 4 + 2);
    let ds = dataset("page,n\na,1\n");
    let s = QuerySettings {
        category: Some("page".into()),
        ..QuerySettings::default()
    };
    let names: Vec<String> = get_parameters(&ds, &s)
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(
        names,
        [
            "page", "n__gte", "n__gt", "n__lte", "n__lt", "_page", "per_page"
        ]
    );
}

#[test]
fn query_errors_map_to_api_errors() {
    let e =
        QueryError::Invalid(vec![crate::error::FieldError::new("page", "bad")]).into_api_error();
    assert_eq!(e.code, crate::error::Code::ValidationFailed);
    assert_eq!(e.details.len(), 1);
    let e = QueryError::TooLarge {
        rows: 20,
        limit: 10,
    };
    assert!(e.to_string().contains("per_page"));
    let e = e.into_api_error();
    assert_eq!(e.code, crate::error::Code::ValidationFailed);
    assert_eq!(e.details[0].field, "per_page");
    let e = QueryError::Malformed("x".into()).into_api_error();
    assert_eq!(e.code, crate::error::Code::MalformedJson);
}

// ---- never panics ----

/// JSON-ish text assembled from fragments that reach deep into validation.
fn jsonish() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("\"setosa\"".to_owned()),
        Just("\"rose\"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|i| i.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::to_string(&f).unwrap()),
        "[a-z_]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ];
    let key = prop_oneof![
        Just("species"),
        Just("lower"),
        Just("upper"),
        Just("page"),
        Just("per_page"),
        Just("sepal_length"),
        Just("petal_width"),
        Just("x"),
    ];
    atom.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|v| {
                let fields: Vec<String> = v.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

proptest! {
    #[test]
    fn parse_body_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let ds = iris();
        let _ = parse_body(&ds, &species(), &bytes);
        let _ = parse_body(&ds, &QuerySettings::default(), &bytes);
    }

    #[test]
    fn parse_body_never_panics_on_jsonish_input(text in jsonish()) {
        let ds = iris();
        let s = QuerySettings { max_per_page: 20, max_answer_rows: 30, ..species() };
        if let Ok(q) = parse_body(&ds, &s, text.as_bytes()) {
            let _ = select(&ds, &s, &q);
            let _ = stats(&ds, &s, &q, Op::Median);
        }
    }

    #[test]
    fn parse_params_never_panics(qs in ".{0,200}") {
        let ds = iris();
        let _ = parse_params(&ds, &species(), Some(&qs));
        let _ = parse_params(&ds, &QuerySettings::default(), Some(&qs));
    }

    #[test]
    fn parse_params_never_panics_on_plausible_strings(
        parts in prop::collection::vec(
            (
                prop_oneof![
                    Just("species"), Just("page"), Just("_page"), Just("per_page"), Just("_per_page"),
                    Just("sepal_length__gte"), Just("sepal_length__lt"), Just("petal_width__gt"),
                    Just("species__gte"), Just("x__lte"), Just("__"), Just("")
                ],
                prop_oneof![
                    Just("setosa".to_owned()), Just("virginica".to_owned()), Just("%ZZ".to_owned()),
                    Just("%C3%A9".to_owned()), Just("%FF".to_owned()),
                    any::<i64>().prop_map(|i| i.to_string()),
                    any::<f64>().prop_map(|f| f.to_string()),
                    "[0-9.eE+-]{0,8}",
                ],
            ),
            0..8,
        )
    ) {
        let ds = iris();
        let s = QuerySettings { max_per_page: 20, max_answer_rows: 30, ..species() };
        let qs: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Ok(q) = parse_params(&ds, &s, Some(&qs.join("&"))) {
            let _ = select(&ds, &s, &q);
            let _ = stats(&ds, &s, &q, Op::Std);
        }
    }
}
