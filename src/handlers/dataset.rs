//! The `dataset` handler: a query, statistics or schema endpoint over one of the project's
//! datasets (`dataset`, docs/datasets.md).
//!
//! The dataset is looked up by name in the revision's [`DatasetSet`] per request, and the
//! request keeps that version's `Arc` to its end: a replacement swapped in meanwhile does
//! not change what it answers from. `GET` (and `HEAD`) take the query from the query string,
//! every other method from the JSON body (read whole, at most [`MAX_QUERY_BODY`] bytes).
//! Small datasets are answered on the spot; a query over more than [`BLOCKING_FROM`] rows
//! runs on a blocking thread, so that a scan of a large table never holds an async worker.
//!
//! Answers: JSON by default, CSV or NDJSON as `Accept` asks (406 `not_acceptable` when it
//! allows none); `x-total-count` gives the rows matched before pagination. A dataset the
//! project no longer has (or that lacks the endpoint's category column) is 409
//! `dataset_missing`; a bad query is 422 naming each bad field, a body that is not JSON 400.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, header};

use super::{Context, Inbound, Reply};
use crate::body::Body;
use crate::dataset::{self, Op, OutputFormat, Query, QueryError, QuerySettings};
use crate::datasets::{DatasetSet, LoadedDataset};
use crate::error::{self, ApiError, Code, FieldError};
use crate::model::{DatasetAction, DatasetSpec, OP_PARAM};

/// The most rows one page may ask for (`per_page`).
pub const MAX_PER_PAGE: usize = 10_000;
/// The most rows (or groups) one answer may hold; past it, pages must be asked for.
pub const MAX_ANSWER_ROWS: usize = 10_000;
/// The largest query body read.
pub const MAX_QUERY_BODY: u64 = 1 << 20;
/// Datasets of at least this many rows are queried on a blocking thread.
pub const BLOCKING_FROM: usize = 50_000;

/// A compiled dataset endpoint.
#[derive(Debug, Clone)]
pub struct DatasetHandler {
    inner: Arc<Spec>,
}

#[derive(Debug)]
struct Spec {
    name: Box<str>,
    action: DatasetAction,
    settings: QuerySettings,
    /// The statistic, when fixed (else it comes from the `{op}` path parameter).
    op: Option<Op>,
}

impl DatasetHandler {
    pub fn compile(spec: &DatasetSpec) -> Result<DatasetHandler, String> {
        let op = match &spec.op {
            Some(op) => Some(
                op.parse::<Op>()
                    .map_err(|_| format!("`{op}` is not a statistic"))?,
            ),
            None => None,
        };
        Ok(DatasetHandler {
            inner: Arc::new(Spec {
                name: spec.name.as_str().into(),
                action: spec.action,
                settings: QuerySettings {
                    category: spec.category.clone(),
                    label_key: spec.label_key().to_owned(),
                    max_per_page: MAX_PER_PAGE,
                    max_answer_rows: MAX_ANSWER_ROWS,
                },
                op,
            }),
        })
    }

    pub fn respond(&self, cx: &Context<'_>, body: Option<Inbound>) -> Reply {
        let id = cx.request_id;
        match self.prepare(cx) {
            Err(error) => Reply::Now(error::render(&error, error::id_str(id))),
            Ok(prepared) => {
                let from_query = matches!(*cx.method, Method::GET | Method::HEAD);
                if from_query || self.inner.action == DatasetAction::Schema {
                    let query = cx.query.map(str::to_owned);
                    let job = Job {
                        spec: self.inner.clone(),
                        prepared,
                        input: Input::Params(query),
                        id: id.clone(),
                    };
                    if job.prepared.dataset.rows() < BLOCKING_FROM {
                        Reply::Now(job.answer())
                    } else {
                        Reply::Later(Box::pin(job.answer_off_thread()))
                    }
                } else {
                    let job = Job {
                        spec: self.inner.clone(),
                        prepared,
                        input: Input::Body(Bytes::new()),
                        id: id.clone(),
                    };
                    let limit = cx.body_limit.min(MAX_QUERY_BODY);
                    Reply::Later(Box::pin(job.read_then_answer(
                        body,
                        limit,
                        cx.body_read_timeout,
                    )))
                }
            }
        }
    }

    /// What can be decided from the request head alone: the dataset, the answer's format and
    /// the statistic.
    fn prepare(&self, cx: &Context<'_>) -> Result<Prepared, ApiError> {
        let spec = &*self.inner;
        let dataset = dataset_of(cx.datasets, spec)?;
        let accept = cx.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let format = dataset::negotiate(accept).map_err(|_| {
            ApiError::new(
                Code::NotAcceptable,
                "this endpoint answers in application/json, text/csv or application/x-ndjson; the Accept header allows none of them",
            )
        })?;
        let op = match (spec.action, spec.op) {
            (DatasetAction::Stats, Some(op)) => Some(op),
            (DatasetAction::Stats, None) => {
                let given = cx
                    .params
                    .iter()
                    .find(|(name, _)| *name == OP_PARAM)
                    .map(|(_, value)| value)
                    .unwrap_or_default();
                Some(given.parse::<Op>().map_err(|_| {
                    ApiError::validation(vec![FieldError::new(
                        format!("path.{OP_PARAM}"),
                        format!(
                            "`{given}` is not a statistic; one of {}",
                            crate::model::STATS_OPS.join(", ")
                        ),
                    )])
                })?)
            }
            _ => None,
        };
        if spec.action == DatasetAction::Schema && format != OutputFormat::Json {
            return Err(ApiError::new(
                Code::NotAcceptable,
                "a dataset's schema is answered in application/json only",
            ));
        }
        Ok(Prepared {
            dataset,
            format,
            op,
        })
    }
}

/// The endpoint's dataset in this revision, if the project has it and it has the
/// endpoint's category column.
fn dataset_of(set: &DatasetSet, spec: &Spec) -> Result<Arc<LoadedDataset>, ApiError> {
    let dataset = set.get(&spec.name).ok_or_else(|| {
        ApiError::new(
            Code::DatasetMissing,
            format!(
                "this endpoint reads dataset `{}`, which the project does not have; upload it or change the endpoint",
                spec.name
            ),
        )
    })?;
    if let Err(message) = spec.settings.check(dataset.data.table()) {
        return Err(ApiError::new(
            Code::DatasetMissing,
            format!(
                "this endpoint does not fit dataset `{}`: {message}; change the endpoint or upload the dataset again",
                spec.name
            ),
        ));
    }
    Ok(dataset.clone())
}

struct Prepared {
    dataset: Arc<LoadedDataset>,
    format: OutputFormat,
    op: Option<Op>,
}

enum Input {
    Params(Option<String>),
    Body(Bytes),
}

/// One query, owning all it needs to be answered on another thread or later.
struct Job {
    spec: Arc<Spec>,
    prepared: Prepared,
    input: Input,
    id: HeaderValue,
}

impl Job {
    async fn read_then_answer(
        mut self,
        body: Option<Inbound>,
        limit: u64,
        timeout: Duration,
    ) -> Response<Body> {
        if let Some(body) = body {
            match body.read_whole(limit, timeout).await {
                Ok(bytes) => self.input = Input::Body(bytes),
                Err(error) => return error::render(&error, error::id_str(&self.id)),
            }
        }
        if self.prepared.dataset.rows() < BLOCKING_FROM {
            self.answer()
        } else {
            self.answer_off_thread().await
        }
    }

    async fn answer_off_thread(self) -> Response<Body> {
        let id = self.id.clone();
        match tokio::task::spawn_blocking(move || self.answer()).await {
            Ok(response) => response,
            Err(error) => {
                tracing::error!(request_id = error::id_str(&id), %error, "a dataset query failed");
                error::render(
                    &ApiError::new(Code::Internal, "internal error"),
                    error::id_str(&id),
                )
            }
        }
    }

    fn answer(&self) -> Response<Body> {
        match self.run() {
            Ok(response) => response,
            Err(error) => error::render(&error, error::id_str(&self.id)),
        }
    }

    fn run(&self) -> Result<Response<Body>, ApiError> {
        let spec = &*self.spec;
        let Prepared {
            dataset,
            format,
            op,
        } = &self.prepared;
        let data = &dataset.data;
        if spec.action == DatasetAction::Schema {
            let body = dataset::render_schema(data, &dataset.name);
            return Ok(answer(body, OutputFormat::Json, None));
        }
        let query: Query = match &self.input {
            Input::Params(query) => dataset::parse_params(data, &spec.settings, query.as_deref()),
            Input::Body(body) => dataset::parse_body(data, &spec.settings, body),
        }
        .map_err(query_error)?;
        match (spec.action, op) {
            (DatasetAction::Stats, Some(op)) => {
                let groups =
                    dataset::stats(data, &spec.settings, &query, *op).map_err(query_error)?;
                Ok(answer(
                    dataset::render_groups(&groups, *format),
                    *format,
                    None,
                ))
            }
            _ => {
                let selection =
                    dataset::select(data, &spec.settings, &query).map_err(query_error)?;
                let total = selection.total();
                let body = dataset::render_rows(data, &spec.settings, &selection, *format);
                Ok(answer(body, *format, Some(total)))
            }
        }
    }
}

fn answer(body: Vec<u8>, format: OutputFormat, total: Option<usize>) -> Response<Body> {
    let mut response = Response::new(Body::full(Bytes::from(body)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(dataset::content_type(format)),
    );
    if let Some(total) = total {
        headers.insert("x-total-count", HeaderValue::from(total));
    }
    response
}

fn query_error(error: QueryError) -> ApiError {
    error.into_api_error()
}
