//! `run-plan --permissions`, through the function `run-plan` calls: the documents parse (the
//! JSON object, and the text's JSON and YAML sections), and they name every call of the dry
//! run of every scenario of every bundled plan — the IAM actions of each RDS, Route 53, S3 and
//! ElastiCache call, the RBAC rule of each Kubernetes call. With the Kubernetes control plane of
//! `scripts/test.sh` (RBAC on), the printed Roles are applied and bound to a ServiceAccount,
//! the cluster rebuild runs with only that account's token and succeeds, and a call outside
//! the Roles is refused by the API server with a 403 naming what is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use dr_core::step::StepRegistry;
use dr_examples::permissions::{documents_with, PermissionsOptions};
use dr_examples::{plans_dir, run_scenario_with, Console, RunOptions, EXIT_OK};
use dr_providers::permissions::{aws, azure, gcs, k8s, Documents};
use serde_json::Value;

fn bundled_plans() -> Vec<PathBuf> {
    let mut plans: Vec<PathBuf> = std::fs::read_dir(plans_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    plans.sort();
    plans
}

/// The plan's own step kinds of the bundled plans (`feature_flag`) besides the built-in ones.
fn registry() -> StepRegistry {
    dr_examples::feature_flag::registry()
}

async fn docs(plan: &Path, scenario: Option<&str>, providers: Option<PathBuf>) -> Documents {
    let opts = PermissionsOptions {
        scenario: scenario.map(str::to_string),
        providers,
        json: true,
        seed: 42,
    };
    documents_with(plan, &opts, &registry())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", plan.display()))
}

/// The documents as `--json` prints them and as the text prints them, parsed back.
fn parses(d: &Documents) {
    let json = serde_json::to_string_pretty(d).unwrap();
    let back: Value = serde_json::from_str(&json).expect("--json is one JSON object");
    assert_eq!(back["plan"], d.plan.as_str());
    let text = d.to_text();
    let mut sections = text.split("\n## ").skip(1);
    let mut yaml_docs = 0;
    for section in sections.by_ref() {
        let (title, body) = section.split_once('\n').unwrap();
        let body = body.trim();
        if title.starts_with("Kubernetes") {
            for doc in serde_yaml_ng::Deserializer::from_str(body) {
                let v: Value = serde::Deserialize::deserialize(doc).expect("the RBAC YAML parses");
                assert_eq!(v["apiVersion"], k8s::RBAC_API_VERSION, "{v}");
                yaml_docs += 1;
            }
        } else if !title.starts_with("Notes") {
            let v: Value = serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("section {title} is not JSON ({e}):\n{body}"));
            assert!(v.is_object(), "{title}");
        }
    }
    assert_eq!(yaml_docs, d.kubernetes.len(), "{text}");
    if let Some(p) = &d.aws {
        assert_eq!(p["Version"], "2012-10-17");
        for s in p["Statement"].as_array().unwrap() {
            assert_eq!(s["Effect"], "Allow");
            let sid = s["Sid"].as_str().unwrap();
            assert!(sid.chars().all(|c| c.is_ascii_alphanumeric()), "{sid}");
            assert!(!s["Action"].as_array().unwrap().is_empty());
            // ELBv2's Describe* actions have no resource-level permissions: `*` is the
            // only resource they take, and only they may have it.
            let describe_only = s["Action"].as_array().unwrap().iter().all(|a| {
                a.as_str()
                    .unwrap()
                    .starts_with("elasticloadbalancing:Describe")
            });
            for r in s["Resource"].as_array().unwrap() {
                let r = r.as_str().unwrap();
                assert!(
                    r.starts_with("arn:aws:") || (r == "*" && describe_only),
                    "{r} for {}",
                    s["Action"]
                );
            }
        }
    }
}

fn policy_has(d: &Documents, action: &str, resource: Option<&str>) -> bool {
    let Some(p) = &d.aws else { return false };
    p["Statement"].as_array().unwrap().iter().any(|s| {
        s["Action"].as_array().unwrap().iter().any(|a| a == action)
            && resource.is_none_or(|r| s["Resource"].as_array().unwrap().iter().any(|x| x == r))
    })
}

/// The rules of the Role of `cluster` in `namespace`.
fn role_rules<'a>(d: &'a Documents, cluster: &str, namespace: &str) -> Vec<&'a Value> {
    d.kubernetes
        .iter()
        .filter(|o| {
            o["kind"] == "Role"
                && o["metadata"]["namespace"] == namespace
                && o["metadata"]["annotations"]["dr-orchestrator/cluster"] == cluster
        })
        .flat_map(|o| o["rules"].as_array().unwrap().iter())
        .collect()
}

fn rule_allows(rules: &[&Value], group: &str, resource: &str, verb: &str, name: &str) -> bool {
    rules.iter().any(|r| {
        let has = |field: &str, v: &str| r[field].as_array().unwrap().iter().any(|x| x == v);
        has("apiGroups", group)
            && has("resources", resource)
            && has("verbs", verb)
            && r.get("resourceNames")
                .is_none_or(|n| n.as_array().unwrap().iter().any(|x| x == name))
    })
}

/// The dry run's calls of `scenario`, as `run-plan --dry-run --json` lists them.
async fn dry_run_calls(plan: &Path, scenario: &str) -> Option<Vec<Value>> {
    let console = Console::captured();
    let opts = RunOptions {
        dry_run: true,
        json: true,
        ..RunOptions::default()
    };
    let code = run_scenario_with(plan, scenario, &opts, &console, &registry()).await;
    if code != EXIT_OK {
        return None;
    }
    let dry: Value = serde_json::from_str(&console.stdout()).unwrap();
    Some(
        dry["steps"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["calls"].as_array().unwrap().clone())
            .collect(),
    )
}

/// Checks that `d` names `call` of the dry run: the call is in the set, and the platform's
/// document grants what its operation needs.
fn names_call(d: &Documents, call: &Value, context: &str) {
    names_call_except(d, call, context, &[]);
}

/// [`names_call`], for documents of a providers file on which `simulated` clusters need no
/// Role.
fn names_call_except(d: &Documents, call: &Value, context: &str, simulated: &[&str]) {
    let (step, role, op, target) = (
        call["step"].as_str().unwrap(),
        call["provider_role"].as_str().unwrap(),
        call["operation"].as_str().unwrap(),
        call["target"].as_str().unwrap(),
    );
    let need = d
        .calls
        .iter()
        .find(|n| {
            n.step.as_deref() == Some(step)
                && n.role.name() == role
                && n.operation == op
                && n.target == target
        })
        .unwrap_or_else(|| panic!("{context}: {step} {role} {op} {target} is not in the set"));
    let Some(operation) = need.provider_operation() else {
        return; // approvals, webhooks, commands: in the notes
    };
    let json = serde_json::to_value(need).unwrap();
    match role {
        // A managed cache is on ElastiCache unless a providers file leaves its region
        // simulated, which the notes then say.
        "caches"
            if d.notes.iter().any(|n| {
                let region = target.split('/').next().unwrap_or(target);
                n.starts_with(&format!("caches {region}: simulated"))
            }) => {}
        "database" | "dns" | "caches" => {
            for action in aws::actions(role, operation) {
                assert!(
                    policy_has(d, action, None),
                    "{context}: {action} for {json}"
                );
            }
        }
        "store" => {
            // Without a providers file a store is on the cloud its plan kind names.
            let on_aws = aws::actions(role, operation)
                .iter()
                .all(|a| policy_has(d, a, None));
            let on_azure = d.azure.iter().any(|r| {
                azure::data_actions(operation)
                    .iter()
                    .all(|a| r["DataActions"].as_array().unwrap().iter().any(|x| x == a))
            });
            let on_gcs = d.gcs.iter().any(|r| {
                gcs::permissions(operation).iter().all(|p| {
                    r["role"]["includedPermissions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|x| x == p)
                })
            });
            assert!(on_aws || on_azure || on_gcs, "{context}: {json}");
        }
        "cluster" => {
            if need
                .resources
                .iter()
                .filter_map(|r| serde_json::to_value(r).ok())
                .any(|r| simulated.iter().any(|c| r["cluster"] == *c))
            {
                return;
            }
            for r in &need.resources {
                match serde_json::to_value(r).unwrap() {
                    w if w["kind"] == "workload" => {
                        let kind = serde_json::from_value(w["workload"].clone()).unwrap();
                        let rules = role_rules(
                            d,
                            w["cluster"].as_str().unwrap(),
                            w["namespace"].as_str().unwrap(),
                        );
                        for (g, res, verb) in k8s::workload_rules(operation, kind) {
                            assert!(
                                rule_allows(&rules, &g, &res, verb, w["name"].as_str().unwrap()),
                                "{context}: {verb} {g}/{res} for {json}"
                            );
                        }
                    }
                    s if s["kind"] == "secret" => {
                        let rules = role_rules(
                            d,
                            s["cluster"].as_str().unwrap(),
                            s["namespace"].as_str().unwrap(),
                        );
                        let verb = if op == "read_secret" { "get" } else { "patch" };
                        assert!(
                            rule_allows(&rules, "", "secrets", verb, s["name"].as_str().unwrap()),
                            "{context}: {json}"
                        );
                    }
                    n if n["kind"] == "nodes" => {
                        let rules: Vec<&Value> = d
                            .kubernetes
                            .iter()
                            .filter(|o| {
                                o["kind"] == "ClusterRole"
                                    && o["metadata"]["annotations"]["dr-orchestrator/cluster"]
                                        == n["cluster"]
                            })
                            .flat_map(|o| o["rules"].as_array().unwrap().iter())
                            .collect();
                        let (resource, verb) = match op {
                            "list_nodes" => ("nodes", "list"),
                            "cordon_node" => ("nodes", "patch"),
                            _ => ("pods/eviction", "create"),
                        };
                        assert!(
                            rule_allows(&rules, "", resource, verb, ""),
                            "{context}: {verb} {resource} for {json}"
                        );
                    }
                    other => {
                        let (c, ns) = (
                            other["cluster"].as_str().unwrap(),
                            other["namespace"].as_str().unwrap(),
                        );
                        assert!(!role_rules(d, c, ns).is_empty(), "{context}: {json}");
                    }
                }
            }
        }
        _ => {}
    }
}

#[tokio::test(start_paused = true)]
async fn the_documents_parse_and_name_every_call_of_every_bundled_dry_run() {
    let mut checked = 0;
    for plan_path in bundled_plans() {
        let plan = dr_core::plan::Plan::load_with(&plan_path, &registry()).unwrap();
        let all = docs(&plan_path, None, None).await;
        parses(&all);
        for sc in &plan.scenarios {
            let context = format!("{} / {}", plan_path.display(), sc.name);
            let Some(calls) = dry_run_calls(&plan_path, &sc.name).await else {
                panic!("{context}: the dry run failed");
            };
            let one = docs(&plan_path, Some(&sc.name), None).await;
            parses(&one);
            assert_eq!(one.scenarios, std::slice::from_ref(&sc.name));
            for call in &calls {
                names_call(&one, call, &context);
                names_call(&all, call, &context);
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "only {checked} calls checked");
}

#[tokio::test(start_paused = true)]
async fn the_region_failover_policy_names_the_plan_resources() {
    let plan = plans_dir().join("region-failover.yaml");
    let d = docs(&plan, Some("region-failover"), None).await;
    for (action, arn) in [
        (
            "rds:PromoteReadReplica",
            "arn:aws:rds:us-west-2:*:db:shop-prod-west",
        ),
        (
            "rds:DescribeDBInstances",
            "arn:aws:rds:us-west-2:*:db:shop-prod-west",
        ),
        // The no-split-brain interlock reads the old primary before the promotion.
        (
            "rds:DescribeDBInstances",
            "arn:aws:rds:us-east-1:*:db:shop-prod",
        ),
        (
            "route53:ChangeResourceRecordSets",
            "arn:aws:route53:::hostedzone/Z0SHOP",
        ),
        (
            "route53:ListResourceRecordSets",
            "arn:aws:route53:::hostedzone/Z0SHOP",
        ),
        ("route53:GetChange", "arn:aws:route53:::change/*"),
        // The session cache, restored in the DR region from any of its backups there.
        (
            "elasticache:DescribeCacheClusters",
            "arn:aws:elasticache:us-west-2:*:cluster:shop-sessions-dr",
        ),
        (
            "elasticache:CreateCacheCluster",
            "arn:aws:elasticache:us-west-2:*:cluster:shop-sessions-dr",
        ),
        (
            "elasticache:CreateCacheCluster",
            "arn:aws:elasticache:us-west-2:*:snapshot:*",
        ),
        (
            "elasticache:DescribeSnapshots",
            "arn:aws:elasticache:us-west-2:*:snapshot:*",
        ),
    ] {
        assert!(policy_has(&d, action, Some(arn)), "{action} on {arn}");
    }
    assert!(!policy_has(&d, "rds:RebootDBInstance", None));
    let rules = role_rules(&d, "dr-west", "shop");
    assert!(rule_allows(
        &rules,
        "apps",
        "deployments/scale",
        "patch",
        "api"
    ));
    assert!(!rule_allows(&rules, "", "pods", "delete", "api"));
    // Nothing of the failed primary region's cluster is changed.
    let east = role_rules(&d, "prod-east", "shop");
    assert!(!east
        .iter()
        .any(|r| r["verbs"].as_array().unwrap().iter().any(|v| v == "patch")));
}

#[tokio::test(start_paused = true)]
async fn a_providers_file_puts_each_role_on_its_platform() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("providers.yaml");
    std::fs::write(
        &file,
        "aws: { account: \"123456789012\" }\n\
         databases:\n  us-east-1: { kind: rds }\n  us-west-2: { kind: rds, region: us-west-1 }\n\
         dns:\n  Z0SHOP: { kind: route53 }\n\
         clusters:\n  prod-east: { kind: simulated }\n  dr-west: { kind: kubernetes, context: dr-west }\n\
         stores:\n  backups-west: { kind: azure_blob, account: shopdr, container: dr-backups }\n  \
         evidence: { kind: gcs, bucket: shop-evidence }\n\
         default: simulated\n",
    )
    .unwrap();
    let plan = plans_dir().join("region-failover.yaml");
    let d = docs(&plan, None, Some(file)).await;
    parses(&d);
    assert!(d.from_providers_file);
    // Every call of every scenario's dry run, on the platform the file names.
    let loaded = dr_core::plan::Plan::load(&plan).unwrap();
    for sc in &loaded.scenarios {
        let calls = dry_run_calls(&plan, &sc.name).await.unwrap();
        for call in &calls {
            names_call_except(&d, call, &sc.name, &["prod-east"]);
        }
    }
    // The account and the AWS region of the file.
    assert!(policy_has(
        &d,
        "rds:PromoteReadReplica",
        Some("arn:aws:rds:us-west-1:123456789012:db:shop-prod-west")
    ));
    // Stores on Azure and GCS: no S3 action at all.
    assert!(!policy_has(&d, "s3:PutObject", None));
    let scope = d.azure[0]["AssignableScopes"][0].as_str().unwrap();
    assert!(
        scope.ends_with("/storageAccounts/shopdr/blobServices/default/containers/dr-backups"),
        "{scope}"
    );
    assert!(d.azure[0]["DataActions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == &format!("{}/read", azure::BLOBS)));
    let g = &d.gcs[0];
    assert_eq!(g["binding"]["resource"], "projects/_/buckets/shop-evidence");
    assert!(g["role"]["includedPermissions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "storage.objects.create"));
    // The simulated cluster has no Role; it is in the notes.
    assert!(d
        .kubernetes
        .iter()
        .all(|o| o["metadata"]["annotations"]["dr-orchestrator/cluster"] == "dr-west"));
    assert!(d
        .notes
        .iter()
        .any(|n| n.starts_with("cluster prod-east: simulated")));
}

#[tokio::test(start_paused = true)]
async fn an_unknown_scenario_is_refused() {
    let plan = plans_dir().join("region-failover.yaml");
    let opts = PermissionsOptions {
        scenario: Some("nope".into()),
        ..PermissionsOptions::default()
    };
    let err = documents_with(&plan, &opts, &registry()).await.unwrap_err();
    assert!(err.contains("unknown scenario `nope`"), "{err}");
    let console = Console::captured();
    let code = dr_examples::permissions::print(&plan, &opts, &console).await;
    assert_eq!(code, dr_examples::EXIT_INVALID);
}

#[cfg(feature = "k8s")]
mod rbac {
    //! The printed Roles on a real API server with RBAC.

    use std::sync::Arc;
    use std::time::Duration;

    use dr_core::executor::Executor;
    use dr_core::plan::Plan;
    use dr_core::planner;
    use dr_core::provider::{ClusterDeployer, WorkloadRef};
    use dr_core::simulation::Simulation;
    use dr_examples::{real_time_sim, SimulatedOnCall};
    use dr_k8s::kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
    use dr_k8s::kube::config::{AuthInfo, Config, KubeConfigOptions};
    use dr_k8s::kube::core::{ApiResource, GroupVersionKind};
    use dr_k8s::KubeDeployer;
    use serde_json::{json, Value};

    use super::*;

    fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    async fn apply(client: &dr_k8s::kube::Client, obj: &Value) {
        let kind = obj["kind"].as_str().unwrap();
        let (group, version) = obj["apiVersion"]
            .as_str()
            .unwrap()
            .rsplit_once('/')
            .unwrap_or(("", obj["apiVersion"].as_str().unwrap()));
        let plural = format!("{}s", kind.to_ascii_lowercase());
        let ar = resource(group, version, kind, &plural);
        let name = obj["metadata"]["name"].as_str().unwrap();
        let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        api.patch(
            name,
            &PatchParams::apply("dr-permissions-test").force(),
            &Patch::Apply(obj),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_printed_roles_suffice_for_the_cluster_rebuild_and_a_call_outside_is_refused() {
        let Some(context) = dr_core::testkit::standin("DR_K8S_CONTEXT", "Kubernetes") else {
            return;
        };
        // The bundled plan in namespaces of this run's own, under a name of its own (the
        // ClusterRole's name is cluster-wide); the simulated probe cannot see a real cluster.
        let run = dr_core::testkit::unique("perms");
        let mut plan = Plan::load(plans_dir().join("region-failover.yaml")).unwrap();
        plan.name = run.clone();
        for s in &mut plan.services {
            s.health_check = None;
        }
        // Without health checks, no DNS target can be judged (as the example does).
        plan.interlocks
            .retain(|i| *i != dr_core::plan::Interlock::HealthyTarget);
        for w in plan
            .clusters
            .iter_mut()
            .flat_map(|c| c.workloads.iter_mut())
        {
            w.namespace = format!("{run}-{}", w.namespace);
        }
        let dir = tempfile::tempdir().unwrap();
        let plan_file = dir.path().join("plan.yaml");
        std::fs::write(&plan_file, serde_yaml_ng::to_string(&plan).unwrap()).unwrap();
        let d = docs(&plan_file, Some("cluster-rebuild"), None).await;
        assert!(!d.kubernetes.is_empty());

        let admin = KubeDeployer::builder()
            .cluster_from_context("admin", &context)
            .build()
            .await
            .expect("the context loads")
            .client("admin")
            .unwrap();
        let shop = format!("{run}-shop");
        let mut namespaces: Vec<String> = plan
            .clusters
            .iter()
            .flat_map(|c| c.workloads.iter().map(|w| w.namespace.clone()))
            .collect();
        namespaces.sort();
        namespaces.dedup();
        for ns in &namespaces {
            apply(
                &admin,
                &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .await;
        }
        let sa = "dr-runner";
        apply(
            &admin,
            &json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": sa, "namespace": shop}}),
        )
        .await;
        let subject = json!([{"kind": "ServiceAccount", "name": sa, "namespace": shop}]);
        let mut cluster_scoped = Vec::new();
        for obj in &d.kubernetes {
            apply(&admin, obj).await;
            let name = obj["metadata"]["name"].as_str().unwrap();
            let binding = match obj["kind"].as_str().unwrap() {
                "Role" => json!({"apiVersion": k8s::RBAC_API_VERSION, "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": obj["metadata"]["namespace"]},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    "subjects": subject}),
                _ => {
                    cluster_scoped.push(name.to_string());
                    json!({"apiVersion": k8s::RBAC_API_VERSION, "kind": "ClusterRoleBinding",
                    "metadata": {"name": name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                    "subjects": subject})
                }
            };
            apply(&admin, &binding).await;
        }

        // A token of that account only (TokenRequest), and a client that uses nothing else.
        let accounts: Api<DynamicObject> = Api::namespaced_with(
            admin.clone(),
            &shop,
            &resource("", "v1", "ServiceAccount", "serviceaccounts"),
        );
        let request = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                             "spec": {"expirationSeconds": 600}});
        let answer: Value = accounts
            .create_subresource("token", sa, &PostParams::default(), &request)
            .await
            .expect("a token");
        let token = answer["status"]["token"].as_str().unwrap().to_string();
        let mut config = Config::from_kubeconfig(&KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        })
        .await
        .unwrap();
        config.auth_info = AuthInfo {
            token: Some(token.into()),
            ..AuthInfo::default()
        };
        let limited = dr_k8s::kube::Client::try_from(config).unwrap();
        let k8s = Arc::new(
            KubeDeployer::builder()
                .cluster("prod-east", limited.clone())
                .cluster("dr-west", limited)
                .build()
                .await
                .unwrap(),
        );

        // The scenario's Kubernetes part on the API server, databases and DNS simulated.
        let sim = Simulation::new(&plan, 42, real_time_sim());
        let providers = sim
            .providers()
            .with_cluster_named("prod-east", k8s.clone())
            .with_cluster_named("dr-west", k8s.clone());
        let observed = sim.observe().await;
        let graph = planner::plan(&plan, "cluster-rebuild", &observed).unwrap();
        let executor = Executor::new(providers)
            .clock(dr_core::Clock::new())
            .approvals(Arc::new(SimulatedOnCall {
                delay: Duration::from_secs(1),
            }));
        let report = executor.run(&graph).await;
        let rebuilt = report.succeeded();

        // A call outside the Roles: scaling (the region failover's step) is not granted.
        let api = WorkloadRef::deployment("dr-west", &shop, "api");
        let refused = k8s.scale(&api, 5).await;

        for ns in &namespaces {
            let all: Api<DynamicObject> = Api::all_with(
                admin.clone(),
                &resource("", "v1", "Namespace", "namespaces"),
            );
            let _ = all.delete(ns, &DeleteParams::default()).await;
        }
        for name in &cluster_scoped {
            for (kind, plural) in [
                ("ClusterRoleBinding", "clusterrolebindings"),
                ("ClusterRole", "clusterroles"),
            ] {
                let api: Api<DynamicObject> = Api::all_with(
                    admin.clone(),
                    &resource("rbac.authorization.k8s.io", "v1", kind, plural),
                );
                let _ = api.delete(name, &DeleteParams::default()).await;
            }
        }

        assert!(rebuilt, "{report}");
        let err = refused.expect_err("scaling is outside the printed Roles");
        let message = err.to_string();
        assert!(
            matches!(err, dr_core::Error::Unauthorized { .. }),
            "{message}"
        );
        assert!(
            message.contains("cannot patch resource \"deployments/scale\""),
            "{message}"
        );
        assert!(
            message.contains(&format!("system:serviceaccount:{shop}:{sa}")),
            "{message}"
        );
    }
}
