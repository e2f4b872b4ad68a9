//! The providers file's CDN, load balancer, node group, secret manager, volume and cache sections: parsing
//! (unknown kinds named), validation (AWS settings, regions, plan clusters), the build into
//! `Providers` with its routes, the calls each step makes routed to them, and the IAM
//! actions and ARNs rendered for them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use dr_core::graph::{RecoveryGraph, Step};
use dr_core::permissions::{PermissionOptions, PermissionSet};
use dr_core::plan::{Format, Plan};
use dr_core::provider::Operation;
use dr_core::step::{Action, Call, Role, StepAction, StepContext};
use dr_providers::{build, permissions, ProvidersConfig};

fn plan() -> Plan {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/plans/region-failover.yaml");
    Plan::load(&path).unwrap()
}

const FILE: &str = r#"
default: simulated
aws: { account: "123456789012", endpoint: "http://127.0.0.1:9" }
cdn:
  E2QWRUHAPOMQZL: { kind: cloudfront }
load_balancers:
  api-west: { kind: elbv2, region: us-west-2 }
  "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-eu/6d0ecf831eec9f09": { kind: elbv2 }
node_groups:
  dr-west: { kind: eks, cluster_name: shop-dr }
secrets:
  us-east-1: { kind: secretsmanager }
volumes:
  us-east-1: { kind: ec2 }
caches:
  us-west-2: { kind: elasticache }
"#;

#[test]
fn the_sections_parse_and_unknown_kinds_are_named() {
    let c = ProvidersConfig::from_yaml(FILE).unwrap();
    assert_eq!(
        c.cdn["E2QWRUHAPOMQZL"].kind,
        dr_providers::CdnKind::Cloudfront
    );
    assert_eq!(
        c.load_balancers["api-west"].region.as_deref(),
        Some("us-west-2")
    );
    assert_eq!(
        c.node_groups["dr-west"].cluster_name.as_deref(),
        Some("shop-dr")
    );
    assert_eq!(
        c.secrets["us-east-1"].kind,
        dr_providers::SecretsKind::Secretsmanager
    );
    assert_eq!(c.volumes["us-east-1"].kind, dr_providers::VolumesKind::Ec2);
    assert_eq!(
        c.caches["us-west-2"].kind,
        dr_providers::CachesKind::Elasticache
    );

    for (text, path, kind, expected) in [
        (
            "cdn:\n  E1: { kind: akamai }\n",
            "cdn.E1.kind",
            "akamai",
            "cloudfront",
        ),
        (
            "load_balancers:\n  g: { kind: nginx }\n",
            "load_balancers.g.kind",
            "nginx",
            "elbv2",
        ),
        (
            "node_groups:\n  dr-west: { kind: gke }\n",
            "node_groups.dr-west.kind",
            "gke",
            "eks",
        ),
        (
            "secrets:\n  us-east-1: { kind: vault }\n",
            "secrets.us-east-1.kind",
            "vault",
            "secretsmanager",
        ),
        (
            "caches:\n  us-west-2: { kind: memorystore }\n",
            "caches.us-west-2.kind",
            "memorystore",
            "elasticache",
        ),
    ] {
        let msg = ProvidersConfig::parse(text, Format::Yaml, "providers.yaml")
            .unwrap_err()
            .to_string();
        assert!(msg.contains(path), "{msg}");
        assert!(msg.contains(&format!("unknown variant `{kind}`")), "{msg}");
        assert!(msg.contains(expected), "{msg}");
    }
    // A field of another kind, and a secrets entry's region (its key is the region).
    let msg = ProvidersConfig::parse(
        "cdn:\n  E1: { kind: cloudfront, cluster_name: x }\n",
        Format::Yaml,
        "p.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("unknown field `cluster_name`"), "{msg}");
    let msg = ProvidersConfig::parse(
        "secrets:\n  us-east-1: { kind: secretsmanager, region: eu-west-1 }\n",
        Format::Yaml,
        "p.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("unknown field `region`"), "{msg}");
    // Credentials are references here too.
    let msg = ProvidersConfig::parse(
        "secrets:\n  us-east-1: { kind: secretsmanager, secret_access_key: wJalrXUtnFEMI }\n",
        Format::Yaml,
        "p.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.contains("cannot be written in the providers file"),
        "{msg}"
    );
    assert!(!msg.contains("wJalrXUtnFEMI"), "{msg}");
}

#[tokio::test]
async fn entries_are_validated_with_every_problem_named() {
    let config = ProvidersConfig::from_yaml(
        r#"
default: simulated
cdn:
  E1: { kind: cloudfront, endpoint: "moto:5000" }
load_balancers:
  api-west: { kind: elbv2 }
node_groups:
  dr-wets: { kind: eks }
  dr-west: { kind: eks, cluster_name: " ", access_key_id: { env: AK } }
secrets:
  us-east-1: { kind: secretsmanager, endpoint: "http://u:pw@127.0.0.1:1" }
caches:
  eu-west-9: { kind: elasticache }
  us-west-2: { kind: elasticache, secret_access_key: { env: SK } }
"#,
    )
    .unwrap();
    let e = build(&config, &plan()).await.unwrap_err();
    let msg = e.to_string();
    let paths: Vec<&str> = e.problems().iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "cdn.E1.endpoint",
        "load_balancers.api-west",
        "node_groups.dr-wets",
        "node_groups.dr-west.cluster_name",
        "node_groups.dr-west",
        "secrets.us-east-1.endpoint",
        "caches.eu-west-9",
        "caches.us-west-2",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(
        msg.contains("which region is target group `api-west` in?"),
        "{msg}"
    );
    assert!(
        msg.contains("the plan has no cluster `dr-wets` (it has: prod-east, dr-west)"),
        "{msg}"
    );
    assert!(
        msg.contains("`access_key_id` and `secret_access_key` go together"),
        "{msg}"
    );
    assert!(
        msg.contains(
            "the plan restores no cache in region `eu-west-9` (it restores caches in: us-west-2)"
        ),
        "{msg}"
    );
    assert!(!msg.contains("pw@"), "{msg}");
}

#[cfg(not(feature = "aws"))]
#[tokio::test]
async fn without_the_aws_feature_each_kind_names_it() {
    let config = ProvidersConfig::from_yaml(FILE).unwrap();
    let msg = build(&config, &plan()).await.unwrap_err().to_string();
    for kind in [
        "cloudfront",
        "elbv2",
        "eks",
        "secretsmanager",
        "ec2",
        "elasticache",
    ] {
        assert!(
            msg.contains(&format!("`{kind}` needs the `aws` feature")),
            "{kind}: {msg}"
        );
    }
}

/// A step that only declares calls: what a run of the new roles' steps would make.
#[derive(Debug)]
struct Declares(Vec<Call>);

#[async_trait]
impl StepAction for Declares {
    fn kind(&self) -> &str {
        "declares"
    }
    fn params(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn calls(&self) -> Vec<Call> {
        self.0.clone()
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(1)
    }
    async fn execute(&self, _: &mut StepContext<'_>) -> dr_core::Result<()> {
        Ok(())
    }
}

fn graph(calls: Vec<Call>) -> RecoveryGraph {
    RecoveryGraph {
        plan: "shop-web".into(),
        scenario: "region-failover".into(),
        steps: vec![Step {
            id: "edge/switch".into(),
            action: Action::new(Declares(calls)),
            service: None,
            depends_on: Vec::new(),
            idempotency_key: "k".into(),
            estimate: Duration::from_secs(1),
            timeout: Duration::from_secs(60),
            critical: true,
            retry: None,
        }],
        critical_path: Vec::new(),
        forecast: Duration::ZERO,
        services: Vec::new(),
        risks: Vec::new(),
        interlocks: Vec::new(),
        compensate_on_failure: false,
        limits: None,
    }
}

fn calls() -> Vec<Call> {
    let cdn = Role::Cdn {
        distribution: "E2QWRUHAPOMQZL".into(),
    };
    let lb = Role::LoadBalancer {
        group: "api-west".into(),
    };
    let arn_lb = Role::LoadBalancer {
        group: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-eu/6d0ecf831eec9f09"
            .into(),
    };
    let nodes = Role::Nodes {
        cluster: "dr-west".into(),
    };
    let secrets = Role::Secrets {
        region: "us-east-1".into(),
    };
    let volumes = Role::Volumes {
        region: "us-east-1".into(),
    };
    vec![
        Call::provider(
            cdn.clone(),
            Operation::DescribeDistribution,
            "E2QWRUHAPOMQZL",
        ),
        Call::provider(cdn, Operation::SetOrigin, "E2QWRUHAPOMQZL -> lb.us-west-2"),
        Call::provider(lb.clone(), Operation::RegisterTargets, "api-west 10.2.0.10"),
        Call::provider(lb, Operation::TargetHealth, "api-west"),
        Call::provider(arn_lb, Operation::DeregisterTargets, "api-eu 10.1.0.10"),
        Call::provider(nodes.clone(), Operation::ScaleNodeGroup, "dr-west/general"),
        Call::provider(nodes, Operation::DescribeNodeGroup, "dr-west/general"),
        Call::provider(secrets.clone(), Operation::GetSecretValue, "shop/orders-db"),
        Call::provider(secrets, Operation::PutSecretValue, "shop/orders-db"),
        Call::provider(
            volumes.clone(),
            Operation::FindVolumeSnapshots,
            "vol-0orders",
        ),
        Call::provider(
            volumes.clone(),
            Operation::CreateVolumeSnapshot,
            "vol-0orders",
        ),
        Call::provider(volumes, Operation::DescribeVolumeSnapshot, "vol-0orders"),
    ]
}

#[test]
fn the_iam_policy_names_each_new_operation_on_its_resource() {
    let plan = plan();
    let config = ProvidersConfig::from_yaml(FILE).unwrap();
    let g = graph(calls());
    let opts = PermissionOptions {
        observe: false,
        preflight: false,
        compensation: false,
    };
    let set = PermissionSet::for_graphs(&plan, [&g], &opts);
    let docs = permissions::render(&set, &plan, Some(&config));
    let policy = docs.aws.expect("an IAM policy");
    let grants = |action: &str| grants(&policy, action);
    let dist = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL";
    for action in [
        "cloudfront:GetDistribution",
        "cloudfront:GetDistributionConfig",
        "cloudfront:UpdateDistribution",
    ] {
        assert_eq!(grants(action), [dist], "{action}");
    }
    let eu =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-eu/6d0ecf831eec9f09";
    assert_eq!(
        grants("elasticloadbalancing:RegisterTargets"),
        ["arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/api-west/*"]
    );
    assert_eq!(grants("elasticloadbalancing:DeregisterTargets"), [eu]);
    // Describe* actions of ELBv2 have no resource-level permissions.
    assert_eq!(grants("elasticloadbalancing:DescribeTargetHealth"), ["*"]);
    assert_eq!(grants("elasticloadbalancing:DescribeTargetGroups"), ["*"]);
    // The EKS cluster's own name and the plan cluster's region.
    let ng = "arn:aws:eks:us-west-2:123456789012:nodegroup/shop-dr/*";
    assert_eq!(grants("eks:UpdateNodegroupConfig"), [ng]);
    assert_eq!(grants("eks:DescribeNodegroup"), [ng]);
    let secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:*";
    assert_eq!(grants("secretsmanager:GetSecretValue"), [secret]);
    assert_eq!(grants("secretsmanager:PutSecretValue"), [secret]);
    // A snapshot of a volume, tagged as it is made; described anywhere.
    let made = [
        "arn:aws:ec2:us-east-1:123456789012:volume/*",
        "arn:aws:ec2:us-east-1::snapshot/*",
    ];
    assert_eq!(grants("ec2:CreateSnapshot"), made);
    assert_eq!(grants("ec2:CreateTags"), made);
    assert_eq!(grants("ec2:DescribeSnapshots"), ["*"]);

    // Without a providers file, these roles are shown on AWS too (the only platform with a
    // provider for them).
    let docs = permissions::render(&set, &plan, None);
    let text = docs.aws.expect("an IAM policy").to_string();
    assert!(text.contains("cloudfront:UpdateDistribution"), "{text}");
    assert!(text.contains("eks:UpdateNodegroupConfig"), "{text}");
    assert!(
        text.contains("arn:aws:eks:us-west-2:*:nodegroup/dr-west/*"),
        "{text}"
    );
}

#[test]
fn each_operation_maps_to_its_iam_actions() {
    use permissions::aws::actions;
    let table: [(&str, Operation, &[&str]); 9] = [
        (
            "cdn",
            Operation::DescribeDistribution,
            &["cloudfront:GetDistribution"],
        ),
        (
            "load_balancer",
            Operation::TargetHealth,
            &[
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
            ],
        ),
        (
            "nodes",
            Operation::ScaleNodeGroup,
            &["eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"],
        ),
        (
            "secrets",
            Operation::PutSecretValue,
            &["secretsmanager:PutSecretValue"],
        ),
        (
            "volumes",
            Operation::CreateVolumeSnapshot,
            &["ec2:CreateSnapshot", "ec2:CreateTags"],
        ),
        (
            "volumes",
            Operation::FindVolumeSnapshots,
            &["ec2:DescribeSnapshots"],
        ),
        (
            "caches",
            Operation::DescribeCache,
            &["elasticache:DescribeCacheClusters"],
        ),
        (
            "caches",
            Operation::ListCacheBackups,
            &["elasticache:DescribeSnapshots"],
        ),
        (
            "caches",
            Operation::RestoreCache,
            &[
                "elasticache:CreateCacheCluster",
                "elasticache:DescribeSnapshots",
            ],
        ),
    ];
    for (role, op, expected) in table {
        assert_eq!(actions(role, op), expected, "{role} {op:?}");
    }
}

/// The IAM policy's resources of each action, from the statements that name it.
fn grants(policy: &serde_json::Value, action: &str) -> Vec<String> {
    let mut out: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
        .flat_map(|s| s["Resource"].as_array().unwrap().clone())
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn the_cache_restore_is_granted_on_the_cache_and_the_regions_snapshots() {
    use dr_core::step::cache::{RestoreCache, WaitCache};
    let plan = plan();
    let config = ProvidersConfig::from_yaml(FILE).unwrap();
    let mut g = graph(Vec::new());
    let restore = RestoreCache {
        region: "us-west-2".into(),
        source: "shop-sessions".into(),
        target: "shop-sessions-dr".into(),
        node_type: None,
    };
    let wait = WaitCache {
        region: "us-west-2".into(),
        id: "shop-sessions-dr".into(),
    };
    g.steps[0].action = Action::new(restore);
    let mut waits = g.steps[0].clone();
    waits.id = "sessions/wait".into();
    waits.action = Action::new(wait);
    g.steps.push(waits);
    let opts = PermissionOptions {
        observe: false,
        preflight: false,
        compensation: false,
    };
    let set = PermissionSet::for_graphs(&plan, [&g], &opts);
    for config in [Some(&config), None] {
        let docs = permissions::render(&set, &plan, config);
        let policy = docs.aws.expect("an IAM policy");
        let account = if config.is_some() {
            "123456789012"
        } else {
            "*"
        };
        let cluster = format!("arn:aws:elasticache:us-west-2:{account}:cluster:shop-sessions-dr");
        let snapshots = format!("arn:aws:elasticache:us-west-2:{account}:snapshot:*");
        // Described before the restore and waited for: on the cache only.
        assert_eq!(
            grants(&policy, "elasticache:DescribeCacheClusters"),
            std::slice::from_ref(&cluster)
        );
        // Listed, and the chosen backup described before the create: any of the region's.
        assert_eq!(
            grants(&policy, "elasticache:DescribeSnapshots"),
            std::slice::from_ref(&snapshots)
        );
        // Created from the backup, in the default parameter and subnet groups.
        assert_eq!(
            grants(&policy, "elasticache:CreateCacheCluster"),
            [
                cluster,
                format!("arn:aws:elasticache:us-west-2:{account}:parametergroup:*"),
                snapshots,
                format!("arn:aws:elasticache:us-west-2:{account}:subnetgroup:*"),
            ]
        );
    }
}

#[cfg(feature = "aws")]
#[tokio::test]
async fn builds_routes_and_routes_each_call_to_its_section() {
    // Static credentials: building checks that credentials resolve, nothing is sent.
    std::env::set_var("DR_TEST_ROLES_AK", "AKIDEXAMPLE");
    std::env::set_var("DR_TEST_ROLES_SK", "not-a-real-secret");
    let text = FILE.replace(
        "endpoint: \"http://127.0.0.1:9\" }",
        "endpoint: \"http://127.0.0.1:9\", access_key_id: { env: DR_TEST_ROLES_AK }, secret_access_key: { env: DR_TEST_ROLES_SK } }",
    );
    let config = ProvidersConfig::from_yaml(&text).unwrap();
    let built = build(&config, &plan()).await.unwrap();
    let route = |role: &str, key: &str| built.route(role, key).unwrap().provider.clone();
    assert_eq!(
        route("cdn", "E2QWRUHAPOMQZL"),
        "cloudfront at http://127.0.0.1:9"
    );
    assert_eq!(
        route("load_balancer", "api-west"),
        "elbv2 us-west-2 at http://127.0.0.1:9"
    );
    assert!(route(
        "load_balancer",
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-eu/6d0ecf831eec9f09"
    )
    .starts_with("elbv2 eu-west-1 "));
    assert_eq!(
        route("nodes", "dr-west"),
        "eks us-west-2 at http://127.0.0.1:9 cluster shop-dr"
    );
    assert_eq!(
        route("secrets", "us-east-1"),
        "secretsmanager us-east-1 at http://127.0.0.1:9"
    );
    assert_eq!(
        built.providers.cdn("E2QWRUHAPOMQZL").unwrap().name(),
        "cloudfront"
    );
    assert_eq!(
        built.providers.load_balancer("api-west").unwrap().name(),
        "elbv2"
    );
    assert_eq!(built.providers.nodes("dr-west").unwrap().name(), "eks");
    assert_eq!(
        built.providers.secrets("us-east-1").unwrap().name(),
        "secretsmanager"
    );
    assert_eq!(
        route("volumes", "us-east-1"),
        "ec2 us-east-1 at http://127.0.0.1:9"
    );
    assert_eq!(built.providers.volumes("us-east-1").unwrap().name(), "ec2");
    assert_eq!(
        route("caches", "us-west-2"),
        "elasticache us-west-2 at http://127.0.0.1:9"
    );
    assert_eq!(
        built.providers.caches("us-west-2").unwrap().name(),
        "elasticache"
    );
    // Under `default: simulated`, a region the file does not map has simulated caches.
    assert_eq!(built.providers.caches("eu-west-1").unwrap().name(), "sim");
    // Under `default: simulated`, a distribution the file does not map is simulated.
    assert_eq!(built.providers.cdn("E0OTHER").unwrap().name(), "sim");

    let routed = built.routed_calls(&graph(calls()));
    let by_op = |op: &str| {
        routed
            .iter()
            .find(|c| c.operation == op)
            .map(|c| c.provider.clone())
            .unwrap()
    };
    assert_eq!(by_op("set_origin"), "cloudfront at http://127.0.0.1:9");
    assert_eq!(
        by_op("register_targets"),
        "elbv2 us-west-2 at http://127.0.0.1:9"
    );
    assert_eq!(
        by_op("scale_node_group"),
        "eks us-west-2 at http://127.0.0.1:9 cluster shop-dr"
    );
    assert_eq!(
        by_op("put_secret_value"),
        "secretsmanager us-east-1 at http://127.0.0.1:9"
    );
    assert_eq!(
        by_op("create_volume_snapshot"),
        "ec2 us-east-1 at http://127.0.0.1:9"
    );

    // The distribution and the target groups are probed before a run; nothing listens on
    // port 9, so each is reported unreachable, naming its call.
    let reach = built.check_reachability(Duration::from_secs(20)).await;
    let calls: Vec<&str> = reach
        .iter()
        .filter(|r| !r.reachable)
        .map(|r| r.call.as_str())
        .collect();
    assert!(
        calls.contains(&"describe_distribution E2QWRUHAPOMQZL"),
        "{calls:?}"
    );
    assert!(calls.contains(&"target_health api-west"), "{calls:?}");
    // The plan's session cache is restored in us-west-2: its backups there are listed.
    assert!(
        calls.contains(&"list_cache_backups us-west-2/shop-sessions"),
        "{calls:?}"
    );
}
