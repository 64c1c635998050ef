//! The docs pages: Swagger UI (`/docs`) and Redoc (`/redoc`) for the platform's document
//! and for each project's, and the vendored assets they load (`/docs/assets/…`), embedded
//! in the binary so that the pages work offline (assets/README.md says where they come
//! from).
//!
//! A page is a few hundred bytes of HTML made per request: the spec URL and the assets'
//! URL carry the `X-Forwarded-Prefix` a proxy in front may send, so the pages work under a
//! sub-path. A prefix is used only when it is a plain path (`/a/b`); anything else is
//! ignored, so no header can put markup or script into a page.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

use crate::body::Body;

pub const SWAGGER_UI_VERSION: &str = "5.35.0";
pub const REDOC_VERSION: &str = "2.5.0";

/// Where the assets are served, under the platform's root (and a forwarded prefix).
pub const ASSETS: &str = "/docs/assets";

static SWAGGER_UI_JS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
static SWAGGER_UI_CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");
static REDOC_JS: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");

/// How the pages load their scripts.
#[derive(Debug, Clone, Default)]
pub struct PagesConfig {
    /// Redoc's script from this URL (a CDN, say) instead of the embedded copy.
    pub redoc_url: Option<String>,
}

/// An embedded asset by its file name: its media type and bytes.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8], &'static str)> {
    match name {
        "swagger-ui-bundle.js" => Some((
            "text/javascript; charset=utf-8",
            SWAGGER_UI_JS,
            SWAGGER_UI_VERSION,
        )),
        "swagger-ui.css" => Some((
            "text/css; charset=utf-8",
            SWAGGER_UI_CSS,
            SWAGGER_UI_VERSION,
        )),
        "redoc.standalone.js" => Some(("text/javascript; charset=utf-8", REDOC_JS, REDOC_VERSION)),
        _ => None,
    }
}

/// The answer for an asset: the bytes with their type, cached by browsers for a day and
/// revalidated by version (`ETag`); `None` for a name that is not one.
pub fn asset_response(name: &str, request: &HeaderMap) -> Option<Response<Body>> {
    let (media, bytes, version) = asset(name)?;
    let etag = format!("\"{version}\"");
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Body::full(Bytes::from_static(bytes)))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    Some(response)
}

/// The path a proxy in front says it serves us under (`X-Forwarded-Prefix`), when it is a
/// plain path: `/` then segments of letters, digits and `-._~`, at most 256 bytes.
pub fn forwarded_prefix(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("x-forwarded-prefix")?.to_str().ok()?;
    let value = value.trim().trim_end_matches('/');
    let plain = value.len() <= 256
        && value.starts_with('/')
        && value.split('/').skip(1).all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        });
    (plain && !value.is_empty()).then_some(value)
}

/// Which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    SwaggerUi,
    Redoc,
}

/// A page for the document at `spec` (a path from the root, prefix not included), titled
/// `title`, as an HTML answer.
pub fn page(
    which: Page,
    title: &str,
    spec: &str,
    prefix: Option<&str>,
    config: &PagesConfig,
) -> Response<Body> {
    let prefix = prefix.unwrap_or("");
    let spec = format!("{prefix}{spec}");
    let assets = format!("{prefix}{ASSETS}");
    let title = escape(title);
    let html = match which {
        Page::SwaggerUi => format!(
            r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – Swagger UI</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css?v={SWAGGER_UI_VERSION}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {spec_js},
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
</script>
</body>
</html>
"##,
            spec_js = script_string(&spec),
        ),
        Page::Redoc => {
            let script = config.redoc_url.as_deref().map_or_else(
                || format!("{assets}/redoc.standalone.js?v={REDOC_VERSION}"),
                str::to_owned,
            );
            format!(
                r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – Redoc</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{spec}"></redoc>
<script src="{script}"></script>
</body>
</html>
"#,
                spec = escape(&spec),
                script = escape(&script),
            )
        }
    };
    let mut response = Response::new(Body::full(Bytes::from(html)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Text for an HTML attribute or element.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JavaScript string literal that is safe inside `<script>`.
fn script_string(text: &str) -> String {
    serde_json::to_string(text)
        .unwrap_or_else(|_| "\"\"".to_owned())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(prefix: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-prefix", HeaderValue::from_str(prefix).unwrap());
        headers
    }

    #[test]
    fn only_plain_prefixes_are_taken() {
        assert_eq!(forwarded_prefix(&headers("/api")), Some("/api"));
        assert_eq!(forwarded_prefix(&headers("/a/b-c/")), Some("/a/b-c"));
        for bad in [
            "api",
            "/a//b",
            "/a\"><script>",
            "/a b",
            "//evil.example",
            "/",
        ] {
            assert_eq!(forwarded_prefix(&headers(bad)), None, "{bad}");
        }
        assert_eq!(forwarded_prefix(&HeaderMap::new()), None);
    }

    #[test]
    fn pages_name_the_spec_and_the_assets_under_the_prefix() {
        let config = PagesConfig::default();
        let body = |r: Response<Body>| {
            let Body::Full(Some(bytes)) = r.into_body() else {
                panic!("a page is a whole body")
            };
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        let html = body(page(
            Page::SwaggerUi,
            "<pets>",
            "/alice/pets/openapi.json",
            Some("/gw"),
            &config,
        ));
        assert!(
            html.contains(r#"url: "/gw/alice/pets/openapi.json""#),
            "{html}"
        );
        assert!(html.contains("/gw/docs/assets/swagger-ui-bundle.js"));
        assert!(html.contains("&lt;pets&gt;"));
        let html = body(page(Page::Redoc, "t", "/openapi.json", None, &config));
        assert!(html.contains(r#"spec-url="/openapi.json""#));
        assert!(html.contains("/docs/assets/redoc.standalone.js"));
        let elsewhere = PagesConfig {
            redoc_url: Some("https://cdn.example/redoc.js".into()),
        };
        let html = body(page(Page::Redoc, "t", "/openapi.json", None, &elsewhere));
        assert!(html.contains(r#"<script src="https://cdn.example/redoc.js">"#));
    }

    #[test]
    fn script_strings_cannot_close_the_script() {
        assert_eq!(script_string("</script>"), r#""\u003c/script\u003e""#);
    }

    #[test]
    fn assets_are_embedded_and_revalidated_by_version() {
        let (media, bytes, _) = asset("swagger-ui-bundle.js").unwrap();
        assert!(media.starts_with("text/javascript"));
        assert!(bytes.len() > 100_000);
        assert!(asset("redoc.standalone.js").is_some());
        assert!(asset("../Cargo.toml").is_none());
        let mut request = HeaderMap::new();
        let first = asset_response("swagger-ui.css", &request).unwrap();
        let etag = first.headers()[header::ETAG].clone();
        request.insert(header::IF_NONE_MATCH, etag);
        let again = asset_response("swagger-ui.css", &request).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
}
