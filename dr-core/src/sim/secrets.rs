//! A simulated cloud secret manager: secrets by region and name, each with its versions and
//! the current one. Writing a version again with the same value is a no-op; with another
//! value it is refused.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{Env, SimCloud, State, PROVIDER};
use crate::provider::{Capabilities, Operation, SecretManager, SecretValue};
use crate::{Error, Result, Secret};

const ROLE: &str = "secrets";

/// The version id [`SimCloud::add_secret`] gives a secret's first value.
pub const INITIAL_VERSION: &str = "initial";

/// One version of a secret. The simulated cloud holds the value as a real secret manager
/// does (its state file too); `Debug` never shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Version {
    id: String,
    #[serde(with = "plain")]
    value: Secret,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Entry {
    /// Every version, oldest first; the last is current.
    versions: Vec<Version>,
}

/// The secrets of the simulated cloud, by (region, name).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Secrets {
    secrets: BTreeMap<(String, String), Entry>,
}

mod plain {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Secret;

    pub(super) fn serialize<S: Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.expose())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

fn missing(region: &str, name: &str) -> Error {
    Error::not_found(PROVIDER, format!("secret {region}/{name}"))
}

impl SimCloud {
    /// Adds secret `name` in `region` with `value` as its current value, version
    /// [`INITIAL_VERSION`] (`initial`). Replaces a secret of that name.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> dr_core::Result<()> {
    /// use dr_core::provider::SecretManager;
    /// use dr_core::sim::SimCloud;
    /// use dr_core::Secret;
    ///
    /// let cloud = SimCloud::new(1);
    /// cloud.add_secret("us-east-1", "shop/orders-db", &Secret::new("old password"));
    /// let m = cloud.secrets();
    /// m.put_secret_value("us-east-1", "shop/orders-db", &Secret::new("new"), "rotate-1").await?;
    /// let now = m.get_secret_value("us-east-1", "shop/orders-db").await?;
    /// assert_eq!((now.version.as_str(), now.value.expose()), ("rotate-1", "new"));
    /// # Ok(()) }
    /// ```
    pub fn add_secret(&self, region: &str, name: &str, value: &Secret) {
        self.with_state(|st, _| {
            st.secrets.secrets.insert(
                (region.to_string(), name.to_string()),
                Entry {
                    versions: vec![Version {
                        id: INITIAL_VERSION.to_string(),
                        value: value.clone(),
                    }],
                },
            )
        });
    }

    /// The version ids of secret `name` in `region`, oldest first (the last is current);
    /// empty for an unknown secret. For assertions: no value is returned.
    pub fn secret_versions(&self, region: &str, name: &str) -> Vec<String> {
        self.with_state(|st, _| {
            st.secrets
                .secrets
                .get(&(region.to_string(), name.to_string()))
                .map(|e| e.versions.iter().map(|v| v.id.clone()).collect())
                .unwrap_or_default()
        })
    }

    /// The secret manager (every region of the cloud).
    pub fn secrets(&self) -> std::sync::Arc<dyn SecretManager> {
        std::sync::Arc::new(SimSecrets {
            cloud: self.clone(),
        })
    }
}

/// The simulated cloud's [`SecretManager`] ([`SimCloud::secrets`]).
#[derive(Debug, Clone)]
pub struct SimSecrets {
    cloud: SimCloud,
}

impl SimSecrets {
    async fn call<T>(
        &self,
        op: Operation,
        target: &str,
        regions: &[&str],
        f: impl FnOnce(&mut State, &Env<'_>) -> Result<T>,
    ) -> Result<T> {
        self.cloud.call(ROLE, op, target, regions, f).await
    }
}

#[async_trait]
impl SecretManager for SimSecrets {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::GetSecretValue, Operation::PutSecretValue])
    }

    async fn get_secret_value(&self, region: &str, name: &str) -> Result<SecretValue> {
        let target = format!("{region}/{name}");
        self.call(Operation::GetSecretValue, &target, &[], |st, _| {
            let current = st
                .secrets
                .secrets
                .get(&(region.to_string(), name.to_string()))
                .and_then(|e| e.versions.last())
                .ok_or_else(|| missing(region, name))?;
            Ok(SecretValue {
                version: current.id.clone(),
                value: current.value.clone(),
            })
        })
        .await
    }

    async fn put_secret_value(
        &self,
        region: &str,
        name: &str,
        value: &Secret,
        version: &str,
    ) -> Result<String> {
        if version.is_empty() {
            return Err(Error::InvalidRequest {
                provider: PROVIDER.into(),
                operation: Operation::PutSecretValue.name().into(),
                message: format!("secret {region}/{name}: the version id is empty"),
            });
        }
        let target = format!("{region}/{name}");
        self.call(Operation::PutSecretValue, &target, &[region], |st, _| {
            let entry = st
                .secrets
                .secrets
                .get_mut(&(region.to_string(), name.to_string()))
                .ok_or_else(|| missing(region, name))?;
            match entry.versions.iter().find(|v| v.id == version) {
                Some(v) if v.value == *value => {}
                Some(_) => {
                    return Err(Error::AlreadyExists {
                        provider: PROVIDER.into(),
                        resource: format!(
                            "version {version} of secret {region}/{name} (with another value)"
                        ),
                    })
                }
                None => entry.versions.push(Version {
                    id: version.to_string(),
                    value: value.clone(),
                }),
            }
            Ok(version.to_string())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sim::{FaultConfig, FaultRule, SimConfig};

    #[tokio::test(start_paused = true)]
    async fn versions_are_idempotent_and_a_reused_version_with_another_value_is_refused() {
        let cloud = SimCloud::new(1);
        cloud.add_secret("east", "app/db", &Secret::new("old"));
        let m = cloud.secrets();
        let first = m.get_secret_value("east", "app/db").await.unwrap();
        assert_eq!(first.version, INITIAL_VERSION);
        assert_eq!(first.value.expose(), "old");

        let v = m
            .put_secret_value("east", "app/db", &Secret::new("new"), "r1")
            .await
            .unwrap();
        assert_eq!(v, "r1");
        // The same write again changes nothing.
        m.put_secret_value("east", "app/db", &Secret::new("new"), "r1")
            .await
            .unwrap();
        assert_eq!(cloud.secret_versions("east", "app/db"), ["initial", "r1"]);
        // The same version with another value is refused, and the value stays.
        let e = m
            .put_secret_value("east", "app/db", &Secret::new("zq-planted-77"), "r1")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
        assert!(!e.to_string().contains("zq-planted-77"), "{e}");
        let now = m.get_secret_value("east", "app/db").await.unwrap();
        assert_eq!((now.version.as_str(), now.value.expose()), ("r1", "new"));
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_secrets_failed_regions_and_faults_are_errors() {
        let cfg = SimConfig::default().with_faults(FaultConfig::default().with_fail_after_effect(
            FaultRule::new(Some(Operation::PutSecretValue), "east/app/db").times(1),
        ));
        let cloud = SimCloud::with_config(1, cfg);
        cloud.add_secret("east", "app/db", &Secret::new("old"));
        let m = cloud.secrets();
        assert!(m
            .get_secret_value("east", "nope")
            .await
            .unwrap_err()
            .is_not_found());
        assert!(m
            .put_secret_value("east", "nope", &Secret::new("x"), "r1")
            .await
            .unwrap_err()
            .is_not_found());
        assert!(m
            .put_secret_value("east", "app/db", &Secret::new("x"), "")
            .await
            .is_err());
        // Failed after its effect: the caller sees an error, the version is there.
        let e = m
            .put_secret_value("east", "app/db", &Secret::new("new"), "r1")
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(cloud.secret_versions("east", "app/db"), ["initial", "r1"]);
        cloud.fail_region("east");
        assert!(m
            .put_secret_value("east", "app/db", &Secret::new("newer"), "r2")
            .await
            .unwrap_err()
            .is_retryable());
        // Reads still answer, as a global control plane would.
        assert_eq!(
            m.get_secret_value("east", "app/db").await.unwrap().version,
            "r1"
        );
    }

    #[test]
    fn debug_never_shows_a_value() {
        let cloud = SimCloud::new(1);
        cloud.add_secret("east", "app/db", &Secret::new("planted-value-7f3a"));
        assert!(!format!("{cloud:?}").contains("planted-value-7f3a"));
    }
}
