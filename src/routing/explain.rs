//! Why a request did or did not reach an endpoint: the near misses of a project.
//!
//! Not on the request path: `GET /admin/explain` runs it, and it compares the request with
//! every endpoint of one project, segment by segment, O(endpoints · segments). The router
//! decides what matches; this only says, for the endpoints it did not pick, how close each
//! came and where it parted: a wrong method on a matching path, or the first segment where
//! the path differs.

use http::Method;

use super::CompiledProject;
use super::matcher::pattern_matches;
use super::template::Segment;
use crate::model::{Endpoint, MethodSpec};

/// How an endpoint missed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The path matches; the endpoint answers other methods.
    WrongMethod,
    /// The path parts at `segment` (1-based, of the project-relative path).
    PathDiffers { segment: usize, why: String },
}

/// An endpoint that did not answer a request, and why.
#[derive(Debug)]
pub struct NearMiss<'a> {
    pub endpoint: &'a Endpoint,
    pub miss: Miss,
    /// Leading segments that matched; the wrong-method misses rank first.
    score: usize,
}

/// Shown as the admin API answers it: `{id, method, path, miss, segment?, why}`, `miss`
/// being `wrong_method` or `path_differs`.
impl serde::Serialize for NearMiss<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let endpoint = self.endpoint;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &endpoint.id)?;
        map.serialize_entry("method", endpoint.spec.method.as_str())?;
        map.serialize_entry("path", &*endpoint.spec.path)?;
        match &self.miss {
            Miss::WrongMethod => {
                map.serialize_entry("miss", "wrong_method")?;
                map.serialize_entry(
                    "why",
                    &format!(
                        "the path matches; the endpoint answers {}",
                        endpoint.spec.method.as_str()
                    ),
                )?;
            }
            Miss::PathDiffers { segment, why } => {
                map.serialize_entry("miss", "path_differs")?;
                map.serialize_entry("segment", segment)?;
                map.serialize_entry("why", why)?;
            }
        }
        map.end()
    }
}

/// The `limit` endpoints of `project` that came closest to answering `method path`
/// (project-relative, `""` or `/…`), best first; endpoints listed earlier win ties.
pub fn near_misses<'a>(
    project: &'a CompiledProject,
    method: &Method,
    path: &str,
    limit: usize,
) -> Vec<NearMiss<'a>> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let parts: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    let mut misses: Vec<NearMiss<'a>> = project
        .def
        .endpoints
        .iter()
        .filter_map(|endpoint| compare(endpoint, method, &parts))
        .collect();
    misses.sort_by_key(|miss| std::cmp::Reverse(miss.score));
    misses.truncate(limit);
    misses
}

fn method_matches(spec: &MethodSpec, method: &Method) -> bool {
    match spec {
        MethodSpec::Any => true,
        MethodSpec::One(own) => own == method || (*method == Method::HEAD && *own == Method::GET),
    }
}

/// How `endpoint` compares with a request; `None` if it would answer it.
fn compare<'a>(endpoint: &'a Endpoint, method: &Method, parts: &[&str]) -> Option<NearMiss<'a>> {
    // A prefix (proxy) endpoint takes its path and everything below it: its tail template
    // (`/api/{*rest}`) says both.
    let tail = endpoint.tail().and_then(Result::ok);
    let template = tail.as_ref().unwrap_or(&endpoint.template);
    let segments: Vec<Segment<'_>> = template.segments().collect();
    let mut index = 0;
    loop {
        let segment = segments.get(index);
        let part = parts.get(index);
        let differs = |why: String| NearMiss {
            endpoint,
            miss: Miss::PathDiffers {
                segment: index + 1,
                why,
            },
            score: index,
        };
        match (segment, part) {
            (Some(Segment::Tail), _) | (None, None) => break,
            (None, Some(part)) => {
                return Some(differs(format!(
                    "the path goes on with `{part}` where the endpoint's ends"
                )));
            }
            (Some(segment), None) => {
                let mut shape = String::new();
                segment.write_shape(&mut shape);
                return Some(differs(format!(
                    "the path ends where the endpoint expects `{shape}`"
                )));
            }
            (Some(Segment::Static(text)), Some(part)) if text != part => {
                return Some(differs(format!("expected `{text}`, got `{part}`")));
            }
            (Some(Segment::Pattern { lits }), Some(part)) if !pattern_matches(lits, part) => {
                let mut shape = String::new();
                Segment::Pattern { lits }.write_shape(&mut shape);
                let why = if part.is_empty() {
                    format!("an empty segment does not fill `{shape}`")
                } else {
                    format!("`{part}` does not fit the pattern `{shape}`")
                };
                return Some(differs(why));
            }
            _ => index += 1,
        }
    }
    if method_matches(&endpoint.spec.method, method) {
        return None;
    }
    Some(NearMiss {
        endpoint,
        miss: Miss::WrongMethod,
        score: usize::MAX,
    })
}
