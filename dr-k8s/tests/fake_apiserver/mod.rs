//! A small stateful fake Kubernetes API server, as a tower `Service` for `kube::Client::new`.
//!
//! It keeps objects with resourceVersions and generations, answers 404/409 like the real
//! server (409 `Conflict` on a stale resourceVersion in a replace or patch, 409
//! `AlreadyExists` on a second create), honours server-side apply, JSON merge and strategic
//! merge patches approximately (lists of objects merge by `name`; `$patch: replace`), serves
//! the scale subresource and discovery of the kinds its CRDs define, and plays a minimal
//! Deployment controller: each new pod template gets a ReplicaSet with the next
//! `deployment.kubernetes.io/revision` (rolling back re-uses the matching ReplicaSet), and a
//! rollout completes after a few reads of the Deployment.

#![allow(dead_code, unreachable_pub)]

mod merge;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};

pub use merge::{json_merge, strategic_merge};

/// Key of a stored object: (`api/v1` or `apis/group/version`, plural, namespace or "", name).
type Key = (String, String, String, String);

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    uid: u64,
    /// Reads of a Deployment left before its rollout completes.
    pending: BTreeMap<Key, u32>,
    /// Reads a rollout takes.
    rollout_reads: u32,
    /// Writes, as `METHOD kind name`.
    writes: Vec<String>,
}

/// The fake server; clone it to keep a handle for assertions after handing it to a client.
#[derive(Clone, Default)]
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
}

impl FakeApiServer {
    /// An empty cluster whose rollouts complete after `rollout_reads` reads of a Deployment.
    pub fn new(rollout_reads: u32) -> Self {
        let s = FakeApiServer::default();
        s.lock().rollout_reads = rollout_reads;
        s
    }

    /// A kube client talking to this server.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stored object, if any.
    pub fn get(&self, prefix: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(prefix.into(), plural.into(), ns.into(), name.into()))
            .cloned()
    }

    /// Every stored object of `plural`.
    pub fn all(&self, plural: &str) -> Vec<Value> {
        self.lock()
            .objects
            .iter()
            .filter(|(k, _)| k.1 == plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The writes so far (`PATCH deployments api`), and forgets them.
    pub fn take_writes(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().writes)
    }

    /// Stores `obj` as if created (controllers run).
    pub fn insert(&self, prefix: &str, plural: &str, ns: &str, obj: Value) {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut st = self.lock();
        let key = (prefix.to_string(), plural.to_string(), ns.to_string(), name);
        st.create(key, obj);
    }
}

fn status(code: u16, reason: &str, message: impl Into<String>) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
               "reason": reason, "message": message.into()}),
    )
}

struct Route {
    prefix: String,
    namespace: String,
    plural: String,
    name: Option<String>,
    sub: Option<String>,
}

fn route(path: &str) -> Option<Result<Route, String>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (prefix, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (format!("api/{v}"), rest),
        ["apis", g, v, rest @ ..] => (format!("apis/{g}/{v}"), rest),
        _ => return None,
    };
    if rest.is_empty() {
        return Some(Err(prefix));
    }
    let (namespace, rest) = match rest {
        ["namespaces", ns, more @ ..] if !more.is_empty() => (ns.to_string(), more),
        _ => (String::new(), rest),
    };
    Some(Ok(Route {
        prefix,
        namespace,
        plural: rest[0].to_string(),
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    }))
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.replace("%3D", "=").replace("%2C", ","))
    })
}

fn labels_match(obj: &Value, selector: &str) -> bool {
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|kv| match kv.split_once('=') {
            Some((k, v)) => {
                obj.pointer("/metadata/labels")
                    .and_then(|l| l.get(k))
                    .and_then(Value::as_str)
                    == Some(v)
            }
            None => false,
        })
}

fn kind_of(prefix: &str, plural: &str, st: &State) -> String {
    let known = [
        ("namespaces", "Namespace"),
        ("configmaps", "ConfigMap"),
        ("secrets", "Secret"),
        ("services", "Service"),
        ("pods", "Pod"),
        ("persistentvolumeclaims", "PersistentVolumeClaim"),
        ("serviceaccounts", "ServiceAccount"),
        ("deployments", "Deployment"),
        ("statefulsets", "StatefulSet"),
        ("replicasets", "ReplicaSet"),
        ("controllerrevisions", "ControllerRevision"),
        ("networkpolicies", "NetworkPolicy"),
        ("leases", "Lease"),
        ("customresourcedefinitions", "CustomResourceDefinition"),
        ("ingresses", "Ingress"),
    ];
    if let Some((_, k)) = known.iter().find(|(p, _)| *p == plural) {
        return k.to_string();
    }
    crd_for(st, prefix, plural)
        .map(|(kind, _)| kind)
        .unwrap_or_else(|| plural.to_string())
}

/// (kind, namespaced) of a custom resource `plural` in `apis/group/version`.
fn crd_for(st: &State, prefix: &str, plural: &str) -> Option<(String, bool)> {
    st.objects
        .iter()
        .filter(|(k, _)| k.1 == "customresourcedefinitions")
        .find_map(|(_, crd)| {
            let group = crd.pointer("/spec/group")?.as_str()?;
            let p = crd.pointer("/spec/names/plural")?.as_str()?;
            let versions = crd.pointer("/spec/versions")?.as_array()?;
            let matches = versions.iter().any(|v| {
                v["name"].as_str().map(|v| format!("apis/{group}/{v}")) == Some(prefix.to_string())
            });
            (matches && p == plural).then(|| {
                let kind = crd
                    .pointer("/spec/names/kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                (
                    kind,
                    crd.pointer("/spec/scope").and_then(Value::as_str) == Some("Namespaced"),
                )
            })
        })
}

impl State {
    fn next_rv(&mut self) -> String {
        self.rv += 1;
        self.rv.to_string()
    }

    fn create(&mut self, key: Key, mut obj: Value) -> Value {
        self.uid += 1;
        let rv = self.next_rv();
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(rv);
        meta["uid"] = json!(format!("uid-{}", self.uid));
        meta["generation"] = json!(1);
        meta["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        if !key.2.is_empty() {
            meta["namespace"] = json!(key.2);
        }
        self.objects.insert(key.clone(), obj.clone());
        // Controllers act after the answer was written, as on a real server.
        self.controllers(&key, None);
        obj
    }

    /// Stores `obj` over `old`, bumping resourceVersion and (on a spec change) generation.
    fn update(&mut self, key: Key, old: &Value, mut obj: Value) -> Value {
        let rv = self.next_rv();
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let changed = old.get("spec") != obj.get("spec");
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(rv);
        meta["uid"] = old["metadata"]["uid"].clone();
        meta["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
        meta["generation"] = json!(if changed { generation + 1 } else { generation });
        if !key.2.is_empty() {
            meta["namespace"] = json!(key.2);
        }
        if obj.get("status").is_none() {
            if let Some(s) = old.get("status") {
                obj["status"] = s.clone();
            }
        }
        self.objects.insert(key.clone(), obj.clone());
        self.controllers(&key, Some(old));
        obj
    }

    /// The minimal Deployment controller.
    fn controllers(&mut self, key: &Key, old: Option<&Value>) {
        if key.1 != "deployments" {
            return;
        }
        let Some(dep) = self.objects.get(key).cloned() else {
            return;
        };
        let template_changed = old
            .map(|o| o.pointer("/spec/template") != dep.pointer("/spec/template"))
            .unwrap_or(true);
        let scaled = old
            .map(|o| o.pointer("/spec/replicas") != dep.pointer("/spec/replicas"))
            .unwrap_or(true);
        let uid = dep["metadata"]["uid"].clone();
        let replicas = dep
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1);
        let mut dep = dep;
        if template_changed {
            let template = dep
                .pointer("/spec/template")
                .cloned()
                .unwrap_or(Value::Null);
            let owned: Vec<Key> = self
                .objects
                .iter()
                .filter(|(k, rs)| {
                    k.1 == "replicasets"
                        && k.2 == key.2
                        && rs.pointer("/metadata/ownerReferences/0/uid") == Some(&uid)
                })
                .map(|(k, _)| k.clone())
                .collect();
            let revision = |rs: &Value| {
                rs.pointer("/metadata/annotations/deployment.kubernetes.io~1revision")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let max = owned
                .iter()
                .filter_map(|k| self.objects.get(k))
                .map(revision)
                .max()
                .unwrap_or(0);
            let strip = |t: &Value| {
                let mut t = t.clone();
                if let Some(l) = t
                    .pointer_mut("/metadata/labels")
                    .and_then(Value::as_object_mut)
                {
                    l.remove("pod-template-hash");
                }
                t
            };
            let same = owned
                .iter()
                .find(|k| {
                    self.objects
                        .get(*k)
                        .and_then(|rs| rs.pointer("/spec/template"))
                        .map(strip)
                        == Some(template.clone())
                })
                .cloned();
            let rv = self.next_rv();
            let next = max + 1;
            match same {
                Some(k) => {
                    if let Some(rs) = self.objects.get_mut(&k) {
                        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                            json!(next.to_string());
                        rs["metadata"]["resourceVersion"] = json!(rv);
                    }
                }
                None => {
                    let hash = format!("h{next}");
                    let mut t = template.clone();
                    t["metadata"]["labels"]["pod-template-hash"] = json!(hash);
                    let mut labels = dep
                        .pointer("/spec/selector/matchLabels")
                        .cloned()
                        .unwrap_or(json!({}));
                    labels["pod-template-hash"] = json!(hash);
                    let name = format!("{}-{hash}", key.3);
                    self.uid += 1;
                    let rs = json!({
                        "apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {"name": name, "namespace": key.2, "uid": format!("uid-{}", self.uid),
                            "resourceVersion": rv, "labels": labels,
                            "annotations": {"deployment.kubernetes.io/revision": next.to_string()},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": key.3,
                                                 "uid": uid, "controller": true}]},
                        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": t}
                    });
                    self.objects.insert(
                        (
                            "apis/apps/v1".into(),
                            "replicasets".into(),
                            key.2.clone(),
                            name,
                        ),
                        rs,
                    );
                }
            }
            dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
                json!(next.to_string());
        }
        if template_changed || scaled {
            let generation = dep
                .pointer("/metadata/generation")
                .cloned()
                .unwrap_or(json!(1));
            dep["status"] = json!({"observedGeneration": generation, "replicas": replicas,
                                   "updatedReplicas": 0, "availableReplicas": 0});
            self.pending.insert(key.clone(), self.rollout_reads);
            self.objects.insert(key.clone(), dep);
        }
    }

    /// A read of a Deployment: the rollout progresses.
    fn observe(&mut self, key: &Key) {
        let Some(left) = self.pending.get_mut(key) else {
            return;
        };
        if *left > 0 {
            *left -= 1;
            return;
        }
        self.pending.remove(key);
        if let Some(dep) = self.objects.get_mut(key) {
            let replicas = dep.pointer("/spec/replicas").cloned().unwrap_or(json!(1));
            dep["status"]["replicas"] = replicas.clone();
            dep["status"]["updatedReplicas"] = replicas.clone();
            dep["status"]["availableReplicas"] = replicas;
        }
    }

    fn discovery(&self, prefix: &str) -> (u16, Value) {
        let resources: Vec<Value> = self.objects.iter().filter(|(k, _)| k.1 == "customresourcedefinitions").filter_map(|(_, crd)| {
            let plural = crd.pointer("/spec/names/plural")?.as_str()?;
            let (kind, namespaced) = crd_for(self, prefix, plural)?;
            Some(json!({"name": plural, "singularName": kind.to_lowercase(), "namespaced": namespaced, "kind": kind,
                        "verbs": ["get", "list", "create", "update", "patch", "delete"]}))
        }).collect();
        if resources.is_empty() {
            return status(404, "NotFound", format!("{prefix} not served"));
        }
        (
            200,
            json!({"kind": "APIResourceList", "apiVersion": "v1",
                     "groupVersion": prefix.trim_start_matches("apis/"), "resources": resources}),
        )
    }

    fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let route = match route(path) {
            None => return status(404, "NotFound", format!("no route {path}")),
            Some(Err(prefix)) => return self.discovery(&prefix),
            Some(Ok(r)) => r,
        };
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return status(400, "BadRequest", e.to_string()),
            }
        };
        let kind = kind_of(&route.prefix, &route.plural, self);
        let Some(name) = route.name.clone() else {
            return self.collection(method, &route, &kind, query, body);
        };
        let key: Key = (
            route.prefix.clone(),
            route.plural.clone(),
            route.namespace.clone(),
            name.clone(),
        );
        let what = format!("{} \"{name}\"", route.plural);
        if method != "GET" {
            self.writes.push(format!("{method} {kind} {name}"));
        }
        let current = self.objects.get(&key).cloned();
        if route.sub.as_deref() == Some("scale") {
            let Some(cur) = current else {
                return status(404, "NotFound", format!("{what} not found"));
            };
            if method == "PATCH" {
                let replicas = body
                    .pointer("/spec/replicas")
                    .cloned()
                    .unwrap_or(Value::Null);
                let mut next = cur.clone();
                next["spec"]["replicas"] = replicas;
                self.update(key, &cur, next);
            }
            let obj = self
                .objects
                .get(&(
                    route.prefix.clone(),
                    route.plural.clone(),
                    route.namespace.clone(),
                    name.clone(),
                ))
                .cloned()
                .unwrap_or_default();
            return (
                200,
                json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {"name": name, "namespace": route.namespace},
                "spec": {"replicas": obj.pointer("/spec/replicas")}, "status": {"replicas": obj.pointer("/status/replicas")}}),
            );
        }
        match method {
            "GET" => match current {
                Some(_) => {
                    self.observe(&key);
                    (200, self.objects.get(&key).cloned().unwrap_or_default())
                }
                None => status(404, "NotFound", format!("{what} not found")),
            },
            "DELETE" => match self.objects.remove(&key) {
                Some(obj) => (200, obj),
                None => status(404, "NotFound", format!("{what} not found")),
            },
            "PUT" => {
                let Some(cur) = current else {
                    return status(404, "NotFound", format!("{what} not found"));
                };
                if body.pointer("/metadata/resourceVersion")
                    != cur.pointer("/metadata/resourceVersion")
                {
                    return status(
                        409,
                        "Conflict",
                        format!(
                            "Operation cannot be fulfilled on {what}: the object has been modified"
                        ),
                    );
                }
                (200, self.update(key, &cur, body))
            }
            "PATCH" => {
                let apply = content_type.starts_with("application/apply-patch");
                let Some(cur) = current else {
                    if !apply {
                        return status(404, "NotFound", format!("{what} not found"));
                    }
                    if let Some(err) = self.missing_namespace(&route) {
                        return err;
                    }
                    return (201, self.create(key, body));
                };
                if let Some(rv) = body.pointer("/metadata/resourceVersion") {
                    if Some(rv) != cur.pointer("/metadata/resourceVersion") {
                        return status(409, "Conflict", format!("Operation cannot be fulfilled on {what}: the object has been modified"));
                    }
                }
                let next = if content_type.starts_with("application/merge-patch") {
                    json_merge(&cur, &body)
                } else {
                    // Strategic merge, and server-side apply approximated by it.
                    strategic_merge(&cur, &body)
                };
                (200, self.update(key, &cur, next))
            }
            _ => status(405, "MethodNotAllowed", method.to_string()),
        }
    }

    fn missing_namespace(&self, route: &Route) -> Option<(u16, Value)> {
        if route.namespace.is_empty() {
            return None;
        }
        let ns = (
            "api/v1".to_string(),
            "namespaces".to_string(),
            String::new(),
            route.namespace.clone(),
        );
        (!self.objects.contains_key(&ns)).then(|| {
            status(
                404,
                "NotFound",
                format!("namespaces \"{}\" not found", route.namespace),
            )
        })
    }

    fn collection(
        &mut self,
        method: &str,
        route: &Route,
        kind: &str,
        query: &str,
        body: Value,
    ) -> (u16, Value) {
        match method {
            "GET" => {
                let selector = query_param(query, "labelSelector").unwrap_or_default();
                let items: Vec<Value> = self
                    .objects
                    .iter()
                    .filter(|(k, _)| {
                        k.0 == route.prefix
                            && k.1 == route.plural
                            && (route.namespace.is_empty() || k.2 == route.namespace)
                    })
                    .filter(|(_, v)| labels_match(v, &selector))
                    .map(|(_, v)| {
                        // Items of a list carry no apiVersion/kind, as the real server's.
                        let mut v = v.clone();
                        if let Some(o) = v.as_object_mut() {
                            o.remove("apiVersion");
                            o.remove("kind");
                        }
                        v
                    })
                    .collect();
                (
                    200,
                    json!({"apiVersion": route.prefix.trim_start_matches("apis/").trim_start_matches("api/"),
                             "kind": format!("{kind}List"), "metadata": {"resourceVersion": self.rv.to_string()}, "items": items}),
                )
            }
            "POST" => {
                let Some(name) = body
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                else {
                    return status(422, "Invalid", "metadata.name: Required value");
                };
                self.writes.push(format!("POST {kind} {name}"));
                let key: Key = (
                    route.prefix.clone(),
                    route.plural.clone(),
                    route.namespace.clone(),
                    name.clone(),
                );
                if self.objects.contains_key(&key) {
                    return status(
                        409,
                        "AlreadyExists",
                        format!("{} \"{name}\" already exists", route.plural),
                    );
                }
                if let Some(err) = self.missing_namespace(route) {
                    return err;
                }
                (201, self.create(key, body))
            }
            _ => status(405, "MethodNotAllowed", method.to_string()),
        }
    }
}

impl tower::Service<Request<Body>> for FakeApiServer {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let method = req.method().as_str().to_string();
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or_default().to_string();
            let ct = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = req.into_body().collect_bytes().await.unwrap_or_default();
            // Let concurrent callers interleave, as over a network.
            tokio::task::yield_now().await;
            let (code, value) = this.lock().handle(&method, &path, &query, &ct, &body);
            let resp = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&value).unwrap_or_default()))
                .unwrap_or_else(|_| Response::new(Body::empty()));
            Ok(resp)
        })
    }
}
