//! Checking a providers file against the plan it serves: every problem at once.

use std::collections::BTreeMap;

use dr_core::plan::{Plan, Problem};
use dr_core::redact::safe;

use crate::config::*;

/// The plan resources that need a provider, per role: key (region, zone, name) → what in
/// the plan needs it.
#[derive(Debug, Default)]
pub(crate) struct Needs {
    pub(crate) databases: BTreeMap<String, Vec<String>>,
    pub(crate) dns: BTreeMap<String, Vec<String>>,
    pub(crate) clusters: BTreeMap<String, Vec<String>>,
    pub(crate) stores: BTreeMap<String, Vec<String>>,
    pub(crate) health_checks: BTreeMap<String, Vec<String>>,
    pub(crate) notifications: BTreeMap<String, Vec<String>>,
}

impl Needs {
    pub(crate) fn of(plan: &Plan) -> Needs {
        let mut n = Needs::default();
        let add = |map: &mut BTreeMap<String, Vec<String>>, key: &str, what: String| {
            map.entry(key.to_string()).or_default().push(what);
        };
        for db in &plan.databases {
            add(
                &mut n.databases,
                &db.region,
                format!("instance {} of database {}", db.instance(), db.name),
            );
            for r in &db.replicas {
                add(
                    &mut n.databases,
                    &r.region,
                    format!("replica {} of database {}", r.id, db.name),
                );
            }
            if let Some(b) = &db.backups {
                for region in &b.copy_to {
                    add(
                        &mut n.databases,
                        region,
                        format!("snapshot copies of database {}", db.name),
                    );
                }
            }
        }
        for r in &plan.dns {
            add(&mut n.dns, &r.zone, format!("record {}", r.name));
        }
        for c in &plan.clusters {
            add(&mut n.clusters, &c.name, format!("cluster {}", c.name));
        }
        for s in &plan.stores {
            add(&mut n.stores, &s.name, format!("store {}", s.name));
        }
        for h in &plan.health_checks {
            add(
                &mut n.health_checks,
                &h.name,
                format!("health check {}", h.name),
            );
        }
        for c in &plan.notifications {
            add(
                &mut n.notifications,
                &c.name,
                format!("notification channel {}", c.name),
            );
        }
        n
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// `a, b, c` (at most ten).
fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        return "none".into();
    }
    let mut s = names
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        s.push_str(&format!(" and {} more", names.len() - 10));
    }
    s
}

/// Whether `feature` of this crate was compiled in.
pub(crate) fn feature_enabled(feature: &str) -> bool {
    #[allow(clippy::match_like_matches_macro)] // one arm per feature reads best
    match feature {
        "aws" => cfg!(feature = "aws"),
        "azure" => cfg!(feature = "azure"),
        "gcp" => cfg!(feature = "gcp"),
        "k8s" => cfg!(feature = "k8s"),
        "postgres" => cfg!(feature = "postgres"),
        _ => false,
    }
}

fn needs_feature(out: &mut Vec<Problem>, path: &str, kind: &str, feature: &str) {
    if !feature_enabled(feature) {
        out.push(problem(
            format!("{path}.kind"),
            format!(
                "`{kind}` needs the `{feature}` feature of dr-providers, which this program was built without \
                 (for run-plan: cargo run --example run-plan --features providers-{feature})"
            ),
        ));
    }
}

fn check_endpoint(out: &mut Vec<Problem>, path: &str, endpoint: Option<&String>) {
    let Some(e) = endpoint else { return };
    match reqwest_free_parse(e) {
        Err(m) => out.push(problem(format!("{path}.endpoint"), m)),
        Ok(true) => out.push(problem(
            format!("{path}.endpoint"),
            format!(
                "`{}` carries a password: {}",
                safe(e),
                crate::config::LITERAL_CREDENTIAL
            ),
        )),
        Ok(false) => {}
    }
}

/// Checks an endpoint URL: `Ok(true)` when it carries a password.
fn reqwest_free_parse(e: &str) -> Result<bool, String> {
    let Some((scheme, rest)) = e.split_once("://") else {
        return Err(format!(
            "`{}` is not a URL: write e.g. `http://127.0.0.1:5000` or `https://s3.eu-west-1.amazonaws.com`",
            safe(e)
        ));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!(
            "`{}`: scheme `{}` (http or https)",
            safe(e),
            safe(scheme)
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("`{}` names no host", safe(e)));
    }
    Ok(authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':')))
}

fn check_aws(out: &mut Vec<Problem>, path: &str, aws: &AwsSettings) {
    check_endpoint(out, path, aws.endpoint.as_ref());
    if aws.access_key_id.is_some() != aws.secret_access_key.is_some() {
        out.push(problem(
            path,
            "`access_key_id` and `secret_access_key` go together: name both variables, or neither to use the SDK's credential chain",
        ));
    }
}

/// Fields that do not apply to an entry's kind.
fn not_for(out: &mut Vec<Problem>, path: &str, kind: &str, fields: &[(&str, bool)]) {
    for (field, set) in fields {
        if *set {
            out.push(problem(
                format!("{path}.{field}"),
                format!("`{field}` does not apply to kind `{kind}`"),
            ));
        }
    }
}

fn has_aws(aws: &AwsSettings) -> bool {
    *aws != AwsSettings::default()
}

/// Every problem of `config` for `plan`.
pub(crate) fn validate(config: &ProvidersConfig, plan: &Plan) -> Vec<Problem> {
    let needs = Needs::of(plan);
    let mut out = Vec::new();
    let simulated_default = config.default == Some(DefaultProvider::Simulated);
    if let Some(aws) = &config.aws {
        check_aws(&mut out, "aws", aws);
    }

    // Every resource mapped (or an explicit default).
    type RoleNeeds<'a> = (
        &'a str,
        &'a str,
        &'a BTreeMap<String, Vec<String>>,
        Vec<&'a String>,
    );
    let roles: [RoleNeeds<'_>; 6] = [
        (
            "databases",
            "database provider for region",
            &needs.databases,
            config.databases.keys().collect(),
        ),
        (
            "dns",
            "DNS provider for zone",
            &needs.dns,
            config.dns.keys().collect(),
        ),
        (
            "clusters",
            "client for cluster",
            &needs.clusters,
            config.clusters.keys().collect(),
        ),
        (
            "stores",
            "provider for store",
            &needs.stores,
            config.stores.keys().collect(),
        ),
        (
            "health_checks",
            "probe for health check",
            &needs.health_checks,
            config.health_checks.keys().collect(),
        ),
        (
            "notifications",
            "provider for notification channel",
            &needs.notifications,
            config.notifications.keys().collect(),
        ),
    ];
    for (section, what, needed, mapped) in &roles {
        for (key, users) in needed.iter() {
            if !simulated_default && !mapped.contains(&key) {
                out.push(problem(
                    format!("{section}.{key}"),
                    format!(
                        "no {what} `{}` (needed by the plan's {}): map it under `{section}:`, or write `default: simulated` to simulate what is not mapped",
                        safe(key),
                        users.join(", ")
                    ),
                ));
            }
        }
        for key in mapped {
            if !needed.contains_key(*key) {
                out.push(problem(
                    format!("{section}.{key}"),
                    format!(
                        "the plan has no such name (it has: {})",
                        list(needed.keys())
                    ),
                ));
            }
        }
    }

    for (region, p) in &config.databases {
        let path = format!("databases.{region}");
        match p.kind {
            DatabaseKind::Rds => {
                needs_feature(&mut out, &path, "rds", "aws");
                check_aws(&mut out, &path, &p.aws());
                not_for(
                    &mut out,
                    &path,
                    "rds",
                    &[("instances", !p.instances.is_empty())],
                );
            }
            DatabaseKind::Postgres => {
                needs_feature(&mut out, &path, "postgres", "postgres");
                not_for(
                    &mut out,
                    &path,
                    "postgres",
                    &[("endpoint, region, profile or AWS keys", has_aws(&p.aws()))],
                );
                let ids: Vec<String> = plan
                    .databases
                    .iter()
                    .flat_map(|db| {
                        let primary = (db.region == *region).then(|| db.instance().to_string());
                        primary.into_iter().chain(
                            db.replicas
                                .iter()
                                .filter(|r| r.region == *region)
                                .map(|r| r.id.clone()),
                        )
                    })
                    .collect();
                for id in &ids {
                    if !p.instances.contains_key(id) {
                        out.push(problem(
                            format!("{path}.instances"),
                            format!("no server for instance `{id}` of the plan in region {region}: add `{id}: {{ url: {{ env: VARIABLE }} }}`"),
                        ));
                    }
                }
                for (id, i) in &p.instances {
                    let ipath = format!("{path}.instances.{id}");
                    if !ids.contains(id) {
                        out.push(problem(
                            &ipath,
                            format!(
                                "the plan has no instance `{}` in region {region} (it has: {})",
                                safe(id),
                                list(ids.iter())
                            ),
                        ));
                    }
                    if i.url.is_some() == i.host.is_some() {
                        out.push(problem(
                            &ipath,
                            "give either `url` (a variable holding a connection string) or `host` (with `port`, `user`, `dbname`, `password`)",
                        ));
                    }
                }
            }
            DatabaseKind::Simulated => {
                not_for(
                    &mut out,
                    &path,
                    "simulated",
                    &[
                        ("instances", !p.instances.is_empty()),
                        ("endpoint, region, profile or AWS keys", has_aws(&p.aws())),
                    ],
                );
            }
        }
    }
    for (zone, p) in &config.dns {
        let path = format!("dns.{zone}");
        match p.kind {
            DnsKind::Route53 => {
                needs_feature(&mut out, &path, "route53", "aws");
                check_aws(&mut out, &path, &p.aws());
            }
            DnsKind::Simulated => not_for(
                &mut out,
                &path,
                "simulated",
                &[("endpoint, region, profile or AWS keys", has_aws(&p.aws()))],
            ),
        }
    }
    for (name, p) in &config.clusters {
        let path = format!("clusters.{name}");
        match p.kind {
            ClusterKind::Kubernetes => {
                needs_feature(&mut out, &path, "kubernetes", "k8s");
                if p.context.is_some() == p.in_cluster {
                    out.push(problem(
                        &path,
                        "give either `context` (a kubeconfig context) or `in_cluster: true`",
                    ));
                }
            }
            ClusterKind::Simulated => not_for(
                &mut out,
                &path,
                "simulated",
                &[
                    ("context", p.context.is_some()),
                    ("in_cluster", p.in_cluster),
                ],
            ),
        }
    }
    for (name, p) in &config.stores {
        let path = format!("stores.{name}");
        let aws = p.aws();
        let azure_only = [
            ("container", p.container.is_some()),
            ("account", p.account.is_some()),
            ("access_key", p.access_key.is_some()),
            ("sas_token", p.sas_token.is_some()),
        ];
        let aws_only = [
            ("region", aws.region.is_some()),
            ("profile", aws.profile.is_some()),
            ("access_key_id", aws.access_key_id.is_some()),
            ("secret_access_key", aws.secret_access_key.is_some()),
            ("session_token", aws.session_token.is_some()),
        ];
        match p.kind {
            StoreKind::S3 => {
                needs_feature(&mut out, &path, "s3", "aws");
                check_aws(&mut out, &path, &aws);
                not_for(&mut out, &path, "s3", &azure_only);
                not_for(
                    &mut out,
                    &path,
                    "s3",
                    &[("path", p.path.is_some()), ("anonymous", p.anonymous)],
                );
            }
            StoreKind::AzureBlob => {
                needs_feature(&mut out, &path, "azure_blob", "azure");
                check_endpoint(&mut out, &path, aws.endpoint.as_ref());
                not_for(&mut out, &path, "azure_blob", &aws_only);
                not_for(
                    &mut out,
                    &path,
                    "azure_blob",
                    &[("bucket", p.bucket.is_some()), ("path", p.path.is_some())],
                );
                if p.account.is_none() && aws.endpoint.is_none() {
                    out.push(problem(
                        &path,
                        "give the storage `account` (or an `endpoint`)",
                    ));
                }
                if p.access_key.is_some() && p.sas_token.is_some() {
                    out.push(problem(&path, "give `access_key` or `sas_token`, not both"));
                }
            }
            StoreKind::Gcs => {
                needs_feature(&mut out, &path, "gcs", "gcp");
                check_endpoint(&mut out, &path, aws.endpoint.as_ref());
                not_for(&mut out, &path, "gcs", &aws_only);
                not_for(&mut out, &path, "gcs", &azure_only);
                not_for(&mut out, &path, "gcs", &[("path", p.path.is_some())]);
            }
            StoreKind::Local => {
                if p.path.is_none() {
                    out.push(problem(
                        &path,
                        "a `local` store needs a `path` (a directory)",
                    ));
                }
                not_for(&mut out, &path, "local", &aws_only);
                not_for(&mut out, &path, "local", &azure_only);
                not_for(
                    &mut out,
                    &path,
                    "local",
                    &[
                        ("bucket", p.bucket.is_some()),
                        ("endpoint", aws.endpoint.is_some()),
                        ("anonymous", p.anonymous),
                    ],
                );
            }
            StoreKind::Memory | StoreKind::Simulated => {
                let kind = if p.kind == StoreKind::Memory {
                    "memory"
                } else {
                    "simulated"
                };
                not_for(&mut out, &path, kind, &aws_only);
                not_for(&mut out, &path, kind, &azure_only);
                not_for(
                    &mut out,
                    &path,
                    kind,
                    &[
                        ("bucket", p.bucket.is_some()),
                        ("endpoint", aws.endpoint.is_some()),
                        ("path", p.path.is_some()),
                        ("anonymous", p.anonymous),
                    ],
                );
            }
        }
    }
    for (name, p) in &config.health_checks {
        let path = format!("health_checks.{name}");
        if p.kind == HealthCheckKind::Simulated {
            let http = p.method.is_some()
                || p.expect_status.is_some()
                || p.body_contains.is_some()
                || p.timeout.is_some()
                || p.max_redirects.is_some()
                || p.consecutive.is_some()
                || p.interval.is_some()
                || !p.headers.is_empty()
                || p.ca_file.is_some();
            not_for(&mut out, &path, "simulated", &[("HTTP settings", http)]);
        }
        if let Some(check) = plan.health_checks.iter().find(|h| h.name == *name) {
            if p.kind == HealthCheckKind::Http
                && !(check.target.starts_with("http://") || check.target.starts_with("https://"))
            {
                out.push(problem(
                    &path,
                    format!(
                        "the plan's target `{}` is not an http(s) URL",
                        safe(&check.target)
                    ),
                ));
            }
        }
    }
    validate_roles(config, plan, &mut out);
    out
}

/// The CDN, load balancer, node group and secret manager sections.
fn validate_roles(config: &ProvidersConfig, plan: &Plan, out: &mut Vec<Problem>) {
    for (id, p) in &config.cdn {
        let path = format!("cdn.{id}");
        match p.kind {
            CdnKind::Cloudfront => {
                needs_feature(out, &path, "cloudfront", "aws");
                check_aws(out, &path, &p.aws());
            }
        }
    }
    let shared_region = config.aws.as_ref().and_then(|a| a.region.as_ref());
    for (group, p) in &config.load_balancers {
        let path = format!("load_balancers.{group}");
        match p.kind {
            LoadBalancerKind::Elbv2 => {
                needs_feature(out, &path, "elbv2", "aws");
                check_aws(out, &path, &p.aws());
                if p.region.is_none() && arn_region(group).is_none() && shared_region.is_none() {
                    out.push(problem(
                        &path,
                        format!(
                            "which region is target group `{}` in? Give `region` (or key the entry by the group's ARN, or set `aws.region`)",
                            safe(group)
                        ),
                    ));
                }
            }
        }
    }
    let clusters: Vec<&String> = plan.clusters.iter().map(|c| &c.name).collect();
    for (cluster, p) in &config.node_groups {
        let path = format!("node_groups.{cluster}");
        if !clusters.contains(&cluster) {
            out.push(problem(
                &path,
                format!(
                    "the plan has no cluster `{}` (it has: {})",
                    safe(cluster),
                    list(clusters.iter().copied())
                ),
            ));
        }
        match p.kind {
            NodeGroupKind::Eks => {
                needs_feature(out, &path, "eks", "aws");
                check_aws(out, &path, &p.aws());
                if p.cluster_name
                    .as_deref()
                    .is_some_and(|n| n.trim().is_empty())
                {
                    out.push(problem(
                        format!("{path}.cluster_name"),
                        "the EKS cluster name is empty",
                    ));
                }
            }
        }
    }
    for (region, p) in &config.secrets {
        let path = format!("secrets.{region}");
        match p.kind {
            SecretsKind::Secretsmanager => {
                needs_feature(out, &path, "secretsmanager", "aws");
                check_aws(out, &path, &p.aws());
            }
        }
    }
    for (region, p) in &config.volumes {
        let path = format!("volumes.{region}");
        match p.kind {
            VolumesKind::Ec2 => {
                needs_feature(out, &path, "ec2", "aws");
                check_aws(out, &path, &p.aws());
            }
        }
    }
    let restored_in: Vec<&String> = plan.caches.iter().flat_map(|c| c.restore.keys()).collect();
    for (region, p) in &config.caches {
        let path = format!("caches.{region}");
        if !restored_in.contains(&region) {
            let mut regions = restored_in.clone();
            regions.sort();
            regions.dedup();
            out.push(problem(
                &path,
                format!(
                    "the plan restores no cache in region `{}` (it restores caches in: {})",
                    safe(region),
                    list(regions.into_iter())
                ),
            ));
        }
        match p.kind {
            CachesKind::Elasticache => {
                needs_feature(out, &path, "elasticache", "aws");
                check_aws(out, &path, &p.aws());
            }
        }
    }
}
