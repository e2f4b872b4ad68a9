//! Least privilege, in each platform's own form: from a [`PermissionSet`] (every call a plan's
//! runs can make), an AWS IAM policy document, Azure Storage custom roles (data actions),
//! Google Cloud Storage custom roles (IAM permissions) and Kubernetes RBAC `Role`s, one per
//! cluster and namespace (and a `ClusterRole` for the namespaces an apply creates).
//!
//! Which platform serves each role comes from the providers file when one is given; without
//! it, every platform that could serve the role is shown (the databases on RDS, the zones on
//! Route 53, the clusters on Kubernetes, each store on the cloud its plan `kind` names, or on
//! all three). The simulated cloud, local stores, PostgreSQL, HTTP probes and log channels
//! need no cloud permission: they appear in the notes.
//!
//! Every SDK call the provider crates make for an operation maps to an action here — RDS's
//! `DescribeDBInstances` for a cross-region replica's source ARN, S3's multipart upload and
//! the copy that records a large object's digest, GCS's metadata update after an upload,
//! kube's ReplicaSet listing for a rollback. No SDK is needed to render them.
//!
//! # Examples
//!
//! ```no_run
//! use dr_core::permissions::{PermissionOptions, PermissionSet};
//! use dr_core::plan::Plan;
//! use dr_core::planner::{self, ObservedState};
//!
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = Plan::load("dr-plan.yaml")?;
//! let observed = ObservedState::nominal(&plan, dr_core::Clock::new().now());
//! let graph = planner::plan(&plan, "region-failover", &observed)?;
//! let set = PermissionSet::for_graphs(&plan, [&graph], &PermissionOptions::default());
//! let docs = dr_providers::permissions::render(&set, &plan, None);
//! if let Some(policy) = &docs.aws {
//!     println!("{}", serde_json::to_string_pretty(policy)?);
//! }
//! # Ok(()) }
//! ```

pub mod aws;
pub mod azure;
pub mod gcs;
pub mod k8s;

use std::fmt::Write as _;

use dr_core::permissions::{Need, PermissionSet};
use dr_core::plan::Plan;
use dr_core::step::Role;
use serde::Serialize;

use crate::config::{
    arn_region, CachesKind, CdnKind, ClusterKind, DatabaseKind, DnsKind, LoadBalancerKind,
    NodeGroupKind, ProvidersConfig, SecretsKind, StoreKind, VolumesKind,
};

/// A platform a role may be served by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// RDS, Route 53, S3: an IAM policy.
    Aws,
    /// Azure Blob Storage: data actions.
    Azure,
    /// Google Cloud Storage: IAM permissions.
    Gcs,
    /// Kubernetes: RBAC.
    Kubernetes,
    /// Self-managed PostgreSQL: database privileges, not a cloud's.
    Postgres,
    /// The simulated cloud, a local or in-memory store, an HTTP probe, a log channel: no
    /// cloud permission.
    None,
}

/// Where the plan's resources live, from the providers file (or from the plan alone).
#[derive(Debug, Clone, Copy)]
pub struct Targets<'a> {
    plan: &'a Plan,
    config: Option<&'a ProvidersConfig>,
}

impl<'a> Targets<'a> {
    /// The resources of `plan`, served as `config` maps them (`None`: every platform that
    /// could serve each role).
    pub fn new(plan: &'a Plan, config: Option<&'a ProvidersConfig>) -> Self {
        Targets { plan, config }
    }

    fn unmapped(&self) -> Vec<Platform> {
        // A file without the entry: simulated (`default: simulated`) or refused when built.
        vec![Platform::None]
    }

    /// The platforms that may serve `role` (probes and notifiers need no cloud's).
    pub fn platforms(&self, role: &Role) -> Vec<Platform> {
        let Some(c) = self.config else {
            return match role {
                Role::Database { .. } => vec![Platform::Aws, Platform::Postgres],
                Role::Dns { .. } => vec![Platform::Aws],
                Role::Cluster { .. } => vec![Platform::Kubernetes],
                Role::Store { store } => {
                    let kind = self
                        .plan
                        .stores
                        .iter()
                        .find(|s| s.name == *store)
                        .map(|s| s.kind.as_str());
                    match kind {
                        Some("s3") => vec![Platform::Aws],
                        Some("azure-blob") => vec![Platform::Azure],
                        Some("gcs") => vec![Platform::Gcs],
                        _ => vec![Platform::Aws, Platform::Azure, Platform::Gcs],
                    }
                }
                Role::Cdn { .. }
                | Role::LoadBalancer { .. }
                | Role::Nodes { .. }
                | Role::Secrets { .. }
                | Role::Caches { .. } => vec![Platform::Aws],
                _ => vec![Platform::None],
            };
        };
        let one = |p: Platform| vec![p];
        match role {
            Role::Database { region } => match c.databases.get(region).map(|d| d.kind) {
                Some(DatabaseKind::Rds) => one(Platform::Aws),
                Some(DatabaseKind::Postgres) => one(Platform::Postgres),
                Some(DatabaseKind::Simulated) => one(Platform::None),
                None => self.unmapped(),
            },
            Role::Dns { zone } => match c.dns.get(zone).map(|d| d.kind) {
                Some(DnsKind::Route53) => one(Platform::Aws),
                Some(DnsKind::Simulated) => one(Platform::None),
                None => self.unmapped(),
            },
            Role::Cluster { cluster } => match c.clusters.get(cluster).map(|d| d.kind) {
                Some(ClusterKind::Kubernetes) => one(Platform::Kubernetes),
                Some(ClusterKind::Simulated) => one(Platform::None),
                None => self.unmapped(),
            },
            Role::Store { store } => match c.stores.get(store).map(|d| d.kind) {
                Some(StoreKind::S3) => one(Platform::Aws),
                Some(StoreKind::AzureBlob) => one(Platform::Azure),
                Some(StoreKind::Gcs) => one(Platform::Gcs),
                Some(_) => one(Platform::None),
                None => self.unmapped(),
            },
            Role::Cdn { distribution } => match c.cdn.get(distribution).map(|p| p.kind) {
                Some(CdnKind::Cloudfront) => one(Platform::Aws),
                None => self.unmapped(),
            },
            Role::LoadBalancer { group } => match c.load_balancers.get(group).map(|p| p.kind) {
                Some(LoadBalancerKind::Elbv2) => one(Platform::Aws),
                None => self.unmapped(),
            },
            Role::Nodes { cluster } => match c.node_groups.get(cluster).map(|p| p.kind) {
                Some(NodeGroupKind::Eks) => one(Platform::Aws),
                None => self.unmapped(),
            },
            Role::Secrets { region } => match c.secrets.get(region).map(|p| p.kind) {
                Some(SecretsKind::Secretsmanager) => one(Platform::Aws),
                None => self.unmapped(),
            },
            Role::Volumes { region } => match c.volumes.get(region).map(|p| p.kind) {
                Some(VolumesKind::Ec2) => one(Platform::Aws),
                None => self.unmapped(),
            },
            Role::Caches { region } => match c.caches.get(region).map(|p| p.kind) {
                Some(CachesKind::Elasticache) => one(Platform::Aws),
                None => self.unmapped(),
            },
            _ => one(Platform::None),
        }
    }

    /// The AWS region of load balancer target group `group`: the entry's `region`, its
    /// ARN's, the file's `aws.region`, else `*`.
    pub fn lb_region(&self, group: &str) -> String {
        let entry = self.config.and_then(|c| c.load_balancers.get(group));
        entry
            .and_then(|p| p.region.clone())
            .or_else(|| arn_region(group).map(str::to_string))
            .or_else(|| self.shared_region())
            .unwrap_or_else(|| "*".to_string())
    }

    /// The AWS region and EKS name of the plan's cluster `cluster`: the entry's (or the
    /// file's) `region`, else the plan cluster's region; the entry's `cluster_name`, else
    /// the plan's name.
    pub fn eks_cluster(&self, cluster: &str) -> (String, String) {
        let entry = self.config.and_then(|c| c.node_groups.get(cluster));
        let region = entry
            .and_then(|p| p.region.clone())
            .or_else(|| self.shared_region())
            .or_else(|| {
                self.plan
                    .clusters
                    .iter()
                    .find(|c| c.name == cluster)
                    .map(|c| c.region.clone())
            })
            .unwrap_or_else(|| "*".to_string());
        let name = entry
            .and_then(|p| p.cluster_name.clone())
            .unwrap_or_else(|| cluster.to_string());
        (region, name)
    }

    fn shared_region(&self) -> Option<String> {
        self.config
            .and_then(|c| c.aws.as_ref())
            .and_then(|a| a.region.clone())
    }

    /// The AWS account of ARNs: the providers file's `aws.account`, else `*`.
    pub fn aws_account(&self) -> String {
        self.config
            .and_then(|c| c.aws.as_ref())
            .and_then(|a| a.account.clone())
            .unwrap_or_else(|| "*".to_string())
    }

    /// The AWS region of the plan region `region`'s databases: the entry's or the file's
    /// `region`, else the plan region's name.
    pub fn aws_region(&self, region: &str) -> String {
        let Some(c) = self.config else {
            return region.to_string();
        };
        let base = c.aws.clone().unwrap_or_default();
        let entry = c.databases.get(region).map(|d| d.aws()).unwrap_or_default();
        base.merged(&entry)
            .region
            .unwrap_or_else(|| region.to_string())
    }

    /// The bucket (S3, GCS) of plan store `store`: the file's `bucket`, else the plan
    /// store's `location`, else its name.
    pub fn bucket(&self, store: &str) -> String {
        self.config
            .and_then(|c| c.stores.get(store))
            .and_then(|s| s.bucket.clone())
            .unwrap_or_else(|| self.location(store))
    }

    /// The Azure storage account and container of plan store `store` (the account is
    /// `{storage-account}` when the file does not name it).
    pub fn container(&self, store: &str) -> (String, String) {
        let entry = self.config.and_then(|c| c.stores.get(store));
        let account = entry
            .and_then(|s| s.account.clone())
            .unwrap_or_else(|| "{storage-account}".to_string());
        let container = entry
            .and_then(|s| s.container.clone())
            .unwrap_or_else(|| self.location(store));
        (account, container)
    }

    fn location(&self, store: &str) -> String {
        self.plan
            .stores
            .iter()
            .find(|s| s.name == store)
            .and_then(|s| s.location.clone())
            .unwrap_or_else(|| store.to_string())
    }
}

/// Every platform's documents for one [`PermissionSet`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Documents {
    /// The plan.
    pub plan: String,
    /// The scenarios covered.
    pub scenarios: Vec<String>,
    /// Whether a providers file said which platform serves each role (otherwise every
    /// platform that could is shown).
    pub from_providers_file: bool,
    /// The AWS IAM policy document (`Version` 2012-10-17), when a role is on AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws: Option<serde_json::Value>,
    /// Azure custom role definitions, one per storage container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub azure: Vec<serde_json::Value>,
    /// Google Cloud custom roles and their bucket bindings, one per bucket.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gcs: Vec<serde_json::Value>,
    /// Kubernetes RBAC objects: a `Role` per cluster and namespace, a `ClusterRole` per
    /// cluster for cluster-scoped resources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kubernetes: Vec<serde_json::Value>,
    /// What needs no cloud permission, or permissions of another kind.
    pub notes: Vec<String>,
    /// The provider-agnostic set the documents were rendered from.
    pub calls: Vec<Need>,
}

/// Renders `set` (of `plan`) for every platform that serves (or, without `config`, could
/// serve) its roles.
pub fn render(set: &PermissionSet, plan: &Plan, config: Option<&ProvidersConfig>) -> Documents {
    let t = Targets::new(plan, config);
    let on = |p: Platform| -> Vec<&Need> {
        set.needs()
            .iter()
            .filter(|n| t.platforms(&n.role).contains(&p))
            .collect()
    };
    let aws_needs = on(Platform::Aws);
    let mut notes = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for n in set.needs() {
        let platforms = t.platforms(&n.role);
        let note = match (&n.role, platforms.as_slice()) {
            (Role::Approval, _) => Some("approval: the embedding service's hook (no provider)".to_string()),
            (Role::Http, _) => Some(format!("http: {} — a direct request (network access and the credentials its headers name)", n.target)),
            (Role::Process, _) => Some(format!("process: {} — a local program, with the runner's own rights", n.target)),
            (Role::External { service }, _) => Some(format!("{service}: {} — a custom step's service: grant what it needs there", n.target)),
            (role, p) if p.contains(&Platform::Postgres) => Some(format!(
                "database {}: on self-managed PostgreSQL, a role with pg_promote() (superuser or EXECUTE on it) and REPLICATION for pg_basebackup",
                key(role)
            )),
            (Role::Probe, _) => Some(
                "health checks: probed over HTTP(S) from the runner (or simulated): no cloud permission".to_string(),
            ),
            (Role::Notifier { channel }, _) => Some(format!(
                "notification channel {channel}: a log line (or simulated): no cloud permission"
            )),
            (role, [Platform::None]) => Some(format!(
                "{} {}: simulated, or a local or in-memory store: no cloud permission",
                role.name(),
                key(role)
            )),
            _ => None,
        };
        if let Some(note) = note {
            if seen.insert(note.clone()) {
                notes.push(note);
            }
        }
    }
    if config.is_none() {
        notes.insert(
            0,
            "without --providers: each role is shown on every platform that could serve it (the simulated cloud needs none)".to_string(),
        );
    }
    Documents {
        plan: set.plan.clone(),
        scenarios: set.scenarios.clone(),
        from_providers_file: config.is_some(),
        aws: (!aws_needs.is_empty()).then(|| aws::policy(&aws_needs, &t)),
        azure: azure::roles(&on(Platform::Azure), &t, &set.plan),
        gcs: gcs::roles(&on(Platform::Gcs), &t, &set.plan),
        kubernetes: k8s::roles(&on(Platform::Kubernetes), &set.plan),
        notes,
        calls: set.needs().to_vec(),
    }
}

fn key(role: &Role) -> String {
    match role {
        Role::Database { region } => region.clone(),
        Role::Dns { zone } => zone.clone(),
        Role::Cluster { cluster } => cluster.clone(),
        Role::Store { store } => store.clone(),
        Role::Cdn { distribution } => distribution.clone(),
        Role::LoadBalancer { group } => group.clone(),
        Role::Nodes { cluster } => cluster.clone(),
        Role::Secrets { region } | Role::Volumes { region } | Role::Caches { region } => {
            region.clone()
        }
        other => other.name().to_string(),
    }
}

/// A name made of ASCII letters, digits and `-` (for role names and IAM ids).
pub(crate) fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

impl Documents {
    /// The documents for people: each platform's document under a heading (the IAM policy
    /// and the Azure and GCS roles as JSON, the Kubernetes objects as YAML), then the notes.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Permissions: plan {} / {} ({} calls)",
            self.plan,
            if self.scenarios.len() == 1 {
                format!("scenario {}", self.scenarios[0])
            } else {
                format!("scenarios {}", self.scenarios.join(", "))
            },
            self.calls.len()
        );
        let json = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
        if let Some(p) = &self.aws {
            let _ = writeln!(out, "\n## AWS IAM policy\n\n{}", json(p));
        }
        for r in &self.azure {
            let _ = writeln!(out, "\n## Azure role (data actions)\n\n{}", json(r));
        }
        for r in &self.gcs {
            let _ = writeln!(out, "\n## Google Cloud Storage role\n\n{}", json(r));
        }
        if !self.kubernetes.is_empty() {
            let _ = writeln!(out, "\n## Kubernetes RBAC\n");
            for o in &self.kubernetes {
                let yaml = serde_yaml_ng::to_string(o).unwrap_or_default();
                let _ = write!(out, "---\n{yaml}");
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\n## Notes\n");
            for n in &self.notes {
                let _ = writeln!(out, "- {n}");
            }
        }
        out
    }
}
