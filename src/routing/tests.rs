//! Unit and property tests for the template parser and the router. They exist to pin down
//! the documented matching semantics (priority, backtracking, method fallback, greedy
//! pattern splits) and to show that no input can make either module panic. They must not
//! depend on timing or on anything outside this module pair.

use http::Method;
use proptest::prelude::*;

use super::matcher::{Conflict, Lookup, RouteMethod, Router, RouterBuilder};
use super::template::{MAX_SEGMENTS, MAX_TEMPLATE_LEN, Segment, Template, TemplateError};

fn tpl(raw: &str) -> Template {
    Template::parse(raw).unwrap()
}

fn err(raw: &str) -> TemplateError {
    Template::parse(raw).unwrap_err()
}

fn route_method(name: &str) -> RouteMethod {
    if name == "ANY" {
        RouteMethod::Any
    } else {
        RouteMethod::Method(Method::from_bytes(name.as_bytes()).unwrap())
    }
}

/// Builds a router whose values are the positions of the routes in `routes`.
fn router(routes: &[(&str, &str)]) -> Router<usize> {
    let mut builder = RouterBuilder::new();
    for (index, (method, template)) in routes.iter().enumerate() {
        builder
            .insert(route_method(method), &tpl(template), index)
            .unwrap();
    }
    builder.build()
}

/// What a lookup produced, in a form that is easy to compare.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Found(usize, Vec<(String, String)>),
    NotAllowed(String),
    NotFound,
}

fn look(router: &Router<usize>, method: &str, path: &str) -> Got {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    match router.lookup(&method, path) {
        Lookup::Found(found) => {
            let params = found
                .params
                .iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect::<Vec<_>>();
            assert_eq!(params.len(), found.params.len());
            Got::Found(*found.value, params)
        }
        Lookup::MethodNotAllowed { allow } => Got::NotAllowed(allow.to_owned()),
        Lookup::NotFound => Got::NotFound,
    }
}

fn found(value: usize, params: &[(&str, &str)]) -> Got {
    Got::Found(
        value,
        params
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    )
}

fn not_allowed(allow: &str) -> Got {
    Got::NotAllowed(allow.to_owned())
}

// ---------------------------------------------------------------------------------------
// Template parsing
// ---------------------------------------------------------------------------------------

#[test]
fn parses_valid_templates() {
    for raw in [
        "/",
        "//",
        "/items",
        "/items/",
        "/items/{id}",
        "/lists.{format}.json",
        "/v1/{topic}:publish",
        "/{name}{ext}",
        "/files/{*rest}",
        "/{*path}",
        "/a%20b/%2F%aF",
        "/-._~!$&'()*+,;=:@",
        "/{_}/{a1}/{A_b_9}",
    ] {
        let template = tpl(raw);
        assert_eq!(template.as_str(), raw);
        assert_eq!(template.to_string(), raw);
    }
}

#[test]
fn static_templates_share_their_text_and_allocate_nothing_else() {
    // One template is held per endpoint: an all-static one is only its (shared) text.
    assert!(std::mem::size_of::<Template>() <= 24);
    let raw: std::sync::Arc<str> = "/users/me".into();
    let template = Template::parse_shared(raw.clone()).unwrap();
    assert!(std::sync::Arc::ptr_eq(template.shared(), &raw));
    assert!(!template.has_params());
    let segments: Vec<_> = template.segments().collect();
    assert_eq!(segments, [Segment::Static("users"), Segment::Static("me")]);
    assert_eq!(template.segment_count(), 2);
    assert_eq!(
        tpl("/").segments().collect::<Vec<_>>(),
        [Segment::Static("")]
    );
}

#[test]
fn segments_of_templates_with_params_line_up_with_the_text() {
    let template = tpl("/a/{x}/b.{y}.json//{*rest}");
    assert!(template.has_params());
    let lits = |l: &[&str]| l.iter().map(|&s| Box::<str>::from(s)).collect::<Vec<_>>();
    let (bare, dotted) = (lits(&["", ""]), lits(&["b.", ".json"]));
    assert_eq!(
        template.segments().collect::<Vec<_>>(),
        [
            Segment::Static("a"),
            Segment::Pattern { lits: &bare },
            Segment::Pattern { lits: &dotted },
            Segment::Static(""),
            Segment::Tail,
        ]
    );
    assert_eq!(template.segment_count(), 5);
    assert_eq!(template.shape(), "/a/{}/b.{}.json//{*}");
}

#[test]
fn param_names_in_order_with_tail_last() {
    let template = tpl("/a/{x}/b.{y}.{z}/{w}{v}/{*rest}");
    assert_eq!(
        template.param_names().collect::<Vec<_>>(),
        ["x", "y", "z", "w", "v", "rest"]
    );
    assert_eq!(tpl("/static/path").param_names().count(), 0);
}

#[test]
fn shapes_erase_names() {
    for (raw, shape) in [
        ("/", "/"),
        ("//", "//"),
        ("/items", "/items"),
        ("/items/", "/items/"),
        ("/items/{id}", "/items/{}"),
        ("/lists.{format}.json", "/lists.{}.json"),
        ("/v1/{topic}:publish", "/v1/{}:publish"),
        ("/{name}{ext}", "/{}{}"),
        ("/files/{*rest}", "/files/{*}"),
        ("/{*path}", "/{*}"),
        ("/a%2Fb/{x}%20", "/a%2Fb/{}%20"),
    ] {
        assert_eq!(tpl(raw).shape(), shape, "shape of {raw}");
    }
    assert_eq!(tpl("/a/{x}.{y}").shape(), tpl("/a/{p}.{q}").shape());
    assert_ne!(tpl("/a/{x}").shape(), tpl("/a/{x}/").shape());
}

#[test]
fn limits_are_inclusive() {
    let longest = format!("/{}", "a".repeat(MAX_TEMPLATE_LEN - 1));
    assert!(Template::parse(&longest).is_ok());
    let most_segments = "/a".repeat(MAX_SEGMENTS);
    assert!(Template::parse(&most_segments).is_ok());
    let longest_name = format!("/{{{}}}", "n".repeat(64));
    assert!(Template::parse(&longest_name).is_ok());
}

#[test]
fn error_not_absolute() {
    assert_eq!(err("items"), TemplateError::NotAbsolute);
    assert_eq!(err(""), TemplateError::NotAbsolute);
    assert_eq!(err("{id}"), TemplateError::NotAbsolute);
    assert_eq!(
        err("items").to_string(),
        "a path template must start with `/`"
    );
}

#[test]
fn error_too_long() {
    let raw = format!("/{}", "a".repeat(MAX_TEMPLATE_LEN));
    assert_eq!(err(&raw), TemplateError::TooLong { len: 2049 });
    assert_eq!(
        err(&raw).to_string(),
        "the template is 2049 bytes long, but at most 2048 bytes are allowed"
    );
}

#[test]
fn error_too_many_segments() {
    let raw = "/a".repeat(MAX_SEGMENTS + 1);
    assert_eq!(err(&raw), TemplateError::TooManySegments { count: 65 });
    assert_eq!(
        err(&raw).to_string(),
        "the template has 65 segments, but at most 64 are allowed"
    );
}

#[test]
fn error_unclosed_brace() {
    assert_eq!(err("/items/{id"), TemplateError::UnclosedBrace { at: 7 });
    // A parameter cannot span a `/`.
    assert_eq!(err("/{id/x}"), TemplateError::UnclosedBrace { at: 1 });
    assert_eq!(
        err("/items/{id").to_string(),
        "the `{` at byte 7 is never closed; a parameter looks like `{name}` and cannot contain `/`"
    );
}

#[test]
fn error_unexpected_brace() {
    assert_eq!(
        err("/a}b"),
        TemplateError::UnexpectedBrace { ch: '}', at: 2 }
    );
    assert_eq!(
        err("/{a{b}}"),
        TemplateError::UnexpectedBrace { ch: '{', at: 3 }
    );
    assert_eq!(
        err("/a}b").to_string(),
        "unexpected `}` at byte 2; braces may only surround a parameter name, as in `{name}`"
    );
}

#[test]
fn error_empty_name() {
    assert_eq!(err("/x/{}"), TemplateError::EmptyName { at: 3 });
    assert_eq!(err("/{*}"), TemplateError::EmptyName { at: 1 });
    assert_eq!(
        err("/x/{}").to_string(),
        "the parameter at byte 3 has no name; write `{name}` or `{*name}`"
    );
}

#[test]
fn error_invalid_name() {
    for (raw, name) in [
        ("/{1x}", "1x"),
        ("/{-b}", "-b"),
        ("/{.b}", ".b"),
        ("/{a b}", "a b"),
        ("/{**x}", "*x"),
        ("/{a*}", "a*"),
        ("/{é}", "é"),
    ] {
        assert_eq!(
            err(raw),
            TemplateError::InvalidName {
                name: name.to_owned()
            },
            "{raw}"
        );
    }
    assert_eq!(
        err("/{1x}").to_string(),
        "parameter name `1x` is invalid; a name starts with a letter or `_` and continues with letters, digits, `_`, `-` or `.`"
    );
}

#[test]
fn error_name_too_long() {
    let name = "n".repeat(65);
    let raw = format!("/{{{name}}}");
    assert_eq!(err(&raw), TemplateError::NameTooLong { name: name.clone() });
    assert_eq!(
        err(&raw).to_string(),
        format!("parameter name `{name}` is longer than 64 characters")
    );
}

#[test]
fn error_duplicate_name() {
    assert_eq!(
        err("/{id}/{id}"),
        TemplateError::DuplicateName {
            name: "id".to_owned()
        }
    );
    assert_eq!(
        err("/{a}.{a}"),
        TemplateError::DuplicateName {
            name: "a".to_owned()
        }
    );
    assert_eq!(
        err("/{a}/{*a}"),
        TemplateError::DuplicateName {
            name: "a".to_owned()
        }
    );
    assert_eq!(
        err("/{id}/{id}").to_string(),
        "parameter `{id}` appears twice; every parameter in a template needs its own name"
    );
}

#[test]
fn error_tail_not_last() {
    let tail = |at| TemplateError::TailNotLast {
        name: "rest".to_owned(),
        at,
    };
    assert_eq!(err("/{*rest}/x"), tail(1));
    assert_eq!(err("/{*rest}/"), tail(1));
    assert_eq!(err("/files/a{*rest}"), tail(8));
    assert_eq!(err("/files/{*rest}.json"), tail(7));
    assert_eq!(err("/{*rest}{b}"), tail(1));
    assert_eq!(
        err("/{*rest}/x").to_string(),
        "`{*rest}` at byte 1 must be the whole last segment of the template, as in `/files/{*rest}`"
    );
}

#[test]
fn error_invalid_char() {
    for (raw, ch, at) in [
        ("/a b", ' ', 2),
        ("/a?b", '?', 2),
        ("/a#", '#', 2),
        ("/x/é", 'é', 3),
        ("/\u{7}", '\u{7}', 1),
        ("/a\\b", '\\', 2),
        ("/[x]", '[', 1),
        ("/{a}\"", '"', 4),
    ] {
        assert_eq!(err(raw), TemplateError::InvalidChar { ch, at }, "{raw:?}");
    }
    assert_eq!(
        err("/a b").to_string(),
        "the character ' ' at byte 2 is not allowed in a path template; percent-encode it (for example a space as `%20`)"
    );
    assert_eq!(
        err("/\u{7}").to_string(),
        "the character '\\u{7}' at byte 1 is not allowed in a path template; percent-encode it (for example a space as `%20`)"
    );
}

#[test]
fn error_bad_escape() {
    for (raw, at) in [
        ("/%", 1),
        ("/%2", 1),
        ("/%zz", 1),
        ("/ab%2g", 3),
        ("/%%41", 1),
    ] {
        assert_eq!(err(raw), TemplateError::BadEscape { at }, "{raw}");
    }
    assert_eq!(
        err("/ab%2g").to_string(),
        "the `%` at byte 3 must be followed by two hex digits, as in `%2F`"
    );
}

// ---------------------------------------------------------------------------------------
// Router: matching
// ---------------------------------------------------------------------------------------

#[test]
fn static_routes_and_root() {
    let r = router(&[
        ("GET", "/"),
        ("GET", "/items"),
        ("GET", "/items/"),
        ("GET", "/items/list"),
        ("GET", "//"),
        ("GET", "/a//b"),
    ]);
    assert_eq!(look(&r, "GET", "/"), found(0, &[]));
    assert_eq!(look(&r, "GET", "/items"), found(1, &[]));
    assert_eq!(look(&r, "GET", "/items/"), found(2, &[]));
    assert_eq!(look(&r, "GET", "/items/list"), found(3, &[]));
    assert_eq!(look(&r, "GET", "//"), found(4, &[]));
    assert_eq!(look(&r, "GET", "/a//b"), found(5, &[]));
    assert_eq!(look(&r, "GET", "/items/list/"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/Items"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/a/b"), Got::NotFound);
    assert_eq!(look(&r, "GET", ""), Got::NotFound);
    assert_eq!(look(&r, "GET", "items"), Got::NotFound);
    assert_eq!(r.len(), 6);
    assert!(!r.is_empty());
}

#[test]
fn empty_router() {
    let r = router(&[]);
    assert!(r.is_empty());
    assert_eq!(look(&r, "GET", "/"), Got::NotFound);
}

#[test]
fn bare_params() {
    let r = router(&[("GET", "/items/{id}"), ("GET", "/{a}/{b}/")]);
    assert_eq!(look(&r, "GET", "/items/42"), found(0, &[("id", "42")]));
    assert_eq!(look(&r, "GET", "/items/"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/items/4/2"), Got::NotFound);
    assert_eq!(
        look(&r, "GET", "/x/y/"),
        found(1, &[("a", "x"), ("b", "y")])
    );
    assert_eq!(look(&r, "GET", "/x/y"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/x//"), Got::NotFound);
}

#[test]
fn pattern_segments() {
    let r = router(&[
        ("GET", "/lists.{format}.json"),
        ("GET", "/v1/{topic}:publish"),
        ("GET", "/n/{name}{ext}"),
        ("GET", "/d/{name}.{ext}"),
        ("GET", "/t/{a}-{b}-{c}"),
        ("GET", "/p/pre{x}"),
    ]);
    assert_eq!(
        look(&r, "GET", "/lists.xml.json"),
        found(0, &[("format", "xml")])
    );
    assert_eq!(
        look(&r, "GET", "/lists.a.b.json"),
        found(0, &[("format", "a.b")])
    );
    assert_eq!(look(&r, "GET", "/lists..json"), Got::NotFound);
    assert_eq!(
        look(&r, "GET", "/v1/news:publish"),
        found(1, &[("topic", "news")])
    );
    assert_eq!(look(&r, "GET", "/v1/:publish"), Got::NotFound);
    assert_eq!(
        look(&r, "GET", "/n/file.txt"),
        found(2, &[("name", "file.tx"), ("ext", "t")])
    );
    assert_eq!(look(&r, "GET", "/n/f"), Got::NotFound);
    assert_eq!(
        look(&r, "GET", "/d/a.b.c"),
        found(3, &[("name", "a.b"), ("ext", "c")])
    );
    assert_eq!(look(&r, "GET", "/d/a."), Got::NotFound);
    assert_eq!(look(&r, "GET", "/d/.a"), Got::NotFound);
    assert_eq!(
        look(&r, "GET", "/t/x-y-z-w"),
        found(4, &[("a", "x-y"), ("b", "z"), ("c", "w")])
    );
    assert_eq!(look(&r, "GET", "/t/x--z"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/p/prefix"), found(5, &[("x", "fix")]));
    assert_eq!(look(&r, "GET", "/p/pre"), Got::NotFound);
}

#[test]
fn patterns_with_overlapping_literals() {
    // The literal `aa` may overlap itself; greedy semantics still pick the rightmost split.
    let r = router(&[("GET", "/{x}aa{y}")]);
    assert_eq!(
        look(&r, "GET", "/baaaab"),
        found(0, &[("x", "baa"), ("y", "b")])
    );
    assert_eq!(look(&r, "GET", "/aaa"), Got::NotFound);
    assert_eq!(
        look(&r, "GET", "/aaaa"),
        found(0, &[("x", "a"), ("y", "a")])
    );
}

#[test]
fn patterns_on_non_ascii_paths_split_on_char_boundaries() {
    let r = router(&[("GET", "/{name}{ext}")]);
    assert_eq!(look(&r, "GET", "/é"), Got::NotFound);
    assert_eq!(
        look(&r, "GET", "/éa"),
        found(0, &[("name", "é"), ("ext", "a")])
    );
    assert_eq!(
        look(&r, "GET", "/aé"),
        found(0, &[("name", "a"), ("ext", "é")])
    );
    assert_eq!(
        look(&r, "GET", "/€€"),
        found(0, &[("name", "€"), ("ext", "€")])
    );
}

#[test]
fn tail_wildcard() {
    let r = router(&[("GET", "/files/{*rest}")]);
    assert_eq!(look(&r, "GET", "/files/"), found(0, &[("rest", "")]));
    assert_eq!(look(&r, "GET", "/files/a"), found(0, &[("rest", "a")]));
    assert_eq!(look(&r, "GET", "/files/a/b"), found(0, &[("rest", "a/b")]));
    assert_eq!(look(&r, "GET", "/files//"), found(0, &[("rest", "/")]));
    assert_eq!(look(&r, "GET", "/files"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/filesx/a"), Got::NotFound);
}

#[test]
fn root_tail_matches_root() {
    let r = router(&[("GET", "/{*path}")]);
    assert_eq!(look(&r, "GET", "/"), found(0, &[("path", "")]));
    assert_eq!(look(&r, "GET", "/a/b/"), found(0, &[("path", "a/b/")]));
    let r = router(&[("GET", "/{*path}"), ("GET", "/")]);
    assert_eq!(look(&r, "GET", "/"), found(1, &[]));
}

#[test]
fn params_in_every_position() {
    let r = router(&[("GET", "/a/{x}/b.{y}.{z}/{*rest}")]);
    let got = look(&r, "GET", "/a/1/b.2.3/4/5");
    assert_eq!(
        got,
        found(0, &[("x", "1"), ("y", "2"), ("z", "3"), ("rest", "4/5")])
    );
    let method = Method::GET;
    let Lookup::Found(hit) = r.lookup(&method, "/a/1/b.2.3/") else {
        panic!("expected a match");
    };
    assert_eq!(hit.params.get("x"), Some("1"));
    assert_eq!(hit.params.get("z"), Some("3"));
    assert_eq!(hit.params.get("rest"), Some(""));
    assert_eq!(hit.params.get("nope"), None);
    assert_eq!(hit.params.len(), 4);
    assert!(!hit.params.is_empty());
}

#[test]
fn many_params_spill_to_heap_correctly() {
    let names: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
    let template = names
        .iter()
        .map(|name| format!("/{{{name}}}"))
        .collect::<String>();
    let r = router(&[("GET", &template)]);
    let path = (0..12).map(|i| format!("/v{i}")).collect::<String>();
    let Got::Found(0, params) = look(&r, "GET", &path) else {
        panic!("expected a match");
    };
    assert_eq!(params.len(), 12);
    for (i, (name, value)) in params.iter().enumerate() {
        assert_eq!(name, &format!("p{i}"));
        assert_eq!(value, &format!("v{i}"));
    }
}

#[test]
fn percent_encoded_literals_match_exactly() {
    let r = router(&[("GET", "/a%20b"), ("GET", "/%2F"), ("GET", "/x/{a}%2E{b}")]);
    assert_eq!(look(&r, "GET", "/a%20b"), found(0, &[]));
    assert_eq!(look(&r, "GET", "/a b"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/a%2020b"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/%2F"), found(1, &[]));
    assert_eq!(look(&r, "GET", "/%2f"), Got::NotFound);
    assert_eq!(
        look(&r, "GET", "/x/p%2Eq"),
        found(2, &[("a", "p"), ("b", "q")])
    );
    // Values stay raw: an encoded slash is part of the value, not a separator.
    let r = router(&[("GET", "/f/{name}")]);
    assert_eq!(look(&r, "GET", "/f/a%2Fb"), found(0, &[("name", "a%2Fb")]));
}

// ---------------------------------------------------------------------------------------
// Router: priority and backtracking
// ---------------------------------------------------------------------------------------

#[test]
fn static_beats_pattern_beats_param_beats_tail() {
    let r = router(&[
        ("GET", "/{*rest}"),
        ("GET", "/{id}"),
        ("GET", "/{id}.json"),
        ("GET", "/new"),
        ("GET", "/new.json"),
    ]);
    assert_eq!(look(&r, "GET", "/new"), found(3, &[]));
    assert_eq!(look(&r, "GET", "/new.json"), found(4, &[]));
    assert_eq!(look(&r, "GET", "/5.json"), found(2, &[("id", "5")]));
    assert_eq!(look(&r, "GET", "/5"), found(1, &[("id", "5")]));
    assert_eq!(look(&r, "GET", "/5/6"), found(0, &[("rest", "5/6")]));
    assert_eq!(look(&r, "GET", "/"), found(0, &[("rest", "")]));
}

#[test]
fn more_literal_bytes_wins() {
    let r = router(&[("GET", "/x/{a}.{b}"), ("GET", "/x/{a}.json")]);
    assert_eq!(look(&r, "GET", "/x/f.json"), found(1, &[("a", "f")]));
    assert_eq!(
        look(&r, "GET", "/x/f.xml"),
        found(0, &[("a", "f"), ("b", "xml")])
    );
}

#[test]
fn fewer_params_wins_on_equal_literals() {
    let r = router(&[("GET", "/p{a}{b}"), ("GET", "/p{a}")]);
    assert_eq!(look(&r, "GET", "/pxy"), found(1, &[("a", "xy")]));
    assert_eq!(look(&r, "GET", "/px"), found(1, &[("a", "x")]));
}

#[test]
fn earlier_insertion_wins_on_equal_rank() {
    let r = router(&[("GET", "/{a}.x"), ("GET", "/x.{a}")]);
    assert_eq!(look(&r, "GET", "/x.x"), found(0, &[("a", "x")]));
    let r = router(&[("GET", "/x.{a}"), ("GET", "/{a}.x")]);
    assert_eq!(look(&r, "GET", "/x.x"), found(0, &[("a", "x")]));
}

#[test]
fn bare_param_comes_after_every_pattern() {
    // `{a}{b}` has no literal text at all, yet it is still a pattern and beats `{x}`.
    let r = router(&[("GET", "/{x}"), ("GET", "/{a}{b}")]);
    assert_eq!(look(&r, "GET", "/ab"), found(1, &[("a", "a"), ("b", "b")]));
    assert_eq!(look(&r, "GET", "/a"), found(0, &[("x", "a")]));
}

#[test]
fn backtracks_when_preferred_branch_fails() {
    let r = router(&[("GET", "/a/b/c"), ("GET", "/{x}/b/d")]);
    assert_eq!(look(&r, "GET", "/a/b/d"), found(1, &[("x", "a")]));
    assert_eq!(look(&r, "GET", "/a/b/c"), found(0, &[]));
    let r = router(&[("GET", "/a/{y}/c"), ("GET", "/{x}/b/d")]);
    assert_eq!(look(&r, "GET", "/a/b/d"), found(1, &[("x", "a")]));
    assert_eq!(look(&r, "GET", "/a/b/c"), found(0, &[("y", "b")]));
}

#[test]
fn backtracking_discards_abandoned_captures() {
    let r = router(&[("GET", "/{a}.{b}/x"), ("GET", "/{c}/y")]);
    assert_eq!(look(&r, "GET", "/p.q/y"), found(1, &[("c", "p.q")]));
    let r = router(&[("GET", "/{a}/{b}/x"), ("GET", "/{c}/{*rest}")]);
    assert_eq!(
        look(&r, "GET", "/1/2/y"),
        found(1, &[("c", "1"), ("rest", "2/y")])
    );
}

#[test]
fn backtracks_into_tail() {
    let r = router(&[("GET", "/a/b"), ("GET", "/a/{x}/c"), ("GET", "/{*rest}")]);
    assert_eq!(look(&r, "GET", "/a/c"), found(2, &[("rest", "a/c")]));
    assert_eq!(look(&r, "GET", "/a/z/d"), found(2, &[("rest", "a/z/d")]));
    assert_eq!(look(&r, "GET", "/a/z/c"), found(1, &[("x", "z")]));
}

#[test]
fn trailing_slash_and_empty_segments_are_literal() {
    let r = router(&[("GET", "/items"), ("GET", "/{x}/")]);
    assert_eq!(look(&r, "GET", "/items"), found(0, &[]));
    assert_eq!(look(&r, "GET", "/items/"), found(1, &[("x", "items")]));
    assert_eq!(look(&r, "GET", "/a"), Got::NotFound);
    assert_eq!(look(&r, "GET", "//"), Got::NotFound);
}

// ---------------------------------------------------------------------------------------
// Router: methods
// ---------------------------------------------------------------------------------------

#[test]
fn head_falls_back_to_get_then_any() {
    let r = router(&[("GET", "/g"), ("ANY", "/a"), ("GET", "/ga"), ("ANY", "/ga")]);
    assert_eq!(look(&r, "HEAD", "/g"), found(0, &[]));
    assert_eq!(look(&r, "HEAD", "/a"), found(1, &[]));
    assert_eq!(look(&r, "HEAD", "/ga"), found(2, &[]));
    assert_eq!(look(&r, "POST", "/ga"), found(3, &[]));
    let r = router(&[("GET", "/h"), ("HEAD", "/h")]);
    assert_eq!(look(&r, "HEAD", "/h"), found(1, &[]));
    assert_eq!(look(&r, "GET", "/h"), found(0, &[]));
}

#[test]
fn exact_method_beats_any() {
    let r = router(&[("ANY", "/x"), ("POST", "/x")]);
    assert_eq!(look(&r, "POST", "/x"), found(1, &[]));
    assert_eq!(look(&r, "DELETE", "/x"), found(0, &[]));
    assert_eq!(look(&r, "PURGE", "/x"), found(0, &[]));
}

#[test]
fn method_not_allowed_lists_allow() {
    let r = router(&[("POST", "/x"), ("GET", "/x")]);
    assert_eq!(look(&r, "DELETE", "/x"), not_allowed("GET, HEAD, POST"));
    assert_eq!(look(&r, "HEAD", "/x"), found(1, &[]));
    let r = router(&[("HEAD", "/h")]);
    assert_eq!(look(&r, "GET", "/h"), not_allowed("HEAD"));
    let r = router(&[
        ("TRACE", "/all"),
        ("PURGE", "/all"),
        ("PATCH", "/all"),
        ("DELETE", "/all"),
        ("OPTIONS", "/all"),
        ("PUT", "/all"),
        ("CONNECT", "/all"),
        ("LINK", "/all"),
    ]);
    assert_eq!(
        look(&r, "GET", "/all"),
        not_allowed("PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE, PURGE, LINK")
    );
    let r = router(&[("GET", "/files/{*rest}")]);
    assert_eq!(look(&r, "PUT", "/files/x"), not_allowed("GET, HEAD"));
    assert_eq!(look(&r, "PUT", "/nothing"), Got::NotFound);
}

#[test]
fn method_mismatch_keeps_backtracking() {
    let r = router(&[("POST", "/a/{x}"), ("GET", "/{y}/b"), ("PUT", "/{*rest}")]);
    assert_eq!(look(&r, "GET", "/a/b"), found(1, &[("y", "a")]));
    assert_eq!(look(&r, "PUT", "/a/b"), found(2, &[("rest", "a/b")]));
    // No node takes DELETE, so the Allow of the highest-priority match is reported.
    assert_eq!(look(&r, "DELETE", "/a/b"), not_allowed("POST"));
    assert_eq!(look(&r, "DELETE", "/c/b"), not_allowed("GET, HEAD"));
    assert_eq!(look(&r, "DELETE", "/c/d"), not_allowed("PUT"));
}

#[test]
fn extension_methods() {
    let r = router(&[("PURGE", "/cache"), ("GET", "/cache"), ("MKCOL", "/cache")]);
    assert_eq!(look(&r, "PURGE", "/cache"), found(0, &[]));
    assert_eq!(look(&r, "MKCOL", "/cache"), found(2, &[]));
    assert_eq!(
        look(&r, "LOCK", "/cache"),
        not_allowed("GET, HEAD, PURGE, MKCOL")
    );
    // Methods are case-sensitive tokens.
    assert_eq!(
        look(&r, "purge", "/cache"),
        not_allowed("GET, HEAD, PURGE, MKCOL")
    );
}

// ---------------------------------------------------------------------------------------
#[test]
fn many_static_siblings_at_several_depths() {
    // Enough siblings under several parents to grow the shared static table repeatedly,
    // with keys that are equal under different parents.
    for reserve in [0, 10, 5_000] {
        let mut b = RouterBuilder::with_capacity(reserve);
        let mut paths = Vec::new();
        for i in 0..1_500 {
            paths.push(format!("/e{i}"));
            paths.push(format!("/a/e{i}"));
            paths.push(format!("/a/{{x}}/e{i}"));
        }
        paths.push("/e1/deeper".to_owned());
        for (index, path) in paths.iter().enumerate() {
            b.insert(RouteMethod::Method(Method::GET), &tpl(path), index)
                .unwrap();
        }
        let r = b.build();
        assert_eq!(r.len(), paths.len());
        for (index, path) in paths.iter().enumerate() {
            if path.starts_with("/a/{x}/") {
                let concrete = path.replace("{x}", "v");
                assert_eq!(look(&r, "GET", &concrete), found(index, &[("x", "v")]));
            } else {
                assert_eq!(look(&r, "GET", path), found(index, &[]));
            }
        }
        assert_eq!(look(&r, "GET", "/e1500"), Got::NotFound);
        assert_eq!(look(&r, "GET", "/a/e"), Got::NotFound);
        assert_eq!(look(&r, "GET", "/e1/deeper/"), Got::NotFound);
        assert_eq!(look(&r, "POST", "/a/e7"), not_allowed("GET, HEAD"));
    }
}

#[test]
fn allow_values_are_kept_apart_per_node() {
    let r = router(&[
        ("GET", "/a"),
        ("GET", "/b"),
        ("POST", "/b"),
        ("PURGE", "/c"),
        ("GET", "/c"),
        ("MKCOL", "/d"),
        ("GET", "/d"),
        ("ANY", "/e"),
        ("GET", "/f"),
    ]);
    assert_eq!(look(&r, "PUT", "/a"), not_allowed("GET, HEAD"));
    assert_eq!(look(&r, "PUT", "/b"), not_allowed("GET, HEAD, POST"));
    assert_eq!(look(&r, "PUT", "/c"), not_allowed("GET, HEAD, PURGE"));
    assert_eq!(look(&r, "PUT", "/d"), not_allowed("GET, HEAD, MKCOL"));
    assert_eq!(look(&r, "PUT", "/e"), found(7, &[]));
    assert_eq!(look(&r, "PUT", "/f"), not_allowed("GET, HEAD"));
}

// Router: conflicts
// ---------------------------------------------------------------------------------------

fn try_insert(builder: &mut RouterBuilder<usize>, method: &str, raw: &str) -> Result<(), Conflict> {
    builder.insert(route_method(method), &tpl(raw), 99)
}

#[test]
fn conflicts_are_by_method_and_shape() {
    let mut b = RouterBuilder::new();
    assert_eq!(try_insert(&mut b, "GET", "/a/{x}"), Ok(()));
    assert_eq!(
        try_insert(&mut b, "GET", "/a/{y}"),
        Err(Conflict { existing: 0 })
    );
    assert_eq!(try_insert(&mut b, "ANY", "/a/{y}"), Ok(()));
    assert_eq!(
        try_insert(&mut b, "ANY", "/a/{z}"),
        Err(Conflict { existing: 1 })
    );
    assert_eq!(try_insert(&mut b, "POST", "/a/{x}"), Ok(()));
    assert_eq!(try_insert(&mut b, "GET", "/a/{x}/"), Ok(()));
    assert_eq!(try_insert(&mut b, "GET", "/a/{x}.{y}"), Ok(()));
    assert_eq!(
        try_insert(&mut b, "GET", "/a/{p}.{q}"),
        Err(Conflict { existing: 4 })
    );
    assert_eq!(try_insert(&mut b, "GET", "/a/{*x}"), Ok(()));
    assert_eq!(
        try_insert(&mut b, "GET", "/a/{*rest}"),
        Err(Conflict { existing: 5 })
    );
    assert_eq!(try_insert(&mut b, "PURGE", "/a"), Ok(()));
    assert_eq!(
        try_insert(&mut b, "PURGE", "/a"),
        Err(Conflict { existing: 6 })
    );
    assert_eq!(try_insert(&mut b, "HEAD", "/a"), Ok(()));
    assert_eq!(
        try_insert(&mut b, "GET", "/a/{x}").unwrap_err().to_string(),
        "a route with the same method and path shape already exists (route #0)"
    );
    let r = b.build();
    assert_eq!(r.len(), 8);
}

#[test]
fn conflicting_insert_keeps_the_original() {
    let mut b = RouterBuilder::new();
    b.insert(route_method("GET"), &tpl("/a/{x}"), "first")
        .unwrap();
    assert!(
        b.insert(route_method("GET"), &tpl("/a/{y}"), "second")
            .is_err()
    );
    let r = b.build();
    let Lookup::Found(hit) = r.lookup(&Method::GET, "/a/1") else {
        panic!("expected a match");
    };
    assert_eq!(*hit.value, "first");
    assert_eq!(hit.params.iter().collect::<Vec<_>>(), [("x", "1")]);
}

#[test]
fn router_is_send_and_sync() {
    fn assert_send_sync<S: Send + Sync>() {}
    assert_send_sync::<Router<String>>();
    assert_send_sync::<RouterBuilder<String>>();
}

#[test]
fn many_static_routes() {
    let mut b = RouterBuilder::new();
    for i in 0..50_000usize {
        b.insert(route_method("GET"), &tpl(&format!("/r/{i}/x")), i)
            .unwrap();
        b.insert(route_method("GET"), &tpl(&format!("/items{i}")), 50_000 + i)
            .unwrap();
    }
    let r = b.build();
    assert_eq!(r.len(), 100_000);
    for i in [0usize, 1, 4_999, 31_337, 49_999] {
        assert_eq!(look(&r, "GET", &format!("/r/{i}/x")), found(i, &[]));
        assert_eq!(
            look(&r, "GET", &format!("/items{i}")),
            found(50_000 + i, &[])
        );
    }
    assert_eq!(look(&r, "GET", "/r/50000/x"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/r/1/y"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/items"), Got::NotFound);
    assert_eq!(look(&r, "POST", "/items7"), not_allowed("GET, HEAD"));
}

// ---------------------------------------------------------------------------------------
// Router: adding one route with `with_route`
// ---------------------------------------------------------------------------------------

/// Adds `(method, template)` with the next position as its value.
fn with(router: &Router<usize>, method: &str, raw: &str) -> Result<Router<usize>, Conflict> {
    router.with_route(route_method(method), &tpl(raw), router.len())
}

fn extend(routes: &[(&str, &str)], more: &[(&str, &str)]) -> Router<usize> {
    let mut r = router(routes);
    for (method, raw) in more {
        r = with(&r, method, raw).unwrap();
    }
    r
}

/// Every `(method, path)` gives the same answer from both routers.
fn assert_same(a: &Router<usize>, b: &Router<usize>, cases: &[(&str, &str)]) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.widest_patterns(), b.widest_patterns());
    for (method, path) in cases {
        assert_eq!(
            look(a, method, path),
            look(b, method, path),
            "{method} {path}"
        );
    }
}

#[test]
fn with_route_keeps_the_widest_pattern_count() {
    let base = router(&[("GET", "/a/{x}.json"), ("GET", "/b/v{n}")]);
    assert_eq!(base.widest_patterns(), 1);
    let mut r = base;
    for (raw, widest) in [
        ("/a/{x}.json", 1), // the same shape under another method: no new edge
        ("/a/v{n}", 2),
        ("/c", 2),
        ("/b/{x}.csv", 2),
        ("/a/{x}.csv", 3),
        ("/a/{y}", 3), // a bare parameter is not a pattern edge
    ] {
        r = with(&r, "POST", raw).unwrap();
        assert_eq!(r.widest_patterns(), widest, "after {raw}");
    }
}

#[test]
fn with_route_adds_static_routes() {
    let r = extend(
        &[("GET", "/a")],
        &[("GET", "/b"), ("GET", "/a/c"), ("GET", "/")],
    );
    assert_eq!(r.len(), 4);
    assert_eq!(look(&r, "GET", "/a"), found(0, &[]));
    assert_eq!(look(&r, "GET", "/b"), found(1, &[]));
    assert_eq!(look(&r, "GET", "/a/c"), found(2, &[]));
    assert_eq!(look(&r, "GET", "/"), found(3, &[]));
    assert_eq!(look(&r, "GET", "/c"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/a/"), Got::NotFound);
}

#[test]
fn with_route_on_an_empty_router() {
    let empty = RouterBuilder::<usize>::new().build();
    let r = with(&empty, "GET", "/x/{id}").unwrap();
    assert!(empty.is_empty());
    assert_eq!(look(&empty, "GET", "/x/1"), Got::NotFound);
    assert_eq!(look(&r, "GET", "/x/1"), found(0, &[("id", "1")]));
}

#[test]
fn with_route_grows_static_siblings_past_the_table_size() {
    // One static child, then two (the switch to the shared table), then enough to make the
    // table grow several times, at two depths.
    let mut r = router(&[("GET", "/s/0")]);
    let mut b = RouterBuilder::new();
    b.insert(route_method("GET"), &tpl("/s/0"), 0).unwrap();
    for i in 1..300usize {
        let raw = if i % 2 == 0 {
            format!("/s/{i}")
        } else {
            format!("/t{i}")
        };
        r = with(&r, "GET", &raw).unwrap();
        b.insert(route_method("GET"), &tpl(&raw), i).unwrap();
    }
    let b = b.build();
    for i in 0..300usize {
        for raw in [format!("/s/{i}"), format!("/t{i}"), format!("/s/t{i}")] {
            assert_eq!(look(&r, "GET", &raw), look(&b, "GET", &raw), "{raw}");
        }
    }
    assert_eq!(look(&r, "GET", "/s/298"), found(298, &[]));
    assert_eq!(look(&r, "GET", "/t299"), found(299, &[]));
}

#[test]
fn with_route_adds_params_with_their_names() {
    let r = extend(
        &[("GET", "/users/{id}")],
        &[("GET", "/users/{uid}/posts/{pid}"), ("GET", "/users/me")],
    );
    assert_eq!(look(&r, "GET", "/users/7"), found(0, &[("id", "7")]));
    assert_eq!(
        look(&r, "GET", "/users/7/posts/9"),
        found(1, &[("uid", "7"), ("pid", "9")])
    );
    assert_eq!(look(&r, "GET", "/users/me"), found(2, &[]));
}

#[test]
fn with_route_adds_patterns_in_priority_order() {
    let cases = [
        ("GET", "/f/a.json"),
        ("GET", "/f/a.b.json"),
        ("GET", "/f/ab"),
        ("GET", "/f/x.y"),
        ("GET", "/g/report.csv"),
    ];
    let base = [("GET", "/f/{name}.{ext}"), ("GET", "/f/{x}")];
    let more = [
        // More literal bytes: tried before the existing pattern.
        ("GET", "/f/{name}.json"),
        // Same rank as an existing one: tried after it.
        ("GET", "/f/{a}{b}.{c}"),
        // A new parent.
        ("GET", "/g/{name}.csv"),
        // An existing shape with another method reuses the edge.
        ("POST", "/f/{n}.json"),
    ];
    let r = extend(&base, &more);
    let all: Vec<_> = base.iter().chain(more.iter()).copied().collect();
    assert_same(&r, &router(&all), &cases);
    assert_eq!(look(&r, "GET", "/f/a.json"), found(2, &[("name", "a")]));
    assert_eq!(
        look(&r, "GET", "/f/x.y"),
        found(0, &[("name", "x"), ("ext", "y")])
    );
    assert_eq!(look(&r, "GET", "/f/ab"), found(1, &[("x", "ab")]));
    assert_eq!(
        look(&r, "GET", "/g/report.csv"),
        found(4, &[("name", "report")])
    );
    assert_eq!(look(&r, "POST", "/f/a.json"), found(5, &[("n", "a")]));
    assert_eq!(look(&r, "POST", "/f/a.b"), not_allowed("GET, HEAD"));
}

#[test]
fn with_route_adds_tails() {
    let r = extend(
        &[("GET", "/files/{name}")],
        &[("GET", "/files/{*rest}"), ("GET", "/{*all}")],
    );
    assert_eq!(look(&r, "GET", "/files/a"), found(0, &[("name", "a")]));
    assert_eq!(look(&r, "GET", "/files/a/b"), found(1, &[("rest", "a/b")]));
    assert_eq!(look(&r, "GET", "/files/"), found(1, &[("rest", "")]));
    assert_eq!(look(&r, "GET", "/other"), found(2, &[("all", "other")]));
}

#[test]
fn with_route_adds_methods_to_an_existing_path() {
    let base = router(&[("GET", "/a"), ("GET", "/b"), ("PUT", "/c")]);
    let r = with(&base, "POST", "/a").unwrap();
    assert_eq!(look(&r, "DELETE", "/a"), not_allowed("GET, HEAD, POST"));
    // The other paths keep their own value.
    assert_eq!(look(&r, "DELETE", "/b"), not_allowed("GET, HEAD"));
    assert_eq!(look(&r, "DELETE", "/c"), not_allowed("PUT"));
    // And the original is untouched.
    assert_eq!(look(&base, "DELETE", "/a"), not_allowed("GET, HEAD"));
    assert_eq!(look(&base, "POST", "/a"), not_allowed("GET, HEAD"));

    // An interned value that already exists, then an extension method.
    let r = with(&r, "GET", "/c").unwrap();
    assert_eq!(look(&r, "DELETE", "/c"), not_allowed("GET, HEAD, PUT"));
    let r = with(&r, "PURGE", "/b").unwrap();
    assert_eq!(look(&r, "DELETE", "/b"), not_allowed("GET, HEAD, PURGE"));
    assert_eq!(look(&r, "PURGE", "/b"), found(5, &[]));
    let r = with(&r, "PURGE", "/c").unwrap();
    assert_eq!(
        look(&r, "DELETE", "/c"),
        not_allowed("GET, HEAD, PUT, PURGE")
    );
    assert_eq!(look(&r, "DELETE", "/b"), not_allowed("GET, HEAD, PURGE"));

    // HEAD falls back to GET, then to ANY, as with the builder.
    let r = extend(&[("POST", "/h")], &[("ANY", "/h")]);
    assert_eq!(look(&r, "HEAD", "/h"), found(1, &[]));
    let r = with(&r, "GET", "/h").unwrap();
    assert_eq!(look(&r, "HEAD", "/h"), found(2, &[]));
    let r = with(&r, "HEAD", "/h").unwrap();
    assert_eq!(look(&r, "HEAD", "/h"), found(3, &[]));
    assert_eq!(look(&r, "DELETE", "/h"), found(1, &[]));
    // A table with only ANY has an empty `Allow`, but then never answers 405.
    let r = extend(&[("GET", "/x")], &[("ANY", "/y")]);
    assert_eq!(look(&r, "DELETE", "/y"), found(1, &[]));
}

#[test]
fn with_route_conflicts_like_the_builder() {
    let base = router(&[
        ("GET", "/a/{x}"),
        ("ANY", "/a/{y}"),
        ("GET", "/a/{x}.{y}"),
        ("GET", "/a/{*x}"),
        ("PURGE", "/a"),
        ("GET", "/s"),
    ]);
    for (method, raw, existing) in [
        ("GET", "/a/{other}", 0),
        ("ANY", "/a/{z}", 1),
        ("GET", "/a/{p}.{q}", 2),
        ("GET", "/a/{*rest}", 3),
        ("PURGE", "/a", 4),
        ("GET", "/s", 5),
    ] {
        assert_eq!(
            with(&base, method, raw).map(|r| r.len()),
            Err(Conflict { existing }),
            "{method} {raw}"
        );
    }
    // The conflict changed nothing, and the next insert still gets the next index.
    assert_eq!(base.len(), 6);
    let r = with(&base, "POST", "/a/{x}").unwrap();
    assert_eq!(look(&r, "POST", "/a/1"), found(6, &[("x", "1")]));
    assert_eq!(
        with(&r, "POST", "/a/{q}").map(|r| r.len()),
        Err(Conflict { existing: 6 })
    );
    assert_eq!(look(&base, "POST", "/a/1"), found(1, &[("y", "1")]));
}

#[test]
fn with_route_leaves_the_original_untouched() {
    let routes = [
        ("GET", "/a"),
        ("GET", "/b/{x}"),
        ("GET", "/c/{x}.json"),
        ("GET", "/d/{*rest}"),
    ];
    let cases = [
        ("GET", "/a"),
        ("GET", "/a2"),
        ("POST", "/a"),
        ("GET", "/b/1"),
        ("GET", "/b/1/2"),
        ("GET", "/c/1.json"),
        ("GET", "/c/1.json.json"),
        ("GET", "/d/e/f"),
        ("GET", "/d/x.json"),
    ];
    let base = router(&routes);
    let reference = router(&routes);
    let mut next = Vec::new();
    for (method, raw) in [
        ("GET", "/a2"),
        ("POST", "/a"),
        ("GET", "/b/{x}/{y}"),
        ("GET", "/c/{x}.{y}.json"),
        ("GET", "/d/{x}.json"),
    ] {
        next.push(with(&base, method, raw).unwrap());
    }
    assert_same(&base, &reference, &cases);
    assert_eq!(look(&next[0], "GET", "/a2"), found(4, &[]));
    assert_eq!(look(&next[1], "POST", "/a"), found(4, &[]));
    assert_eq!(
        look(&next[2], "GET", "/b/1/2"),
        found(4, &[("x", "1"), ("y", "2")])
    );
    assert_eq!(
        look(&next[3], "GET", "/c/1.json.json"),
        found(4, &[("x", "1"), ("y", "json")])
    );
    assert_eq!(look(&next[4], "GET", "/d/x.json"), found(4, &[("x", "x")]));
    // Each derived router is independent of its siblings.
    assert_eq!(look(&next[0], "POST", "/a"), not_allowed("GET, HEAD"));
    assert_eq!(look(&next[4], "GET", "/a2"), Got::NotFound);
}

// ---------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------

/// Characters that may appear in parameter values in the generated cases.
const VALUE_CHARS: &str = "[A-Za-z0-9_~]";
/// Literal characters used between parameters; disjoint from `VALUE_CHARS` so that every
/// generated case has exactly one correct split.
const SEPARATOR_CHARS: &str = "[-.!$&'()*+,;=:@]";
/// Any literal pchar (without `%`, which needs escape syntax).
const PCHAR: &str = "[A-Za-z0-9_~.!$&'()*+,;=:@-]";

/// One segment of a generated template together with a path segment that fills it.
#[derive(Debug, Clone)]
struct Filled {
    template: String,
    path: String,
    values: Vec<String>,
}

fn static_segment() -> impl Strategy<Value = Filled> {
    proptest::string::string_regex(&format!("{PCHAR}{{0,6}}"))
        .unwrap()
        .prop_map(|text| Filled {
            template: text.clone(),
            path: text,
            values: Vec::new(),
        })
}

fn pattern_segment() -> impl Strategy<Value = Filled> {
    let value = || proptest::string::string_regex(&format!("{VALUE_CHARS}{{1,6}}")).unwrap();
    let separator = proptest::string::string_regex(&format!("{SEPARATOR_CHARS}{{1,3}}")).unwrap();
    let prefix = proptest::string::string_regex(&format!("{PCHAR}{{0,4}}")).unwrap();
    let suffix = proptest::string::string_regex(&format!("{SEPARATOR_CHARS}{{0,3}}")).unwrap();
    (
        prefix,
        proptest::collection::vec((separator, value()), 0..3),
        value(),
        suffix,
    )
        .prop_map(|(prefix, more, first, suffix)| {
            // Names are assigned later so that they are unique across the whole template.
            let mut template = format!("{prefix}{{}}");
            let mut path = format!("{prefix}{first}");
            let mut values = vec![first];
            for (separator, value) in more {
                template.push_str(&separator);
                template.push_str("{}");
                path.push_str(&separator);
                path.push_str(&value);
                values.push(value);
            }
            template.push_str(&suffix);
            path.push_str(&suffix);
            Filled {
                template,
                path,
                values,
            }
        })
}

fn tail_value() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("({PCHAR}|/){{0,10}}")).unwrap()
}

/// Replaces each `{}` placeholder with a unique parameter name.
fn name_params(template: &str, counter: &mut usize) -> String {
    let mut out = String::new();
    for (i, part) in template.split("{}").enumerate() {
        if i > 0 {
            out.push_str(&format!("{{p{counter}}}"));
            *counter += 1;
        }
        out.push_str(part);
    }
    out
}

/// A leftmost-greedy backtracking reference matcher, deliberately naive.
fn reference_split(lits: &[String], segment: &str) -> Option<Vec<String>> {
    fn go(parts: &[String], s: &str) -> Option<Vec<String>> {
        let Some((lit, more)) = parts.split_first() else {
            return s.is_empty().then(Vec::new);
        };
        for len in (1..=s.len()).rev() {
            let (value, after) = s.split_at(len);
            if let Some(after) = after.strip_prefix(lit.as_str())
                && let Some(mut rest) = go(more, after)
            {
                rest.insert(0, value.to_owned());
                return Some(rest);
            }
        }
        None
    }
    let (prefix, parts) = lits.split_first()?;
    go(parts, segment.strip_prefix(prefix.as_str())?)
}

/// A segment of a template for the incremental-build property, from a small pool so that
/// generated routes share prefixes, shapes and paths, together with a path segment that
/// fills it. `{}` stands for a parameter, named later by [`name_params`].
fn pooled_segment() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop::sample::select(vec![
        ("a", "a"),
        ("b", "b"),
        ("", ""),
        ("a.json", "a.json"),
        ("{}", "a"),
        ("{}", "v"),
        ("{}.json", "a.json"),
        ("{}.{}", "v.w"),
        ("{}{}.json", "ab.json"),
        ("x{}", "xv"),
        ("{}-{}", "v-w"),
    ])
}

fn pooled_route() -> impl Strategy<Value = (&'static str, String, String)> {
    (
        prop::sample::select(vec!["GET", "GET", "POST", "HEAD", "ANY", "PURGE"]),
        proptest::collection::vec(pooled_segment(), 0..4),
        prop::sample::select(vec![None, None, Some(""), Some("t/u")]),
    )
        .prop_map(|(method, segments, tail)| {
            let mut counter = 0;
            let mut template = String::new();
            let mut path = String::new();
            for (segment, filled) in &segments {
                template.push('/');
                template.push_str(&name_params(segment, &mut counter));
                path.push('/');
                path.push_str(filled);
            }
            if let Some(tail) = tail {
                template.push_str(&format!("/{{*p{counter}}}"));
                path.push('/');
                path.push_str(tail);
            }
            if template.is_empty() {
                template.push('/');
                path.push('/');
            }
            (method, template, path)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn with_route_agrees_with_a_rebuild(
        routes in proptest::collection::vec(pooled_route(), 1..24),
        extra_paths in proptest::collection::vec("/[/abvwx.json-]{0,12}", 0..12),
    ) {
        // A: the first route through the builder, every other one through `with_route`.
        // B: everything through one builder. Values are positions in `routes`, so both
        // see the same conflicts and keep the same routes.
        let (first_method, first, _) = &routes[0];
        let mut a = RouterBuilder::new();
        a.insert(route_method(first_method), &tpl(first), 0).unwrap();
        let mut a = a.build();
        let mut b = RouterBuilder::new();
        b.insert(route_method(first_method), &tpl(first), 0).unwrap();
        let mut previous = None;
        for (position, (method, raw, _)) in routes.iter().enumerate().skip(1) {
            let incremental = a.with_route(route_method(method), &tpl(raw), position);
            let rebuilt = b.insert(route_method(method), &tpl(raw), position);
            match incremental {
                Ok(next) => {
                    prop_assert_eq!(rebuilt, Ok(()));
                    previous = Some((position, std::mem::replace(&mut a, next)));
                }
                Err(conflict) => prop_assert_eq!(rebuilt, Err(conflict)),
            }
        }
        let b = b.build();
        prop_assert_eq!(a.len(), b.len());

        let mut paths: Vec<String> = routes.iter().map(|(_, _, path)| path.clone()).collect();
        for (_, _, path) in &routes {
            // Near misses: a trailing slash, one segment less, one more.
            paths.push(format!("{path}/"));
            paths.push(format!("{path}/a"));
            if let Some((shorter, _)) = path.rsplit_once('/') {
                paths.push(format!("{shorter}/"));
                paths.push(shorter.to_owned());
            }
        }
        paths.extend(extra_paths);
        for path in &paths {
            for method in ["GET", "HEAD", "POST", "DELETE", "PURGE"] {
                prop_assert_eq!(
                    look(&a, method, path),
                    look(&b, method, path),
                    "{} {}", method, path
                );
            }
        }

        // The router `with_route` started from still answers like a rebuild of its routes.
        if let Some((upto, previous)) = previous {
            let mut prefix = RouterBuilder::new();
            for (position, (method, raw, _)) in routes.iter().enumerate().take(upto) {
                let _ = prefix.insert(route_method(method), &tpl(raw), position);
            }
            let prefix = prefix.build();
            for path in &paths {
                for method in ["GET", "POST"] {
                    prop_assert_eq!(look(&previous, method, path), look(&prefix, method, path));
                }
            }
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_strings(raw in any::<String>()) {
        if let Ok(template) = Template::parse(&raw) {
            prop_assert_eq!(template.as_str(), raw.as_str());
        }
    }

    #[test]
    fn parse_never_panics_on_template_like_strings(
        raw in "/?[/{}*a-zA-Z0-9_%.:~ é-]{0,40}"
    ) {
        match Template::parse(&raw) {
            Ok(template) => {
                prop_assert_eq!(template.to_string(), raw.clone());
                let shape = template.shape();
                prop_assert!(shape.starts_with('/'));
                prop_assert_eq!(shape.matches('/').count(), raw.matches('/').count());
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn every_static_route_finds_itself(
        paths in proptest::collection::hash_set(
            proptest::collection::vec(
                proptest::string::string_regex(&format!("({PCHAR}|%2F){{0,5}}")).unwrap(),
                1..5,
            ).prop_map(|segments| format!("/{}", segments.join("/"))),
            1..60,
        )
    ) {
        let paths: Vec<String> = paths.into_iter().collect();
        let mut builder = RouterBuilder::new();
        for (index, path) in paths.iter().enumerate() {
            builder.insert(RouteMethod::Method(Method::GET), &tpl(path), index).unwrap();
        }
        let router = builder.build();
        for (index, path) in paths.iter().enumerate() {
            prop_assert_eq!(look(&router, "GET", path), found(index, &[]));
        }
    }

    #[test]
    fn filled_templates_give_back_their_values(
        segments in proptest::collection::vec(
            prop_oneof![static_segment(), pattern_segment()],
            1..6,
        ),
        tail in proptest::option::of(tail_value()),
    ) {
        let mut counter = 0;
        let mut template = String::new();
        let mut path = String::new();
        let mut expected = Vec::new();
        for segment in &segments {
            template.push('/');
            template.push_str(&name_params(&segment.template, &mut counter));
            path.push('/');
            path.push_str(&segment.path);
            expected.extend(segment.values.iter().cloned());
        }
        if let Some(tail) = &tail {
            template.push_str(&format!("/{{*p{counter}}}"));
            path.push('/');
            path.push_str(tail);
            expected.push(tail.clone());
        }
        let router = router(&[("GET", &template)]);
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .enumerate()
            .map(|(i, value)| (format!("p{i}"), value))
            .collect();
        prop_assert_eq!(look(&router, "GET", &path), Got::Found(0, expected));
    }

    #[test]
    fn pattern_splits_agree_with_backtracking_reference(
        lits in proptest::collection::vec("[ab]{0,2}", 2..5),
        segment in "[ab]{0,9}",
    ) {
        let mut template = String::from("/");
        for (i, lit) in lits.iter().enumerate() {
            if i > 0 {
                template.push_str(&format!("{{p{i}}}"));
            }
            template.push_str(lit);
        }
        let router = router(&[("GET", &template)]);
        let expected = match reference_split(&lits, &segment) {
            Some(values) => Got::Found(
                0,
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, value)| (format!("p{}", i + 1), value))
                    .collect(),
            ),
            None => Got::NotFound,
        };
        prop_assert_eq!(look(&router, "GET", &format!("/{segment}")), expected);
    }

    #[test]
    fn lookup_never_panics(path in "/?[/a-z.{}%é-]{0,30}") {
        let router = router(&[
            ("GET", "/a/{x}"),
            ("GET", "/{a}.{b}/c"),
            ("POST", "/{n}{e}"),
            ("GET", "/a/{*rest}"),
            ("GET", "/"),
        ]);
        let _ = look(&router, "GET", &path);
        let _ = look(&router, "DELETE", &path);
    }
}

mod publish {
    //! `Routes::publish`: mounts by project id, renames, unmounts, and never goes back.

    use std::sync::Arc;

    use super::super::{CompiledProject, Problem, Publish, RouteTable, Routes};
    use crate::model::{Mode, Project};

    fn project(id: i64, name: &str, revision: i64) -> Arc<CompiledProject> {
        let def = Project {
            id,
            owner: "o".into(),
            name: name.into(),
            description: String::new(),
            mode: Mode::Development,
            journal_size: None,
            revision,
            created_at: 0,
            updated_at: 0,
            endpoints: crate::model::EndpointList::new(),
            backends: Arc::from([]),
            script: None,
            auth: crate::model::AuthPolicy::None,
            cors: None,
            rate_limit: None,
            openapi: None,
            env: crate::model::Env::EMPTY,
            layout: crate::model::Layout::Owner,
        };
        Arc::new(CompiledProject::build(Arc::new(def), crate::routing::HandlerList::new()).unwrap())
    }

    fn mounted(routes: &Routes) -> Vec<(String, i64, i64)> {
        let table = routes.load();
        let mut all: Vec<_> = table
            .projects()
            .map(|p| (p.def.mount_key(), p.def.id, p.def.revision))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn a_late_publish_of_an_older_revision_changes_nothing() {
        let routes = Routes::new(RouteTable::default());
        assert!(routes.publish(Publish::Mount(project(1, "p", 3))).is_some());
        assert!(routes.publish(Publish::Mount(project(1, "p", 2))).is_none());
        assert!(routes.publish(Publish::Mount(project(1, "p", 3))).is_none());
        assert_eq!(mounted(&routes), [("o/p".into(), 1, 3)]);
        assert!(routes.publish(Publish::Mount(project(1, "p", 4))).is_some());
        assert_eq!(mounted(&routes), [("o/p".into(), 1, 4)]);
    }

    #[test]
    fn a_rename_moves_the_mount_and_unmount_goes_by_id() {
        let routes = Routes::new(RouteTable::default());
        let _ = routes.publish(Publish::Mount(project(1, "p", 1)));
        let _ = routes.publish(Publish::Mount(project(2, "q", 1)));
        let _ = routes.publish(Publish::Mount(project(1, "r", 2)));
        assert_eq!(
            mounted(&routes),
            [("o/q".into(), 2, 1), ("o/r".into(), 1, 2)]
        );
        // A new project 3 takes the freed name `p`; unmounting project 1 leaves it alone.
        let _ = routes.publish(Publish::Mount(project(3, "p", 1)));
        let _ = routes.publish(Publish::Unmount(1));
        assert_eq!(
            mounted(&routes),
            [("o/p".into(), 3, 1), ("o/q".into(), 2, 1)]
        );
        assert!(
            routes.publish(Publish::Unmount(1)).is_none(),
            "gone already"
        );
    }

    #[test]
    fn a_broken_project_logs_once_per_period_and_counts_what_it_did_not_log() {
        let problem = Problem::new("endpoint `a` cannot be read");
        assert_eq!(
            problem.note_request(),
            Some(1),
            "the first request is logged"
        );
        for _ in 0..1000 {
            assert_eq!(problem.note_request(), None);
        }
        assert_eq!(problem.message(), "endpoint `a` cannot be read");
    }
}
