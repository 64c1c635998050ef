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
//! once per lookup, because the node at depth `d` always consumes the `d`-th segment. The
//! static children of all nodes with more than one share a single open-addressed table keyed
//! by `(node, segment)` and hashed with foldhash under a random per-router seed, so that
//! tenants cannot craft colliding route sets; static keys are slices of one shared string.
//! Building therefore allocates a few growing buffers rather than a map and a string per
//! node, which keeps the rebuild on every project change, and dropping the old tree, cheap.
//! The commonest change, adding one route, need not rebuild at all: [`Router::with_route`]
//! copies those buffers (flat copies, no per-route hashing or allocation) and inserts into
//! the copy, leaving the router that is serving untouched.
//! Captures live in a [`SmallVec`] that only spills to the heap for more than
//! [`INLINE_PARAMS`] parameters.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::BuildHasher as _;
use std::sync::Arc;

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

/// Stands for "no node", "no route" or "no method table" wherever an id is stored as `u32`.
/// Ids are `u32` rather than `usize` so that nodes and method tables stay small: a project's
/// tree is rebuilt on every change, so its size is build and drop time as much as memory.
const NONE: u32 = u32::MAX;

/// Turns a length into the id of the next element. A tree with `u32::MAX` nodes would not
/// fit in memory, so saturating to [`NONE`] only makes a route unreachable, never misrouted
/// and never a panic.
fn next_id(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(NONE)
}

/// The element `id` refers to, or `None` for [`NONE`].
fn get<T>(items: &[T], id: u32) -> Option<&T> {
    items.get(usize::try_from(id).ok()?)
}

fn get_mut<T>(items: &mut [T], id: u32) -> Option<&mut T> {
    items.get_mut(usize::try_from(id).ok()?)
}

/// The routes ending at one node, by method. Values are indexes into `Router::routes`.
#[derive(Debug, Clone)]
struct Slots {
    common: [u32; 9],
    any: u32,
    /// Index into `Tree::allows`, filled in by `build`; nearly every table shares the same
    /// few values (`GET, HEAD` above all), so they are stored once per tree.
    allow: u32,
    /// Extension methods such as `PURGE`; rare and few, so a slice beats a map, and a boxed
    /// slice keeps the common, empty case to two words without an allocation.
    extensions: Box<[(Method, u32)]>,
}

impl Default for Slots {
    fn default() -> Self {
        Slots {
            common: [NONE; 9],
            any: NONE,
            allow: NONE,
            extensions: Box::default(),
        }
    }
}

impl Slots {
    /// Registers route `index` for `method`, or reports the route already there.
    fn claim(&mut self, method: RouteMethod, index: u32) -> Result<(), Conflict> {
        let existing = match &method {
            RouteMethod::Any => self.any,
            RouteMethod::Method(method) => self.exact(method),
        };
        if existing != NONE {
            return Err(Conflict {
                existing: existing as usize,
            });
        }
        match method {
            RouteMethod::Any => self.any = index,
            RouteMethod::Method(method) => match common_slot(&method) {
                Some(slot) => {
                    if let Some(entry) = self.common.get_mut(slot) {
                        *entry = index;
                    }
                }
                None => {
                    // Rebuilding the slice costs O(extensions), which stay a handful.
                    let mut extensions = std::mem::take(&mut self.extensions).into_vec();
                    extensions.push((method, index));
                    self.extensions = extensions.into_boxed_slice();
                }
            },
        }
        Ok(())
    }

    fn exact(&self, method: &Method) -> u32 {
        match common_slot(method) {
            Some(slot) => self.common.get(slot).copied().unwrap_or(NONE),
            None => self
                .extensions
                .iter()
                .find(|(ext, _)| ext == method)
                .map_or(NONE, |&(_, route)| route),
        }
    }

    /// Exact method, then GET for HEAD, then ANY.
    fn pick(&self, method: &Method) -> Option<u32> {
        let mut found = self.exact(method);
        if found == NONE && *method == Method::HEAD {
            found = self.common.get(GET_SLOT).copied().unwrap_or(NONE);
        }
        if found == NONE {
            found = self.any;
        }
        (found != NONE).then_some(found)
    }

    /// Bit `i` is set when `COMMON[i]` belongs in `Allow`. HEAD is always served by GET, so
    /// clients must be told it is allowed whenever GET is.
    fn allow_mask(&self) -> usize {
        let has_get = self
            .common
            .get(GET_SLOT)
            .is_some_and(|&route| route != NONE);
        let mut mask = 0;
        for (slot, &route) in self.common.iter().enumerate() {
            if route != NONE || (slot == HEAD_SLOT && has_get) {
                mask |= 1 << slot;
            }
        }
        mask
    }

    fn write_allow(&self, mask: usize, allow: &mut String) {
        allow.clear();
        for (slot, method) in COMMON.iter().enumerate() {
            if mask & (1 << slot) != 0 {
                push_method(allow, method.as_str());
            }
        }
        for (method, _) in &self.extensions {
            push_method(allow, method.as_str());
        }
    }
}

fn push_method(allow: &mut String, method: &str) {
    if !allow.is_empty() {
        allow.push_str(", ");
    }
    allow.push_str(method);
}

/// A pattern segment compiled for matching; see [`match_pattern`].
#[derive(Debug, Clone)]
struct PatternEdge {
    /// Shared so that [`Router::with_route`] copies a tree without allocating per pattern.
    lits: Arc<[Box<str>]>,
    /// The node this edge leaves; `build` groups edges by it.
    parent: u32,
    child: u32,
    /// Insertion index of the first route that used this pattern, the last tie-breaker.
    first_route: u32,
    literal_bytes: u32,
}

impl PatternEdge {
    fn params(&self) -> usize {
        self.lits.len().saturating_sub(1)
    }
}

/// Where a static key lives in `Tree::keys`. Keys are slices of one shared string rather than
/// a `Box<str>` each, so that building and dropping a tree of static routes allocates and
/// frees a few buffers instead of one per route.
#[derive(Debug, Clone, Copy)]
struct Key {
    start: u32,
    len: u32,
}

impl Key {
    /// The key's text, or `""` for a range `keys` does not have (which only a bug could make).
    fn text(self, keys: &str) -> &str {
        let start = self.start as usize;
        start
            .checked_add(self.len as usize)
            .and_then(|end| keys.get(start..end))
            .unwrap_or_default()
    }

    fn matches(self, keys: &str, segment: &str) -> bool {
        let start = self.start as usize;
        start
            .checked_add(self.len as usize)
            .and_then(|end| keys.as_bytes().get(start..end))
            == Some(segment.as_bytes())
    }
}

/// Static children of a node. Most nodes below a parameter have a single static child
/// (`/users/{id}/posts`), so that case is one string comparison and no hash; two or more
/// children live in the tree-wide [`StaticTable`], so lookup never scans siblings.
#[derive(Debug, Default, Clone, Copy)]
enum Statics {
    #[default]
    Empty,
    One(Key, u32),
    Many,
}

/// A static child kept in [`StaticTable`].
#[derive(Debug, Clone, Copy)]
struct StaticEdge {
    parent: u32,
    key: Key,
    child: u32,
}

/// Every static edge of nodes with more than one, in one open-addressed hash table keyed by
/// `(parent, segment)`. One flat table instead of a map per node means no per-node
/// allocation, growth or hashing state, and a tree of many static routes is a few big
/// buffers. Keys are hashed with foldhash under a random per-table seed, so that tenants
/// cannot craft route sets that collide.
#[derive(Debug, Default)]
struct StaticTable {
    hasher: foldhash::fast::RandomState,
    /// Power-of-two many buckets, at most half full so that probe sequences stay short: a
    /// hash tag (the high half of the hash, which the bucket position does not use) and an
    /// index into `edges`, or [`NONE`] for an empty bucket.
    buckets: Vec<(u32, u32)>,
    edges: Vec<StaticEdge>,
}

/// Where a probe for a key ended: at the matching edge, or at the empty bucket it would take.
enum Probe {
    Found(u32),
    Vacant(usize),
    /// Only a table without buckets, or a bug, gets here.
    Full,
}

impl StaticTable {
    fn hash(&self, parent: u32, segment: &str) -> u64 {
        self.hasher.hash_one((parent, segment))
    }

    fn probe(&self, keys: &str, parent: u32, segment: &str, hash: u64) -> Probe {
        let Some(mask) = self.buckets.len().checked_sub(1) else {
            return Probe::Full;
        };
        let tag = (hash >> 32) as u32;
        // Truncating the hash is fine: only the low bits pick the bucket.
        let mut at = hash as usize & mask;
        // The table is never full, so an empty bucket always ends the probe; the bound only
        // makes sure that even a bug could not loop forever.
        for _ in 0..self.buckets.len() {
            let Some(&(bucket_tag, edge)) = self.buckets.get(at) else {
                break;
            };
            if edge == NONE {
                return Probe::Vacant(at);
            }
            if bucket_tag == tag
                && let Some(found) = get(&self.edges, edge)
                && found.parent == parent
                && found.key.matches(keys, segment)
            {
                return Probe::Found(found.child);
            }
            at = (at + 1) & mask;
        }
        Probe::Full
    }

    fn get(&self, keys: &str, parent: u32, segment: &str) -> Option<u32> {
        match self.probe(keys, parent, segment, self.hash(parent, segment)) {
            Probe::Found(child) => Some(child),
            Probe::Vacant(_) | Probe::Full => None,
        }
    }

    /// Adds an edge that is not in the table yet.
    fn insert(&mut self, keys: &str, edge: StaticEdge) {
        self.reserve(keys, self.edges.len().saturating_add(1));
        let Some(segment) = keys.get(edge.key.start as usize..) else {
            return;
        };
        let Some(segment) = segment.get(..edge.key.len as usize) else {
            return;
        };
        let hash = self.hash(edge.parent, segment);
        if let Probe::Vacant(at) = self.probe(keys, edge.parent, segment, hash)
            && let Some(bucket) = self.buckets.get_mut(at)
        {
            *bucket = ((hash >> 32) as u32, next_id(self.edges.len()));
            self.edges.push(edge);
        }
    }

    /// Makes room for `edges` edges without exceeding half load, rehashing if needed.
    fn reserve(&mut self, keys: &str, edges: usize) {
        let wanted = edges.saturating_mul(2).max(16).next_power_of_two();
        if wanted > self.buckets.len() {
            self.resize(keys, wanted);
        }
        let _ = self
            .edges
            .try_reserve(edges.saturating_sub(self.edges.len()));
    }

    /// Rebuilds the buckets with `len` (a power of two, more than twice the edges) slots.
    fn resize(&mut self, keys: &str, len: usize) {
        let mut buckets = Vec::new();
        if buckets.try_reserve_exact(len).is_err() {
            return;
        }
        buckets.resize(len, (0, NONE));
        let mask = len - 1;
        for (index, edge) in self.edges.iter().enumerate() {
            let start = edge.key.start as usize;
            let Some(segment) = start
                .checked_add(edge.key.len as usize)
                .and_then(|end| keys.get(start..end))
            else {
                continue;
            };
            let hash = self.hash(edge.parent, segment);
            let mut at = hash as usize & mask;
            while let Some(bucket) = buckets.get_mut(at) {
                if bucket.1 == NONE {
                    *bucket = ((hash >> 32) as u32, next_id(index));
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        self.buckets = buckets;
    }

    /// Gives back memory reserved for routes that never came.
    fn shrink(&mut self, keys: &str) {
        self.edges.shrink_to_fit();
        let fitting = self
            .edges
            .len()
            .saturating_mul(2)
            .max(16)
            .next_power_of_two();
        // Halving only when a quarter full or less avoids a rehash for ordinary slack.
        if self.buckets.len() > fitting.saturating_mul(2) {
            self.resize(keys, fitting);
        }
    }
}

/// One tree node, reached by consuming one path segment per level. Children are ids of
/// `Tree::nodes`, method tables ids of `Tree::slots`, and [`NONE`] means there is none.
#[derive(Debug, Clone, Copy)]
struct Node {
    statics: Statics,
    /// Pattern children are `Tree::patterns[patterns.0..patterns.1]`, in priority order;
    /// filled in by `build`.
    patterns: (u32, u32),
    /// The child for a segment that is one bare `{x}`.
    param: u32,
    /// Routes whose template ends exactly at this node.
    end: u32,
    /// Routes whose template ends with `{*rest}` right below this node.
    tail: u32,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            statics: Statics::Empty,
            patterns: (0, 0),
            param: NONE,
            end: NONE,
            tail: NONE,
        }
    }
}

/// The part of the router that does not depend on the value type, so the walk is compiled
/// once rather than once per `T`. Node 0 is the root.
#[derive(Debug)]
struct Tree {
    nodes: Vec<Node>,
    slots: Vec<Slots>,
    /// Pattern edges of all nodes, grouped by parent and in priority order after `build`.
    patterns: Vec<PatternEdge>,
    statics: StaticTable,
    /// The text of every static key, back to back; see [`Key`].
    keys: String,
    /// The distinct `Allow` values, which `Slots::allow` indexes.
    allows: Vec<Box<str>>,
}

impl Tree {
    fn new() -> Self {
        Tree {
            nodes: vec![Node::default()],
            slots: Vec::new(),
            patterns: Vec::new(),
            statics: StaticTable::default(),
            keys: String::new(),
            allows: Vec::new(),
        }
    }

    /// Reserves room for `routes` routes of one static segment each, the common case.
    /// Reserving is only a hint, so failing to reserve is ignored rather than reported.
    fn reserve(&mut self, routes: usize) {
        let _ = self.nodes.try_reserve(routes);
        let _ = self.slots.try_reserve(routes);
        // Guesses a typical static key of eight bytes.
        let _ = self.keys.try_reserve(routes.saturating_mul(8));
        self.statics.reserve(&self.keys, routes);
    }

    // The builder helpers below only ever see ids this tree handed out, so the `None`
    // branches cannot run; they exist so that even a bug could not turn into a panic.

    fn static_child(&mut self, parent: u32, text: &str) -> u32 {
        let fresh = next_id(self.nodes.len());
        let Some(node) = get(&self.nodes, parent) else {
            return fresh;
        };
        let statics = node.statics;
        let child = match statics {
            Statics::Empty => {
                let key = self.push_key(text);
                self.set_statics(parent, Statics::One(key, fresh));
                fresh
            }
            Statics::One(key, child) if key.matches(&self.keys, text) => child,
            Statics::One(key, child) => {
                let new_key = self.push_key(text);
                self.statics
                    .insert(&self.keys, StaticEdge { parent, key, child });
                self.statics.insert(
                    &self.keys,
                    StaticEdge {
                        parent,
                        key: new_key,
                        child: fresh,
                    },
                );
                self.set_statics(parent, Statics::Many);
                fresh
            }
            Statics::Many => match self.statics.get(&self.keys, parent, text) {
                Some(child) => child,
                None => {
                    let key = self.push_key(text);
                    self.statics.insert(
                        &self.keys,
                        StaticEdge {
                            parent,
                            key,
                            child: fresh,
                        },
                    );
                    fresh
                }
            },
        };
        self.adopt(child, fresh)
    }

    fn push_key(&mut self, text: &str) -> Key {
        let key = Key {
            start: next_id(self.keys.len()),
            len: next_id(text.len()),
        };
        self.keys.push_str(text);
        key
    }

    fn set_statics(&mut self, node: u32, statics: Statics) {
        if let Some(node) = get_mut(&mut self.nodes, node) {
            node.statics = statics;
        }
    }

    fn param_child(&mut self, parent: u32) -> u32 {
        let fresh = next_id(self.nodes.len());
        let child = match get_mut(&mut self.nodes, parent) {
            Some(node) => {
                if node.param == NONE {
                    node.param = fresh;
                }
                node.param
            }
            None => fresh,
        };
        self.adopt(child, fresh)
    }

    fn pattern_child(&mut self, parent: u32, lits: &[Box<str>], first_route: u32) -> u32 {
        let child = next_id(self.nodes.len());
        self.patterns.push(PatternEdge {
            lits: lits.into(),
            parent,
            child,
            first_route,
            literal_bytes: next_id(lits.iter().map(|lit| lit.len()).sum()),
        });
        self.nodes.push(Node::default());
        child
    }

    fn adopt(&mut self, child: u32, fresh: u32) -> u32 {
        if child == fresh {
            self.nodes.push(Node::default());
        }
        child
    }

    /// The id of the method table at the end of `node` (or of its tail), created on first
    /// use.
    fn slots_for(&mut self, node: u32, tail: bool) -> u32 {
        let fresh = next_id(self.slots.len());
        let Some(entry) = get_mut(&mut self.nodes, node) else {
            return NONE;
        };
        let entry = if tail {
            &mut entry.tail
        } else {
            &mut entry.end
        };
        if *entry == NONE {
            *entry = fresh;
            self.slots.push(Slots::default());
        }
        *entry
    }

    /// Walks `template` down from the root, creating the nodes that are missing, and claims
    /// the method table entry for route `index`; returns the id of that method table. This
    /// is the whole of an insert for both [`RouterBuilder::insert`] and
    /// [`Router::with_route`], which only differ in how they find pattern children. A
    /// conflict can only happen when every node on the way already existed, so a failed
    /// insert never leaves half-built branches behind.
    fn insert(
        &mut self,
        method: RouteMethod,
        template: &Template,
        index: u32,
        patterns: &mut impl PatternIndex,
    ) -> Result<u32, Conflict> {
        let mut node = 0;
        let mut tail = false;
        for segment in template.segments() {
            node = match segment {
                Segment::Static(text) => self.static_child(node, text),
                Segment::Pattern { lits } if is_bare_param(lits) => self.param_child(node),
                Segment::Pattern { lits } => patterns.child(self, node, &segment, lits, index),
                Segment::Tail => {
                    tail = true;
                    break;
                }
            };
        }
        let id = self.slots_for(node, tail);
        if let Some(slots) = get_mut(&mut self.slots, id) {
            slots.claim(method, index)?;
        }
        Ok(id)
    }

    /// A copy to insert into, with room for one more route of `segments` segments whose
    /// static keys total at most `key_bytes`, so that the insert does not copy the big
    /// vectors a second time. Every part is a flat copy; the only allocations are one per
    /// buffer, one per method table with extension methods and one per distinct `Allow`.
    fn copy_for_insert(&self, segments: usize, key_bytes: usize) -> Tree {
        let mut keys = String::new();
        let _ = keys.try_reserve_exact(self.keys.len().saturating_add(key_bytes));
        keys.push_str(&self.keys);
        Tree {
            nodes: copy_with_room(&self.nodes, segments),
            slots: copy_with_room(&self.slots, 1),
            patterns: self.patterns.clone(),
            statics: StaticTable {
                // The same seed, so that the copied buckets stay valid.
                hasher: self.statics.hasher.clone(),
                buckets: self.statics.buckets.clone(),
                // A segment can turn a single static child into two table edges.
                edges: copy_with_room(&self.statics.edges, segments.saturating_add(1)),
            },
            keys,
            allows: self.allows.clone(),
        }
    }

    /// The most pattern children any one node has. O(nodes).
    fn widest_patterns(&self) -> usize {
        self.nodes
            .iter()
            .map(|node| node.patterns.1.saturating_sub(node.patterns.0) as usize)
            .max()
            .unwrap_or(0)
    }

    /// Puts pattern children in priority order, precomputes `Allow` values and gives back
    /// spare capacity. O(nodes + patterns · log patterns).
    fn finish(&mut self) {
        self.sort_patterns();

        // Without extension methods the value depends only on which common methods are
        // present, so a table indexed by that mask interns it without hashing; the rare
        // tables with extension methods go through a map.
        let mut by_mask = [NONE; 1 << COMMON.len()];
        let mut by_text: HashMap<Box<str>, u32, foldhash::fast::RandomState> = HashMap::default();
        let mut text = String::new();
        for slots in &mut self.slots {
            let mask = slots.allow_mask();
            let cached = if slots.extensions.is_empty() {
                by_mask.get_mut(mask)
            } else {
                None
            };
            if let Some(&id) = cached.as_deref()
                && id != NONE
            {
                slots.allow = id;
                continue;
            }
            slots.write_allow(mask, &mut text);
            let id = match by_text.get(text.as_str()) {
                Some(&id) => id,
                None => {
                    let id = next_id(self.allows.len());
                    self.allows.push(text.as_str().into());
                    by_text.insert(text.as_str().into(), id);
                    id
                }
            };
            if let Some(cached) = cached {
                *cached = id;
            }
            slots.allow = id;
        }

        self.nodes.shrink_to_fit();
        self.slots.shrink_to_fit();
        self.patterns.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.statics.shrink(&self.keys);
    }

    /// Recomputes the `Allow` value of method table `id` alone, interning it among the
    /// distinct values by a linear scan (there are only ever a handful). An earlier value
    /// that no table uses any more stays in the list, which is harmless.
    fn refresh_allow(&mut self, id: u32) {
        let Some(slots) = get(&self.slots, id) else {
            return;
        };
        let mut text = String::new();
        slots.write_allow(slots.allow_mask(), &mut text);
        let allow = match self.allows.iter().position(|allow| **allow == *text) {
            Some(at) => next_id(at),
            None => {
                let at = next_id(self.allows.len());
                self.allows.push(text.into());
                at
            }
        };
        if let Some(slots) = get_mut(&mut self.slots, id) {
            slots.allow = allow;
        }
    }

    /// Groups pattern edges by parent, each group in priority order, and points every parent
    /// at its group. The sort key is unique (one route creates at most one edge per parent),
    /// so the order does not depend on the order edges were pushed in. O(patterns) when
    /// only a few edges were appended to a sorted list, as the sort finds the sorted run.
    fn sort_patterns(&mut self) {
        self.patterns.sort_by_key(|edge| {
            (
                edge.parent,
                std::cmp::Reverse(edge.literal_bytes),
                edge.params(),
                edge.first_route,
            )
        });
        let mut start = 0;
        while let Some(first) = self.patterns.get(start) {
            let parent = first.parent;
            let end = self
                .patterns
                .iter()
                .skip(start)
                .position(|edge| edge.parent != parent)
                .map_or(self.patterns.len(), |len| start + len);
            if let Some(node) = get_mut(&mut self.nodes, parent) {
                node.patterns = (next_id(start), next_id(end));
            }
            start = end;
        }
    }

    /// Depth-first search in priority order. `rest` is what follows the `/` that ends the
    /// previous segment, or `None` once the whole path has been consumed. Returns the index of
    /// the matched route; `allow` remembers the first node that matched without the method.
    /// Recursion depth is bounded by the template segment limit, not by the path.
    fn walk<'r, 'p>(
        &'r self,
        id: u32,
        rest: Option<&'p str>,
        method: &Method,
        captures: &mut Captures<'p>,
        allow: &mut Option<&'r str>,
    ) -> Option<u32> {
        let node = get(&self.nodes, id)?;
        let Some(rest) = rest else {
            return self.pick(node.end, method, allow);
        };
        let (segment, next) = super::split_segment(rest);
        let child = match node.statics {
            Statics::Empty => None,
            Statics::One(key, child) => key.matches(&self.keys, segment).then_some(child),
            Statics::Many => self.statics.get(&self.keys, id, segment),
        };
        if let Some(child) = child
            && let Some(found) = self.walk(child, next, method, captures, allow)
        {
            return Some(found);
        }
        let (start, end) = node.patterns;
        let patterns = self
            .patterns
            .get(start as usize..end as usize)
            .unwrap_or_default();
        for edge in patterns {
            let mark = captures.len();
            if match_pattern(&edge.lits, segment, captures)
                && let Some(found) = self.walk(edge.child, next, method, captures, allow)
            {
                return Some(found);
            }
            captures.truncate(mark);
        }
        if node.param != NONE && !segment.is_empty() {
            captures.push(segment);
            if let Some(found) = self.walk(node.param, next, method, captures, allow) {
                return Some(found);
            }
            captures.pop();
        }
        if node.tail != NONE {
            captures.push(rest);
            if let Some(found) = self.pick(node.tail, method, allow) {
                return Some(found);
            }
            captures.pop();
        }
        None
    }

    fn pick<'r>(&'r self, slots: u32, method: &Method, allow: &mut Option<&'r str>) -> Option<u32> {
        let slots = get(&self.slots, slots)?;
        let found = slots.pick(method);
        if found.is_none() && allow.is_none() {
            *allow = Some(get(&self.allows, slots.allow).map_or("", |allow| &**allow));
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
/// Whether one request segment matches a pattern segment, for explanations.
pub(super) fn pattern_matches(lits: &[Box<str>], segment: &str) -> bool {
    match_pattern(lits, segment, &mut Captures::new())
}

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
#[derive(Debug, Clone)]
struct Route<T> {
    value: T,
    /// `RouteNames::keys[names.0..names.1]`.
    names: (u32, u32),
}

/// The parameter names of every route, back to back, as keys into one string. A flat list
/// rather than a boxed slice of boxed strings per route means that [`Router::with_route`]
/// copies two buffers instead of allocating for every route with parameters.
#[derive(Debug, Default)]
struct RouteNames {
    keys: Vec<Key>,
    text: String,
}

impl RouteNames {
    /// Appends `names` and returns the range of `keys` they occupy.
    fn push(&mut self, names: &[Box<str>]) -> (u32, u32) {
        let start = next_id(self.keys.len());
        for name in names {
            self.keys.push(Key {
                start: next_id(self.text.len()),
                len: next_id(name.len()),
            });
            self.text.push_str(name);
        }
        (start, next_id(self.keys.len()))
    }

    fn get(&self, (start, end): (u32, u32)) -> &[Key] {
        self.keys
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// A copy with room for `names` more, for [`Router::with_route`].
    fn copy_with_room(&self, names: &[Box<str>]) -> RouteNames {
        let mut text = String::new();
        let bytes = names.iter().map(|name| name.len()).sum::<usize>();
        let _ = text.try_reserve_exact(self.text.len().saturating_add(bytes));
        text.push_str(&self.text);
        RouteNames {
            keys: copy_with_room(&self.keys, names.len()),
            text,
        }
    }
}

/// A copy of `items` with capacity for `extra` more, so that pushing them does not copy the
/// whole buffer a second time. A plain `memcpy` for `Copy` items.
fn copy_with_room<T: Clone>(items: &[T], extra: usize) -> Vec<T> {
    let mut copy = Vec::new();
    let _ = copy.try_reserve_exact(items.len().saturating_add(extra));
    copy.extend_from_slice(items);
    copy
}

/// How [`Tree::insert`] finds the pattern child of `node` with the shape of `segment`, or
/// creates it through [`Tree::pattern_child`] when there is none yet.
trait PatternIndex {
    fn child(
        &mut self,
        tree: &mut Tree,
        node: u32,
        segment: &Segment<'_>,
        lits: &[Box<str>],
        route: u32,
    ) -> u32;
}

/// The builder's index: pattern children by `"{parent id}/{segment shape}"`, so inserting
/// stays O(1) per segment however many patterns share a parent. `/` cannot occur in a
/// segment shape, so keys are unambiguous. Only kept while building: a [`Router`] does not
/// carry it, see [`SortedPatterns`].
#[derive(Debug, Default)]
struct PatternMap {
    map: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    /// Scratch space for keys, reused so that lookups do not allocate.
    key: String,
}

impl PatternIndex for PatternMap {
    fn child(
        &mut self,
        tree: &mut Tree,
        node: u32,
        segment: &Segment<'_>,
        lits: &[Box<str>],
        route: u32,
    ) -> u32 {
        self.key.clear();
        // Writing into a String cannot fail.
        let _ = write!(self.key, "{node}/");
        segment.write_shape(&mut self.key);
        match self.map.get(self.key.as_str()) {
            Some(&child) => child,
            None => {
                let child = tree.pattern_child(node, lits, route);
                self.map.insert(self.key.as_str().into(), child);
                child
            }
        }
    }
}

/// The index [`Router::with_route`] uses instead of a [`PatternMap`]: it scans the node's
/// group of the already sorted pattern list (two segments have the same shape exactly when
/// their literals are equal, since literals cannot contain braces), plus whatever this insert
/// appended. Groups are small, and this spares every router a map it would only need for
/// the rare incremental pattern insert.
struct SortedPatterns {
    /// Length of the pattern list when it was last sorted; later edges are unsorted.
    sorted: usize,
    /// Whether an edge was appended, so that the list needs sorting again.
    added: bool,
}

impl PatternIndex for SortedPatterns {
    fn child(
        &mut self,
        tree: &mut Tree,
        node: u32,
        _segment: &Segment<'_>,
        lits: &[Box<str>],
        route: u32,
    ) -> u32 {
        let (start, end) = get(&tree.nodes, node).map_or((0, 0), |node| node.patterns);
        let group = tree
            .patterns
            .get(start as usize..end as usize)
            .unwrap_or_default();
        let appended = tree.patterns.get(self.sorted..).unwrap_or_default();
        if let Some(edge) = group
            .iter()
            .chain(appended)
            .find(|edge| edge.parent == node && *edge.lits == *lits)
        {
            return edge.child;
        }
        self.added = true;
        tree.pattern_child(node, lits, route)
    }
}

/// Collects routes; turn it into a [`Router`] with [`RouterBuilder::build`].
#[derive(Debug)]
pub struct RouterBuilder<T> {
    tree: Tree,
    routes: Vec<Route<T>>,
    names: RouteNames,
    patterns: PatternMap,
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
            names: RouteNames::default(),
            patterns: PatternMap::default(),
        }
    }

    /// Like [`RouterBuilder::new`], with room reserved for `routes` routes, so that building
    /// a large router does not repeatedly grow and copy its tables. Only a hint: more or
    /// fewer routes work the same, and `build` gives back what was not used.
    pub fn with_capacity(routes: usize) -> Self {
        let mut builder = Self::new();
        builder.tree.reserve(routes);
        let _ = builder.routes.try_reserve_exact(routes);
        builder
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
        let index = next_id(self.routes.len());
        self.tree
            .insert(method, template, index, &mut self.patterns)?;
        let names = self.names.push(template.names());
        self.routes.push(Route { value, names });
        Ok(())
    }

    /// The value of the route inserted `route`-th (a [`Conflict`]'s `existing`).
    pub fn value_of(&self, route: usize) -> Option<&T> {
        self.routes.get(route).map(|r| &r.value)
    }

    /// Freezes the routes into an immutable router. O(nodes).
    pub fn build(self) -> Router<T> {
        let mut tree = self.tree;
        tree.finish();
        let mut routes = self.routes;
        routes.shrink_to_fit();
        let mut names = self.names;
        names.keys.shrink_to_fit();
        names.text.shrink_to_fit();
        Router {
            widest: tree.widest_patterns(),
            tree,
            routes,
            names,
        }
    }
}

fn is_bare_param(lits: &[Box<str>]) -> bool {
    lits.len() == 2 && lits.iter().all(|lit| lit.is_empty())
}

/// An immutable routing table; `Send + Sync` whenever `T` is. [`Router::with_route`] derives
/// a new one with one more route without touching this one.
#[derive(Debug)]
pub struct Router<T> {
    tree: Tree,
    routes: Vec<Route<T>>,
    names: RouteNames,
    /// The most pattern children any one node has; see [`Router::widest_patterns`].
    widest: usize,
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
#[derive(Clone)]
pub struct Params<'r, 'p> {
    /// Keys into `text`, one per parameter.
    names: &'r [Key],
    text: &'r str,
    values: Captures<'p>,
}

impl std::fmt::Debug for Params<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
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
        let text = self.text;
        self.names
            .iter()
            .map(move |name| name.text(text))
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
    /// The most pattern children any one node has: what a lookup may have to try in turn at
    /// one segment, so what quotas bound. Computed when the router is built.
    pub fn widest_patterns(&self) -> usize {
        self.widest
    }

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
        match (found.and_then(|index| get(&self.routes, index)), allow) {
            (Some(route), _) => Lookup::Found(Match {
                value: &route.value,
                params: Params {
                    names: self.names.get(route.names),
                    text: &self.names.text,
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

impl<T: Clone> Router<T> {
    /// The value of the route inserted `route`-th (a [`Conflict`]'s `existing`).
    pub fn value_of(&self, route: usize) -> Option<&T> {
        self.routes.get(route).map(|r| &r.value)
    }

    /// A new router with the routes of this one followed by one more, exactly as if all of
    /// them had been inserted into a [`RouterBuilder`] in order: same results, priorities,
    /// `Allow` values and [`Conflict`]s, and the new router can be extended the same way.
    /// `self` is not changed, so it can go on serving while the new one is published.
    ///
    /// Costs one flat copy of the tree's buffers (`memcpy`-like: no per-route hashing or
    /// allocation; values are cloned, which is a copy for `u32`) plus one insert. The static
    /// table is only rehashed when it has to grow, which doubles it, so a chain of
    /// `with_route` calls rehashes amortized O(1) per call. A template with a pattern
    /// segment that is new at its node also re-sorts the pattern list, which is O(patterns)
    /// because the list is already sorted but for the appended edge. On a conflict nothing
    /// is kept and the copy is dropped.
    pub fn with_route(
        &self,
        method: RouteMethod,
        template: &Template,
        value: T,
    ) -> Result<Router<T>, Conflict> {
        let index = next_id(self.routes.len());
        let key_bytes = template.as_str().len();
        let mut tree = self
            .tree
            .copy_for_insert(template.segment_count(), key_bytes);
        let mut patterns = SortedPatterns {
            sorted: self.tree.patterns.len(),
            added: false,
        };
        let slots = tree.insert(method, template, index, &mut patterns)?;
        // Only a new pattern edge changes how many children a node has.
        let widest = if patterns.added {
            tree.sort_patterns();
            tree.widest_patterns()
        } else {
            self.widest
        };
        tree.refresh_allow(slots);
        let mut names = self.names.copy_with_room(template.names());
        let range = names.push(template.names());
        let mut routes = copy_with_room(&self.routes, 1);
        routes.push(Route {
            value,
            names: range,
        });
        Ok(Router {
            tree,
            routes,
            names,
            widest,
        })
    }
}
