//! JSON merge patch (RFC 7386) and an approximation of Kubernetes' strategic merge patch.

use serde_json::{Map, Value};

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn json_merge(target: &Value, patch: &Value) -> Value {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            let mut out = t.clone();
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = json_merge(t.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (_, Value::Object(p)) => json_merge(&Value::Object(Map::new()), &Value::Object(p.clone())),
        (_, p) => p.clone(),
    }
}

/// Strategic merge, approximately: as [`json_merge`], except that `$patch: replace` replaces
/// an object, and lists whose elements all carry a `name` merge element by element.
pub fn strategic_merge(target: &Value, patch: &Value) -> Value {
    match (target, patch) {
        (_, Value::Object(p)) if p.get("$patch").and_then(Value::as_str) == Some("replace") => {
            let mut p = p.clone();
            p.remove("$patch");
            strip_directives(&Value::Object(p))
        }
        (Value::Object(t), Value::Object(p)) => {
            let mut out = t.clone();
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = strategic_merge(t.get(k).unwrap_or(&Value::Null), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (Value::Array(t), Value::Array(p)) if named(t) && named(p) => {
            let mut out = t.clone();
            for item in p {
                match out.iter_mut().find(|e| e["name"] == item["name"]) {
                    Some(existing) => *existing = strategic_merge(existing, item),
                    None => out.push(strip_directives(item)),
                }
            }
            Value::Array(out)
        }
        (_, Value::Object(_)) => strategic_merge(&Value::Object(Map::new()), patch),
        (_, p) => p.clone(),
    }
}

fn named(list: &[Value]) -> bool {
    list.iter().all(|e| e.get("name").is_some())
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| k.as_str() != "$patch" && !v.is_null())
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}
