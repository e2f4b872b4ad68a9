//! Azure Blob Storage: a custom role per container with the data actions `dr-azure`'s REST
//! calls need, and the matching SAS permissions.
//!
//! | operation | REST calls | data action | SAS |
//! |---|---|---|---|
//! | get, head, get versioned | Get Blob, Get Blob Properties | `…/blobs/read` | `r` |
//! | list | List Blobs | `…/blobs/read` | `l` |
//! | put, put if | Put Blob, Put Block, Put Block List | `…/blobs/write` | `cw` |
//! | delete | Delete Blob | `…/blobs/delete` | `d` |
//! | copy | Copy Blob (source read, destination written) | `…/blobs/read`, `…/blobs/write` | `rcw` |
//!
//! Data actions apply to Microsoft Entra ID credentials; an account key (Shared Key) is not
//! limited by roles.

use std::collections::{BTreeMap, BTreeSet};

use dr_core::permissions::{Need, Resource};
use dr_core::provider::Operation as O;
use dr_core::step::Role;
use serde_json::{json, Value};

use super::{slug, Targets};

/// The prefix of every blob data action.
pub const BLOBS: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs";

/// The data actions of store operation `op`.
///
/// # Examples
///
/// ```
/// use dr_core::provider::Operation;
/// let a = dr_providers::permissions::azure::data_actions(Operation::Delete);
/// assert_eq!(a, ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"]);
/// ```
pub fn data_actions(op: O) -> Vec<String> {
    let verbs: &[&str] = match op {
        O::Get | O::Head | O::GetVersioned | O::List => &["read"],
        O::Put | O::PutIf => &["write"],
        O::Delete => &["delete"],
        O::Copy => &["read", "write"],
        _ => &[],
    };
    verbs.iter().map(|v| format!("{BLOBS}/{v}")).collect()
}

/// The SAS permission letters of `op` (`r`, `l`, `c`, `w`, `d`).
fn sas(op: O) -> &'static str {
    match op {
        O::Get | O::Head | O::GetVersioned => "r",
        O::List => "l",
        O::Put | O::PutIf => "cw",
        O::Delete => "d",
        O::Copy => "rcw",
        _ => "",
    }
}

/// What the calls on one container need.
#[derive(Debug, Default)]
struct Container {
    actions: BTreeSet<String>,
    sas: BTreeSet<char>,
    prefixes: BTreeSet<String>,
}

/// One custom role per (account, container) of `needs`.
pub(crate) fn roles(needs: &[&Need], t: &Targets<'_>, plan: &str) -> Vec<Value> {
    let mut by: BTreeMap<(String, String), Container> = BTreeMap::new();
    for n in needs {
        let (Some(op), Role::Store { store }) = (n.provider_operation(), &n.role) else {
            continue;
        };
        let e = by.entry(t.container(store)).or_default();
        e.actions.extend(data_actions(op));
        e.sas.extend(sas(op).chars());
        for r in &n.resources {
            if let Resource::Objects { prefix, .. } = r {
                e.prefixes.insert(prefix.clone());
            }
        }
    }
    by.into_iter()
        .map(|((account, container), c)| {
            let (actions, letters, prefixes) = (c.actions, c.sas, c.prefixes);
            // SAS letters in the order the service documents them.
            let order = "rlcwd";
            let sas: String = order.chars().filter(|c| letters.contains(c)).collect();
            json!({
                "Name": format!("dr-{}-{}", slug(plan), slug(&container)),
                "IsCustom": true,
                "Description": format!(
                    "What the DR runs of plan {plan} read and write in container {container} (blob prefixes: {})",
                    prefixes.iter().map(|p| if p.is_empty() { "(all)" } else { p.as_str() }).collect::<Vec<_>>().join(", ")
                ),
                "Actions": [],
                "NotActions": [],
                "DataActions": actions,
                "NotDataActions": [],
                "AssignableScopes": [format!(
                    "/subscriptions/{{subscription-id}}/resourceGroups/{{resource-group}}/providers/Microsoft.Storage/storageAccounts/{account}/blobServices/default/containers/{container}"
                )],
                "SasPermissions": sas,
            })
        })
        .collect()
}
