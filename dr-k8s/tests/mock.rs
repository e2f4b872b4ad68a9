//! Scripted request/response tests (kube-rs's own pattern, `tower_test::mock`): every call's
//! method, path, query, content type and body are asserted.

use std::collections::BTreeMap;

use dr_core::provider::{ClusterDeployer, Manifest, WorkloadKind, WorkloadRef};
use dr_core::{Error, Retry, Secret};
use dr_k8s::KubeDeployer;
use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// What a request must be, and the answer to give.
struct Expect {
    method: &'static str,
    uri: String,
    content_type: Option<&'static str>,
    body: Body_,
    status: u16,
    reply: Value,
}

enum Body_ {
    Any,
    Exact(Value),
    Check(fn(&Value)),
}

fn expect(method: &'static str, uri: impl Into<String>) -> Expect {
    Expect {
        method,
        uri: uri.into(),
        content_type: None,
        body: Body_::Any,
        status: 200,
        reply: json!({}),
    }
}

impl Expect {
    fn content_type(mut self, ct: &'static str) -> Self {
        self.content_type = Some(ct);
        self
    }
    fn body(mut self, body: Value) -> Self {
        self.body = Body_::Exact(body);
        self
    }
    fn check(mut self, f: fn(&Value)) -> Self {
        self.body = Body_::Check(f);
        self
    }
    fn reply(mut self, status: u16, reply: Value) -> Self {
        self.status = status;
        self.reply = reply;
        self
    }
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
           "reason": reason, "message": format!("{reason} (test)")})
}

/// A deployer whose cluster `dr` answers from `script`, in order; the join handle panics if a
/// request differs or one is missing.
fn scripted(
    script: Vec<Expect>,
) -> (
    impl std::future::Future<Output = KubeDeployer>,
    JoinHandle<()>,
) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let server = tokio::spawn(serve(handle, script));
    let deployer = async move {
        KubeDeployer::builder()
            .cluster("dr", client)
            .build()
            .await
            .expect("builds")
    };
    (deployer, server)
}

async fn serve(mut handle: Handle, script: Vec<Expect>) {
    for (i, e) in script.into_iter().enumerate() {
        let (req, send) = handle
            .next_request()
            .await
            .expect("the client sent no request");
        let uri = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        assert_eq!(
            (req.method().as_str(), uri.as_str()),
            (e.method, e.uri.as_str()),
            "request {i}"
        );
        if let Some(ct) = e.content_type {
            let got = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            assert_eq!(got, Some(ct), "content type of request {i} ({uri})");
        }
        let bytes = req.into_body().collect_bytes().await.expect("body");
        match e.body {
            Body_::Any => {}
            Body_::Exact(want) => {
                let got: Value = serde_json::from_slice(&bytes).expect("a JSON body");
                assert_eq!(got, want, "body of request {i} ({uri})");
            }
            Body_::Check(f) => f(&serde_json::from_slice(&bytes).expect("a JSON body")),
        }
        let resp = Response::builder()
            .status(e.status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&e.reply).expect("json")))
            .expect("response");
        send.send_response(resp);
    }
}

const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const SSA_QUERY: &str = "&force=true&fieldManager=dr-orchestrator";

fn api() -> WorkloadRef {
    WorkloadRef::deployment("dr", "shop", "api")
}

fn deployment(revision: u64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop", "uid": "dep-uid", "generation": 5,
                     "resourceVersion": "100",
                     "annotations": {"deployment.kubernetes.io/revision": revision.to_string()}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api"}},
                              "spec": {"containers": [{"name": "app", "image": "api:3",
                                  "env": [{"name": "MODE", "value": "dr"},
                                          {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]}}},
        "status": {"observedGeneration": 5, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    })
}

fn replica_set(revision: u64, image: &str, owner: &str) -> Value {
    json!({
        "metadata": {"name": format!("api-{revision}"), "namespace": "shop",
                     "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api",
                                          "uid": owner, "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "api"}},
                 "template": {"metadata": {"labels": {"app": "api", "pod-template-hash": format!("h{revision}")}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}}
    })
}

#[tokio::test]
async fn apply_creates_the_namespace_and_applies_server_side_in_restore_order() {
    let (deployer, server) = scripted(vec![
        expect("GET", "/api/v1/namespaces/shop").reply(404, status(404, "NotFound")),
        expect("POST", "/api/v1/namespaces?")
            .body(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
            .reply(
                201,
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            ),
        // The ConfigMap comes before the Deployment, whatever the manifest order.
        expect(
            "PATCH",
            format!("/api/v1/namespaces/shop/configmaps/cfg?{SSA_QUERY}"),
        )
        .content_type(APPLY)
        .body(json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "cfg", "namespace": "shop"}, "data": {"a": "1"}}))
        .reply(
            200,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}),
        ),
        expect(
            "PATCH",
            format!("/apis/apps/v1/namespaces/shop/deployments/api?{SSA_QUERY}"),
        )
        .content_type(APPLY)
        .check(|b| {
            assert_eq!(
                b["metadata"],
                json!({"name": "api", "namespace": "shop"}),
                "resourceVersion stripped"
            );
            assert_eq!(b["spec"]["replicas"], 2);
        })
        .reply(200, deployment(1)),
    ]);
    let k8s = deployer.await;
    let body = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  resourceVersion: \"9\"\n\
                spec:\n  replicas: 2\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"1\"\n";
    let manifests = [Manifest {
        kind: "bundle".into(),
        name: "app".into(),
        body: body.into(),
    }];
    k8s.apply("dr", "shop", &manifests).await.expect("applies");
    server.await.expect("script followed");
}

#[tokio::test]
async fn apply_discovers_custom_kinds_once() {
    let resources = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "example.com/v1",
        "resources": [{"name": "widgets", "singularName": "widget", "namespaced": true, "kind": "Widget",
                       "verbs": ["get", "list", "patch"]}]});
    let applied =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let (deployer, server) = scripted(vec![
        expect("GET", "/api/v1/namespaces/shop").reply(200, json!({"metadata": {"name": "shop"}})),
        expect("GET", "/apis/example.com/v1").reply(200, resources),
        expect(
            "PATCH",
            format!("/apis/example.com/v1/namespaces/shop/widgets/w?{SSA_QUERY}"),
        )
        .content_type(APPLY)
        .reply(200, applied.clone()),
        expect("GET", "/api/v1/namespaces/shop").reply(200, json!({"metadata": {"name": "shop"}})),
        expect(
            "PATCH",
            format!("/apis/example.com/v1/namespaces/shop/widgets/w?{SSA_QUERY}"),
        )
        .content_type(APPLY)
        .reply(200, applied),
    ]);
    let k8s = deployer.await;
    let m = [Manifest {
        kind: "Widget".into(),
        name: "w".into(),
        body: "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n".into(),
    }];
    k8s.apply("dr", "shop", &m).await.expect("first apply");
    k8s.apply("dr", "shop", &m)
        .await
        .expect("second apply, discovery cached");
    server.await.expect("script followed");
}

#[tokio::test]
async fn apply_refuses_a_manifest_for_another_namespace_and_maps_422() {
    let (deployer, server) = scripted(vec![
        expect("GET", "/api/v1/namespaces/shop").reply(200, json!({"metadata": {"name": "shop"}})),
        expect("GET", "/api/v1/namespaces/shop").reply(200, json!({"metadata": {"name": "shop"}})),
        expect(
            "PATCH",
            format!("/api/v1/namespaces/shop/configmaps/cfg?{SSA_QUERY}"),
        )
        .reply(422, status(422, "Invalid")),
    ]);
    let k8s = deployer.await;
    let other = [Manifest {
        kind: "ConfigMap".into(),
        name: "cfg".into(),
        body: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: prod}\n".into(),
    }];
    let err = k8s
        .apply("dr", "shop", &other)
        .await
        .expect_err("other namespace");
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    let ok = [Manifest {
        kind: "ConfigMap".into(),
        name: "cfg".into(),
        body: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n".into(),
    }];
    let err = k8s.apply("dr", "shop", &ok).await.expect_err("422");
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    assert!(
        err.to_string().contains("ConfigMap shop/cfg on dr"),
        "{err}"
    );
    server.await.expect("script followed");
}

#[tokio::test]
async fn scale_patches_the_scale_subresource() {
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "api"},
                       "spec": {"replicas": 3}});
    let (deployer, server) = scripted(vec![
        expect(
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/api/scale?",
        )
        .content_type(MERGE)
        .body(json!({"spec": {"replicas": 3}}))
        .reply(200, scale),
        expect(
            "PATCH",
            "/apis/apps/v1/namespaces/shop/statefulsets/db/scale?",
        )
        .reply(404, status(404, "NotFound")),
    ]);
    let k8s = deployer.await;
    k8s.scale(&api(), 3).await.expect("scales");
    let db = WorkloadRef {
        kind: WorkloadKind::StatefulSet,
        name: "db".into(),
        ..api()
    };
    let err = k8s.scale(&db, 1).await.expect_err("missing");
    assert!(err.is_not_found());
    assert!(err.to_string().contains("statefulset dr/shop/db"), "{err}");
    server.await.expect("script followed");
}

#[tokio::test]
async fn rollout_restart_stamps_the_template_and_returns_the_next_revision() {
    let (deployer, server) = scripted(vec![
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, deployment(4)),
        expect("PATCH", "/apis/apps/v1/namespaces/shop/deployments/api?")
            .content_type(STRATEGIC)
            .check(|b| {
                let at = b.pointer(
                    "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt",
                );
                let at = at.and_then(Value::as_str).expect("restartedAt set");
                assert!(
                    at.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
                    "RFC 3339: {at}"
                );
                assert_eq!(
                    b.as_object().map(|o| o.len()),
                    Some(1),
                    "only the template annotation"
                );
            })
            .reply(200, deployment(4)),
    ]);
    let k8s = deployer.await;
    assert_eq!(k8s.rollout_restart(&api()).await.expect("restarts"), 5);
    server.await.expect("script followed");
}

fn rs_list() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {"resourceVersion": "100"},
           "items": [replica_set(3, "api:3", "dep-uid"), replica_set(1, "api:1", "dep-uid"),
                     replica_set(2, "api:2", "dep-uid"), replica_set(7, "other:7", "another-uid")]})
}

#[tokio::test]
async fn rollout_undo_copies_the_previous_replica_set_template() {
    let (deployer, server) = scripted(vec![
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, deployment(3)),
        expect(
            "GET",
            "/apis/apps/v1/namespaces/shop/replicasets?&labelSelector=app%3Dapi",
        )
        .reply(200, rs_list()),
        expect("PATCH", "/apis/apps/v1/namespaces/shop/deployments/api?")
            .content_type(STRATEGIC)
            .body(json!({"spec": {"template": {"$patch": "replace",
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "app", "image": "api:2"}]}}}}))
            .reply(200, deployment(3)),
        // --to-revision=1
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, deployment(3)),
        expect(
            "GET",
            "/apis/apps/v1/namespaces/shop/replicasets?&labelSelector=app%3Dapi",
        )
        .reply(200, rs_list()),
        expect("PATCH", "/apis/apps/v1/namespaces/shop/deployments/api?")
            .check(|b| {
                assert_eq!(
                    b.pointer("/spec/template/spec/containers/0/image"),
                    Some(&json!("api:1"))
                )
            })
            .reply(200, deployment(3)),
        // --to-revision=7 belongs to another Deployment.
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, deployment(3)),
        expect(
            "GET",
            "/apis/apps/v1/namespaces/shop/replicasets?&labelSelector=app%3Dapi",
        )
        .reply(200, rs_list()),
    ]);
    let k8s = deployer.await;
    assert_eq!(k8s.rollout_undo(&api(), None).await.expect("undo"), 4);
    assert_eq!(
        k8s.rollout_undo(&api(), Some(1)).await.expect("undo to 1"),
        4
    );
    let err = k8s
        .rollout_undo(&api(), Some(7))
        .await
        .expect_err("unknown revision");
    assert!(err.is_not_found());
    assert!(
        err.to_string()
            .contains("revision 7 of deployment dr/shop/api"),
        "{err}"
    );
    server.await.expect("script followed");
}

#[tokio::test]
async fn rollout_undo_of_a_statefulset_applies_the_controller_revision() {
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "shop", "uid": "sts-uid", "generation": 2},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "pg", "image": "pg:16"}]}}}});
    let cr = |rev: i64, image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": format!("db-{rev}"), "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
            "name": "db", "uid": "sts-uid", "controller": true}]},
        "revision": rev,
        "data": {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "db"}},
                                       "spec": {"containers": [{"name": "pg", "image": image}]}}}}})
    };
    let list = json!({"apiVersion": "apps/v1", "kind": "ControllerRevisionList", "metadata": {},
                      "items": [cr(1, "pg:15"), cr(2, "pg:16")]});
    let (deployer, server) = scripted(vec![
        expect("GET", "/apis/apps/v1/namespaces/shop/statefulsets/db").reply(200, sts.clone()),
        expect(
            "GET",
            "/apis/apps/v1/namespaces/shop/controllerrevisions?&labelSelector=app%3Ddb",
        )
        .reply(200, list),
        expect("PATCH", "/apis/apps/v1/namespaces/shop/statefulsets/db?")
            .content_type(STRATEGIC)
            .body(cr(1, "pg:15")["data"].clone())
            .reply(200, sts),
    ]);
    let k8s = deployer.await;
    let db = WorkloadRef {
        kind: WorkloadKind::StatefulSet,
        name: "db".into(),
        ..api()
    };
    assert_eq!(k8s.rollout_undo(&db, None).await.expect("undo"), 3);
    server.await.expect("script followed");
}

#[tokio::test]
async fn set_image_and_set_env_patch_by_container_name() {
    let (deployer, server) = scripted(vec![
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, deployment(3)),
        expect("PATCH", "/apis/apps/v1/namespaces/shop/deployments/api?")
            .content_type(STRATEGIC)
            .body(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "api:4"}]}}}}))
            .reply(200, deployment(3)),
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, deployment(3)),
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, deployment(3)),
        expect("PATCH", "/apis/apps/v1/namespaces/shop/deployments/api?")
            .content_type(STRATEGIC)
            .body(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [
                {"name": "DB_HOST", "value": "db.dr", "valueFrom": null}]}]}}}}))
            .reply(200, deployment(3)),
    ]);
    let k8s = deployer.await;
    k8s.set_image(&api(), "app", "api:4")
        .await
        .expect("set image");
    let err = k8s
        .set_image(&api(), "sidecar", "x:1")
        .await
        .expect_err("no such container");
    assert!(
        err.is_not_found() && err.to_string().contains("container sidecar"),
        "{err}"
    );
    let env = BTreeMap::from([("DB_HOST".to_string(), "db.dr".to_string())]);
    k8s.set_env(&api(), &env).await.expect("set env");
    k8s.set_env(&api(), &BTreeMap::new())
        .await
        .expect("nothing to set, no request");
    server.await.expect("script followed");
}

#[tokio::test]
async fn patch_secret_merges_base64_data_and_creates_when_missing() {
    let (deployer, server) = scripted(vec![
        expect("PATCH", "/api/v1/namespaces/shop/secrets/app-secrets?")
            .content_type(MERGE)
            .body(json!({"data": {"DATABASE_URL": "cG9zdGdyZXM6Ly9kcg=="}}))
            .reply(404, status(404, "NotFound")),
        expect("POST", "/api/v1/namespaces/shop/secrets?")
            .body(json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                         "metadata": {"name": "app-secrets", "namespace": "shop"},
                         "data": {"DATABASE_URL": "cG9zdGdyZXM6Ly9kcg=="}}))
            .reply(201, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secrets"}})),
        expect("GET", "/api/v1/namespaces/shop/secrets/app-secrets")
            .reply(200, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secrets"},
                               "data": {"DATABASE_URL": "cG9zdGdyZXM6Ly9kcg=="}})),
        expect("GET", "/api/v1/namespaces/shop/secrets/app-secrets")
            .reply(200, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secrets"}, "data": {}})),
    ]);
    let k8s = deployer.await;
    let data = BTreeMap::from([("DATABASE_URL".to_string(), Secret::new("postgres://dr"))]);
    k8s.patch_secret("dr", "shop", "app-secrets", &data)
        .await
        .expect("patched");
    let back = k8s
        .read_secret("dr", "shop", "app-secrets", "DATABASE_URL")
        .await
        .expect("read");
    assert_eq!(back.expose(), "postgres://dr");
    let err = k8s
        .read_secret("dr", "shop", "app-secrets", "MISSING")
        .await
        .expect_err("no key");
    assert!(err.is_not_found());
    assert!(!err.to_string().contains("postgres"), "{err}");
    server.await.expect("script followed");
}

#[tokio::test]
async fn rollout_status_reads_the_deployment_and_its_isolation() {
    let mut rolling = deployment(4);
    rolling["metadata"]["generation"] = json!(6);
    rolling["status"] = json!({"observedGeneration": 5, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3});
    let (deployer, server) = scripted(vec![
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, deployment(3)),
        expect("GET", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/dr-isolate-api")
            .reply(404, status(404, "NotFound")),
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, rolling),
        expect("GET", "/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/dr-isolate-api")
            .reply(200, json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                               "metadata": {"name": "dr-isolate-api"}, "spec": {"podSelector": {}}})),
    ]);
    let k8s = deployer.await;
    let s = k8s.rollout_status(&api()).await.expect("status");
    assert!(s.is_complete() && !s.isolated);
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.available_replicas,
            s.revision
        ),
        (3, 3, 3, 3)
    );
    assert_eq!(s.env.get("MODE").map(String::as_str), Some("dr"));
    assert_eq!(
        s.env.get("DB_PASSWORD").map(String::as_str),
        Some("<secret db/password>")
    );
    let s = k8s.rollout_status(&api()).await.expect("status");
    assert!(!s.observed && s.isolated && !s.is_complete());
    assert_eq!(
        (s.updated_replicas, s.available_replicas, s.revision),
        (1, 1, 4)
    );
    server.await.expect("script followed");
}

#[tokio::test]
async fn isolate_applies_a_deny_all_policy_on_the_pod_selector() {
    let (deployer, server) = scripted(vec![
        expect("GET", "/apis/apps/v1/namespaces/shop/deployments/api").reply(200, deployment(3)),
        expect("PATCH", format!("/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies/dr-isolate-api?{SSA_QUERY}"))
            .content_type(APPLY)
            .body(json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "dr-isolate-api", "namespace": "shop",
                             "labels": {"app.kubernetes.io/managed-by": "dr-orchestrator"}},
                "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Ingress", "Egress"]}}))
            .reply(200, json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                               "metadata": {"name": "dr-isolate-api"}})),
    ]);
    deployer.await.isolate(&api()).await.expect("isolated");
    server.await.expect("script followed");
}

#[tokio::test]
async fn delete_pod_and_error_classes() {
    let (deployer, server) = scripted(vec![
        expect("DELETE", "/api/v1/namespaces/shop/pods/api-1?").reply(
            200,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api-1"}}),
        ),
        expect("DELETE", "/api/v1/namespaces/shop/pods/api-2?")
            .reply(403, status(403, "Forbidden")),
        expect("DELETE", "/api/v1/namespaces/shop/pods/api-3?")
            .reply(429, status(429, "TooManyRequests")),
        expect("DELETE", "/api/v1/namespaces/shop/pods/api-4?")
            .reply(503, status(503, "ServiceUnavailable")),
        expect("DELETE", "/api/v1/namespaces/shop/pods/api-5?").reply(409, status(409, "Conflict")),
    ]);
    let k8s = deployer.await;
    k8s.delete_pod("dr", "shop", "api-1")
        .await
        .expect("deleted");
    let e = k8s
        .delete_pod("dr", "shop", "api-2")
        .await
        .expect_err("403");
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
    let e = k8s
        .delete_pod("dr", "shop", "api-3")
        .await
        .expect_err("429");
    assert!(
        matches!(e, Error::Throttled { .. }) && e.retry() == Retry::Temporary,
        "{e}"
    );
    let e = k8s
        .delete_pod("dr", "shop", "api-4")
        .await
        .expect_err("503");
    assert!(
        matches!(e, Error::Unavailable { .. }) && e.is_retryable(),
        "{e}"
    );
    let e = k8s
        .delete_pod("dr", "shop", "api-5")
        .await
        .expect_err("409");
    assert_eq!(e.retry(), Retry::Permanent, "{e}");
    let e = k8s
        .delete_pod("primary", "shop", "api-1")
        .await
        .expect_err("unknown cluster");
    assert!(
        e.is_not_found() && e.to_string().contains("cluster primary"),
        "{e}"
    );
    server.await.expect("script followed");
}

#[tokio::test]
async fn export_strips_cluster_state_and_pages() {
    let cm_page1 = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"continue": "next"},
        "items": [{"metadata": {"name": "cfg", "namespace": "shop", "uid": "u", "resourceVersion": "5",
                                "managedFields": [{"manager": "kubectl"}]}, "data": {"a": "1"}}]});
    let cm_page2 = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {},
        "items": [{"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "x"}}]});
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {},
        "items": [replica_set(1, "api:1", "dep-uid")]});
    let (deployer, server) = scripted(vec![
        expect("GET", "/api/v1/namespaces/shop/configmaps?&limit=500").reply(200, cm_page1),
        expect(
            "GET",
            "/api/v1/namespaces/shop/configmaps?&limit=500&continue=next",
        )
        .reply(200, cm_page2),
        expect(
            "GET",
            "/apis/apps/v1/namespaces/shop/replicasets?&limit=500",
        )
        .reply(200, rs),
    ]);
    let k8s = deployer.await;
    let out = k8s
        .export("dr", "shop", &["configmaps".into(), "rs".into()])
        .await
        .expect("export");
    assert_eq!(
        out.len(),
        1,
        "generated and controlled objects left out: {out:?}"
    );
    assert_eq!(
        (out[0].kind.as_str(), out[0].name.as_str()),
        ("ConfigMap", "cfg")
    );
    let body: Value = serde_yaml_ng::from_str(&out[0].body).expect("yaml");
    assert_eq!(
        body,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}})
    );
    let err = k8s
        .export("dr", "shop", &["widgets".into()])
        .await
        .expect_err("unknown kind");
    assert!(matches!(err, Error::InvalidRequest { .. }), "{err}");
    server.await.expect("script followed");
}
