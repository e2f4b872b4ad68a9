//! The AWS IAM policy document: RDS, Route 53, S3, CloudFront, ELBv2, EKS, Secrets
//! Manager, EC2 and ElastiCache actions on the plan's resources.
//!
//! Actions follow the SDK calls of `dr-aws`:
//!
//! | operation | calls | actions |
//! |---|---|---|
//! | describe, wait | `DescribeDBInstances` | `rds:DescribeDBInstances` |
//! | list / describe snapshots | `DescribeDBSnapshots` | `rds:DescribeDBSnapshots` |
//! | create, copy snapshot | `CreateDBSnapshot`, `DescribeDBSnapshots` + `CopyDBSnapshot` | `rds:CreateDBSnapshot`, `rds:CopyDBSnapshot` |
//! | restore | `RestoreDBInstanceFromDBSnapshot`, `RestoreDBInstanceToPointInTime` | the same names |
//! | promote, reboot | `PromoteReadReplica`, `RebootDBInstance` | the same names |
//! | create replica | `DescribeDBInstances` (a cross-region source's ARN) + `CreateDBInstanceReadReplica` | both |
//! | get record | `ListResourceRecordSets` | `route53:ListResourceRecordSets` |
//! | switch record | `ListResourceRecordSets` + `ChangeResourceRecordSets` (UPSERT) | both; the change limited to the plan's record names |
//! | wait change | `GetChange` | `route53:GetChange` |
//! | put | `PutObject`, or `CreateMultipartUpload`/`UploadPart`/`CompleteMultipartUpload` (`AbortMultipartUpload` on failure) and, when the digest was not given, `PutObjectTagging` to record it | `s3:PutObject`, `s3:AbortMultipartUpload`, `s3:PutObjectTagging` |
//! | get, head | `GetObject`, `HeadObject` (`GetObjectTagging` for a multipart object whose digest is a tag) | `s3:GetObject`, `s3:GetObjectTagging` |
//! | list | `ListObjectsV2` | `s3:ListBucket` (on the bucket) |
//! | delete | `DeleteObject` | `s3:DeleteObject` |
//! | copy | `CopyObject` (or `UploadPartCopy`), tags copied | `s3:GetObject`, `s3:GetObjectTagging`, `s3:PutObject`, `s3:PutObjectTagging` |
//! | describe distribution | `GetDistribution` | `cloudfront:GetDistribution` |
//! | set origin | `GetDistributionConfig` + `UpdateDistribution` (`GetDistribution` when already set) | the three |
//! | target health | `DescribeTargetGroups` (a group named, once) + `DescribeTargetHealth` | both (no resource-level permission: `*`) |
//! | register, deregister targets | `DescribeTargetGroups`, `DescribeTargetHealth` (deregister reads first) + `RegisterTargets` / `DeregisterTargets` | on the target group |
//! | describe node group | `DescribeNodegroup` | `eks:DescribeNodegroup` |
//! | scale node group | `DescribeNodegroup` + `UpdateNodegroupConfig` | both, on the cluster's node groups |
//! | get, put secret value | `GetSecretValue`, `PutSecretValue` | the same names |
//! | describe cache | `DescribeCacheClusters` | `elasticache:DescribeCacheClusters`, on the cache |
//! | list cache backups | `DescribeSnapshots` (the region's) | `elasticache:DescribeSnapshots`, on the region's snapshots |
//! | restore cache | `DescribeSnapshots` (the backup) + `CreateCacheCluster` | both; the create on the cache, the region's snapshots, and the parameter and subnet groups it is created in (the defaults) |
//!
//! One call is left out on purpose: when recording a multipart object's digest fails, `dr-aws`
//! deletes the object it could not complete (`DeleteObject`); a put does not need
//! `s3:DeleteObject` otherwise, so without it that clean-up is refused (the failure it
//! follows is logged and returned).

use std::collections::{BTreeMap, BTreeSet};

use dr_core::permissions::{Need, Resource};
use dr_core::provider::Operation as O;
use dr_core::step::Role;
use serde_json::{json, Value};

use super::Targets;

/// The IAM actions of `op` on a role of kind `role` (`database`, `dns`, `store`).
///
/// # Examples
///
/// ```
/// use dr_core::provider::Operation;
/// let actions = dr_providers::permissions::aws::actions("database", Operation::Promote);
/// assert_eq!(actions, ["rds:PromoteReadReplica"]);
/// ```
pub fn actions(role: &str, op: O) -> Vec<&'static str> {
    match (role, op) {
        ("database", O::Describe) => vec!["rds:DescribeDBInstances"],
        ("database", O::ListSnapshots | O::DescribeSnapshot) => vec!["rds:DescribeDBSnapshots"],
        ("database", O::CreateSnapshot) => vec!["rds:CreateDBSnapshot"],
        ("database", O::CopySnapshot) => vec!["rds:CopyDBSnapshot", "rds:DescribeDBSnapshots"],
        ("database", O::RestoreSnapshot) => vec!["rds:RestoreDBInstanceFromDBSnapshot"],
        ("database", O::RestorePointInTime) => vec!["rds:RestoreDBInstanceToPointInTime"],
        ("database", O::Promote) => vec!["rds:PromoteReadReplica"],
        ("database", O::Reboot) => vec!["rds:RebootDBInstance"],
        ("database", O::CreateReplica) => {
            vec!["rds:CreateDBInstanceReadReplica", "rds:DescribeDBInstances"]
        }
        ("dns", O::GetRecord) => vec!["route53:ListResourceRecordSets"],
        ("dns", O::SwitchRecord) => vec![
            "route53:ChangeResourceRecordSets",
            "route53:ListResourceRecordSets",
        ],
        ("dns", O::WaitChange) => vec!["route53:GetChange"],
        ("dns", O::HealthCheckStatus) => vec!["route53:GetHealthCheckStatus"],
        ("store", O::Put) => vec![
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:PutObjectTagging",
        ],
        ("store", O::PutIf) => vec!["s3:PutObject"],
        ("store", O::Get | O::Head) => vec!["s3:GetObject", "s3:GetObjectTagging"],
        ("store", O::GetVersioned) => vec!["s3:GetObject"],
        ("store", O::List) => vec!["s3:ListBucket"],
        ("store", O::Delete) => vec!["s3:DeleteObject"],
        ("store", O::Copy) => vec![
            "s3:GetObject",
            "s3:GetObjectTagging",
            "s3:PutObject",
            "s3:PutObjectTagging",
        ],
        ("cdn", O::DescribeDistribution) => vec!["cloudfront:GetDistribution"],
        ("cdn", O::SetOrigin) => vec![
            "cloudfront:GetDistribution",
            "cloudfront:GetDistributionConfig",
            "cloudfront:UpdateDistribution",
        ],
        ("load_balancer", O::TargetHealth) => vec![
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
        ],
        ("load_balancer", O::RegisterTargets) => vec![
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:RegisterTargets",
        ],
        ("load_balancer", O::DeregisterTargets) => vec![
            "elasticloadbalancing:DeregisterTargets",
            "elasticloadbalancing:DescribeTargetGroups",
            "elasticloadbalancing:DescribeTargetHealth",
        ],
        ("nodes", O::DescribeNodeGroup) => vec!["eks:DescribeNodegroup"],
        ("nodes", O::ScaleNodeGroup) => vec!["eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"],
        ("secrets", O::GetSecretValue) => vec!["secretsmanager:GetSecretValue"],
        ("secrets", O::PutSecretValue) => vec!["secretsmanager:PutSecretValue"],
        // Tags are applied by `CreateSnapshot` itself, which needs `ec2:CreateTags` for it.
        ("volumes", O::CreateVolumeSnapshot) => vec!["ec2:CreateSnapshot", "ec2:CreateTags"],
        ("volumes", O::DescribeVolumeSnapshot | O::FindVolumeSnapshots) => {
            vec!["ec2:DescribeSnapshots"]
        }
        ("caches", O::DescribeCache) => vec!["elasticache:DescribeCacheClusters"],
        ("caches", O::ListCacheBackups) => vec!["elasticache:DescribeSnapshots"],
        // The provider describes the backup before it creates the cache from it.
        ("caches", O::RestoreCache) => vec![
            "elasticache:CreateCacheCluster",
            "elasticache:DescribeSnapshots",
        ],
        _ => Vec::new(),
    }
}

/// The ARNs `action` needs on a CDN, load balancer, node capacity or secret manager role:
/// the role's key names the resource (`None` for the other roles).
fn role_arns(action: &str, role: &Role, t: &Targets<'_>) -> Option<Vec<String>> {
    let account = t.aws_account();
    let arn = match role {
        Role::Cdn { distribution } => {
            format!("arn:aws:cloudfront::{account}:distribution/{distribution}")
        }
        // ELBv2's Describe* actions have no resource-level permissions.
        Role::LoadBalancer { .. } if action.starts_with("elasticloadbalancing:Describe") => {
            "*".to_string()
        }
        Role::LoadBalancer { group } if group.starts_with("arn:") => group.clone(),
        Role::LoadBalancer { group } => format!(
            "arn:aws:elasticloadbalancing:{}:{account}:targetgroup/{group}/*",
            t.lb_region(group)
        ),
        Role::Nodes { cluster } => {
            let (region, name) = t.eks_cluster(cluster);
            format!("arn:aws:eks:{region}:{account}:nodegroup/{name}/*")
        }
        // The secret's name is the step's; its ARN ends in a random suffix.
        Role::Secrets { region } => format!("arn:aws:secretsmanager:{region}:{account}:secret:*"),
        // `DescribeSnapshots` has no resource-level permissions.
        Role::Volumes { .. } if action == "ec2:DescribeSnapshots" => "*".to_string(),
        // A snapshot is made of a volume; its id (and so its ARN) is only known after, and
        // snapshot ARNs carry no account.
        Role::Volumes { region } => {
            return Some(vec![
                format!("arn:aws:ec2:{region}:{account}:volume/*"),
                format!("arn:aws:ec2:{region}::snapshot/*"),
            ])
        }
        _ => return None,
    };
    Some(vec![arn])
}

/// The ARNs `action` needs for `resources` of a call on `role`.
fn arns(action: &str, role: &Role, resources: &[Resource], t: &Targets<'_>) -> Vec<String> {
    if let Some(arns) = role_arns(action, role, t) {
        return arns;
    }
    let account = t.aws_account();
    let mut out = Vec::new();
    for r in resources {
        match r {
            Resource::Database { region, id } => {
                // A snapshot action on a database names its snapshots too (below); the
                // database's ARN is what RDS authorises for instance actions.
                out.push(format!(
                    "arn:aws:rds:{}:{account}:db:{id}",
                    t.aws_region(region)
                ));
            }
            Resource::Snapshot { region, id } => {
                if action == "rds:DescribeDBInstances" {
                    continue;
                }
                out.push(format!(
                    "arn:aws:rds:{}:{account}:snapshot:{}",
                    t.aws_region(region),
                    id.as_deref().unwrap_or("*")
                ));
            }
            Resource::Record { zone, .. } => {
                out.push(format!(
                    "arn:aws:route53:::hostedzone/{}",
                    zone.trim_start_matches("/hostedzone/")
                ));
            }
            Resource::Change { .. } => out.push("arn:aws:route53:::change/*".into()),
            Resource::Objects { store, prefix } => {
                let bucket = t.bucket(store);
                if action == "s3:ListBucket" {
                    out.push(format!("arn:aws:s3:::{bucket}"));
                } else {
                    out.push(format!("arn:aws:s3:::{bucket}/{prefix}*"));
                }
            }
            Resource::Cache { region, id } => {
                if action == "elasticache:DescribeSnapshots" {
                    continue;
                }
                out.push(format!(
                    "arn:aws:elasticache:{region}:{account}:cluster:{id}"
                ));
                // `CreateCacheCluster` is authorised on the parameter group (required) and
                // the subnet group the cluster is made in too: the defaults here.
                if action == "elasticache:CreateCacheCluster" {
                    out.push(format!(
                        "arn:aws:elasticache:{region}:{account}:parametergroup:*"
                    ));
                    out.push(format!(
                        "arn:aws:elasticache:{region}:{account}:subnetgroup:*"
                    ));
                }
            }
            // The backup restored from is chosen at run time, by name: any of the region's.
            Resource::CacheBackups { region, .. }
                if action != "elasticache:DescribeCacheClusters" =>
            {
                out.push(format!("arn:aws:elasticache:{region}:{account}:snapshot:*"));
            }
            Resource::Any { .. } => out.push(match role {
                Role::Database { region } => {
                    format!("arn:aws:rds:{}:{account}:*", t.aws_region(region))
                }
                Role::Dns { zone } => format!("arn:aws:route53:::hostedzone/{zone}"),
                Role::Store { store } => format!("arn:aws:s3:::{}/*", t.bucket(store)),
                _ => "*".into(),
            }),
            _ => {}
        }
    }
    if action == "route53:GetHealthCheckStatus" {
        out.push("arn:aws:route53:::healthcheck/*".into());
    }
    out
}

/// The record names of a zone's switches, as Route 53 normalises them for the
/// `route53:ChangeResourceRecordSetsNormalizedRecordNames` condition (lower case, no
/// trailing dot).
fn normalized(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Statements by (resources, condition as JSON text): their actions and condition.
type Merged = BTreeMap<(Vec<String>, Option<String>), (Vec<String>, Option<Value>)>;

/// The policy document for `needs` (the calls served by AWS).
pub(crate) fn policy(needs: &[&Need], t: &Targets<'_>) -> Value {
    // (action, condition as JSON text) -> resources
    type Key = (String, Option<String>);
    let mut grants: BTreeMap<String, BTreeMap<Key, BTreeSet<String>>> = BTreeMap::new();
    let mut switched: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in needs {
        if let (Some(O::SwitchRecord), Role::Dns { zone }) = (n.provider_operation(), &n.role) {
            for r in &n.resources {
                if let Resource::Record { name, .. } = r {
                    switched
                        .entry(zone.clone())
                        .or_default()
                        .insert(normalized(name));
                }
            }
        }
    }
    for n in needs {
        let Some(op) = n.provider_operation() else {
            continue;
        };
        for action in actions(n.role.name(), op) {
            let condition = match (action, &n.role) {
                ("route53:ChangeResourceRecordSets", Role::Dns { zone }) => {
                    let names: Vec<&String> = switched
                        .get(zone)
                        .map(|s| s.iter().collect())
                        .unwrap_or_default();
                    Some(json!({
                        "ForAllValues:StringEquals": {
                            "route53:ChangeResourceRecordSetsNormalizedRecordNames": names,
                            "route53:ChangeResourceRecordSetsActions": ["UPSERT"],
                        }
                    }))
                }
                _ => None,
            };
            let service = action.split(':').next().unwrap_or("").to_string();
            grants
                .entry(service)
                .or_default()
                .entry((action.to_string(), condition.map(|c| c.to_string())))
                .or_default()
                .extend(arns(action, &n.role, &n.resources, t));
        }
    }
    // One statement per service and set of (resources, condition): actions on the same
    // resources together.
    let mut statements = Vec::new();
    for (service, by_action) in grants {
        let mut merged: Merged = BTreeMap::new();
        for ((action, condition), resources) in by_action {
            let parsed = condition
                .as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok());
            let key = (resources.into_iter().collect::<Vec<_>>(), condition);
            let entry = merged.entry(key).or_insert((Vec::new(), parsed));
            entry.0.push(action);
        }
        for (n, ((resources, _), (actions, condition))) in merged.into_iter().enumerate() {
            let mut s = json!({
                "Sid": format!("{}{}", capitalised(&service), n + 1),
                "Effect": "Allow",
                "Action": actions,
                "Resource": resources,
            });
            if let (Some(c), Some(obj)) = (condition, s.as_object_mut()) {
                obj.insert("Condition".into(), c);
            }
            statements.push(s);
        }
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}
