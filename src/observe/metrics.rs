//! `/metrics`: the node's stats and state in the Prometheus text format.
//!
//! Nothing here is on the request path: a scrape reads the same counters `/stats` reads
//! (`observe::stats`) and the live route table, and `prometheus-client` writes them. Labels
//! are the project (`owner/name`) and the endpoint id, never the request path, so the
//! number of series is bounded by what owners define, not by what clients send; endpoints
//! that never answered a request have no series.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::Telemetry;
use super::stats::Totals;
use crate::routing::RouteTable;

/// The latency buckets, in seconds (and the same in nanoseconds below).
const BUCKETS_S: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// What a scrape reads.
pub struct Sources {
    pub table: Arc<RouteTable>,
    pub telemetry: Arc<Telemetry>,
    pub hashes_queued: usize,
}

/// The whole `/metrics` answer.
pub fn render(sources: Sources) -> String {
    let mut registry = Registry::with_prefix("switchyard");
    registry.register_collector(Box::new(Scrape(sources)));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
        // Writing to a String cannot fail; keep what was written.
        let _ = writeln!(out, "# encoding failed");
    }
    out
}

struct Scrape(Sources);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Sources {
            table,
            telemetry,
            hashes_queued,
        } = &self.0;

        // Traffic: the instance, each project, each endpoint that answered.
        let instance = telemetry.instance.totals();
        let projects: Vec<(String, Totals)> = table
            .projects()
            .map(|p| (p.def.mount_key(), p.stats.totals()))
            .collect();
        let endpoints: Vec<(String, &str, Totals)> = table
            .projects()
            .flat_map(|p| {
                let mount = p.def.mount_key();
                p.def
                    .endpoints
                    .iter()
                    .zip(p.handlers.iter())
                    .filter_map(move |(e, h)| {
                        h.stats
                            .peek()
                            .map(|s| (mount.clone(), e.id.as_str(), s.totals()))
                    })
            })
            .collect();

        counter_family(
            &mut encoder,
            "requests",
            "Requests answered by the node, by status class (not counting /stats, /metrics, /health, /ready).",
            std::iter::once((Vec::new(), &instance)),
        )?;
        histogram_family(
            &mut encoder,
            "request_duration_seconds",
            "Time from the request head read to the response head ready.",
            std::iter::once((Vec::new(), &instance)),
        )?;
        counter_family(
            &mut encoder,
            "project_requests",
            "Requests under a project's mount, by status class.",
            projects
                .iter()
                .map(|(mount, totals)| (vec![("project", mount.as_str())], totals)),
        )?;
        histogram_family(
            &mut encoder,
            "project_request_duration_seconds",
            "Latency of requests under a project's mount.",
            projects
                .iter()
                .map(|(mount, totals)| (vec![("project", mount.as_str())], totals)),
        )?;
        counter_family(
            &mut encoder,
            "endpoint_requests",
            "Requests an endpoint answered, by status class.",
            endpoints.iter().map(|(mount, id, totals)| {
                (vec![("project", mount.as_str()), ("endpoint", *id)], totals)
            }),
        )?;
        histogram_family(
            &mut encoder,
            "endpoint_request_duration_seconds",
            "Latency of the requests an endpoint answered.",
            endpoints.iter().map(|(mount, id, totals)| {
                (vec![("project", mount.as_str()), ("endpoint", *id)], totals)
            }),
        )?;

        // State of the node.
        let endpoint_count: usize = table.projects().map(|p| p.def.endpoints.len()).sum();
        gauge(
            &mut encoder,
            "projects",
            "Projects mounted on this node.",
            table.projects().count() as i64,
        )?;
        gauge(
            &mut encoder,
            "endpoints",
            "Endpoints in all mounted projects.",
            endpoint_count as i64,
        )?;
        {
            let mut family = encoder.encode_descriptor(
                "project_revision",
                "The revision of each project this node serves.",
                None,
                MetricType::Gauge,
            )?;
            for project in table.projects() {
                let mount = project.def.mount_key();
                let labels = [("project", mount.as_str())];
                ConstGauge::new(project.def.revision).encode(family.encode_family(&labels)?)?;
            }
        }
        gauge(
            &mut encoder,
            "connections_open",
            "Client connections open now.",
            i64::try_from(telemetry.connections.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        )?;
        gauge(
            &mut encoder,
            "password_hashes_queued",
            "Logins and registrations waiting for a password-hashing thread.",
            i64::try_from(*hashes_queued).unwrap_or(i64::MAX),
        )?;
        let commits = telemetry.commits.totals();
        counter_family(
            &mut encoder,
            "store_commits",
            "Store commits of changes: class 2xx committed, 5xx not (refused as stale or failed).",
            std::iter::once((Vec::new(), &commits)),
        )?;
        histogram_family(
            &mut encoder,
            "store_commit_duration_seconds",
            "Time a change's store commit took.",
            std::iter::once((Vec::new(), &commits)),
        )?;
        process(&mut encoder)
    }
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// `NAME_total{…, class="2xx"}` for each status class seen, per label set.
fn counter_family<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (Labels<'a>, &'a Totals)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, totals) in series {
        for (class, count) in CLASSES.iter().zip(totals.classes) {
            if count == 0 {
                continue;
            }
            let mut labels = labels.clone();
            labels.push(("class", class));
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

fn histogram_family<'a>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (Labels<'a>, &'a Totals)>,
) -> Result<(), std::fmt::Error> {
    let bounds_ns: Vec<u64> = BUCKETS_S.iter().map(|s| (s * 1e9) as u64).collect();
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, totals) in series {
        let counts = totals.latency.bucket_counts(&bounds_ns);
        let buckets: Vec<(f64, u64)> = BUCKETS_S
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(counts)
            .collect();
        let count = totals.latency.count();
        let sum = totals.latency_sum_ns as f64 / 1e9;
        family
            .encode_family(&labels)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                sum, count, &buckets, None,
            )?;
    }
    Ok(())
}

/// The standard `process_*` metrics, read from `/proc` (Linux only).
fn process(encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    #[cfg(target_os = "linux")]
    if let Ok(me) = procfs::process::Process::myself()
        && let Ok(stat) = me.stat()
    {
        let ticks = procfs::ticks_per_second() as f64;
        let page = procfs::page_size();
        let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / ticks);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds.",
            None,
            MetricType::Counter,
        )?)?;
        gauge(
            encoder,
            "process_resident_memory_bytes",
            "Resident memory size, in bytes.",
            i64::try_from(stat.rss.saturating_mul(page)).unwrap_or(i64::MAX),
        )?;
        gauge(
            encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size, in bytes.",
            i64::try_from(stat.vsize).unwrap_or(i64::MAX),
        )?;
        gauge(
            encoder,
            "process_threads",
            "Threads of the process.",
            stat.num_threads,
        )?;
        if let Ok(fds) = me.fd_count() {
            gauge(
                encoder,
                "process_open_fds",
                "Open file descriptors.",
                i64::try_from(fds).unwrap_or(i64::MAX),
            )?;
        }
        if let Ok(boot) = procfs::boot_time_secs() {
            let start = boot as f64 + stat.starttime as f64 / ticks;
            let metric = ConstGauge::new(start);
            metric.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds.",
                None,
                metric.metric_type(),
            )?)?;
        }
    }
    Ok(())
}
