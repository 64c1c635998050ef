//! Tests of selection, statistics and exact summation (`exec.rs`), and of the category
//! index (`prepared.rs`).

use proptest::prelude::*;
use serde_json::json;

use super::query_tests::{body, dataset, iris, params, species};
use super::*;

const SPECIES: [&str; 3] = ["setosa", "versicolor", "virginica"];
const NUMERIC: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

fn big() -> QuerySettings {
    QuerySettings {
        max_answer_rows: 1_000,
        ..species()
    }
}

fn col(ds: &Dataset, name: &str) -> usize {
    ds.table().column_index(name).expect("column exists")
}

fn num(ds: &Dataset, row: u32, column: &str) -> f64 {
    match ds.table().value(row as usize, col(ds, column)) {
        Value::Number(x) => x,
        other => panic!("not a number: {other:?}"),
    }
}

fn text(ds: &Dataset, row: u32, column: &str) -> String {
    match ds.table().value(row as usize, col(ds, column)) {
        Value::Text(s) => s.to_owned(),
        other => panic!("not text: {other:?}"),
    }
}

/// The rows a predicate keeps, computed row by row.
fn rows_where(ds: &Dataset, keep: impl Fn(u32) -> bool) -> Vec<u32> {
    (0..ds.table().row_count() as u32)
        .filter(|&r| keep(r))
        .collect()
}

fn sel(ds: &Dataset, s: &QuerySettings, v: serde_json::Value) -> Selection {
    select(ds, s, &body(ds, s, v)).expect("selects")
}

/// The groups as JSON, built from the values (not by parsing the rendered text: serde_json
/// without `float_roundtrip` may parse the last digit differently). Checks on the way that
/// the rendered answer is exactly what serde_json writes for it.
fn groups_json(g: &Groups) -> serde_json::Value {
    let list: Vec<serde_json::Value> = g
        .groups()
        .iter()
        .map(|group| {
            let mut obj = serde_json::Map::new();
            for (k, v) in g.keys().iter().zip(&group.values) {
                obj.insert(k.clone(), v.to_json());
            }
            if let (Some(k), Some(label)) = (g.label_key(), &group.label) {
                obj.insert(k.to_owned(), label.to_json());
            }
            serde_json::Value::Object(obj)
        })
        .collect();
    let value = serde_json::Value::Array(list);
    assert_eq!(
        String::from_utf8(render_groups(g, OutputFormat::Json)).unwrap(),
        value.to_string()
    );
    value
}

// ---- reference arithmetic, independent of ExactSum ----

/// Shewchuk's algorithm with the final round-half-even correction, as CPython's
/// `math.fsum` does it (valid while no partial overflows).
fn fsum_ref(xs: &[f64]) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for &x0 in xs {
        let mut x = x0;
        let mut i = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        partials.truncate(i);
        partials.push(x);
    }
    let mut n = partials.len();
    if n == 0 {
        return 0.0;
    }
    n -= 1;
    let mut hi = partials[n];
    let mut lo = 0.0;
    while n > 0 {
        let x = hi;
        n -= 1;
        let y = partials[n];
        hi = x + y;
        let yr = hi - x;
        lo = y - yr;
        if lo != 0.0 {
            break;
        }
    }
    if n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0)) {
        let y = lo * 2.0;
        let x = hi + y;
        let yr = x - hi;
        if y == yr {
            hi = x;
        }
    }
    hi
}

/// The exact sum of values that are multiples of 2^-64 (and small enough), in i128 fixed
/// point, rounded once by `as f64`.
fn fixed_sum(xs: &[f64]) -> f64 {
    let scale = 18446744073709551616.0; // 2^64
    let mut acc: i128 = 0;
    for &x in xs {
        let scaled = x * scale;
        assert_eq!(scaled.fract(), 0.0, "{x} is not a multiple of 2^-64");
        acc += scaled as i128;
    }
    acc as f64 / scale
}

fn exact(xs: &[f64]) -> f64 {
    let mut s = ExactSum::new();
    xs.iter().for_each(|&x| s.add(x));
    s.value()
}

/// Iris values of `column` per species, in file order.
fn iris_values(ds: &Dataset, column: &str) -> Vec<Vec<f64>> {
    SPECIES
        .iter()
        .map(|sp| {
            (0..150)
                .filter(|&r| text(ds, r, "species") == *sp)
                .map(|r| num(ds, r, column))
                .collect()
        })
        .collect()
}

// ---- category index ----

#[test]
fn the_category_index_numbers_values_by_first_appearance() {
    let ds = dataset("c,n\nb,1\n,2\na,3\nb,4\n,5\n");
    let idx = ds.category_index(0).unwrap();
    assert_eq!(idx.groups(), 3);
    assert_eq!(idx.row_groups(), [0, 1, 2, 0, 1]);
    assert_eq!(idx.value(ds.table(), 0), Value::Text("b"));
    assert_eq!(idx.value(ds.table(), 1), Value::Null);
    assert_eq!(idx.null_group(), Some(1));
    assert_eq!(idx.rows_of(0), [0, 3]);
    assert_eq!(idx.rows_of(1), [1, 4]);
    assert_eq!(idx.rows_of(2), [2]);
    assert_eq!(idx.rows_of(3), [] as [u32; 0]);
    assert_eq!(idx.lookup(CategoryKey::Text("a")), Some(2));
    assert_eq!(idx.lookup(CategoryKey::Text("z")), None);
    assert_eq!(idx.lookup(CategoryKey::Integer(1)), None);
    // Number columns have no index; integer and boolean ones do.
    assert!(ds.category_index(1).is_some());
    let ds = dataset("x,b\n1.5,true\n2.5,false\n");
    assert!(ds.category_index(0).is_none());
    assert_eq!(
        ds.category_index(1)
            .unwrap()
            .lookup(CategoryKey::Boolean(false)),
        Some(1)
    );
    assert!(ds.category_index(9).is_none());
}

// ---- select ----

#[test]
fn each_species_alone_selects_its_fifty_rows_in_file_order() {
    let ds = iris();
    for sp in SPECIES {
        let got = sel(&ds, &species(), json!({ "species": sp }));
        let expected = rows_where(&ds, |r| text(&ds, r, "species") == sp);
        assert_eq!(expected.len(), 50);
        assert_eq!(got.rows(), expected);
        assert_eq!(got.total(), 50);
    }
}

#[test]
fn a_list_of_species_selects_their_union_in_file_order() {
    let ds = iris();
    let got = sel(&ds, &big(), json!({"species": ["virginica", "setosa"]}));
    let expected = rows_where(&ds, |r| text(&ds, r, "species") != "versicolor");
    assert_eq!(got.rows(), expected);
    let got = sel(&ds, &big(), json!({"species": SPECIES}));
    assert_eq!(got.total(), 150);
    assert_eq!(got.rows(), rows_where(&ds, |_| true));
}

#[test]
fn bounds_are_inclusive_at_a_columns_exact_min_and_max() {
    let ds = iris();
    for c in NUMERIC {
        let values: Vec<f64> = (0..150).map(|r| num(&ds, r, c)).collect();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let all = sel(&ds, &big(), json!({"lower": {c: min}, "upper": {c: max}}));
        assert_eq!(all.total(), 150, "{c}");
        let at_min = sel(&ds, &big(), json!({"upper": {c: min}}));
        assert_eq!(
            at_min.rows(),
            rows_where(&ds, |r| num(&ds, r, c) == min),
            "{c}"
        );
        assert!(at_min.total() >= 1);
        let at_max = sel(&ds, &big(), json!({"lower": {c: max}}));
        assert_eq!(
            at_max.rows(),
            rows_where(&ds, |r| num(&ds, r, c) == max),
            "{c}"
        );
        let above = sel(&ds, &big(), json!({"lower": {c: max.next_up()}}));
        assert_eq!(above.total(), 0);
    }
}

#[test]
fn bounds_combine_with_categories_by_and() {
    let ds = iris();
    let got = sel(
        &ds,
        &big(),
        json!({"species": ["versicolor", "virginica"], "lower": {"sepal_length": 6, "petal_width": 1.5}, "upper": {"sepal_length": 6.5}}),
    );
    let expected = rows_where(&ds, |r| {
        text(&ds, r, "species") != "setosa"
            && (6.0..=6.5).contains(&num(&ds, r, "sepal_length"))
            && num(&ds, r, "petal_width") >= 1.5
    });
    assert!(!expected.is_empty());
    assert_eq!(got.rows(), expected);
    assert_eq!(got.total(), expected.len());
}

#[test]
fn lower_above_upper_is_an_empty_result_not_an_error() {
    let ds = iris();
    let got = sel(
        &ds,
        &species(),
        json!({"lower": {"sepal_length": 6}, "upper": {"sepal_length": 5}}),
    );
    assert_eq!(got.total(), 0);
    assert!(got.rows().is_empty());
    let g = stats(
        &ds,
        &species(),
        &body(
            &ds,
            &species(),
            json!({"lower": {"sepal_length": 6}, "upper": {"sepal_length": 5}}),
        ),
        Op::Mean,
    )
    .unwrap();
    assert_eq!(g.total(), 0);
    assert_eq!(groups_json(&g), json!([]));
}

#[test]
fn pagination_over_rows_first_middle_last_partial_and_past_the_end() {
    let ds = iris();
    let s = species();
    let all = rows_where(&ds, |r| text(&ds, r, "species") == "virginica");
    let page = |p: u64| {
        sel(
            &ds,
            &s,
            json!({"species": "virginica", "page": p, "per_page": 15}),
        )
    };
    assert_eq!(page(1).rows(), &all[0..15]);
    assert_eq!(page(2).rows(), &all[15..30]);
    assert_eq!(page(4).rows(), &all[45..50]);
    assert_eq!(page(4).total(), 50);
    assert!(page(5).rows().is_empty());
    assert_eq!(page(5).total(), 50);
    assert!(page(u64::MAX).rows().is_empty());
    // page alone is ignored.
    assert_eq!(
        sel(&ds, &s, json!({"species": "virginica", "page": 3})).rows(),
        all
    );
    // Pagination with bounds (the scanning path) and without any filter (no scan).
    let filtered = rows_where(&ds, |r| num(&ds, r, "petal_length") >= 4.0);
    let got = sel(
        &ds,
        &s,
        json!({"lower": {"petal_length": 4}, "page": 3, "per_page": 10}),
    );
    assert_eq!(got.rows(), &filtered[20..30]);
    assert_eq!(got.total(), filtered.len());
    let got = sel(&ds, &s, json!({"page": 15, "per_page": 10}));
    assert_eq!(got.rows(), (140..150).collect::<Vec<u32>>());
    let got = sel(&ds, &s, json!({"page": 16, "per_page": 10}));
    assert!(got.rows().is_empty());
    assert_eq!(got.total(), 150);
}

#[test]
fn an_answer_over_the_row_limit_is_too_large_unless_paginated() {
    let ds = iris();
    let s = QuerySettings {
        max_answer_rows: 49,
        ..species()
    };
    let e = select(&ds, &s, &body(&ds, &s, json!({"species": "setosa"}))).unwrap_err();
    assert_eq!(
        e,
        QueryError::TooLarge {
            rows: 50,
            limit: 49
        }
    );
    let e = select(&ds, &s, &Query::all()).unwrap_err();
    assert_eq!(
        e,
        QueryError::TooLarge {
            rows: 150,
            limit: 49
        }
    );
    let e = select(
        &ds,
        &s,
        &body(&ds, &s, json!({"lower": {"sepal_length": 5}})),
    )
    .unwrap_err();
    assert!(matches!(e, QueryError::TooLarge { limit: 49, .. }));
    let ok = select(
        &ds,
        &s,
        &body(&ds, &s, json!({"species": "setosa", "per_page": 40})),
    )
    .unwrap();
    assert_eq!(ok.rows().len(), 40);
    // A per_page over the answer limit (a max_per_page above it) is refused too.
    let e = select(&ds, &s, &body(&ds, &s, json!({"per_page": 60}))).unwrap_err();
    assert_eq!(
        e,
        QueryError::TooLarge {
            rows: 60,
            limit: 49
        }
    );
    // The last page is small enough.
    let ok = select(&ds, &s, &body(&ds, &s, json!({"per_page": 60, "page": 3}))).unwrap();
    assert_eq!(ok.rows().len(), 30);
}

#[test]
fn a_null_never_matches_a_bound() {
    let ds = dataset("n,x\n1,1.5\n,\n3,3.5\n");
    let s = QuerySettings::default();
    let got = select(&ds, &s, &params(&ds, &s, "n__gte=-100000")).unwrap();
    assert_eq!(got.rows(), [0, 2]);
    let got = select(&ds, &s, &params(&ds, &s, "x__lte=1e300")).unwrap();
    assert_eq!(got.rows(), [0, 2]);
}

#[test]
fn integer_and_big_number_bounds_select_exactly() {
    let big_int = i64::MAX - 1;
    let csv = format!(
        "n,x\n{big_int},9007199254740992\n{},9007199254740994\n-3,0.5\n",
        i64::MIN
    );
    let ds = dataset_with_number_x(&csv);
    let s = QuerySettings::default();
    let rows = |qs: &str| {
        select(&ds, &s, &params(&ds, &s, qs))
            .unwrap()
            .rows()
            .to_vec()
    };
    assert_eq!(rows(&format!("n__gte={big_int}")), [0]);
    assert_eq!(rows(&format!("n__gt={big_int}")), [] as [u32; 0]);
    assert_eq!(rows("n__gte=9.2e18"), [0]);
    assert_eq!(rows("n__lt=-3"), [1]);
    assert_eq!(rows("n__lte=-2.5"), [1, 2]);
    assert_eq!(rows("x__gte=9007199254740993"), [1]);
    assert_eq!(rows("x__lte=9007199254740993"), [0, 2]);
    assert_eq!(rows("x__gt=9007199254740992"), [1]);
    assert_eq!(rows("x__lt=9007199254740994"), [0, 2]);
}

fn dataset_with_number_x(csv: &str) -> Dataset {
    super::query_tests::dataset_with(csv, &[("x", ColumnType::Number)])
}

// ---- stats on iris ----

#[test]
fn iris_means_are_exactly_the_fsum_means() {
    let ds = iris();
    let g = stats(&ds, &species(), &Query::all(), Op::Mean).unwrap();
    assert_eq!(
        groups_json(&g),
        json!([
            {"mean_sepal_length": 5.006, "mean_sepal_width": 3.428, "mean_petal_length": 1.462, "mean_petal_width": 0.24600000000000002, "label": "setosa"},
            {"mean_sepal_length": 5.936, "mean_sepal_width": 2.77, "mean_petal_length": 4.26, "mean_petal_width": 1.3259999999999998, "label": "versicolor"},
            {"mean_sepal_length": 6.587999999999999, "mean_sepal_width": 2.9739999999999998, "mean_petal_length": 5.5520000000000005, "mean_petal_width": 2.026, "label": "virginica"}
        ])
    );
    // And literally, key order included.
    let text = String::from_utf8(render_groups(&g, OutputFormat::Json)).unwrap();
    assert!(text.starts_with(
        r#"[{"mean_sepal_length":5.006,"mean_sepal_width":3.428,"mean_petal_length":1.462,"mean_petal_width":0.24600000000000002,"label":"setosa"}"#
    ), "{text}");
}

#[test]
fn iris_sums_and_means_equal_two_independent_exact_references() {
    let ds = iris();
    let sums = stats(&ds, &species(), &Query::all(), Op::Sum).unwrap();
    let means = stats(&ds, &species(), &Query::all(), Op::Mean).unwrap();
    for (ci, c) in NUMERIC.iter().enumerate() {
        for (gi, values) in iris_values(&ds, c).iter().enumerate() {
            let reference = fixed_sum(values);
            assert_eq!(reference, fsum_ref(values));
            assert_eq!(
                sums.groups()[gi].values[ci],
                Scalar::Number(reference),
                "{c}"
            );
            assert_eq!(
                means.groups()[gi].values[ci],
                Scalar::Number(reference / values.len() as f64),
                "{c}"
            );
        }
    }
}

#[test]
fn a_naive_sum_would_differ_somewhere_on_iris() {
    // Guards the test above: it would catch a left-to-right sum.
    let ds = iris();
    let differs = NUMERIC.iter().any(|c| {
        iris_values(&ds, c)
            .iter()
            .any(|v| v.iter().sum::<f64>() != fixed_sum(v))
    });
    assert!(differs);
}

#[test]
fn iris_min_max_count_median_std_match_direct_computation() {
    let ds = iris();
    let all: Vec<Groups> = Op::ALL
        .iter()
        .map(|&op| stats(&ds, &species(), &Query::all(), op).unwrap())
        .collect();
    let get = |op: Op, g: usize, c: usize| -> Scalar {
        let i = Op::ALL.iter().position(|&o| o == op).unwrap();
        all[i].groups()[g].values[c].clone()
    };
    for (ci, c) in NUMERIC.iter().enumerate() {
        for (gi, values) in iris_values(&ds, c).iter().enumerate() {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len();
            assert_eq!(get(Op::Min, gi, ci), Scalar::Number(sorted[0]));
            assert_eq!(get(Op::Max, gi, ci), Scalar::Number(sorted[n - 1]));
            assert_eq!(get(Op::Count, gi, ci), Scalar::Integer(n as i64));
            let median = (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
            assert_eq!(get(Op::Median, gi, ci), Scalar::Number(median), "{c}");
            // Two-pass sample std with an exact mean and an exact sum of squares.
            let mean = fixed_sum(values) / n as f64;
            let squares: Vec<f64> = values.iter().map(|x| (x - mean) * (x - mean)).collect();
            let std = (fsum_ref(&squares) / (n - 1) as f64).sqrt();
            assert_eq!(get(Op::Std, gi, ci), Scalar::Number(std), "{c}");
            // And close to the textbook formula.
            let naive_mean = values.iter().sum::<f64>() / n as f64;
            let naive = (values.iter().map(|x| (x - naive_mean).powi(2)).sum::<f64>()
                / (n - 1) as f64)
                .sqrt();
            let Scalar::Number(s) = get(Op::Std, gi, ci) else {
                unreachable!()
            };
            assert!((s - naive).abs() < 1e-12, "{c}: {s} vs {naive}");
        }
    }
    // Python: m = fsum(xs)/n; sqrt(fsum((x - m)**2 for x in xs)/(n - 1)). (The correctly
    // rounded value, statistics.stdev, is one ulp lower: 0.3524896872134513.)
    assert_eq!(get(Op::Std, 0, 0), Scalar::Number(0.35248968721345136));
}

#[test]
fn stats_keys_and_labels_follow_the_spec() {
    let ds = iris();
    let s = QuerySettings {
        label_key: "kind".into(),
        ..species()
    };
    for op in Op::ALL {
        let g = stats(&ds, &s, &Query::all(), op).unwrap();
        let keys: Vec<String> = NUMERIC
            .iter()
            .map(|c| format!("{}_{c}", op.as_str()))
            .collect();
        assert_eq!(g.keys(), keys);
        assert_eq!(g.label_key(), Some("kind"));
        let labels: Vec<Option<Scalar>> = g.groups().iter().map(|g| g.label.clone()).collect();
        assert_eq!(
            labels,
            SPECIES.map(|s| Some(Scalar::Text(s.into()))).to_vec()
        );
        assert_eq!(g.op(), op);
    }
}

#[test]
fn stats_follow_the_query_filters() {
    let ds = iris();
    let q = body(
        &ds,
        &species(),
        json!({"species": ["virginica", "setosa"], "lower": {"sepal_length": 5.5}}),
    );
    let g = stats(&ds, &species(), &q, Op::Count).unwrap();
    // setosa first: groups come in order of first appearance in the file.
    let setosa = rows_where(&ds, |r| {
        text(&ds, r, "species") == "setosa" && num(&ds, r, "sepal_length") >= 5.5
    });
    let virginica = rows_where(&ds, |r| {
        text(&ds, r, "species") == "virginica" && num(&ds, r, "sepal_length") >= 5.5
    });
    assert_eq!(
        groups_json(&g),
        json!([
            {"count_sepal_length": setosa.len(), "count_sepal_width": setosa.len(), "count_petal_length": setosa.len(), "count_petal_width": setosa.len(), "label": "setosa"},
            {"count_sepal_length": virginica.len(), "count_sepal_width": virginica.len(), "count_petal_length": virginica.len(), "count_petal_width": virginica.len(), "label": "virginica"}
        ])
    );
    // A filter that leaves one species out leaves its group out.
    let q = body(&ds, &species(), json!({"lower": {"petal_length": 3}}));
    let g = stats(&ds, &species(), &q, Op::Min).unwrap();
    assert_eq!(g.total(), 2);
    assert_eq!(g.groups()[0].label, Some(Scalar::Text("versicolor".into())));
    assert_eq!(g.groups()[0].values[2], Scalar::Number(3.0));
}

#[test]
fn groups_keep_file_order_even_when_a_filter_reaches_a_later_group_first() {
    let ds = dataset("c,n\na,10\nb,1\na,2\n");
    let s = QuerySettings {
        category: Some("c".into()),
        ..QuerySettings::default()
    };
    let q = params(&ds, &s, "n__lte=5");
    let g = stats(&ds, &s, &q, Op::Sum).unwrap();
    assert_eq!(
        groups_json(&g),
        json!([{"sum_n": 2, "label": "a"}, {"sum_n": 1, "label": "b"}])
    );
}

#[test]
fn pagination_over_groups_and_the_group_limit() {
    let ds = iris();
    let s = species();
    let page = |p: u64, per: u64| {
        let q = body(&ds, &s, json!({"page": p, "per_page": per}));
        stats(&ds, &s, &q, Op::Max).unwrap()
    };
    let label = |g: &Groups| -> Vec<Option<Scalar>> {
        g.groups().iter().map(|g| g.label.clone()).collect()
    };
    let t = |s: &str| Some(Scalar::Text(s.into()));
    assert_eq!(label(&page(1, 2)), [t("setosa"), t("versicolor")]);
    assert_eq!(label(&page(2, 2)), [t("virginica")]);
    assert_eq!(label(&page(2, 1)), [t("versicolor")]);
    assert!(page(3, 2).groups().is_empty());
    assert_eq!(page(3, 2).total(), 3);
    assert!(page(u64::MAX, 1000).groups().is_empty());
    let tight = QuerySettings {
        max_answer_rows: 2,
        ..species()
    };
    let e = stats(&ds, &tight, &Query::all(), Op::Mean).unwrap_err();
    assert_eq!(e, QueryError::TooLarge { rows: 3, limit: 2 });
    let q = body(&ds, &tight, json!({"per_page": 2, "page": 2}));
    assert_eq!(stats(&ds, &tight, &q, Op::Mean).unwrap().groups().len(), 1);
}

#[test]
fn without_a_category_stats_are_one_group_without_label() {
    let ds = iris();
    let s = QuerySettings::default();
    let g = stats(&ds, &s, &Query::all(), Op::Count).unwrap();
    assert_eq!(g.label_key(), None);
    assert_eq!(
        groups_json(&g),
        json!([{"count_sepal_length": 150, "count_sepal_width": 150, "count_petal_length": 150, "count_petal_width": 150}])
    );
    let g = stats(&ds, &s, &Query::all(), Op::Mean).unwrap();
    let all: Vec<f64> = (0..150).map(|r| num(&ds, r, "sepal_length")).collect();
    assert_eq!(
        g.groups()[0].values[0],
        Scalar::Number(fixed_sum(&all) / 150.0)
    );
    let q = params(&ds, &s, "sepal_length__gt=100");
    let g = stats(&ds, &s, &q, Op::Mean).unwrap();
    assert_eq!(groups_json(&g), json!([]));
    assert_eq!(g.total(), 0);
    let q = params(&ds, &s, "page=2&per_page=1");
    assert!(stats(&ds, &s, &q, Op::Mean).unwrap().groups().is_empty());
}

// ---- stats: types, nulls and edges ----

const MIXED: &str = "g,i,x,t\na,1,1.5,p\na,,,q\nb,,,r\na,3,-0.5,s\nc,7,2.0,u\nc,-2,,v\n";

fn mixed() -> (Dataset, QuerySettings) {
    (
        dataset(MIXED),
        QuerySettings {
            category: Some("g".into()),
            ..QuerySettings::default()
        },
    )
}

fn op_json(ds: &Dataset, s: &QuerySettings, op: Op) -> serde_json::Value {
    groups_json(&stats(ds, s, &Query::all(), op).unwrap())
}

#[test]
fn integer_columns_keep_their_type_for_min_max_sum_count() {
    let (ds, s) = mixed();
    assert_eq!(
        op_json(&ds, &s, Op::Min),
        json!([{"min_i": 1, "min_x": -0.5, "label": "a"}, {"min_i": null, "min_x": null, "label": "b"}, {"min_i": -2, "min_x": 2.0, "label": "c"}])
    );
    assert_eq!(
        op_json(&ds, &s, Op::Max),
        json!([{"max_i": 3, "max_x": 1.5, "label": "a"}, {"max_i": null, "max_x": null, "label": "b"}, {"max_i": 7, "max_x": 2.0, "label": "c"}])
    );
    assert_eq!(
        op_json(&ds, &s, Op::Sum),
        json!([{"sum_i": 4, "sum_x": 1.0, "label": "a"}, {"sum_i": 0, "sum_x": 0.0, "label": "b"}, {"sum_i": 5, "sum_x": 2.0, "label": "c"}])
    );
    assert_eq!(
        op_json(&ds, &s, Op::Count),
        json!([{"count_i": 2, "count_x": 2, "label": "a"}, {"count_i": 0, "count_x": 0, "label": "b"}, {"count_i": 2, "count_x": 1, "label": "c"}])
    );
    assert_eq!(
        op_json(&ds, &s, Op::Mean),
        json!([{"mean_i": 2.0, "mean_x": 0.5, "label": "a"}, {"mean_i": null, "mean_x": null, "label": "b"}, {"mean_i": 2.5, "mean_x": 2.0, "label": "c"}])
    );
    assert_eq!(
        op_json(&ds, &s, Op::Median),
        json!([{"median_i": 2.0, "median_x": 0.5, "label": "a"}, {"median_i": null, "median_x": null, "label": "b"}, {"median_i": 2.5, "median_x": 2.0, "label": "c"}])
    );
    assert_eq!(
        op_json(&ds, &s, Op::Std),
        json!([{"std_i": std::f64::consts::SQRT_2, "std_x": std::f64::consts::SQRT_2, "label": "a"}, {"std_i": null, "std_x": null, "label": "b"}, {"std_i": 6.363961030678928, "std_x": null, "label": "c"}])
    );
    // Sum's exact JSON text: integers stay integers, an empty number sum is 0.0.
    let text = String::from_utf8(render_groups(
        &stats(&ds, &s, &Query::all(), Op::Sum).unwrap(),
        OutputFormat::Json,
    ))
    .unwrap();
    assert!(
        text.contains(r#"{"sum_i":0,"sum_x":0.0,"label":"b"}"#),
        "{text}"
    );
}

#[test]
fn a_null_category_is_a_group_of_its_own_with_a_null_label() {
    let ds = dataset("g,n\na,1\n,2\na,3\n,4\n");
    let s = QuerySettings {
        category: Some("g".into()),
        ..QuerySettings::default()
    };
    assert_eq!(
        op_json(&ds, &s, Op::Sum),
        json!([{"sum_n": 4, "label": "a"}, {"sum_n": 6, "label": null}])
    );
}

#[test]
fn integer_and_boolean_categories_group_with_typed_labels() {
    let ds = dataset("k,b,n\n2,true,1\n1,false,2\n2,false,3\n");
    let s = QuerySettings {
        category: Some("k".into()),
        ..QuerySettings::default()
    };
    assert_eq!(
        op_json(&ds, &s, Op::Sum),
        json!([{"sum_n": 4, "label": 2}, {"sum_n": 2, "label": 1}])
    );
    let s = QuerySettings {
        category: Some("b".into()),
        label_key: "tame".into(),
        ..QuerySettings::default()
    };
    assert_eq!(
        op_json(&ds, &s, Op::Count),
        json!([{"count_k": 1, "count_n": 1, "tame": true}, {"count_k": 2, "count_n": 2, "tame": false}])
    );
}

#[test]
fn an_integer_sum_beyond_i64_becomes_the_nearest_number() {
    let ds = dataset(&format!("n\n{}\n{}\n5\n", i64::MAX, i64::MAX));
    let s = QuerySettings::default();
    let g = stats(&ds, &s, &Query::all(), Op::Sum).unwrap();
    let exact = 2 * i128::from(i64::MAX) + 5;
    assert_eq!(g.groups()[0].values[0], Scalar::Number(exact as f64));
    let g = stats(&ds, &s, &Query::all(), Op::Mean).unwrap();
    assert_eq!(g.groups()[0].values[0], Scalar::Number(exact as f64 / 3.0));
    // The median of two huge integers does not overflow.
    let ds = dataset(&format!("n\n{}\n{}\n", i64::MAX, i64::MAX - 2));
    let g = stats(&ds, &s, &Query::all(), Op::Median).unwrap();
    assert_eq!(
        g.groups()[0].values[0],
        Scalar::Number((i128::from(i64::MAX) - 1) as f64)
    );
}

#[test]
fn medians_of_odd_and_even_counts_and_near_overflow() {
    let ds = dataset_with_number_x("x\n3\n1\n2\n");
    let s = QuerySettings::default();
    let med = |ds: &Dataset| {
        stats(ds, &s, &Query::all(), Op::Median).unwrap().groups()[0].values[0].clone()
    };
    assert_eq!(med(&ds), Scalar::Number(2.0));
    let ds = dataset_with_number_x("x\n4\n1\n3\n2\n");
    assert_eq!(med(&ds), Scalar::Number(2.5));
    let ds = dataset_with_number_x("x\n1.7e308\n1.5e308\n");
    assert_eq!(med(&ds), Scalar::Number(1.6e308));
    let ds = dataset_with_number_x("x\n-1.7e308\n-1.5e308\n");
    assert_eq!(med(&ds), Scalar::Number(-1.6e308));
}

#[test]
fn means_and_stds_of_huge_values_do_not_overflow_when_the_result_fits() {
    let s = QuerySettings::default();
    let ds = dataset_with_number_x("x\n1.7e308\n1.5e308\n");
    let g = stats(&ds, &s, &Query::all(), Op::Mean).unwrap();
    assert_eq!(g.groups()[0].values[0], Scalar::Number(1.6e308));
    // The sum itself overflows: written as null.
    let g = stats(&ds, &s, &Query::all(), Op::Sum).unwrap();
    assert_eq!(g.groups()[0].values[0], Scalar::Number(f64::INFINITY));
    assert_eq!(groups_json(&g), json!([{"sum_x": null}]));
    let ds = dataset_with_number_x("x\n1e300\n-1e300\n1e300\n-1e300\n");
    let g = stats(&ds, &s, &Query::all(), Op::Std).unwrap();
    let Scalar::Number(std) = g.groups()[0].values[0] else {
        panic!()
    };
    let expected = 1e300 * (4.0f64 / 3.0).sqrt();
    assert!((std - expected).abs() / expected < 1e-15, "{std}");
    // One value: no sample std.
    let ds = dataset_with_number_x("x\n5\n");
    let g = stats(&ds, &s, &Query::all(), Op::Std).unwrap();
    assert_eq!(g.groups()[0].values[0], Scalar::Null);
}

#[test]
fn query_types_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Dataset>();
    shared::<Query>();
    shared::<QuerySettings>();
    shared::<Selection>();
    shared::<Groups>();
    shared::<QueryError>();
}

#[test]
fn a_category_index_is_built_once_and_shared() {
    let ds = iris();
    let a = ds.category_index(4).unwrap() as *const CategoryIndex;
    let b = ds.category_index(4).unwrap() as *const CategoryIndex;
    assert_eq!(a, b);
}

#[test]
fn op_names_round_trip() {
    for op in Op::ALL {
        assert_eq!(op.as_str().parse::<Op>(), Ok(op));
    }
    let e = "Mean".parse::<Op>().unwrap_err();
    assert!(e.to_string().contains("`Mean`"));
    assert!("".parse::<Op>().is_err());
}

// ---- ExactSum ----

#[test]
fn exact_sum_hand_cases() {
    let two = |e: i32| 2f64.powi(e);
    let cases: Vec<(Vec<f64>, f64)> = vec![
        (vec![], 0.0),
        (vec![1e308, 1.0, -1e308], 1.0),
        (vec![0.1; 10], 1.0),
        (vec![1e100, 1.0, -1e100, 1e-100], 1.0),
        (vec![1.0, two(-53)], 1.0),
        (vec![1.0, two(-53), two(-106)], 1.0 + two(-52)),
        (vec![1.0 + two(-52), two(-53)], 1.0 + two(-51)),
        (vec![-1.0, -two(-53)], -1.0),
        (
            vec![f64::MIN_POSITIVE, -f64::MIN_POSITIVE / 2.0],
            f64::MIN_POSITIVE / 2.0,
        ),
        (vec![5e-324, 5e-324, 5e-324], 1.5e-323),
        (vec![f64::MAX, f64::MAX, -f64::MAX], f64::MAX),
        (vec![f64::MAX, f64::MAX], f64::INFINITY),
        (vec![-f64::MAX, -f64::MAX], f64::NEG_INFINITY),
        (vec![f64::MAX, two(970)], f64::INFINITY),
        (vec![f64::MAX, two(969)], f64::MAX),
        (vec![0.1, 0.2, 0.3, -0.6], 2.7755575615628914e-17),
        (vec![-0.0, 0.0], 0.0),
    ];
    for (xs, expected) in cases {
        assert_eq!(exact(&xs), expected, "{xs:?}");
    }
    let mut s = ExactSum::new();
    s.add(f64::INFINITY);
    s.add(1.0);
    assert_eq!(s.value(), f64::INFINITY);
    s.add(f64::NEG_INFINITY);
    assert!(s.value().is_nan());
}

#[test]
fn exact_sum_of_many_terms_hitting_the_same_limbs() {
    let mut s = ExactSum::new();
    let x = 4294967295.0; // 2^32 - 1: every piece is all ones
    for _ in 0..1_000_000 {
        s.add(x);
        s.add(-x / 2.0);
    }
    assert_eq!(s.value(), 1_000_000.0 * x / 2.0);
}

#[test]
fn exact_sum_mean_survives_an_overflowing_sum() {
    let mut s = ExactSum::new();
    s.add(f64::MAX);
    s.add(f64::MAX);
    assert_eq!(s.value(), f64::INFINITY);
    assert_eq!(s.mean(2), f64::MAX);
    s.add(f64::MAX);
    assert_eq!(s.mean(3), f64::MAX);
    assert_eq!(s.mean(1), f64::INFINITY);
}

/// Finite f64s of any magnitude: random bit patterns, small integers, powers of ten.
fn wild_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite, no overflow", |f| f.is_finite() && f.abs() < 1e300),
        (-1000i32..1000).prop_map(f64::from),
        (-300i32..300, -9i32..10).prop_map(|(e, m)| f64::from(m) * 10f64.powi(e)),
        (0u64..1 << 52).prop_map(f64::from_bits),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn exact_sum_equals_shewchuk_fsum(
        xs in prop::collection::vec(wild_f64(), 0..40),
        cancel in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        // Add the negations of some values, so large terms cancel and small ones decide.
        let mut all = xs.clone();
        if !xs.is_empty() {
            for i in &cancel {
                all.push(-xs[i.index(xs.len())]);
            }
        }
        let expected = fsum_ref(&all);
        prop_assert_eq!(exact(&all), expected, "{:?}", all);
        // The order of the terms does not matter.
        let mut rev = all.clone();
        rev.reverse();
        prop_assert_eq!(exact(&rev), expected);
    }

    #[test]
    fn exact_sum_equals_fixed_point_sum(
        xs in prop::collection::vec(((1u64 << 52)..(1u64 << 53), -64i32..0, any::<bool>()), 0..200),
    ) {
        let xs: Vec<f64> = xs
            .into_iter()
            .map(|(m, e, neg)| {
                let v = m as f64 * 2f64.powi(e);
                if neg { -v } else { v }
            })
            .collect();
        prop_assert_eq!(exact(&xs), fixed_sum(&xs));
    }

    #[test]
    fn merged_sums_equal_one_sum(a in prop::collection::vec(wild_f64(), 0..20), b in prop::collection::vec(wild_f64(), 0..20)) {
        let mut left = ExactSum::new();
        a.iter().for_each(|&x| left.add(x));
        let mut right = ExactSum::new();
        b.iter().for_each(|&x| right.add(x));
        left.merge(&right);
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        prop_assert_eq!(left.value(), exact(&all));
    }

    #[test]
    fn select_and_stats_agree_with_a_row_by_row_filter(
        lo in 4.0f64..8.0, hi in 4.0f64..8.0,
        cats in prop::collection::vec(0usize..3, 0..3),
        page in 1u64..6, per_page in 1u64..40,
    ) {
        let ds = iris();
        let s = big();
        let mut b = json!({"lower": {"sepal_length": lo}, "upper": {"sepal_length": hi}, "page": page, "per_page": per_page});
        if !cats.is_empty() {
            b["species"] = json!(cats.iter().map(|&c| SPECIES[c]).collect::<Vec<_>>());
        }
        let q = body(&ds, &s, b);
        let expected = rows_where(&ds, |r| {
            let x = num(&ds, r, "sepal_length");
            (cats.is_empty() || cats.iter().any(|&c| text(&ds, r, "species") == SPECIES[c]))
                && lo <= x && x <= hi
        });
        let got = select(&ds, &s, &q).unwrap();
        prop_assert_eq!(got.total(), expected.len());
        let start = ((page - 1) * per_page) as usize;
        let page_rows: Vec<u32> = expected.iter().skip(start).take(per_page as usize).copied().collect();
        prop_assert_eq!(got.rows(), &page_rows[..]);
        // Counts per group over all pages add up to the total.
        let mut q_all = q.clone();
        q_all.page = None;
        let counts = stats(&ds, &s, &q_all, Op::Count).unwrap();
        let sum: i64 = counts.groups().iter().map(|g| match g.values[0] { Scalar::Integer(n) => n, _ => 0 }).sum();
        prop_assert_eq!(sum as usize, expected.len());
    }
}

// ---- timing (run by hand: cargo test --release --lib dataset::exec_tests::timing -- --ignored --nocapture) ----

/// A generated table of `rows` rows: a category of 3 values and 4 number columns (and an
/// integer one), built directly.
fn generated(rows: usize) -> Dataset {
    let mut category = TextColumn::default();
    let mut numbers: Vec<Vec<Option<f64>>> = (0..4).map(|_| Vec::with_capacity(rows)).collect();
    let mut ints = Vec::with_capacity(rows);
    let mut state: u64 = 0x9E3779B97F4A7C15;
    for r in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        category.push(Some(["alpha", "beta", "gamma"][(state % 3) as usize]));
        for (i, col) in numbers.iter_mut().enumerate() {
            let v = ((state >> (8 * i)) & 0xFFFF) as f64 / 1000.0;
            col.push(if r % 97 == 0 { None } else { Some(v) });
        }
        ints.push(Some((state >> 40) as i64 - 5000));
    }
    let mut columns = vec![Column {
        name: "kind".into(),
        ty: ColumnType::Text,
        nullable: false,
        declared: false,
    }];
    let mut data = vec![ColumnData::Text(category)];
    for (i, col) in numbers.into_iter().enumerate() {
        columns.push(Column {
            name: format!("x{i}"),
            ty: ColumnType::Number,
            nullable: true,
            declared: false,
        });
        data.push(ColumnData::Number(col));
    }
    columns.push(Column {
        name: "n".into(),
        ty: ColumnType::Integer,
        nullable: false,
        declared: false,
    });
    data.push(ColumnData::Integer(ints));
    Dataset::new(Table {
        columns,
        data,
        rows,
    })
}

#[test]
fn stats_on_a_generated_table_match_a_slow_reference() {
    let ds = generated(20_000);
    let s = QuerySettings {
        category: Some("kind".into()),
        ..QuerySettings::default()
    };
    let g = stats(&ds, &s, &Query::all(), Op::Sum).unwrap();
    for (gi, group) in g.groups().iter().enumerate() {
        let Some(Scalar::Text(label)) = &group.label else {
            panic!()
        };
        let rows: Vec<usize> = (0..20_000)
            .filter(|&r| ds.table().value(r, 0) == Value::Text(label))
            .collect();
        for c in 0..4 {
            let xs: Vec<f64> = rows
                .iter()
                .filter_map(|&r| match ds.table().value(r, c + 1) {
                    Value::Number(x) => Some(x),
                    _ => None,
                })
                .collect();
            assert_eq!(
                group.values[c],
                Scalar::Number(fsum_ref(&xs)),
                "group {gi} x{c}"
            );
        }
    }
}

#[test]
#[ignore = "timing, run by hand in release"]
fn timing() {
    use std::time::Instant;
    let ds = generated(1_000_000);
    let s = QuerySettings {
        category: Some("kind".into()),
        max_answer_rows: 10_000,
        ..QuerySettings::default()
    };
    let t = Instant::now();
    ds.category_index(0);
    println!("index build: {:?}", t.elapsed());
    if let ColumnData::Number(v) = ds.table().column_data(1) {
        for _ in 0..3 {
            let t = Instant::now();
            let naive: f64 = v.iter().flatten().sum();
            println!("calibration, naive sum of one column: {:?}", t.elapsed());
            std::hint::black_box(naive);
            let t = Instant::now();
            let mut e = ExactSum::new();
            v.iter().flatten().for_each(|&x| e.add(x));
            println!("exact sum of one column: {:?}", t.elapsed());
            std::hint::black_box(e.value());
        }
    }
    let q = params(
        &ds,
        &s,
        "kind=beta&x0__gte=10&x1__lte=40&per_page=100&page=3",
    );
    for _ in 0..3 {
        let t = Instant::now();
        let sel = select(&ds, &s, &q).unwrap();
        let out = render_rows(&ds, &s, &sel, OutputFormat::Json);
        println!(
            "filtered page: {:?} ({} of {}, {} bytes)",
            t.elapsed(),
            sel.rows().len(),
            sel.total(),
            out.len()
        );
    }
    let q2 = params(&ds, &s, "x0__gte=10&x1__lte=40&per_page=100");
    let t = Instant::now();
    let sel = select(&ds, &s, &q2).unwrap();
    println!(
        "bounds only page: {:?} (total {})",
        t.elapsed(),
        sel.total()
    );
    for op in Op::ALL {
        let t = Instant::now();
        let g = stats(&ds, &s, &Query::all(), op).unwrap();
        println!(
            "grouped {}: {:?} ({} groups)",
            op.as_str(),
            t.elapsed(),
            g.groups().len()
        );
    }
    let t = Instant::now();
    stats(&ds, &QuerySettings::default(), &Query::all(), Op::Mean).unwrap();
    println!("ungrouped mean: {:?}", t.elapsed());
    let t = Instant::now();
    stats(&ds, &s, &q, Op::Mean).unwrap();
    println!("filtered grouped mean: {:?}", t.elapsed());
    let iris = iris();
    let sp = species();
    let q = params(&iris, &sp, "species=setosa&sepal_length__gte=5");
    let t = Instant::now();
    for _ in 0..10_000 {
        let sel = select(&iris, &sp, &q).unwrap();
        std::hint::black_box(render_rows(&iris, &sp, &sel, OutputFormat::Json));
    }
    println!("iris query+render: {:?} each", t.elapsed() / 10_000);
    let t = Instant::now();
    for _ in 0..10_000 {
        let g = stats(&iris, &sp, &Query::all(), Op::Mean).unwrap();
        std::hint::black_box(render_groups(&g, OutputFormat::Json));
    }
    println!("iris mean+render: {:?} each", t.elapsed() / 10_000);
}

/// 5,000 rows: a category of 37 values (`c0` … `c36`, the first of them rare, some nulls),
/// a number column and an integer column with nulls.
fn many_categories() -> Dataset {
    let mut csv = String::from("cat,x,n\n");
    let mut state: u64 = 12345;
    for r in 0..5000u64 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let c = if r % 101 == 0 {
            String::new()
        } else if state >> 60 == 0 {
            "c0".to_owned()
        } else {
            format!("c{}", (state >> 33) % 37)
        };
        let x = if r % 13 == 0 {
            String::new()
        } else {
            format!("{}", ((state >> 20) % 10_000) as f64 / 100.0 - 50.0)
        };
        let n = if r % 17 == 0 {
            String::new()
        } else {
            format!("{}", (state >> 40) as i64 % 1000 - 500)
        };
        csv.push_str(&format!("{c},{x},{n}\n"));
    }
    super::query_tests::dataset_with(&csv, &[("x", ColumnType::Number)])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn select_and_stats_over_many_categories_agree_with_a_row_by_row_filter(
        cats in prop::collection::vec(0u32..37, 0..6),
        x_lo in proptest::option::of(-60.0f64..60.0),
        n_hi in proptest::option::of(-600i64..600),
        page in 1u64..8,
        per_page in 1u64..200,
    ) {
        let ds = many_categories();
        let s = QuerySettings {
            category: Some("cat".into()),
            max_answer_rows: 10_000,
            ..QuerySettings::default()
        };
        let names: Vec<String> = cats.iter().map(|c| format!("c{c}")).collect();
        let mut qs: Vec<String> = names.iter().map(|n| format!("cat={n}")).collect();
        if let Some(lo) = x_lo {
            qs.push(format!("x__gt={lo}"));
        }
        if let Some(hi) = n_hi {
            qs.push(format!("n__lte={hi}"));
        }
        let q_all = params(&ds, &s, &qs.join("&"));
        qs.push(format!("page={page}&per_page={per_page}"));
        let q = params(&ds, &s, &qs.join("&"));
        let t = ds.table();
        let keep = |r: u32| {
            let r = r as usize;
            let cat_ok = names.is_empty()
                || matches!(t.value(r, 0), Value::Text(c) if names.iter().any(|n| n == c));
            let x_ok = x_lo.is_none_or(|lo| matches!(t.value(r, 1), Value::Number(x) if x > lo));
            let n_ok = n_hi.is_none_or(|hi| matches!(t.value(r, 2), Value::Integer(n) if n <= hi));
            cat_ok && x_ok && n_ok
        };
        let expected = rows_where(&ds, keep);
        let got = select(&ds, &s, &q).unwrap();
        prop_assert_eq!(got.total(), expected.len());
        let start = ((page - 1) * per_page) as usize;
        let page_rows: Vec<u32> =
            expected.iter().skip(start).take(per_page as usize).copied().collect();
        prop_assert_eq!(got.rows(), &page_rows[..]);
        let unpaged = select(&ds, &s, &q_all).unwrap();
        prop_assert_eq!(unpaged.rows(), &expected[..]);
        // Per-group sums of x, in order of first appearance.
        let g = stats(&ds, &s, &q_all, Op::Sum).unwrap();
        let mut order: Vec<Option<String>> = Vec::new();
        for &r in &expected {
            let label = match t.value(r as usize, 0) {
                Value::Text(c) => Some(c.to_owned()),
                _ => None,
            };
            if !order.contains(&label) {
                order.push(label);
            }
        }
        let idx = ds.category_index(0).unwrap();
        order.sort_by_key(|l| match l {
            Some(c) => idx.lookup(CategoryKey::Text(c)),
            None => idx.null_group(),
        });
        prop_assert_eq!(g.total(), order.len());
        for (group, label) in g.groups().iter().zip(&order) {
            let want = label.clone().map_or(Scalar::Null, Scalar::Text);
            prop_assert_eq!(group.label.clone(), Some(want));
            let xs: Vec<f64> = expected
                .iter()
                .filter(|&&r| match t.value(r as usize, 0) {
                    Value::Text(c) => Some(c) == label.as_deref(),
                    _ => label.is_none(),
                })
                .filter_map(|&r| match t.value(r as usize, 1) {
                    Value::Number(x) => Some(x),
                    _ => None,
                })
                .collect();
            prop_assert_eq!(&group.values[0], &Scalar::Number(fsum_ref(&xs)));
        }
    }
}
