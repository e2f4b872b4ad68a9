//! Google Cloud Storage: a custom role per bucket with the IAM permissions `dr-gcp`'s calls
//! need, and the bucket binding to grant it on.
//!
//! | operation | calls | permissions |
//! |---|---|---|
//! | get, head, get versioned | `ReadObject`, `GetObject` | `storage.objects.get` |
//! | list | `ListObjects` | `storage.objects.list` |
//! | put | resumable upload, then `UpdateObject` (the digest in the metadata) | `storage.objects.create`, `storage.objects.update`, `storage.objects.delete` (to replace an object of the same name) |
//! | put if | an upload with `ifGenerationMatch` | `storage.objects.create`, `storage.objects.delete` |
//! | delete | `DeleteObject` | `storage.objects.delete` |
//! | copy | `RewriteObject` | `storage.objects.get`, `storage.objects.create`, `storage.objects.delete` |

use std::collections::{BTreeMap, BTreeSet};

use dr_core::permissions::Need;
use dr_core::provider::Operation as O;
use dr_core::step::Role;
use serde_json::{json, Value};

use super::{slug, Targets};

/// The IAM permissions of store operation `op`.
///
/// # Examples
///
/// ```
/// use dr_core::provider::Operation;
/// let p = dr_providers::permissions::gcs::permissions(Operation::List);
/// assert_eq!(p, ["storage.objects.list"]);
/// ```
pub fn permissions(op: O) -> Vec<&'static str> {
    match op {
        O::Get | O::Head | O::GetVersioned => vec!["storage.objects.get"],
        O::List => vec!["storage.objects.list"],
        O::Put => vec![
            "storage.objects.create",
            "storage.objects.update",
            "storage.objects.delete",
        ],
        O::PutIf => vec!["storage.objects.create", "storage.objects.delete"],
        O::Delete => vec!["storage.objects.delete"],
        O::Copy => vec![
            "storage.objects.get",
            "storage.objects.create",
            "storage.objects.delete",
        ],
        _ => Vec::new(),
    }
}

/// One custom role (and its binding) per bucket of `needs`.
pub(crate) fn roles(needs: &[&Need], t: &Targets<'_>, plan: &str) -> Vec<Value> {
    let mut by: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for n in needs {
        if let (Some(op), Role::Store { store }) = (n.provider_operation(), &n.role) {
            by.entry(t.bucket(store))
                .or_default()
                .extend(permissions(op));
        }
    }
    by.into_iter()
        .map(|(bucket, perms)| {
            // Custom role ids: letters, digits, `_` and `.`.
            let id = format!("dr_{}_{}", slug(plan), slug(&bucket)).replace('-', "_");
            json!({
                "role": {
                    "name": format!("projects/{{project-id}}/roles/{id}"),
                    "title": format!("DR runs of {plan} on {bucket}"),
                    "description": format!("What the DR runs of plan {plan} read and write in gs://{bucket}"),
                    "stage": "GA",
                    "includedPermissions": perms,
                },
                "binding": {
                    "resource": format!("projects/_/buckets/{bucket}"),
                    "role": format!("projects/{{project-id}}/roles/{id}"),
                    "members": ["serviceAccount:{runner}@{project-id}.iam.gserviceaccount.com"],
                },
            })
        })
        .collect()
}
