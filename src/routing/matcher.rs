//! The request router: maps a method and a project-relative path to the route registered
//! for it. It exists so that the hot path of every request is a cheap, allocation-free walk
//! of an immutable tree that is rebuilt off to the side whenever a project changes. It must
//! not do IO, must not decode or normalise paths (that is the caller's business), must not
//! panic on any path, and must never let lookup cost grow with the number of static routes.
//!
//! # Matching semantics
//!
//! * `path` is the project-relative path and must start with `/` (the caller maps an empty
//!   remainder to `/`); anything else is [`Lookup::NotFound`]. It carries no query string.
//!   Matching works on the raw, still percent-encoded text, and literals compare exactly and
//!   case-sensitively (`%2F` and `%2f` differ). Captured values are raw slices of `path`.
//! * The path is split on `/` exactly like templates are, so empty segments count:
//!   `/items/` matches only the template `/items/`, and `/` matches only `/` (or a tail).
//! * A `{name}` parameter matches one or more characters, never `/`. Inside a pattern segment
//!   matching behaves like a regex where each parameter is `[^/]+`, leftmost-greedy with
//!   backtracking: `{name}{ext}` on `file.txt` gives `file.tx` / `t`, and `{name}.{ext}` on
//!   `a.b.c` gives `a.b` / `c`. It is implemented without a regex engine and without
//!   allocation, in time polynomial in the segment length (no exponential blow-up).
//! * `{*name}` (only the whole last segment) matches the rest of the path including slashes,
//!   possibly empty: `/files/{*rest}` matches `/files/` and `/files/a/b`, but not `/files`.
//! * Priority, decided segment by segment from left to right: a static segment first (a
//!   single string comparison when a node has one static child, a hash lookup otherwise),
//!   then pattern segments ordered by more literal bytes, then fewer parameters, then earlier
//!   insertion; then a bare `{x}` segment; the tail last. When the preferred branch fails
//!   deeper in the path the walk backtracks to the next candidate, so with `/a/b/c` and
//!   `/{x}/b/d`, the path `/a/b/d` matches the second.
//! * Methods: at a node that matches the whole path, a route for the exact method wins, then
//!   (for HEAD only) one for GET, then one for ANY. If no route there accepts the method the
//!   walk keeps backtracking for another matching node that does; if none does, the result is
//!   [`Lookup::MethodNotAllowed`] with the `Allow` value of the first node that matched.
//!   `Allow` lists GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE in that order
//!   (HEAD whenever GET is present), then extension methods in insertion order.
//!
//! Lookup cost depends on the path's length and on how many *pattern* siblings it has to try
//! at each level, never on the number of static routes; each tree node is visited at most
//! once per lookup, because the node at depth `d` always consumes the `d`-th segment. Static
//! keys are hashed with std's keyed SipHash so that tenants cannot craft colliding route
//! sets. Captures live in a [`SmallVec`] that only spills to the heap for more than
//! [`INLINE_PARAMS`] parameters.

use std::collections::HashMap;
use std::fmt::Write as _;

use http::Method;
use smallvec::SmallVec;

use super::template::{Segment, Template};

/// Parameters held on the stack during lookup; more than this spills to the heap.
pub const INLINE_PARAMS: usize = 8;

type Captures<'p> = SmallVec<[&'p str; INLINE_PARAMS]>;

/// Which request methods a route answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMethod {
    /// Any method, used when no route for the exact method exists on the same node.
    Any,
    Method(Method),
}

/// A route with the same method and the same shape was already inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a route with the same method and path shape already exists (route #{existing})")]
pub struct Conflict {
    /// Insertion index (0-based, counting successful inserts) of the route already there.
    pub existing: usize,
}

/// Methods with a fixed slot in every method table, in the order `Allow` lists them.
static COMMON: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::CONNECT,
    Method::TRACE,
];
const GET_SLOT: usize = 0;
const HEAD_SLOT: usize = 1;

fn common_slot(method: &Method) -> Option<usize> {
    COMMON.iter().position(|common| common == method)
}

/// The routes ending at one node, by method. Values are indexes into `Router::routes`.
#[derive(Debug, Default)]
struct Slots {
    common: [Option<usize>; 9],
    any: Option<usize>,
    /// Extension methods such as `PURGE`; rare and few, so a vec beats a map.
    extensions: Vec<(Method, usize)>,
    /// Precomputed `Allow` header value, filled in by `build`.
    allow: Box<str>,
}

impl Slots {
    fn slot_mut(&mut self, method: &RouteMethod) -> Option<&mut Option<usize>> {
        match method {
            RouteMethod::Any => Some(&mut self.any),
            RouteMethod::Method(method) => match common_slot(method) {
                Some(slot) => self.common.get_mut(slot),
                None => None,
            },
        }
    }

    /// Registers route `index` for `method`, or reports the route already there.
    fn claim(&mut self, method: RouteMethod, index: usize) -> Result<(), Conflict> {
        let existing = match &method {
            RouteMethod::Any => self.any,
            RouteMethod::Method(method) => self.exact(method),
        };
        if let Some(existing) = existing {
            return Err(Conflict { existing });
        }
        match self.slot_mut(&method) {
            Some(slot) => *slot = Some(index),
            None => {
                // Only extension methods lack a fixed slot.
                if let RouteMethod::Method(method) = method {
                    self.extensions.push((method, index));
                }
            }
        }
        Ok(())
    }

    fn exact(&self, method: &Method) -> Option<usize> {
        match common_slot(method) {
            Some(slot) => self.common.get(slot).copied().flatten(),
            None => self
                .extensions
                .iter()
                .find(|(ext, _)| ext == method)
                .map(|&(_, route)| route),
        }
    }

    /// Exact method, then GET for HEAD, then ANY.
    fn pick(&self, method: &Method) -> Option<usize> {
        self.exact(method)
            .or_else(|| {
                if *method == Method::HEAD {
                    self.common.get(GET_SLOT).copied().flatten()
                } else {
                    None
                }
            })
            .or(self.any)
    }

    fn compute_allow(&mut self) {
        let mut allow = String::new();
        let has_get = matches!(self.common.get(GET_SLOT), Some(Some(_)));
        for (slot, method) in COMMON.iter().enumerate() {
            let present = matches!(self.common.get(slot), Some(Some(_)));
            // HEAD is always served by GET, so clients must be told it is allowed.
            if present || (slot == HEAD_SLOT && has_get) {
                push_method(&mut allow, method.as_str());
            }
        }
        for (method, _) in &self.extensions {
            push_method(&mut allow, method.as_str());
        }
        self.allow = allow.into_boxed_str();
    }
}

fn push_method(allow: &mut String, method: &str) {
    if !allow.is_empty() {
        allow.push_str(", ");
    }
    allow.push_str(method);
}

/// A pattern segment compiled for matching; see [`match_pattern`].
#[derive(Debug)]
struct PatternEdge {
    lits: Box<[Box<str>]>,
    literal_bytes: usize,
    /// Insertion index of the first route that used this pattern, the last tie-breaker.
    first_route: usize,
    child: usize,
}

impl PatternEdge {
    fn params(&self) -> usize {
        self.lits.len().saturating_sub(1)
    }
}

/// Static children of a node. Most nodes below a parameter have a single static child
/// (`/users/{id}/posts`), so that case is one string comparison and no hash table; two or
/// more children always go through a hash table, so lookup never scans siblings.
#[derive(Debug, Default)]
enum Statics {
    #[default]
    Empty,
    One(Box<str>, usize),
    Many(HashMap<Box<str>, usize>),
}

impl Statics {
    fn get(&self, segment: &str) -> Option<usize> {
        match self {
            Statics::Empty => None,
            Statics::One(text, child) => (**text == *segment).then_some(*child),
            Statics::Many(map) => map.get(segment).copied(),
        }
    }

    /// Returns the child for `text`, registering `fresh` as that child if there is none.
    fn get_or_insert(&mut self, text: &str, fresh: usize) -> usize {
        if let Some(existing) = self.get(text) {
            return existing;
        }
        *self = match std::mem::take(self) {
            Statics::Empty => Statics::One(text.into(), fresh),
            Statics::One(other, child) => {
                Statics::Many(HashMap::from([(other, child), (text.into(), fresh)]))
            }
            Statics::Many(mut map) => {
                map.insert(text.into(), fresh);
                Statics::Many(map)
            }
        };
        fresh
    }
}

/// One tree node, reached by consuming one path segment per level. Children are indexes
/// into `Tree::nodes`, and method tables indexes into `Tree::slots`.
#[derive(Debug, Default)]
struct Node {
    statics: Statics,
    /// Pattern children; put in priority order by `build`.
    patterns: Vec<PatternEdge>,
    /// The child for a segment that is one bare `{x}`.
    param: Option<usize>,
    /// Routes whose template ends exactly at this node.
    end: Option<usize>,
    /// Routes whose template ends with `{*rest}` right below this node.
    tail: Option<usize>,
}

/// The part of the router that does not depend on the value type, so the walk is compiled
/// once rather than once per `T`. Node 0 is the root.
#[derive(Debug)]
struct Tree {
    nodes: Vec<Node>,
    slots: Vec<Slots>,
}

impl Tree {
    fn new() -> Self {
        Tree {
            nodes: vec![Node::default()],
            slots: Vec::new(),
        }
    }

    // The builder helpers below only ever see ids this tree handed out, so the `None`
    // branches cannot run; they exist so that even a bug could not turn into a panic.

    fn static_child(&mut self, parent: usize, text: &str) -> usize {
        let fresh = self.nodes.len();
        let child = match self.nodes.get_mut(parent) {
            Some(node) => node.statics.get_or_insert(text, fresh),
            None => fresh,
        };
        self.adopt(child, fresh)
    }

    fn param_child(&mut self, parent: usize) -> usize {
        let fresh = self.nodes.len();
        let child = match self.nodes.get_mut(parent) {
            Some(node) => *node.param.get_or_insert(fresh),
            None => fresh,
        };
        self.adopt(child, fresh)
    }

    fn pattern_child(&mut self, parent: usize, lits: &[Box<str>], first_route: usize) -> usize {
        let child = self.nodes.len();
        if let Some(node) = self.nodes.get_mut(parent) {
            node.patterns.push(PatternEdge {
                lits: lits.into(),
                literal_bytes: lits.iter().map(|lit| lit.len()).sum(),
                first_route,
                child,
            });
        }
        self.nodes.push(Node::default());
        child
    }

    fn adopt(&mut self, child: usize, fresh: usize) -> usize {
        if child == fresh {
            self.nodes.push(Node::default());
        }
        child
    }

    /// The method table at the end of `node` (or of its tail), created on first use.
    fn slots_mut(&mut self, node: usize, tail: bool) -> Option<&mut Slots> {
        let fresh = self.slots.len();
        let entry = self.nodes.get_mut(node)?;
        let entry = if tail {
            &mut entry.tail
        } else {
            &mut entry.end
        };
        let id = *entry.get_or_insert(fresh);
        if id == fresh {
            self.slots.push(Slots::default());
        }
        self.slots.get_mut(id)
    }

    /// Puts pattern children in priority order and precomputes `Allow` values. O(nodes).
    fn finish(&mut self) {
        for node in &mut self.nodes {
            node.patterns.sort_by_key(|edge| {
                (
                    std::cmp::Reverse(edge.literal_bytes),
                    edge.params(),
                    edge.first_route,
                )
            });
            node.patterns.shrink_to_fit();
        }
        for slots in &mut self.slots {
            slots.compute_allow();
        }
    }

    /// Depth-first search in priority order. `rest` is what follows the `/` that ends the
    /// previous segment, or `None` once the whole path has been consumed. Returns the index of
    /// the matched route; `allow` remembers the first node that matched without the method.
    /// Recursion depth is bounded by the template segment limit, not by the path.
    fn walk<'r, 'p>(
        &'r self,
        node: usize,
        rest: Option<&'p str>,
        method: &Method,
        captures: &mut Captures<'p>,
        allow: &mut Option<&'r str>,
    ) -> Option<usize> {
        let node = self.nodes.get(node)?;
        let Some(rest) = rest else {
            return self.pick(node.end, method, allow);
        };
        let (segment, next) = match rest.split_once('/') {
            Some((segment, next)) => (segment, Some(next)),
            None => (rest, None),
        };
        if let Some(child) = node.statics.get(segment)
            && let Some(found) = self.walk(child, next, method, captures, allow)
        {
            return Some(found);
        }
        for edge in &node.patterns {
            let mark = captures.len();
            if match_pattern(&edge.lits, segment, captures)
                && let Some(found) = self.walk(edge.child, next, method, captures, allow)
            {
                return Some(found);
            }
            captures.truncate(mark);
        }
        if let Some(child) = node.param
            && !segment.is_empty()
        {
            captures.push(segment);
            if let Some(found) = self.walk(child, next, method, captures, allow) {
                return Some(found);
            }
            captures.pop();
        }
        if node.tail.is_some() {
            captures.push(rest);
            if let Some(found) = self.pick(node.tail, method, allow) {
                return Some(found);
            }
            captures.pop();
        }
        None
    }

    fn pick<'r>(
        &'r self,
        slots: Option<usize>,
        method: &Method,
        allow: &mut Option<&'r str>,
    ) -> Option<usize> {
        let slots = self.slots.get(slots?)?;
        let found = slots.pick(method);
        if found.is_none() && allow.is_none() {
            *allow = Some(&slots.allow);
        }
        found
    }
}

/// Matches one path segment against a pattern (`lits[0]` param `lits[1]` … param `lits[k]`)
/// and pushes the `k` captured values in order. Returns `false` (leaving `captures` as it
/// was) when the segment does not match.
///
/// Leftmost-greedy regex semantics maximise the first parameter, then the second, and so on.
/// That is exactly what placing every literal after a parameter at its *rightmost* feasible
/// position gives, working from the end of the segment backwards: the rightmost placement of
/// each literal leaves the most room to everything left of it. Each placement is one reverse
/// substring search, so the cost is O(k · n · m) rather than the exponential cost of naive
/// backtracking over every split.
fn match_pattern<'p>(lits: &[Box<str>], segment: &'p str, captures: &mut Captures<'p>) -> bool {
    let Some((prefix, after)) = lits.split_first() else {
        return false;
    };
    let Some(body_start) = segment.starts_with(&**prefix).then_some(prefix.len()) else {
        return false;
    };
    let mark = captures.len();
    // `end` is where the parameter currently being placed ends (a char boundary).
    let mut end = segment.len();
    let mut is_last = true;
    for lit in after.iter().rev() {
        let lit_start = if is_last {
            // The final literal is anchored at the end of the segment.
            is_last = false;
            match segment.len().checked_sub(lit.len()) {
                Some(start) if start >= body_start && segment.ends_with(&**lit) => start,
                _ => return fail(captures, mark),
            }
        } else {
            // The parameter to the right needs at least one character, so this literal must
            // end at or before the start of that parameter's last character.
            let Some(bound) = step_back(segment, end, body_start) else {
                return fail(captures, mark);
            };
            match rightmost(segment, body_start, bound, lit) {
                Some(start) => {
                    if let Some(value) = segment.get(start + lit.len()..end) {
                        captures.push(value);
                    }
                    start
                }
                None => return fail(captures, mark),
            }
        };
        end = lit_start;
    }
    // `end` now ends the first parameter, which also needs at least one character.
    match segment.get(body_start..end) {
        Some(value) if !value.is_empty() => captures.push(value),
        _ => return fail(captures, mark),
    }
    // Values were pushed right to left; put them in template order.
    if let Some(pushed) = captures.get_mut(mark..) {
        pushed.reverse();
    }
    true
}

fn fail(captures: &mut Captures<'_>, mark: usize) -> bool {
    captures.truncate(mark);
    false
}

/// The start of the last character before `end`, if that character lies after `floor`.
fn step_back(segment: &str, end: usize, floor: usize) -> Option<usize> {
    let last = segment.get(..end)?.chars().next_back()?;
    let start = end - last.len_utf8();
    (start > floor).then_some(start)
}

/// Start of the rightmost occurrence of `lit` inside `segment[floor..bound]`. An empty
/// literal (two adjacent parameters) "occurs" right at `bound`.
fn rightmost(segment: &str, floor: usize, bound: usize, lit: &str) -> Option<usize> {
    if lit.is_empty() {
        return Some(bound);
    }
    let window = segment.as_bytes().get(floor..bound)?;
    window
        .windows(lit.len())
        .rposition(|candidate| candidate == lit.as_bytes())
        .map(|offset| floor + offset)
}

/// A registered route: its value and its parameter names in capture order.
#[derive(Debug)]
struct Route<T> {
    value: T,
    names: Box<[Box<str>]>,
}

/// Collects routes; turn it into a [`Router`] with [`RouterBuilder::build`].
#[derive(Debug)]
pub struct RouterBuilder<T> {
    tree: Tree,
    routes: Vec<Route<T>>,
    /// Pattern children by `"{parent id}/{segment shape}"`, so inserting stays O(1) per
    /// segment however many patterns share a parent. `/` cannot occur in a segment shape, so
    /// keys are unambiguous. Only needed while building.
    pattern_index: HashMap<String, usize>,
}

impl<T> Default for RouterBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RouterBuilder<T> {
    pub fn new() -> Self {
        RouterBuilder {
            tree: Tree::new(),
            routes: Vec::new(),
            pattern_index: HashMap::new(),
        }
    }

    /// Adds a route. Fails if a route with the same method and the same shape exists (names
    /// do not matter: `/a/{x}` and `/a/{y}` are the same route); `GET` and `ANY` on the same
    /// shape coexist. Costs O(segments) hash operations.
    pub fn insert(
        &mut self,
        method: RouteMethod,
        template: &Template,
        value: T,
    ) -> Result<(), Conflict> {
        let index = self.routes.len();
        let mut node = 0;
        let mut tail = false;
        let mut key = String::new();
        for segment in template.segments() {
            node = match segment {
                Segment::Static(text) => self.tree.static_child(node, text),
                Segment::Pattern { lits } if is_bare_param(lits) => self.tree.param_child(node),
                Segment::Pattern { lits } => {
                    key.clear();
                    // Writing into a String cannot fail.
                    let _ = write!(key, "{node}/");
                    segment.write_shape(&mut key);
                    match self.pattern_index.get(&key) {
                        Some(&child) => child,
                        None => {
                            let child = self.tree.pattern_child(node, lits, index);
                            self.pattern_index.insert(key.clone(), child);
                            child
                        }
                    }
                }
                Segment::Tail => {
                    tail = true;
                    break;
                }
            };
        }
        // A conflict can only happen when every node on the way already existed, so a failed
        // insert never leaves half-built branches behind.
        if let Some(slots) = self.tree.slots_mut(node, tail) {
            slots.claim(method, index)?;
        }
        self.routes.push(Route {
            value,
            names: template.names().into(),
        });
        Ok(())
    }

    /// Freezes the routes into an immutable router. O(nodes).
    pub fn build(self) -> Router<T> {
        let mut tree = self.tree;
        tree.finish();
        Router {
            tree,
            routes: self.routes.into_boxed_slice(),
        }
    }
}

fn is_bare_param(lits: &[Box<str>]) -> bool {
    lits.len() == 2 && lits.iter().all(|lit| lit.is_empty())
}

/// An immutable routing table; `Send + Sync` whenever `T` is.
#[derive(Debug)]
pub struct Router<T> {
    tree: Tree,
    routes: Box<[Route<T>]>,
}

/// The outcome of [`Router::lookup`].
#[derive(Debug)]
pub enum Lookup<'r, 'p, T> {
    Found(Match<'r, 'p, T>),
    /// The path matched some route, but none for this method. `allow` is the ready-made
    /// `Allow` header value of the highest-priority matching node, e.g. `GET, HEAD, POST`
    /// (HEAD is listed whenever GET is). Cannot happen when that node has an ANY route.
    MethodNotAllowed {
        allow: &'r str,
    },
    NotFound,
}

/// A matched route and the parameters captured from the path.
#[derive(Debug)]
pub struct Match<'r, 'p, T> {
    pub value: &'r T,
    pub params: Params<'r, 'p>,
}

/// Captured parameters as `(name, raw value)` pairs in template order. Values are slices of
/// the request path, still percent-encoded.
#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "read by response templates and scripts (later issues) and by tests"
    )
)]
#[derive(Debug, Clone)]
pub struct Params<'r, 'p> {
    names: &'r [Box<str>],
    values: Captures<'p>,
}

#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "read by response templates and scripts (later issues) and by tests"
    )
)]
impl<'r, 'p> Params<'r, 'p> {
    /// The raw value of parameter `name`, if the route has one by that name.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|(_, value)| value)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'r str, &'p str)> + '_ {
        self.names
            .iter()
            .map(|name| &**name)
            .zip(self.values.iter().copied())
    }

    pub fn len(&self) -> usize {
        self.values.len().min(self.names.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Router<T> {
    /// Finds the route for `method` and `path`; see the module docs for the exact semantics.
    /// Allocation-free unless the route has more than [`INLINE_PARAMS`] parameters.
    pub fn lookup<'r, 'p>(&'r self, method: &Method, path: &'p str) -> Lookup<'r, 'p, T> {
        let Some(rest) = path.strip_prefix('/') else {
            return Lookup::NotFound;
        };
        let mut captures = Captures::new();
        let mut allow = None;
        let found = self
            .tree
            .walk(0, Some(rest), method, &mut captures, &mut allow);
        match (found.and_then(|index| self.routes.get(index)), allow) {
            (Some(route), _) => Lookup::Found(Match {
                value: &route.value,
                params: Params {
                    names: &route.names,
                    values: captures,
                },
            }),
            (None, Some(allow)) => Lookup::MethodNotAllowed { allow },
            (None, None) => Lookup::NotFound,
        }
    }

    /// Number of routes.
    #[cfg_attr(not(test), allow(dead_code, reason = "used by tests"))]
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    #[cfg_attr(not(test), allow(dead_code, reason = "used by tests"))]
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}
