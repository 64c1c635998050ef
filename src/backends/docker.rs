//! Docker discovery: the targets of backends that select containers by label, kept current
//! from the Docker engine.
//!
//! One [`Discovery`] per node (in the `Registry`) talks to the engine found through
//! `DOCKER_HOST`, or the local socket. It lists the running containers once, then again on
//! every container event the engine reports (start, die, stop, health changes, …) and every
//! few seconds as a safety net for a missed event — never per request. After each listing it
//! gives every Docker upstream the containers its selector matches, as one new target set
//! (`Upstream::set_targets`), so a request works on the set as it was when it started.
//!
//! A container is a target when it is running and, if it has a health check, healthy, and
//! carries every label of the selector. Its address is its first published host port
//! (`127.0.0.1:PORT` when published on all addresses), or, when it carries the label
//! `switchyard.port=N`, its own network address and port N (`127.0.0.1:N` on the host
//! network).
//!
//! While the engine cannot be reached, Docker upstreams have no target (their routes answer
//! 503) and discovery retries with a growing pause; it recovers by itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use futures_util::StreamExt;

use super::{Peers, Target, Targets, Upstream};
use crate::model::DockerSelector;

/// The label that names the port to reach a container on, at its own address.
pub const PORT_LABEL: &str = "switchyard.port";

/// A listing every this long even without events, in case one was missed.
const RESYNC_EVERY: Duration = Duration::from_secs(5);
/// Pauses between attempts to reach an engine that does not answer.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// What discovery keeps of a running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub labels: HashMap<String, String>,
    /// `host:port` to send to; `None` when it publishes no port and names none.
    pub address: Option<String>,
    /// Running and, with a health check, healthy.
    pub serving: bool,
}

impl Container {
    /// What a container summary from the engine says, as discovery needs it.
    pub fn from_summary(summary: &ContainerSummary) -> Container {
        let labels = summary.labels.clone().unwrap_or_default();
        let running = summary.state == Some(ContainerSummaryStateEnum::RUNNING);
        // The engine's status line says `(healthy)`, `(unhealthy)` or `(health: starting)`
        // for a container with a health check, and nothing for one without.
        let status = summary.status.as_deref().unwrap_or("");
        let healthy = !status.contains("(unhealthy)") && !status.contains("(health: starting)");
        Container {
            id: summary.id.clone().unwrap_or_default(),
            address: address_of(summary, &labels),
            labels,
            serving: running && healthy,
        }
    }

    /// Does it carry every label of `selector`?
    pub fn matches(&self, selector: &DockerSelector) -> bool {
        selector
            .pairs()
            .all(|(key, value)| self.labels.get(key).is_some_and(|v| v == value))
    }
}

/// The `host:port` a container is reached at.
fn address_of(summary: &ContainerSummary, labels: &HashMap<String, String>) -> Option<String> {
    if let Some(port) = labels.get(PORT_LABEL) {
        let port: u16 = port.trim().parse().ok()?;
        let ip = summary
            .network_settings
            .as_ref()
            .and_then(|settings| settings.networks.as_ref())
            .and_then(|networks| {
                let mut names: Vec<&String> = networks.keys().collect();
                names.sort();
                names.into_iter().find_map(|name| {
                    let ip = networks.get(name)?.ip_address.as_deref()?;
                    ip.parse::<IpAddr>().ok()
                })
            })
            // On the host network a container has no address of its own.
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        return Some(join(ip, port));
    }
    let mut ports: Vec<_> = summary
        .ports
        .iter()
        .flatten()
        .filter_map(|port| {
            let public = port.public_port?;
            let ip = match port.ip.as_deref().map(str::parse::<IpAddr>) {
                Some(Ok(ip)) if !ip.is_unspecified() => ip,
                _ => IpAddr::from([127, 0, 0, 1]),
            };
            Some((port.private_port, ip.is_ipv6(), ip, public))
        })
        .collect();
    // The lowest container port, reached over IPv4 when it is published on both.
    ports.sort();
    ports.first().map(|&(_, _, ip, port)| join(ip, port))
}

fn join(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

/// The node's view of the Docker engine, and the upstreams it keeps current.
#[derive(Default)]
pub struct Discovery {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    upstreams: Vec<Weak<Upstream>>,
    /// The containers last listed; `None` while the engine cannot be reached.
    containers: Option<Arc<Vec<Container>>>,
    /// Passive health and connection pools by container address, shared by every
    /// upstream that reaches it.
    peers: Peers,
    started: bool,
}

impl Discovery {
    /// Keeps `upstream` (a Docker backend's) current from now on, starting with the
    /// containers known now. The first one starts the watch on the engine.
    pub fn register(self: &Arc<Self>, upstream: &Arc<Upstream>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.upstreams.retain(|u| u.strong_count() > 0);
        state.upstreams.push(Arc::downgrade(upstream));
        let containers = state.containers.clone();
        upstream.set_targets(targets_for(
            &mut state.peers,
            upstream,
            containers.as_deref(),
        ));
        if !state.started
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            state.started = true;
            runtime.spawn(watch(Arc::downgrade(self)));
        }
    }

    /// Takes a new listing (`None`: the engine cannot be reached) and gives every upstream
    /// its targets from it.
    fn publish(&self, containers: Option<Vec<Container>>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let containers = containers.map(Arc::new);
        if state.containers == containers {
            return;
        }
        state.containers = containers.clone();
        state.upstreams.retain(|u| u.strong_count() > 0);
        let upstreams: Vec<Arc<Upstream>> =
            state.upstreams.iter().filter_map(Weak::upgrade).collect();
        for upstream in upstreams {
            let targets = targets_for(&mut state.peers, &upstream, containers.as_deref());
            upstream.set_targets(targets);
        }
        state.peers.prune();
    }
}

/// The targets of `upstream` among `containers`, in a stable order (by container id).
fn targets_for(
    peers: &mut Peers,
    upstream: &Upstream,
    containers: Option<&Vec<Container>>,
) -> Targets {
    let (Some(selector), Some(containers)) = (upstream.selector(), containers) else {
        return Targets::default();
    };
    let mut chosen: Vec<&Container> = containers
        .iter()
        .filter(|c| c.serving && c.matches(selector))
        .collect();
    chosen.sort_by(|a, b| a.id.cmp(&b.id));
    let targets = chosen
        .into_iter()
        .filter_map(|container| {
            let address = container.address.as_deref()?;
            Target::parse(&format!("http://{address}"), |authority| {
                peers.of(authority, None)
            })
        })
        .collect();
    Targets::new(targets)
}

/// Lists and follows the engine for as long as the discovery lives and has upstreams to
/// keep current; reconnects after a failure with a growing pause.
async fn watch(discovery: Weak<Discovery>) {
    let mut pause = RETRY_FIRST;
    // Each outage is logged once, when it starts.
    let mut reachable = true;
    loop {
        let mut listed = false;
        let result = follow(&discovery, &mut listed).await;
        if listed {
            pause = RETRY_FIRST;
            reachable = true;
        }
        let Some(live) = discovery.upgrade() else {
            return;
        };
        live.publish(None);
        let Err(error) = result else {
            return;
        };
        if reachable {
            tracing::warn!(%error, "the Docker engine cannot be reached; Docker backends have no target until it can");
            reachable = false;
        }
        if !live.still_needed() {
            return;
        }
        drop(live);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RETRY_MAX);
    }
}

impl Discovery {
    /// Whether any upstream still needs the watch; if none does, the watch ends and the
    /// next registration starts a new one.
    fn still_needed(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.upstreams.retain(|u| u.strong_count() > 0);
        if state.upstreams.is_empty() {
            state.started = false;
        }
        state.started
    }
}

/// Connects, lists, and lists again on every container event (and every few seconds) until
/// the connection fails (`Err`) or the discovery is dropped (`Ok`). `listed` says whether
/// a listing succeeded.
async fn follow(
    discovery: &Weak<Discovery>,
    listed: &mut bool,
) -> Result<(), bollard::errors::Error> {
    let docker = Docker::connect_with_defaults()?;
    let mut filters = HashMap::new();
    filters.insert("type".to_owned(), vec!["container".to_owned()]);
    let mut events = docker.events(Some(EventsOptions {
        filters: Some(filters),
        ..Default::default()
    }));
    let mut resync = tokio::time::interval(RESYNC_EVERY);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let containers = list(&docker).await?;
        if !*listed {
            tracing::info!(containers = containers.len(), "following the Docker engine");
            *listed = true;
        }
        let Some(live) = discovery.upgrade() else {
            return Ok(());
        };
        live.publish(Some(containers));
        drop(live);
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Err(bollard::errors::Error::IOError {
                    err: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the engine closed its event stream"),
                }),
            },
            _ = resync.tick() => {}
        }
    }
}

/// The running containers.
async fn list(docker: &Docker) -> Result<Vec<Container>, bollard::errors::Error> {
    let summaries = docker
        .list_containers(Some(ListContainersOptions {
            all: false,
            ..Default::default()
        }))
        .await?;
    Ok(summaries.iter().map(Container::from_summary).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerSummaryNetworkSettings, EndpointSettings, PortSummary};

    fn summary(labels: &[(&str, &str)], status: &str) -> ContainerSummary {
        ContainerSummary {
            id: Some("c1".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            status: Some(status.into()),
            ..Default::default()
        }
    }

    fn port(ip: &str, private: u16, public: u16) -> PortSummary {
        PortSummary {
            ip: Some(ip.into()),
            private_port: private,
            public_port: Some(public),
            ..Default::default()
        }
    }

    fn selector(labels: &[&str]) -> DockerSelector {
        DockerSelector {
            match_labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    #[test]
    fn every_label_must_match() {
        let c = Container::from_summary(&summary(
            &[("app_name", "payment"), ("env", "production")],
            "Up 1 second",
        ));
        assert!(c.matches(&selector(&["app_name=payment", "env=production"])));
        assert!(c.matches(&selector(&["app_name=payment"])));
        assert!(!c.matches(&selector(&["app_name=payment", "env=staging"])));
        assert!(!c.matches(&selector(&["app_name=payment", "tier=web"])));
    }

    #[test]
    fn only_running_and_healthy_containers_serve() {
        let serving = |status: &str| Container::from_summary(&summary(&[], status)).serving;
        assert!(serving("Up 3 seconds"));
        assert!(serving("Up 3 seconds (healthy)"));
        assert!(!serving("Up 3 seconds (unhealthy)"));
        assert!(!serving("Up 1 second (health: starting)"));
        let mut exited = summary(&[], "Exited (0)");
        exited.state = Some(ContainerSummaryStateEnum::EXITED);
        assert!(!Container::from_summary(&exited).serving);
    }

    #[test]
    fn the_first_published_port_or_the_named_port_on_the_container_address() {
        let mut published = summary(&[], "Up");
        published.ports = Some(vec![
            port("::", 9090, 40001),
            port("0.0.0.0", 8080, 32768),
            port("::", 8080, 32768),
        ]);
        assert_eq!(
            Container::from_summary(&published).address.as_deref(),
            Some("127.0.0.1:32768")
        );
        let mut named = summary(&[(PORT_LABEL, "8080")], "Up");
        named.network_settings = Some(ContainerSummaryNetworkSettings {
            networks: Some(HashMap::from([(
                "bridge".to_owned(),
                EndpointSettings {
                    ip_address: Some("172.17.0.5".into()),
                    ..Default::default()
                },
            )])),
        });
        assert_eq!(
            Container::from_summary(&named).address.as_deref(),
            Some("172.17.0.5:8080")
        );
        let host = summary(&[(PORT_LABEL, "9000")], "Up");
        assert_eq!(
            Container::from_summary(&host).address.as_deref(),
            Some("127.0.0.1:9000")
        );
        let bad = summary(&[(PORT_LABEL, "http")], "Up");
        assert_eq!(Container::from_summary(&bad).address, None);
        assert_eq!(Container::from_summary(&summary(&[], "Up")).address, None);
    }
}
