//! Before the first change: a read-only call per mapped provider, and which provider each
//! call of a run goes to.

use std::time::Duration;

use dr_core::graph::RecoveryGraph;
use dr_core::step::Role;
use dr_core::Error;
use futures::StreamExt as _;

use crate::build::{Built, Reach, Route};

/// What the read-only call to one provider showed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reachability {
    /// The provider's route.
    pub route: Route,
    /// The call made (`describe us-east-1/shop-orders`).
    pub call: String,
    /// Whether the provider answered (a "not found" for a database, record or workload is an
    /// answer; for a store it is not: its bucket or container must exist).
    pub reachable: bool,
    /// The answer, or the error (redacted).
    pub detail: String,
}

impl std::fmt::Display for Reachability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {} ({} via {}): {}",
            self.route.role,
            self.route.resource,
            if self.reachable {
                "reachable"
            } else {
                "UNREACHABLE"
            },
            self.call,
            self.route.provider,
            self.detail
        )
    }
}

/// One call of a run and the provider it goes to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoutedCall {
    /// The step making it.
    pub step: String,
    /// The role (`database`, `dns`, …).
    pub role: String,
    /// The operation.
    pub operation: String,
    /// What it acts on.
    pub target: String,
    /// The provider serving it.
    pub provider: String,
}

impl std::fmt::Display for RoutedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} -> {}",
            self.role, self.operation, self.target, self.provider
        )
    }
}

fn answered<T>(r: &dr_core::Result<T>) -> bool {
    matches!(r, Ok(_) | Err(Error::NotFound { .. }))
}

fn shown<T>(r: &dr_core::Result<T>, ok: impl FnOnce(&T) -> String) -> String {
    match r {
        Ok(v) => ok(v),
        Err(e) => dr_core::redact::clean(&e.to_string()),
    }
}

impl Built {
    /// Makes one read-only call to every mapped provider, each bounded by `limit`, all at
    /// once: a database's describe, a record's read, a workload's rollout status, a store's
    /// listing, a health check's probe, a CDN distribution's describe, a target group's
    /// target health, the backups a plan cache has in the region it is restored in.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(built: dr_providers::Built) {
    /// for r in built.check_reachability(std::time::Duration::from_secs(10)).await {
    ///     println!("{r}");
    /// }
    /// # }
    /// ```
    pub async fn check_reachability(&self, limit: Duration) -> Vec<Reachability> {
        let calls = self.reach.iter().map(|(i, reach)| async move {
            let route = self.routes[*i].clone();
            let (call, outcome) = match reach {
                Reach::Database(p, db) => {
                    let call = format!("describe {}/{}", db.region, db.id);
                    let out = tokio::time::timeout(limit, p.describe(db)).await;
                    (
                        call,
                        out.map(|r| (answered(&r), shown(&r, |s| format!("{}", s.state)))),
                    )
                }
                Reach::Dns(p, zone, name) => {
                    let call = format!("get_record {zone}/{name}");
                    let out = tokio::time::timeout(limit, p.get_record(zone, name)).await;
                    (
                        call,
                        out.map(|r| (answered(&r), shown(&r, |rec| rec.values.join(", ")))),
                    )
                }
                Reach::Cluster(p, w) => {
                    let call = format!("rollout_status {}/{}/{}", w.cluster, w.namespace, w.name);
                    let out = tokio::time::timeout(limit, p.rollout_status(w)).await;
                    (
                        call,
                        out.map(|r| {
                            (
                                answered(&r),
                                shown(&r, |s| {
                                    format!("{}/{} available", s.available_replicas, s.replicas)
                                }),
                            )
                        }),
                    )
                }
                Reach::Store(p) => {
                    let call = "list (first object)".to_string();
                    let out = tokio::time::timeout(limit, async {
                        let mut objects = p.list("");
                        objects.next().await.transpose()
                    })
                    .await;
                    (
                        call,
                        out.map(|r| {
                            (
                                r.is_ok(),
                                shown(&r, |o| match o {
                                    Some(o) => format!("lists objects ({} …)", o.key),
                                    None => "empty".into(),
                                }),
                            )
                        }),
                    )
                }
                Reach::Cdn(p, id) => {
                    let call = format!("describe_distribution {id}");
                    let out = tokio::time::timeout(limit, p.describe_distribution(id)).await;
                    (
                        call,
                        out.map(|r| {
                            (
                                answered(&r),
                                shown(&r, |d| {
                                    format!(
                                        "origin {}{}",
                                        d.origin,
                                        if d.deployed {
                                            ", deployed"
                                        } else {
                                            ", deploying"
                                        }
                                    )
                                }),
                            )
                        }),
                    )
                }
                Reach::LoadBalancer(p, group) => {
                    let call = format!("target_health {group}");
                    let out = tokio::time::timeout(limit, p.target_health(group)).await;
                    (
                        call,
                        out.map(|r| (answered(&r), shown(&r, |t| format!("{} targets", t.len())))),
                    )
                }
                Reach::CacheBackups(p, region, cache) => {
                    let call = format!("list_cache_backups {region}/{cache}");
                    let out =
                        tokio::time::timeout(limit, p.list_cache_backups(region, cache)).await;
                    (
                        call,
                        out.map(|r| (answered(&r), shown(&r, |b| format!("{} backups", b.len())))),
                    )
                }
                Reach::Probe(p, target) => {
                    let call = format!("probe {}", dr_core::redact::safe(target));
                    let out = tokio::time::timeout(limit, p.check(target)).await;
                    (
                        call,
                        out.map(|r| (r.is_ok(), shown(&r, |s| format!("{s:?}").to_lowercase()))),
                    )
                }
            };
            let (reachable, detail) = outcome.unwrap_or_else(|_| {
                (
                    false,
                    format!("no answer within {}", humantime::format_duration(limit)),
                )
            });
            Reachability {
                route,
                call,
                reachable,
                detail,
            }
        });
        futures::future::join_all(calls).await
    }

    /// Every call a run of `graph` makes, in order, with the provider serving it.
    pub fn routed_calls(&self, graph: &RecoveryGraph) -> Vec<RoutedCall> {
        let mut out = Vec::new();
        for step in &graph.steps {
            for call in step.action.calls() {
                let provider = self.provider_for(&call.role, &call.target);
                out.push(RoutedCall {
                    step: step.id.to_string(),
                    role: call.role.name().to_string(),
                    operation: call.operation.clone(),
                    target: call.target.clone(),
                    provider,
                });
            }
        }
        out
    }

    fn provider_for(&self, role: &Role, target: &str) -> String {
        let find = |role: &str, key: &str| {
            self.route(role, key)
                .map(|r| r.provider.clone())
                .unwrap_or_else(|| format!("no provider for {role} {key}"))
        };
        match role {
            Role::Database { region } => find("database", region),
            Role::Dns { zone } => find("dns", zone),
            Role::Cluster { cluster } => find("cluster", cluster),
            Role::Store { store } => find("store", store),
            Role::Probe => {
                // Health steps name their check first: `api-health (https://…)`.
                let check = target.split(" (").next().unwrap_or(target);
                find("health_check", check)
            }
            Role::Notifier { channel } => find("notifications", channel),
            Role::Cdn { distribution } => find("cdn", distribution),
            Role::LoadBalancer { group } => find("load_balancer", group),
            Role::Nodes { cluster } => find("nodes", cluster),
            Role::Volumes { region } => find("volumes", region),
            Role::Secrets { region } => find("secrets", region),
            Role::Caches { region } => find("caches", region),
            Role::Approval => "approval hook".into(),
            Role::Http => "direct HTTP request".into(),
            Role::Process => "local process".into(),
            Role::External { service } => format!("external service {service}"),
        }
    }
}
