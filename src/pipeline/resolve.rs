//! Stage 1 of the pipeline: from a request path to a project and the rest of the path.
//!
//! The route table is loaded once and held only long enough to clone the project's `Arc`:
//! the request then runs on that revision to its end, whatever is published meanwhile, and
//! no table guard is held across an await. Finding the endpoint inside the project is
//! `CompiledProject::lookup` (the project's router).

use std::sync::Arc;

use crate::routing::{CompiledProject, Routes};

/// The project mounted at the start of `path`, and what follows its mount (`""` or a path
/// starting with `/`); `None` when no project is mounted there.
#[inline]
pub fn project<'p>(routes: &Routes, path: &'p str) -> Option<(Arc<CompiledProject>, &'p str)> {
    let table = routes.load();
    let (project, rest) = table.resolve(path)?;
    Some((project.clone(), rest))
}
