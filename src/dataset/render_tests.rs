//! Tests of output (`render.rs`): JSON, CSV and NDJSON answers, number formatting,
//! `Accept` negotiation and the schema.

use proptest::prelude::*;
use serde_json::json;

use super::query_tests::{body, dataset, iris, species};
use super::*;

fn all_rows(ds: &Dataset, s: &QuerySettings) -> Selection {
    select(ds, s, &Query::all()).expect("selects")
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("UTF-8 output")
}

/// A one-row-per-value table of text and numbers, built directly so that it can hold an
/// empty string.
fn table(texts: &[Option<&str>], numbers: &[Option<f64>]) -> Dataset {
    assert_eq!(texts.len(), numbers.len());
    let mut t = TextColumn::default();
    texts.iter().for_each(|v| t.push(*v));
    Dataset::new(Table {
        columns: vec![
            Column {
                name: "t".into(),
                ty: ColumnType::Text,
                nullable: true,
                declared: false,
            },
            Column {
                name: "x".into(),
                ty: ColumnType::Number,
                nullable: true,
                declared: false,
            },
        ],
        data: vec![ColumnData::Text(t), ColumnData::Number(numbers.to_vec())],
        rows: texts.len(),
    })
}

/// Reads a CSV answer back with the importer, the columns declared with the types they
/// had, and returns its rows as JSON objects.
fn csv_back(csv: &[u8], types: &[(&str, ColumnType)]) -> Vec<serde_json::Value> {
    let declared = types.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    let mut imp = Importer::new(Format::Csv, declared, Limits::default());
    imp.feed(csv).expect("CSV answer parses");
    let t = imp.finish().expect("CSV answer imports");
    (0..t.row_count())
        .map(|r| {
            let mut obj = serde_json::Map::new();
            for (c, col) in t.columns().iter().enumerate() {
                let v = match t.value(r, c) {
                    Value::Null => serde_json::Value::Null,
                    Value::Integer(i) => i.into(),
                    Value::Number(f) => f.into(),
                    Value::Text(s) => s.into(),
                    Value::Boolean(b) => b.into(),
                };
                obj.insert(col.name.clone(), v);
            }
            serde_json::Value::Object(obj)
        })
        .collect()
}

/// The selected rows as JSON, built from the table (not by parsing the rendered text:
/// serde_json without `float_roundtrip` may parse a last digit differently). Checks on the
/// way that the JSON answer is exactly what serde_json writes for them.
fn rows_json(ds: &Dataset, s: &QuerySettings, sel: &Selection) -> Vec<serde_json::Value> {
    let t = ds.table();
    let rows: Vec<serde_json::Value> = sel
        .rows()
        .iter()
        .map(|&r| {
            let mut obj = serde_json::Map::new();
            for (c, col) in t.columns().iter().enumerate() {
                let key = if s.category.as_deref() == Some(col.name.as_str()) {
                    s.label_key.clone()
                } else {
                    col.name.clone()
                };
                obj.insert(key, Scalar::from_value(t.value(r as usize, c)).to_json());
            }
            serde_json::Value::Object(obj)
        })
        .collect();
    assert_eq!(
        text(render_rows(ds, s, sel, OutputFormat::Json)),
        serde_json::Value::Array(rows.clone()).to_string()
    );
    rows
}

// ---- rows ----

#[test]
fn iris_rows_as_json_with_the_label_in_place() {
    let ds = iris();
    let sel = select(
        &ds,
        &species(),
        &body(&ds, &species(), json!({"per_page": 2})),
    )
    .unwrap();
    assert_eq!(
        text(render_rows(&ds, &species(), &sel, OutputFormat::Json)),
        r#"[{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2,"label":"setosa"},{"sepal_length":4.9,"sepal_width":3.0,"petal_length":1.4,"petal_width":0.2,"label":"setosa"}]"#
    );
    // Without a category the column keeps its name.
    let s = QuerySettings::default();
    let out = text(render_rows(&ds, &s, &sel, OutputFormat::Json));
    assert!(out.contains(r#""species":"setosa""#), "{out}");
    // The label key replaces the category in its own position.
    let ds = dataset("a,c,b\n1,x,2.5\n");
    let s = QuerySettings {
        category: Some("c".into()),
        label_key: "kind".into(),
        ..QuerySettings::default()
    };
    assert_eq!(
        text(render_rows(&ds, &s, &all_rows(&ds, &s), OutputFormat::Json)),
        r#"[{"a":1,"kind":"x","b":2.5}]"#
    );
}

#[test]
fn an_empty_selection_renders_as_empty_in_every_format() {
    let ds = iris();
    let sel = select(
        &ds,
        &species(),
        &body(&ds, &species(), json!({"lower": {"sepal_length": 100}})),
    )
    .unwrap();
    assert_eq!(
        text(render_rows(&ds, &species(), &sel, OutputFormat::Json)),
        "[]"
    );
    assert_eq!(
        text(render_rows(&ds, &species(), &sel, OutputFormat::NdJson)),
        ""
    );
    assert_eq!(
        text(render_rows(&ds, &species(), &sel, OutputFormat::Csv)),
        "sepal_length,sepal_width,petal_length,petal_width,label\r\n"
    );
}

#[test]
fn iris_csv_reads_back_equal_to_the_json() {
    let ds = iris();
    let s = QuerySettings {
        max_answer_rows: 1000,
        ..species()
    };
    let sel = all_rows(&ds, &s);
    let json = rows_json(&ds, &s, &sel);
    let csv = render_rows(&ds, &s, &sel, OutputFormat::Csv);
    let types = [
        ("sepal_length", ColumnType::Number),
        ("sepal_width", ColumnType::Number),
        ("petal_length", ColumnType::Number),
        ("petal_width", ColumnType::Number),
        ("label", ColumnType::Text),
    ];
    assert_eq!(csv_back(&csv, &types), json);
    assert_eq!(json.len(), 150);
    let csv = text(csv);
    assert!(csv.starts_with("sepal_length,sepal_width,petal_length,petal_width,label\r\n5.1,3.5,1.4,0.2,setosa\r\n4.9,3.0,1.4,0.2,setosa\r\n"));
    assert!(csv.ends_with("\r\n"));
    assert_eq!(csv.matches("\r\n").count(), 151);
}

#[test]
fn csv_quotes_commas_quotes_and_line_breaks_and_tells_empty_from_null() {
    let ds = table(
        &[
            Some("a,b"),
            Some("say \"hi\""),
            Some("line\nbreak"),
            Some("cr\rhere"),
            Some(""),
            None,
            Some("plain"),
            Some("\"\""),
        ],
        &[
            Some(1.0),
            None,
            Some(2.5),
            Some(-0.0),
            Some(0.1),
            Some(3.0),
            None,
            Some(1e-7),
        ],
    );
    let s = QuerySettings::default();
    let sel = all_rows(&ds, &s);
    let csv = render_rows(&ds, &s, &sel, OutputFormat::Csv);
    assert_eq!(
        text(csv.clone()),
        "t,x\r\n\"a,b\",1.0\r\n\"say \"\"hi\"\"\",\r\n\"line\nbreak\",2.5\r\n\"cr\rhere\",-0.0\r\n\"\",0.1\r\n,3.0\r\nplain,\r\n\"\"\"\"\"\",1e-7\r\n"
    );
    // The importer reads the empty string back as null (its rule for CSV), all else equal.
    let mut json = rows_json(&ds, &s, &sel);
    json[4]["t"] = serde_json::Value::Null;
    assert_eq!(
        csv_back(&csv, &[("t", ColumnType::Text), ("x", ColumnType::Number)]),
        json
    );
}

#[test]
fn json_escapes_quotes_backslashes_and_control_characters() {
    let ds = table(&[Some("q\"b\\n\n\t\u{1}\u{1f}é✓\u{7f}")], &[None]);
    let s = QuerySettings::default();
    let out = text(render_rows(&ds, &s, &all_rows(&ds, &s), OutputFormat::Json));
    assert_eq!(
        out,
        r#"[{"t":"q\"b\\n\n\t\u0001\u001fé✓"#.to_owned() + "\u{7f}\",\"x\":null}]"
    );
    // Same bytes as serde_json writes.
    let expected =
        serde_json::to_string(&json!([{"t": "q\"b\\n\n\t\u{1}\u{1f}é✓\u{7f}", "x": null}]))
            .unwrap();
    assert_eq!(out, expected);
}

#[test]
fn a_one_column_csv_writes_a_null_row_as_an_empty_quoted_field() {
    let ds = dataset("n\n1\n\"\"\n3\n");
    let s = QuerySettings::default();
    let csv = render_rows(&ds, &s, &all_rows(&ds, &s), OutputFormat::Csv);
    assert_eq!(text(csv.clone()), "n\r\n1\r\n\"\"\r\n3\r\n");
    assert_eq!(
        csv_back(&csv, &[("n", ColumnType::Integer)]),
        [json!({"n": 1}), json!({"n": null}), json!({"n": 3})]
    );
}

#[test]
fn ndjson_is_one_object_per_line() {
    let ds = iris();
    let s = QuerySettings {
        max_answer_rows: 1000,
        ..species()
    };
    let sel = all_rows(&ds, &s);
    let nd = text(render_rows(&ds, &s, &sel, OutputFormat::NdJson));
    let json = rows_json(&ds, &s, &sel);
    assert!(nd.ends_with('\n'));
    let lines: Vec<&str> = nd.split_terminator('\n').collect();
    assert_eq!(lines.len(), 150);
    for (line, row) in lines.iter().zip(&json) {
        assert_eq!(*line, row.to_string());
    }
}

#[test]
fn numbers_print_as_serde_json_prints_an_f64() {
    let values = [
        5.0,
        0.1,
        1e-7,
        1e300,
        123456789012345680000.0,
        -0.0,
        5e-324,
        f64::MAX,
        0.30000000000000004,
        1e16,
        1e15,
        -2.5,
    ];
    let ds = table(&vec![None; values.len()], &values.map(Some));
    let s = QuerySettings::default();
    let rows = text(render_rows(&ds, &s, &all_rows(&ds, &s), OutputFormat::Csv));
    let printed: Vec<&str> = rows
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_start_matches(','))
        .collect();
    let expected: Vec<String> = values
        .iter()
        .map(|v| serde_json::to_string(v).unwrap())
        .collect();
    assert_eq!(printed, expected);
    assert_eq!(&printed[..4], ["5.0", "0.1", "1e-7", "1e+300"]);
    // Every printed number reads back as the same f64.
    for (p, v) in printed.iter().zip(values) {
        assert_eq!(p.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{p}");
    }
}

#[test]
fn integers_and_booleans_print_plainly() {
    let ds = dataset(&format!("i,b\n{},true\n{},false\n0,\n", i64::MIN, i64::MAX));
    let s = QuerySettings::default();
    let sel = all_rows(&ds, &s);
    assert_eq!(
        text(render_rows(&ds, &s, &sel, OutputFormat::Json)),
        r#"[{"i":-9223372036854775808,"b":true},{"i":9223372036854775807,"b":false},{"i":0,"b":null}]"#
    );
    assert_eq!(
        text(render_rows(&ds, &s, &sel, OutputFormat::Csv)),
        "i,b\r\n-9223372036854775808,true\r\n9223372036854775807,false\r\n0,\r\n"
    );
}

#[test]
fn csv_headers_are_quoted_when_needed_and_json_keys_escaped() {
    let ds = dataset("\"a,b\",\"say \"\"x\"\"\"\n1,2\n");
    let s = QuerySettings::default();
    let sel = all_rows(&ds, &s);
    assert_eq!(
        text(render_rows(&ds, &s, &sel, OutputFormat::Csv)),
        "\"a,b\",\"say \"\"x\"\"\"\r\n1,2\r\n"
    );
    assert_eq!(
        text(render_rows(&ds, &s, &sel, OutputFormat::Json)),
        r#"[{"a,b":1,"say \"x\"":2}]"#
    );
}

// ---- groups ----

#[test]
fn groups_render_in_every_format() {
    let ds = iris();
    let g = stats(&ds, &species(), &Query::all(), Op::Count).unwrap();
    assert_eq!(
        text(render_groups(&g, OutputFormat::Csv)),
        "count_sepal_length,count_sepal_width,count_petal_length,count_petal_width,label\r\n50,50,50,50,setosa\r\n50,50,50,50,versicolor\r\n50,50,50,50,virginica\r\n"
    );
    assert_eq!(
        text(render_groups(&g, OutputFormat::NdJson)),
        "{\"count_sepal_length\":50,\"count_sepal_width\":50,\"count_petal_length\":50,\"count_petal_width\":50,\"label\":\"setosa\"}\n\
         {\"count_sepal_length\":50,\"count_sepal_width\":50,\"count_petal_length\":50,\"count_petal_width\":50,\"label\":\"versicolor\"}\n\
         {\"count_sepal_length\":50,\"count_sepal_width\":50,\"count_petal_length\":50,\"count_petal_width\":50,\"label\":\"virginica\"}\n"
    );
    let g = stats(&ds, &QuerySettings::default(), &Query::all(), Op::Max).unwrap();
    assert_eq!(
        text(render_groups(&g, OutputFormat::Json)),
        r#"[{"max_sepal_length":7.9,"max_sepal_width":4.4,"max_petal_length":6.9,"max_petal_width":2.5}]"#
    );
    assert_eq!(
        text(render_groups(&g, OutputFormat::Csv)),
        "max_sepal_length,max_sepal_width,max_petal_length,max_petal_width\r\n7.9,4.4,6.9,2.5\r\n"
    );
}

#[test]
fn non_finite_stats_are_null_in_json_and_empty_in_csv() {
    let ds = table(&[Some("a"), Some("a")], &[Some(f64::MAX), Some(f64::MAX)]);
    let s = QuerySettings {
        category: Some("t".into()),
        ..QuerySettings::default()
    };
    let g = stats(&ds, &s, &Query::all(), Op::Sum).unwrap();
    assert_eq!(
        text(render_groups(&g, OutputFormat::Json)),
        r#"[{"sum_x":null,"label":"a"}]"#
    );
    assert_eq!(
        text(render_groups(&g, OutputFormat::Csv)),
        "sum_x,label\r\n,a\r\n"
    );
}

#[test]
fn groups_without_stat_columns_are_just_labels() {
    let ds = dataset("c\na\nb\na\n");
    let s = QuerySettings {
        category: Some("c".into()),
        ..QuerySettings::default()
    };
    let g = stats(&ds, &s, &Query::all(), Op::Mean).unwrap();
    assert_eq!(
        text(render_groups(&g, OutputFormat::Json)),
        r#"[{"label":"a"},{"label":"b"}]"#
    );
    let g = stats(&ds, &QuerySettings::default(), &Query::all(), Op::Mean).unwrap();
    assert_eq!(text(render_groups(&g, OutputFormat::Json)), "[{}]");
    assert_eq!(text(render_groups(&g, OutputFormat::NdJson)), "{}\n");
}

// ---- schema ----

#[test]
fn the_schema_lists_columns_in_file_order() {
    let ds = super::query_tests::dataset_with(
        "id,name,score,ok\n1,a,1.5,true\n2,,2,false\n",
        &[("score", ColumnType::Number)],
    );
    let out = render_schema(&ds, "pe\"ople");
    assert_eq!(
        text(out.clone()),
        r#"{"name":"pe\"ople","rows":2,"columns":[{"name":"id","type":"integer","nullable":false,"declared":false},{"name":"name","type":"text","nullable":true,"declared":false},{"name":"score","type":"number","nullable":false,"declared":true},{"name":"ok","type":"boolean","nullable":false,"declared":false}]}"#
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["rows"], 2);
}

// ---- negotiation ----

#[test]
fn accept_negotiation_table() {
    use OutputFormat::{Csv, Json, NdJson};
    let cases: &[(Option<&str>, Result<OutputFormat, NotAcceptable>)] = &[
        (None, Ok(Json)),
        (Some(""), Ok(Json)),
        (Some("   "), Ok(Json)),
        (Some("*/*"), Ok(Json)),
        (Some("application/*"), Ok(Json)),
        (Some("text/*"), Ok(Csv)),
        (Some("application/json"), Ok(Json)),
        (Some("text/csv"), Ok(Csv)),
        (Some("TEXT/CSV; charset=utf-8"), Ok(Csv)),
        (Some("application/x-ndjson"), Ok(NdJson)),
        (Some("application/ndjson"), Ok(NdJson)),
        (Some("application/jsonl"), Ok(NdJson)),
        (Some("text/html"), Err(NotAcceptable)),
        (Some("image/png, text/plain"), Err(NotAcceptable)),
        (Some("application/json;q=0"), Err(NotAcceptable)),
        (Some("application/json;q=0, text/csv;q=0.1"), Ok(Csv)),
        (Some("text/csv;q=0.5, application/json;q=0.4"), Ok(Csv)),
        (Some("text/csv;q=0.4, application/json;q=0.5"), Ok(Json)),
        (Some("text/csv, application/json"), Ok(Json)),
        (Some("application/x-ndjson, text/csv"), Ok(Csv)),
        (Some("application/x-ndjson, */*;q=0.9"), Ok(NdJson)),
        (Some("*/*;q=0.9, text/csv"), Ok(Csv)),
        // A specific range beats a wildcard of equal q.
        (Some("*/*, application/x-ndjson"), Ok(NdJson)),
        (Some("text/*, application/x-ndjson"), Ok(NdJson)),
        (Some("application/*, text/csv"), Ok(Csv)),
        // The most specific range decides a format's q.
        (Some("application/json;q=0, */*"), Ok(Csv)),
        (Some("application/json;q=0, application/*"), Ok(NdJson)),
        (Some("text/csv;q=0, text/*"), Err(NotAcceptable)),
        (Some("*/*;q=0"), Err(NotAcceptable)),
        // Malformed q counts as 1; other parameters are ignored.
        (Some("text/csv;q=abc, application/json;q=0.9"), Ok(Csv)),
        (Some("text/csv;q=7, application/json;q=0.9"), Ok(Csv)),
        (
            Some("text/csv;level=1;q=0.2, application/json;q=0.3"),
            Ok(Json),
        ),
        (
            Some("text/csv ; Q=0.2 , application/json ; q=0.3"),
            Ok(Json),
        ),
        // Browsers.
        (
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            Ok(Json),
        ),
        // Nothing well-formed at all is as good as no header.
        (Some("garbage"), Ok(Json)),
        (Some(",,;"), Ok(Json)),
        (Some("*/csv"), Ok(Json)),
    ];
    for (accept, expected) in cases {
        assert_eq!(negotiate(*accept), *expected, "{accept:?}");
    }
}

#[test]
fn content_types() {
    assert_eq!(content_type(OutputFormat::Json), "application/json");
    assert_eq!(content_type(OutputFormat::Csv), "text/csv; charset=utf-8");
    assert_eq!(content_type(OutputFormat::NdJson), "application/x-ndjson");
    // What we send, we accept.
    for f in [OutputFormat::Json, OutputFormat::Csv, OutputFormat::NdJson] {
        assert_eq!(negotiate(Some(content_type(f))), Ok(f));
    }
}

proptest! {
    #[test]
    fn negotiate_never_panics(accept in ".{0,120}") {
        let _ = negotiate(Some(&accept));
    }

    #[test]
    fn negotiate_never_panics_on_plausible_headers(
        parts in prop::collection::vec(
            (
                prop_oneof![
                    Just("*/*"), Just("application/*"), Just("text/*"), Just("application/json"),
                    Just("text/csv"), Just("application/x-ndjson"), Just("application/jsonl"),
                    Just("text/html"), Just("*"), Just("/"), Just(""),
                ],
                prop_oneof![Just(String::new()), "[0-9.]{0,5}".prop_map(|q| format!(";q={q}")), Just(";q".to_owned())],
            ),
            0..6,
        )
    ) {
        let accept: Vec<String> = parts.iter().map(|(m, q)| format!("{m}{q}")).collect();
        let _ = negotiate(Some(&accept.join(", ")));
    }

    #[test]
    fn csv_of_random_text_reads_back(values in prop::collection::vec(proptest::option::of("[a-z,\"\r\n é]{1,8}"), 1..20)) {
        let texts: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
        let nums: Vec<Option<f64>> = (0..texts.len()).map(|i| Some(i as f64 / 7.0)).collect();
        let ds = table(&texts, &nums);
        let s = QuerySettings::default();
        let sel = all_rows(&ds, &s);
        let csv = render_rows(&ds, &s, &sel, OutputFormat::Csv);
        let json = rows_json(&ds, &s, &sel);
        prop_assert_eq!(csv_back(&csv, &[("t", ColumnType::Text), ("x", ColumnType::Number)]), json);
    }
}
