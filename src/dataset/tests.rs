use proptest::prelude::*;

use super::*;

const IRIS: &str = include_str!("testdata/iris.csv");

fn import(
    format: Format,
    declared: &[(&str, ColumnType)],
    input: &str,
) -> Result<Table, ImportError> {
    import_with(
        format,
        declared,
        Limits::default(),
        input.as_bytes(),
        &[input.len()],
    )
}

/// Imports `input` fed in chunks of the given sizes (the last chunk takes the rest).
fn import_with(
    format: Format,
    declared: &[(&str, ColumnType)],
    limits: Limits,
    input: &[u8],
    sizes: &[usize],
) -> Result<Table, ImportError> {
    let declared = declared.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    let mut imp = Importer::new(format, declared, limits);
    let mut rest = input;
    for &n in sizes {
        let n = n.min(rest.len());
        imp.feed(&rest[..n])?;
        rest = &rest[n..];
    }
    imp.feed(rest)?;
    imp.finish()
}

fn csv(input: &str) -> Result<Table, ImportError> {
    import(Format::Csv, &[], input)
}

fn types(t: &Table) -> Vec<(&str, ColumnType, bool)> {
    t.columns()
        .iter()
        .map(|c| (c.name.as_str(), c.ty, c.nullable))
        .collect()
}

fn err(r: Result<Table, ImportError>) -> ImportError {
    match r {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn iris() {
    let t = csv(IRIS).unwrap();
    assert_eq!(t.row_count(), 150);
    use ColumnType::*;
    assert_eq!(
        types(&t),
        vec![
            ("sepal_length", Number, false),
            ("sepal_width", Number, false),
            ("petal_length", Number, false),
            ("petal_width", Number, false),
            ("species", Text, false),
        ]
    );
    assert!(t.columns().iter().all(|c| !c.declared));
    assert_eq!(t.value(0, 0), Value::Number(5.1));
    assert_eq!(t.value(0, 3), Value::Number(0.2));
    assert_eq!(t.value(0, 4), Value::Text("setosa"));
    assert_eq!(t.value(149, 0), Value::Number(5.9));
    assert_eq!(t.value(149, 4), Value::Text("virginica"));
    assert_eq!(t.value(150, 0), Value::Null);
    let ColumnData::Number(sl) = t.column_data(0) else {
        panic!("not numbers")
    };
    let setosa: Vec<f64> = sl[..50].iter().map(|v| v.unwrap()).collect();
    assert_eq!(setosa.len(), 50);
    // The iris rows that differ from what inference might do: 7.0 is a number, not an integer.
    assert!(sl.contains(&Some(7.0)));
}

#[test]
fn progress() {
    let mut imp = Importer::new(Format::Csv, vec![], Limits::default());
    imp.feed(b"a,b\n1,2\n3,").unwrap();
    assert_eq!(imp.rows(), 1);
    assert_eq!(imp.bytes(), 10);
    imp.feed(b"4\n").unwrap();
    assert_eq!(imp.rows(), 2);
    assert_eq!(imp.finish().unwrap().row_count(), 2);
}

#[test]
fn declared_text_keeps_leading_zeros() {
    let t = import(
        Format::Csv,
        &[("zip", ColumnType::Text)],
        "zip,n\n02134,1\n10001,2\n,3\n",
    )
    .unwrap();
    assert_eq!(t.columns()[0].ty, ColumnType::Text);
    assert!(t.columns()[0].declared);
    assert!(t.columns()[0].nullable);
    assert!(!t.columns()[1].declared);
    assert_eq!(t.value(0, 0), Value::Text("02134"));
    assert_eq!(t.value(2, 0), Value::Null);
    assert_eq!(t.value(0, 1), Value::Integer(1));
    // Undeclared, the same column is an integer.
    let t = csv("zip\n02134\n").unwrap();
    assert_eq!(t.value(0, 0), Value::Integer(2134));
}

#[test]
fn declared_integer_rejects_text() {
    let e = err(import(
        Format::Csv,
        &[("n", ColumnType::Integer)],
        "a,n\nx,1\ny,2\nz,abc\n",
    ));
    assert_eq!(e.line, Some(4));
    assert_eq!(e.column.as_deref(), Some("n"));
    assert_eq!(e.to_string(), "line 4, column `n`: `abc` is not an integer");
    let e = err(import(
        Format::Csv,
        &[("n", ColumnType::Number)],
        "n\n1\nabc\n",
    ));
    assert_eq!(e.to_string(), "line 3, column `n`: `abc` is not a number");
    let e = err(import(
        Format::Csv,
        &[("n", ColumnType::Boolean)],
        "n\ntrue\nyes\n",
    ));
    assert_eq!(e.to_string(), "line 3, column `n`: `yes` is not a boolean");
    let long = "x".repeat(100);
    let e = err(import(
        Format::Csv,
        &[("n", ColumnType::Integer)],
        &format!("n\n{long}\n"),
    ));
    assert_eq!(
        e.message,
        format!("`{}…` is not an integer", "x".repeat(64))
    );
}

#[test]
fn declared_types_win_and_must_exist() {
    let t = import(
        Format::Csv,
        &[("a", ColumnType::Number), ("b", ColumnType::Text)],
        "a,b,c\n1,2,3\n",
    )
    .unwrap();
    assert_eq!(t.value(0, 0), Value::Number(1.0));
    assert_eq!(t.value(0, 1), Value::Text("2"));
    assert_eq!(t.value(0, 2), Value::Integer(3));
    let e = err(import(Format::Csv, &[("d", ColumnType::Text)], "a\n1\n"));
    assert_eq!(e.column.as_deref(), Some("d"));
    let e = err(import(
        Format::JsonLines,
        &[("d", ColumnType::Text)],
        "{\"a\":1}\n",
    ));
    assert_eq!(e.column.as_deref(), Some("d"));
}

#[test]
fn inference() {
    use ColumnType::*;
    let t = csv("i,n,t,b,e,s\n1,1,1,true,,-5\n-2,2.5,abc,FALSE,,+7\n007,1e3,007,True,,\n").unwrap();
    assert_eq!(
        types(&t),
        vec![
            ("i", Integer, false),
            ("n", Number, false),
            ("t", Text, false),
            ("b", Boolean, false),
            ("e", Text, true),
            ("s", Integer, true),
        ]
    );
    assert_eq!(t.value(2, 0), Value::Integer(7));
    assert_eq!(t.value(1, 1), Value::Number(2.5));
    assert_eq!(t.value(2, 1), Value::Number(1000.0));
    assert_eq!(t.value(0, 2), Value::Text("1"));
    assert_eq!(t.value(2, 2), Value::Text("007"));
    assert_eq!(t.value(1, 3), Value::Boolean(false));
    assert_eq!(t.value(0, 4), Value::Null);
    assert_eq!(t.value(1, 5), Value::Integer(7));
    assert_eq!(t.value(2, 5), Value::Null);
    // inf, nan, hex and too-big integers.
    let t = csv("a,b,c,d\ninf,nan,0x10,99999999999999999999\n1,2,3,4\n").unwrap();
    assert_eq!(
        types(&t)[..3],
        [("a", Text, false), ("b", Text, false), ("c", Text, false)]
    );
    assert_eq!(t.columns()[3].ty, Number);
    assert_eq!(t.value(0, 3), Value::Number(1e20));
    // Correct rounding of the float parser.
    let t = csv("x\n0.1\n9007199254740993.0\n").unwrap();
    assert_eq!(t.value(0, 0), Value::Number(0.1));
    assert_eq!(t.value(1, 0), Value::Number(9007199254740992.0));
}

#[test]
fn csv_quoting() {
    let input = "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\r\nlines\"\r\n1,2,3\r\n4,5\r\n";
    let e = err(csv(input));
    assert_eq!(e.line, Some(5));
    assert_eq!(
        e.to_string(),
        "line 5: expected 3 fields as in the header, found 2"
    );
    let t = csv(&input.replace("4,5\r\n", "4,5,\"\"")).unwrap();
    assert_eq!(t.row_count(), 3);
    assert_eq!(t.value(0, 0), Value::Text("x, y"));
    assert_eq!(t.value(0, 1), Value::Text("say \"hi\""));
    assert_eq!(t.value(0, 2), Value::Text("two\r\nlines"));
    assert_eq!(t.value(2, 2), Value::Null);
    assert_eq!(t.columns()[2].ty, ColumnType::Text);
    // Lines after a multi-line field, with LF ends, and an error in a later row.
    let e = err(import(
        Format::Csv,
        &[("n", ColumnType::Integer)],
        "t,n\n\"a\nb\nc\",1\nx,2\ny,z\n",
    ));
    assert_eq!((e.line, e.column.as_deref()), (Some(6), Some("n")));
    // A record spanning lines reports the line it starts on.
    let e = err(csv("a,b\n\"1\n2\"\n"));
    assert_eq!(e.line, Some(2));
    let e = err(csv("a,b\n1,\"open\n"));
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("not closed"), "{e}");
}

#[test]
fn csv_lines_and_blank_lines() {
    let t = csv("a,b\n1,2").unwrap();
    assert_eq!(t.row_count(), 1);
    let t = csv("a,b\r\n1,2\r\n\r\n\n3,4\n\n").unwrap();
    assert_eq!(t.row_count(), 2);
    let e = err(csv("a,b\n1,2\n\n3\n"));
    assert_eq!(e.line, Some(4));
    let e = err(csv("a,b\n1,2,3\n"));
    assert_eq!(e.line, Some(2));
    let e = err(csv(""));
    assert_eq!(e.message, "no header row");
    let t = csv("a,b\n").unwrap();
    assert_eq!(t.row_count(), 0);
    assert_eq!(
        types(&t),
        vec![
            ("a", ColumnType::Text, false),
            ("b", ColumnType::Text, false)
        ]
    );
}

#[test]
fn csv_header_errors() {
    let e = err(csv("a,b,a\n1,2,3\n"));
    assert_eq!(
        e.to_string(),
        "line 1, column `a`: duplicate column name `a`"
    );
    let e = err(csv("a,,b\n1,2,3\n"));
    assert_eq!((e.line, e.message.as_str()), (Some(1), "empty column name"));
}

#[test]
fn bom_is_stripped() {
    let input = "\u{feff}a,b\n1,2\n";
    let t = csv(input).unwrap();
    assert_eq!(t.columns()[0].name, "a");
    let t1 = import_with(
        Format::Csv,
        &[],
        Limits::default(),
        input.as_bytes(),
        &[1, 1, 1, 1],
    )
    .unwrap();
    assert_eq!(t, t1);
    let t = import(Format::Json, &[], "\u{feff}[{\"a\":1}]").unwrap();
    assert_eq!(t.value(0, 0), Value::Integer(1));
    // A BOM elsewhere is data.
    let t = csv("a\nx\u{feff}\n").unwrap();
    assert_eq!(t.value(0, 0), Value::Text("x\u{feff}"));
}

#[test]
fn invalid_utf8() {
    let e = import_with(Format::Csv, &[], Limits::default(), b"a,b\n1,\xff\n", &[]).unwrap_err();
    assert_eq!((e.line, e.column.as_deref()), (Some(2), Some("b")));
}

#[test]
fn json_array() {
    let input = r#"[
  {"a": 1, "b": "x"},
  {"b": "y", "c": true, "d": 1.5},
  {"a": 2, "c": false, "d": 2, "e": null, "f": 99999999999999999999}
]"#;
    let t = import(Format::Json, &[], input).unwrap();
    use ColumnType::*;
    assert_eq!(
        types(&t),
        vec![
            ("a", Integer, true),
            ("b", Text, true),
            ("c", Boolean, true),
            ("d", Number, true),
            ("e", Text, true),
            ("f", Number, true),
        ]
    );
    assert_eq!(t.value(0, 0), Value::Integer(1));
    assert_eq!(t.value(1, 0), Value::Null);
    assert_eq!(t.value(0, 2), Value::Null);
    assert_eq!(t.value(2, 3), Value::Number(2.0));
    assert_eq!(t.value(2, 5), Value::Number(1e20));
    assert_eq!(import(Format::Json, &[], " [ ] ").unwrap().row_count(), 0);
}

#[test]
fn json_types() {
    // A JSON string is text even if it looks like a number; numbers keep their source text in
    // a text column.
    let t = import(
        Format::JsonLines,
        &[],
        "{\"a\":\"1\",\"b\":1.50,\"c\":1}\n{\"b\":\"x\",\"c\":1e2}",
    )
    .unwrap();
    assert_eq!(t.columns()[0].ty, ColumnType::Text);
    assert_eq!(t.value(0, 1), Value::Text("1.50"));
    assert_eq!(t.value(0, 2), Value::Number(1.0));
    assert_eq!(t.value(1, 2), Value::Number(100.0));
    // Declared types parse JSON strings.
    let t = import(
        Format::JsonLines,
        &[("a", ColumnType::Integer), ("b", ColumnType::Text)],
        "{\"a\":\"5\",\"b\":7}",
    )
    .unwrap();
    assert_eq!(t.value(0, 0), Value::Integer(5));
    assert_eq!(t.value(0, 1), Value::Text("7"));
    let e = err(import(
        Format::JsonLines,
        &[("a", ColumnType::Integer)],
        "{\"a\":1.5}",
    ));
    assert_eq!(e.to_string(), "line 1, column `a`: `1.5` is not an integer");
    let e = err(import(Format::JsonLines, &[], "{\"a\":1e999}"));
    assert_eq!(e.column.as_deref(), Some("a"));
}

#[test]
fn json_lines() {
    let input = "{\"a\":1}\r\n\n  \n{\"b\":\"x\",\"a\":2}\n{\"c\":[1]}\n";
    let e = err(import(Format::JsonLines, &[], input));
    assert_eq!(e.line, Some(5));
    assert_eq!(e.column.as_deref(), Some("c"));
    let t = import(Format::JsonLines, &[], &input.replace("{\"c\":[1]}", "")).unwrap();
    assert_eq!(t.row_count(), 2);
    assert_eq!(t.columns()[1].name, "b");
    assert_eq!(t.value(0, 1), Value::Null);
    let e = err(import(Format::JsonLines, &[], "{\"a\":1}\n[1]\n"));
    assert_eq!(e.line, Some(2));
    let e = err(import(Format::JsonLines, &[], "{\"a\":1,\"a\":2}\n"));
    assert!(e.message.contains("duplicate"), "{e}");
    let e = err(import(Format::JsonLines, &[], "{\"a\":1}\n{\"a\":\n"));
    assert_eq!(e.line, Some(2));
}

#[test]
fn json_errors() {
    let e = err(import(
        Format::Json,
        &[],
        "[\n{\"a\":1},\n{\"a\":\n  {\"b\":2}}\n]",
    ));
    assert_eq!((e.line, e.column.as_deref()), (Some(3), Some("a")));
    assert!(e.message.contains("nested"), "{e}");
    let e = err(import(Format::Json, &[], "{\"a\":1}"));
    assert_eq!(e.line, Some(1));
    let e = err(import(Format::Json, &[], "[{\"a\":1},\n 2]"));
    assert_eq!(e.line, Some(2));
    let e = err(import(Format::Json, &[], "[{\"a\":1},]"));
    assert!(e.message.contains("expected an object"), "{e}");
    let e = err(import(Format::Json, &[], "[{\"a\":1}"));
    assert!(e.message.contains("not closed"), "{e}");
    let e = err(import(Format::Json, &[], "[{\"a\":1}] x"));
    assert!(e.message.contains("end of the input"), "{e}");
    let e = err(import(Format::Json, &[], "[{\"a\":1},\n{\"a\" 1}]"));
    assert_eq!(e.line, Some(2));
    // Braces inside strings do not confuse the splitter.
    let t = import(Format::Json, &[], r#"[{"a":"}{\"]["}]"#).unwrap();
    assert_eq!(t.value(0, 0), Value::Text("}{\"]["));
}

#[test]
fn limits() {
    let limits = Limits {
        max_rows: 2,
        max_columns: 3,
        max_field_bytes: 5,
    };
    let run = |f: Format, s: &str| import_with(f, &[], limits, s.as_bytes(), &[]);
    assert!(run(Format::Csv, "a\n1\n2\n").is_ok());
    let e = run(Format::Csv, "a\n1\n2\n3\n").unwrap_err();
    assert_eq!(e.to_string(), "line 4: more than 2 rows");
    let e = run(Format::Csv, "a,b,c,d\n").unwrap_err();
    assert_eq!(e.message, "more than 3 columns");
    assert!(run(Format::Csv, "a\n12345\n").is_ok());
    let e = run(Format::Csv, "a\n123456\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2, column `a`: field 1 is longer than 5 bytes"
    );
    let e = run(Format::JsonLines, "{\"a\":1,\"b\":1,\"c\":1,\"d\":1}").unwrap_err();
    assert_eq!(e.message, "more than 3 columns");
    let e = run(Format::Json, "[{\"a\":1},{\"a\":1},{\"a\":1}]").unwrap_err();
    assert_eq!(e.message, "more than 2 rows");
    let e = run(Format::Json, "[{\"a\":\"123456\"}]").unwrap_err();
    assert_eq!(e.column.as_deref(), Some("a"));
    let mut imp = Importer::new(Format::JsonLines, vec![], limits);
    let e = imp
        .feed(&vec![b' '; limits.max_element_bytes() + 1])
        .unwrap_err();
    assert!(e.message.contains("longer than"), "{e}");
    assert_eq!(imp.feed(b"").unwrap_err(), e);
}

#[test]
fn content_types() {
    assert_eq!(
        Format::from_content_type("text/csv; charset=utf-8"),
        Some(Format::Csv)
    );
    assert_eq!(
        Format::from_content_type("Application/JSON"),
        Some(Format::Json)
    );
    assert_eq!(
        Format::from_content_type("application/x-ndjson"),
        Some(Format::JsonLines)
    );
    assert_eq!(
        Format::from_content_type("application/jsonl"),
        Some(Format::JsonLines)
    );
    assert_eq!(Format::from_content_type("text/plain"), None);
    assert_eq!(
        serde_json::to_string(&ColumnType::Boolean).unwrap(),
        "\"boolean\""
    );
}

#[test]
fn one_byte_chunks_iris() {
    let whole = csv(IRIS).unwrap();
    let sizes = vec![1; IRIS.len()];
    let t = import_with(Format::Csv, &[], Limits::default(), IRIS.as_bytes(), &sizes).unwrap();
    assert_eq!(whole, t);
}

/// Splits `input` at random points and checks the result equals the one-chunk result.
fn same_in_chunks(format: Format, input: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let whole = import_with(format, &[], Limits::default(), input, &[]);
    let mut sizes = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut prev = 0;
    for c in cuts {
        sizes.push(c - prev);
        prev = c;
    }
    let chunked = import_with(format, &[], Limits::default(), input, &sizes);
    prop_assert_eq!(&whole, &chunked);
    let ones = vec![1; input.len()];
    let bytewise = import_with(format, &[], Limits::default(), input, &ones);
    prop_assert_eq!(&whole, &bytewise);
    Ok(())
}

#[derive(Debug, Clone)]
enum Col {
    Int(Vec<Option<i64>>),
    Num(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
}

fn column(rows: usize) -> impl Strategy<Value = Col> {
    use proptest::collection::vec;
    use proptest::option::weighted;
    let num = prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        -1e6f64..1e6
    ];
    prop_oneof![
        vec(weighted(0.8, any::<i64>()), rows).prop_map(Col::Int),
        vec(weighted(0.8, num), rows).prop_map(Col::Num),
        vec(weighted(0.8, any::<bool>()), rows).prop_map(Col::Bool),
        vec(weighted(0.8, "[a-z0-9 ,\"\r\né]{0,6}x"), rows).prop_map(Col::Text),
    ]
}

fn table() -> impl Strategy<Value = Vec<Col>> {
    (1usize..8, 1usize..5)
        .prop_flat_map(|(rows, cols)| proptest::collection::vec(column(rows), cols))
}

fn cell(c: &Col, row: usize, single: bool) -> String {
    let null = if single {
        "\"\"".to_string()
    } else {
        String::new()
    };
    match c {
        Col::Int(v) => v[row].map_or(null, |x| x.to_string()),
        Col::Num(v) => v[row].map_or(null, |x| format!("{x:?}")),
        Col::Bool(v) => v[row].map_or(null, |x| if x { "TRUE".into() } else { "false".into() }),
        Col::Text(v) => v[row]
            .as_ref()
            .map_or(null, |s| format!("\"{}\"", s.replace('"', "\"\""))),
    }
}

fn render(cols: &[Col], crlf: bool, final_newline: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let rows = match &cols[0] {
        Col::Int(v) => v.len(),
        Col::Num(v) => v.len(),
        Col::Bool(v) => v.len(),
        Col::Text(v) => v.len(),
    };
    let mut out = (0..cols.len())
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    for r in 0..rows {
        out.push_str(eol);
        let line: Vec<String> = cols.iter().map(|c| cell(c, r, cols.len() == 1)).collect();
        out.push_str(&line.join(","));
    }
    if final_newline {
        out.push_str(eol);
    }
    out
}

/// The table as JSON objects (a null is an explicit `null` in even rows, a missing key in odd
/// ones), one per line; with `array`, wrapped in `[`…`]` with commas.
fn render_json(cols: &[Col], array: bool) -> String {
    let rows = match &cols[0] {
        Col::Int(v) => v.len(),
        Col::Num(v) => v.len(),
        Col::Bool(v) => v.len(),
        Col::Text(v) => v.len(),
    };
    let mut lines = Vec::new();
    for r in 0..rows {
        let mut fields = Vec::new();
        for (i, c) in cols.iter().enumerate() {
            let v = match c {
                Col::Int(v) => v[r].map(|x| x.to_string()),
                Col::Num(v) => v[r].map(|x| format!("{x:?}")),
                Col::Bool(v) => v[r].map(|x| x.to_string()),
                Col::Text(v) => v[r].as_ref().map(|s| serde_json::to_string(s).unwrap()),
            };
            match v {
                Some(v) => fields.push(format!("\"c{i}\": {v}")),
                None if r % 2 == 0 => fields.push(format!("\"c{i}\":null")),
                None => {}
            }
        }
        lines.push(format!("{{{}}}", fields.join(",")));
    }
    if array {
        format!("[\n{}\n]\n", lines.join(",\n"))
    } else {
        lines.join("\n")
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn csv_chunks(input in "(\u{feff})?[ab\",\r\n1é.]{0,40}", cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        same_in_chunks(Format::Csv, input.as_bytes(), &cuts)?;
    }

    #[test]
    fn json_chunks(input in "[\\[\\]{}\":,ab1 \n\\\\.é]{0,40}", cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        same_in_chunks(Format::Json, input.as_bytes(), &cuts)?;
        same_in_chunks(Format::JsonLines, input.as_bytes(), &cuts)?;
    }

    #[test]
    fn rendered_tables_chunk_alike(cols in table(), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        same_in_chunks(Format::Csv, render(&cols, true, true).as_bytes(), &cuts)?;
        let json = render_json(&cols, true);
        prop_assert!(import(Format::Json, &[], &json).is_ok(), "{}", json);
        same_in_chunks(Format::Json, json.as_bytes(), &cuts)?;
        let lines = render_json(&cols, false);
        prop_assert!(import(Format::JsonLines, &[], &lines).is_ok(), "{}", lines);
        same_in_chunks(Format::JsonLines, lines.as_bytes(), &cuts)?;
    }

    #[test]
    fn csv_round_trip(cols in table(), crlf in any::<bool>(), final_newline in any::<bool>()) {
        let text = render(&cols, crlf, final_newline);
        let t = csv(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
        let rows = t.column_data(0).len();
        prop_assert_eq!(t.row_count(), rows);
        for (i, c) in cols.iter().enumerate() {
            let col = &t.columns()[i];
            prop_assert_eq!(&col.name, &format!("c{i}"));
            let (values, any_null, ty): (Vec<Value<'_>>, bool, ColumnType) = match c {
                Col::Int(v) => (v.iter().map(|x| x.map_or(Value::Null, Value::Integer)).collect(), v.contains(&None), ColumnType::Integer),
                Col::Num(v) => (v.iter().map(|x| x.map_or(Value::Null, Value::Number)).collect(), v.contains(&None), ColumnType::Number),
                Col::Bool(v) => (v.iter().map(|x| x.map_or(Value::Null, Value::Boolean)).collect(), v.contains(&None), ColumnType::Boolean),
                Col::Text(v) => (v.iter().map(|x| x.as_deref().map_or(Value::Null, Value::Text)).collect(), v.contains(&None), ColumnType::Text),
            };
            let all_null = values.iter().all(|v| *v == Value::Null);
            prop_assert_eq!(col.ty, if all_null { ColumnType::Text } else { ty });
            prop_assert_eq!(col.nullable, any_null);
            for (r, v) in values.iter().enumerate() {
                prop_assert_eq!(t.value(r, i), *v, "row {} column {}", r, i);
            }
        }
    }
}
