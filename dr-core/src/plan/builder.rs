//! A typed builder for plans written in Rust.

use std::time::Duration;

use super::{
    ApplicationRollback, Backups, CacheDef, CdnDef, ChannelDef, Cluster, ClusterRebuild,
    CredentialDef, Database, DatabaseFailure, DbStrategy, DnsRecordDef, Failback, HealthCheckDef,
    LoadBalancerDef, NodeGroup, Plan, PlanError, PointInTimeRestore, Region, RegionFailover,
    RegionRole, Replica, Scenario, ScenarioKind, SecretBinding, SecurityIsolation, Service,
    ServiceRestart, StoreDef, Tier, VolumeDef, Workload,
};
use crate::provider::WorkloadKind;
use crate::HumanDuration;

/// Builds a [`Plan`] in Rust; [`build`](Self::build) validates it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use dr_core::plan::{PlanBuilder, RegionRole, Scenario, Service, Tier};
///
/// let min = |m: u64| Duration::from_secs(60 * m);
/// let plan = PlanBuilder::new("shop")
///     .region("us-east-1", RegionRole::Primary)
///     .region("us-west-2", RegionRole::Secondary)
///     .database_with_replica("orders-db", "us-east-1", "orders-db-west", "us-west-2")
///     .cluster("east", "us-east-1", "lb.east.example.com")
///     .cluster("west", "us-west-2", "lb.west.example.com")
///     .workload("east", "api", "shop", 3)
///     .workload("west", "api", "shop", 3)
///     .dns("api.example.com", "zone-1")
///     .service(
///         Service::new("orders", min(30), min(5))
///             .tier(Tier::Critical)
///             .database("orders-db"),
///     )
///     .service(
///         Service::new("api", min(30), min(5))
///             .depends_on("orders")
///             .workloads(["api"])
///             .dns(["api.example.com"]),
///     )
///     .scenario(Scenario::region_failover("region-failover", "us-east-1", "us-west-2"))
///     .build()
///     .unwrap();
/// assert_eq!(plan.services.len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct PlanBuilder {
    plan: Plan,
}

impl PlanBuilder {
    /// A plan named `name` with nothing in it.
    pub fn new(name: impl Into<String>) -> Self {
        PlanBuilder {
            plan: Plan {
                name: name.into(),
                description: None,
                regions: Vec::new(),
                databases: Vec::new(),
                clusters: Vec::new(),
                dns: Vec::new(),
                cdn: Vec::new(),
                caches: Vec::new(),
                load_balancers: Vec::new(),
                stores: Vec::new(),
                health_checks: Vec::new(),
                notifications: Vec::new(),
                services: Vec::new(),
                estimates: Default::default(),
                timeouts: Default::default(),
                scenarios: Vec::new(),
                interlocks: Vec::new(),
                forecast: None,
                limits: None,
                lookup: Default::default(),
            },
        }
    }

    /// Adds a region.
    pub fn region(mut self, name: impl Into<String>, role: RegionRole) -> Self {
        self.plan.regions.push(Region {
            name: name.into(),
            role,
            cloud: "sim".into(),
        });
        self
    }

    /// Adds a database.
    pub fn database_def(mut self, db: Database) -> Self {
        self.plan.databases.push(db);
        self
    }

    /// Adds a database with one read replica in another region.
    pub fn database_with_replica(
        self,
        name: impl Into<String>,
        region: impl Into<String>,
        replica_id: impl Into<String>,
        replica_region: impl Into<String>,
    ) -> Self {
        self.database_def(Database {
            name: name.into(),
            region: region.into(),
            instance_id: None,
            engine: None,
            multi_az: false,
            replicas: vec![Replica {
                id: replica_id.into(),
                region: replica_region.into(),
                expected_lag: HumanDuration::from_secs(30),
            }],
            backups: None,
            pitr: None,
            checks: Vec::new(),
        })
    }

    /// Sets the snapshot schedule of the database added last... or of `database`.
    pub fn backups(mut self, database: &str, every: Duration, copy_to: &[&str]) -> Self {
        if let Some(db) = self.plan.databases.iter_mut().find(|d| d.name == database) {
            db.backups = Some(Backups {
                every: every.into(),
                copy_to: copy_to.iter().map(|s| s.to_string()).collect(),
                retention: None,
            });
        }
        self
    }

    /// Adds a cluster.
    pub fn cluster(
        mut self,
        name: impl Into<String>,
        region: impl Into<String>,
        ingress: impl Into<String>,
    ) -> Self {
        self.plan.clusters.push(Cluster {
            name: name.into(),
            region: region.into(),
            ingress: ingress.into(),
            workloads: Vec::new(),
            node_groups: Vec::new(),
        });
        self
    }

    /// Adds node group `group` to the cluster named `cluster` (ignored if there is none).
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::plan::{NodeGroup, PlanBuilder, StandbyScaling};
    ///
    /// let mut general = NodeGroup::new("general", 3);
    /// general.standby = Some(StandbyScaling { min: 1, desired: 1 });
    /// let plan = PlanBuilder::new("shop")
    ///     .region("east", dr_core::plan::RegionRole::Primary)
    ///     .cluster("east-k8s", "east", "lb.east.example.com")
    ///     .node_group("east-k8s", general)
    ///     .build_unchecked();
    /// assert_eq!(plan.clusters[0].node_groups[0].standing_by().desired, 1);
    /// ```
    pub fn node_group(mut self, cluster: &str, group: NodeGroup) -> Self {
        if let Some(c) = self.plan.clusters.iter_mut().find(|c| c.name == cluster) {
            c.node_groups.push(group);
        }
        self
    }

    /// Adds a Deployment to the cluster named `cluster` (ignored if there is none: `build`
    /// then reports the services that reference it).
    pub fn workload(
        mut self,
        cluster: &str,
        name: impl Into<String>,
        namespace: impl Into<String>,
        replicas: u32,
    ) -> Self {
        if let Some(c) = self.plan.clusters.iter_mut().find(|c| c.name == cluster) {
            c.workloads.push(Workload {
                name: name.into(),
                namespace: namespace.into(),
                kind: WorkloadKind::Deployment,
                replicas,
                standby_replicas: 0,
                image: None,
            });
        }
        self
    }

    /// Adds a DNS record whose value per region defaults to that region's cluster ingress.
    pub fn dns(mut self, name: impl Into<String>, zone: impl Into<String>) -> Self {
        self.plan.dns.push(DnsRecordDef {
            name: name.into(),
            zone: zone.into(),
            record_type: "CNAME".into(),
            set_id: None,
            targets: Default::default(),
        });
        self
    }

    /// Adds a CDN distribution `name` (distribution id `distribution`) with its origin per
    /// region, `(region, origin domain)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use dr_core::plan::{PlanBuilder, RegionRole, Service};
    ///
    /// let hour = Duration::from_secs(3600);
    /// let plan = PlanBuilder::new("shop")
    ///     .region("east", RegionRole::Primary)
    ///     .region("west", RegionRole::Secondary)
    ///     .cdn("site", "E2QWRUHAPOMQZL", [("east", "static.east.example.com"), ("west", "static.west.example.com")])
    ///     .load_balancer("api", "tg-api", [("east", vec!["10.1.0.10:8080"]), ("west", vec!["10.2.0.10:8080"])])
    ///     .service(Service::new("web", hour, hour).cdn(["site"]).load_balancers(["api"]))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(plan.cdn_distribution("site").unwrap().origins["west"], "static.west.example.com");
    /// assert_eq!(plan.services[0].load_balancers, ["api"]);
    /// ```
    pub fn cdn<R: Into<String>, O: Into<String>>(
        mut self,
        name: impl Into<String>,
        distribution: impl Into<String>,
        origins: impl IntoIterator<Item = (R, O)>,
    ) -> Self {
        self.plan.cdn.push(CdnDef {
            name: name.into(),
            distribution: distribution.into(),
            origins: origins
                .into_iter()
                .map(|(r, o)| (r.into(), o.into()))
                .collect(),
        });
        self
    }

    /// Adds a load balancer target group `name` (ARN or name `target_group`) with its
    /// targets per region, `(region, ["id" or "id:port", …])` (see [`cdn`](Self::cdn) for an
    /// example).
    pub fn load_balancer<R: Into<String>, T: Into<String>>(
        mut self,
        name: impl Into<String>,
        target_group: impl Into<String>,
        targets: impl IntoIterator<Item = (R, Vec<T>)>,
    ) -> Self {
        self.plan.load_balancers.push(LoadBalancerDef {
            name: name.into(),
            target_group: target_group.into(),
            targets: targets
                .into_iter()
                .map(|(r, ts)| (r.into(), ts.into_iter().map(Into::into).collect()))
                .collect(),
        });
        self
    }

    /// Adds a managed cache `name` (id `id` in its home `region`) restored as
    /// `(region, id)` in each recovery region, from its newest backup there.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dr_core::plan::{PlanBuilder, RegionRole, Service};
    ///
    /// let hour = Duration::from_secs(3600);
    /// let plan = PlanBuilder::new("shop")
    ///     .region("east", RegionRole::Primary)
    ///     .region("west", RegionRole::Secondary)
    ///     .cache("sessions", "shop-sessions", "east", [("west", "shop-sessions-dr")])
    ///     .service(Service::new("web", hour, hour).caches(["sessions"]))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(plan.cache("sessions").unwrap().restore["west"], "shop-sessions-dr");
    /// ```
    pub fn cache<R: Into<String>, I: Into<String>>(
        mut self,
        name: impl Into<String>,
        id: impl Into<String>,
        region: impl Into<String>,
        restore: impl IntoIterator<Item = (R, I)>,
    ) -> Self {
        self.plan.caches.push(CacheDef {
            name: name.into(),
            id: id.into(),
            region: region.into(),
            restore: restore
                .into_iter()
                .map(|(r, i)| (r.into(), i.into()))
                .collect(),
            backup_every: None,
            node_type: None,
        });
        self
    }

    /// Adds a snapshot store.
    pub fn store(mut self, name: impl Into<String>, region: impl Into<String>) -> Self {
        self.plan.stores.push(StoreDef {
            name: name.into(),
            region: region.into(),
            kind: "memory".into(),
            location: None,
        });
        self
    }

    /// Adds a health check.
    pub fn health_check(mut self, name: impl Into<String>, target: impl Into<String>) -> Self {
        self.plan.health_checks.push(HealthCheckDef {
            name: name.into(),
            target: target.into(),
        });
        self
    }

    /// Adds a notification channel.
    pub fn channel(mut self, name: impl Into<String>, kind: impl Into<String>) -> Self {
        self.plan.notifications.push(ChannelDef {
            name: name.into(),
            kind: kind.into(),
        });
        self
    }

    /// Adds a service.
    pub fn service(mut self, service: Service) -> Self {
        self.plan.services.push(service);
        self
    }

    /// Sets the estimate of a step kind (`promote_replica`).
    pub fn estimate(mut self, kind: impl Into<String>, estimate: Duration) -> Self {
        self.plan.estimates.insert(kind.into(), estimate.into());
        self
    }

    /// Limits the provider calls in flight at once to `limit` for every target of `role`
    /// (`database`, `dns`, `cluster`, `store`, `notifier`, `probe`): the plan's
    /// `limits.defaults`.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::plan::{PlanBuilder, RegionRole};
    ///
    /// let plan = PlanBuilder::new("shop")
    ///     .region("east", RegionRole::Primary)
    ///     .dns("api.example.com", "Z1")
    ///     .limit("cluster", 100)
    ///     .target_limit("dns", "Z1", 1)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(plan.limits.unwrap().targets["dns"]["Z1"], 1);
    ///
    /// let err = PlanBuilder::new("shop")
    ///     .region("east", RegionRole::Primary)
    ///     .target_limit("dns", "Z9", 0)
    ///     .build()
    ///     .unwrap_err()
    ///     .to_string();
    /// assert!(err.contains("limits.targets.dns.Z9: must be at least 1"), "{err}");
    /// assert!(err.contains("limits.targets.dns.Z9: unknown DNS zone `Z9`"), "{err}");
    /// ```
    pub fn limit(mut self, role: impl Into<String>, limit: u32) -> Self {
        self.plan
            .limits
            .get_or_insert_with(Default::default)
            .defaults
            .insert(role.into(), limit);
        self
    }

    /// Limits the provider calls in flight at once against one target of `role` (a
    /// database region, a DNS zone, a cluster, a store, a notification channel): the plan's
    /// `limits.targets`.
    pub fn target_limit(
        mut self,
        role: impl Into<String>,
        target: impl Into<String>,
        limit: u32,
    ) -> Self {
        self.plan
            .limits
            .get_or_insert_with(Default::default)
            .targets
            .entry(role.into())
            .or_default()
            .insert(target.into(), limit);
        self
    }

    /// Adds a scenario.
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.plan.scenarios.push(scenario);
        self
    }

    /// The plan, validated.
    ///
    /// # Errors
    /// [`PlanError::Invalid`] with every problem.
    pub fn build(self) -> Result<Plan, PlanError> {
        self.plan.validate()?;
        Ok(self.plan)
    }

    /// The plan, unvalidated (to test validation itself).
    pub fn build_unchecked(self) -> Plan {
        self.plan
    }
}

impl Service {
    /// A medium-tier service with the given targets.
    pub fn new(name: impl Into<String>, rto: Duration, rpo: Duration) -> Self {
        Service {
            name: name.into(),
            tier: Tier::Medium,
            rto: rto.into(),
            rpo: rpo.into(),
            depends_on: Vec::new(),
            database: None,
            workloads: Vec::new(),
            dns: Vec::new(),
            health_check: None,
            secret: None,
            cdn: Vec::new(),
            load_balancers: Vec::new(),
            caches: Vec::new(),
            volumes: Vec::new(),
            credential: None,
        }
    }

    /// Adds a block volume behind the service (in its cluster's region), snapshotted as
    /// evidence in a security incident.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use dr_core::plan::{CredentialDef, Service, VolumeDef};
    ///
    /// let api = Service::new("api", Duration::from_secs(900), Duration::from_secs(300))
    ///     .volume(VolumeDef::new("vol-0abc"))
    ///     .credential("shop/api-token", "us-east-1", "API_TOKEN");
    /// assert_eq!(api.volumes[0].id, "vol-0abc");
    /// assert_eq!(api.credential.unwrap().key, "API_TOKEN");
    /// ```
    pub fn volume(mut self, volume: VolumeDef) -> Self {
        self.volumes.push(volume);
        self
    }

    /// Sets the cloud credential the service uses: secret `secret` of the secret manager in
    /// `region`, read by the application from key `key` of its bound cluster secret.
    pub fn credential(
        mut self,
        secret: impl Into<String>,
        region: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        self.credential = Some(CredentialDef {
            secret: secret.into(),
            region: region.into(),
            key: key.into(),
            cluster_secret: None,
        });
        self
    }

    /// Sets the tier.
    pub fn tier(mut self, tier: Tier) -> Self {
        self.tier = tier;
        self
    }

    /// Adds a dependency.
    pub fn depends_on(mut self, service: impl Into<String>) -> Self {
        self.depends_on.push(service.into());
        self
    }

    /// Sets the database.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// Sets the workloads.
    pub fn workloads<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.workloads = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the DNS records.
    pub fn dns<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.dns = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the health check.
    pub fn health_check(mut self, name: impl Into<String>) -> Self {
        self.health_check = Some(name.into());
        self
    }

    /// Sets the CDN distributions (plan names) whose origin follows the service.
    pub fn cdn<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.cdn = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the load balancer target groups (plan names) whose targets follow the service.
    pub fn load_balancers<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.load_balancers = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the managed caches (plan names) the service reads.
    pub fn caches<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.caches = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the secret the application reads its database endpoint from.
    pub fn secret(mut self, name: impl Into<String>, key: impl Into<String>) -> Self {
        self.secret = Some(SecretBinding {
            name: name.into(),
            key: key.into(),
            template: None,
        });
        self
    }
}

impl Scenario {
    /// A scenario of `kind` (any [`ScenarioKind`] variant, or its parameter type), without
    /// approval, notifications or steps of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use dr_core::plan::{Failback, Scenario};
    ///
    /// let sc = Scenario::new("failback", Failback::new("us-west-2", "us-east-1")).with_approval();
    /// assert_eq!(sc.kind.name(), "failback");
    /// ```
    pub fn new(name: impl Into<String>, kind: impl Into<ScenarioKind>) -> Self {
        Scenario {
            name: name.into(),
            kind: kind.into(),
            rto: None,
            approval: false,
            notify: Vec::new(),
            steps: Vec::new(),
            compensate_on_failure: false,
            trigger: None,
        }
    }

    /// Sets the scenario's automatic trigger (see [`Watcher`](crate::watch::Watcher)).
    pub fn with_trigger(mut self, trigger: super::Trigger) -> Self {
        self.trigger = Some(trigger);
        self
    }

    /// Asks, on a critical failure, to undo what already ran, in reverse order.
    pub fn with_compensation(mut self) -> Self {
        self.compensate_on_failure = true;
        self
    }

    /// Adds one of the plan's own steps.
    pub fn with_step(mut self, step: super::PlanStep) -> Self {
        self.steps.push(step);
        self
    }

    /// A region failover from `from` to `to`.
    pub fn region_failover(
        name: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        Self::new(
            name,
            RegionFailover {
                from: from.into(),
                to: to.into(),
            },
        )
    }

    /// A database failure handled by `strategy`.
    pub fn database_failure(
        name: impl Into<String>,
        database: impl Into<String>,
        strategy: DbStrategy,
    ) -> Self {
        Self::new(
            name,
            DatabaseFailure {
                database: database.into(),
                strategy,
            },
        )
    }

    /// A point-in-time restore of `database` to its latest restorable time.
    pub fn point_in_time_restore(name: impl Into<String>, database: impl Into<String>) -> Self {
        Self::new(
            name,
            PointInTimeRestore {
                database: database.into(),
                at: None,
            },
        )
    }

    /// A rebuild of `cluster` onto `to_cluster`.
    pub fn cluster_rebuild(
        name: impl Into<String>,
        cluster: impl Into<String>,
        to_cluster: impl Into<String>,
    ) -> Self {
        Self::new(
            name,
            ClusterRebuild {
                cluster: cluster.into(),
                to_cluster: to_cluster.into(),
            },
        )
    }

    /// A rollback of `service` to the previous revision.
    pub fn application_rollback(name: impl Into<String>, service: impl Into<String>) -> Self {
        Self::new(
            name,
            ApplicationRollback {
                service: service.into(),
                revision: None,
            },
        )
    }

    /// An isolation of `service`, evidence going to `evidence_store`.
    pub fn security_isolation(
        name: impl Into<String>,
        service: impl Into<String>,
        evidence_store: impl Into<String>,
    ) -> Self {
        Self::new(
            name,
            SecurityIsolation {
                service: service.into(),
                evidence_store: evidence_store.into(),
            },
        )
    }

    /// A restart of `service`'s workloads.
    pub fn service_restart(name: impl Into<String>, service: impl Into<String>) -> Self {
        Self::new(
            name,
            ServiceRestart {
                service: service.into(),
            },
        )
    }

    /// A failback from `from` (serving since a region failover) to `to` (back).
    pub fn failback(
        name: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        Self::new(name, Failback::new(from, to))
    }

    /// Requires a manual approval before anything changes.
    pub fn with_approval(mut self) -> Self {
        self.approval = true;
        self
    }

    /// Notifies `channel` at start and end.
    pub fn notify(mut self, channel: impl Into<String>) -> Self {
        self.notify.push(channel.into());
        self
    }
}
