//! Simulated CDN: distributions whose origin changes take time to deploy, updated only
//! against the version they were read at.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::SimInstant as Instant;
use super::{Env, SimCloud, State, PROVIDER};
use crate::provider::{Capabilities, CdnDistribution, CdnOrigin, Operation};
use crate::{Error, Result};

const ROLE: &str = "cdn";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Distribution {
    origin: String,
    version: u64,
    /// When the last change has reached every edge location.
    deployed_at: Instant,
    /// Changes another writer makes between the next updates' read and write.
    #[serde(default)]
    concurrent: u32,
}

impl Distribution {
    fn view(&self, id: &str, now: Instant) -> CdnDistribution {
        CdnDistribution {
            id: id.to_string(),
            origin: self.origin.clone(),
            deployed: now >= self.deployed_at,
            version: format!("E{:04}", self.version),
        }
    }
}

/// The distributions of the simulated cloud.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Cdn {
    distributions: BTreeMap<String, Distribution>,
}

impl Cdn {
    fn get(&self, id: &str) -> Result<&Distribution> {
        self.distributions
            .get(id)
            .ok_or_else(|| Error::not_found(PROVIDER, format!("distribution {id}")))
    }
}

impl SimCloud {
    /// Adds (or replaces) distribution `id`, its default behaviour sending requests to
    /// `origin`, deployed.
    pub fn add_distribution(&self, id: &str, origin: &str) {
        self.with_state(|st, env| {
            let version = st.cdn.distributions.get(id).map_or(1, |d| d.version + 1);
            st.cdn.distributions.insert(
                id.to_string(),
                Distribution {
                    origin: origin.to_string(),
                    version,
                    deployed_at: env.now,
                    concurrent: 0,
                },
            );
        });
    }

    /// Makes another writer change distribution `id` (not its origin) between the read and
    /// the write of each of its next `times` origin updates: each of those finds the version
    /// it read gone and fails with `PreconditionFailed`, as a concurrent console edit does.
    pub fn change_distribution_concurrently(&self, id: &str, times: u32) {
        self.with_state(|st, _| {
            if let Some(d) = st.cdn.distributions.get_mut(id) {
                d.concurrent += times;
            }
        });
    }

    /// Removes distribution `id`; `true` if it existed.
    pub fn remove_distribution(&self, id: &str) -> bool {
        self.with_state(|st, _| st.cdn.distributions.remove(id).is_some())
    }

    /// Distribution `id` as it is now, without a call (for tests and inspection).
    pub fn distribution(&self, id: &str) -> Option<CdnDistribution> {
        self.with_state(|st, env| st.cdn.distributions.get(id).map(|d| d.view(id, env.now)))
    }
}

/// The simulated cloud's [`CdnOrigin`] service ([`SimCloud::cdn`]).
#[derive(Debug, Clone)]
pub struct SimCdn {
    cloud: SimCloud,
}

impl SimCdn {
    pub(super) fn new(cloud: SimCloud) -> Self {
        SimCdn { cloud }
    }

    async fn call<T>(
        &self,
        op: Operation,
        target: &str,
        f: impl FnOnce(&mut State, &Env<'_>) -> Result<T>,
    ) -> Result<T> {
        // A global service: a failed region does not take it down.
        self.cloud.call(ROLE, op, target, &[], f).await
    }
}

#[async_trait]
impl CdnOrigin for SimCdn {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::DescribeDistribution, Operation::SetOrigin])
    }

    async fn describe_distribution(&self, id: &str) -> Result<CdnDistribution> {
        self.call(Operation::DescribeDistribution, id, |st, env| {
            Ok(st.cdn.get(id)?.view(id, env.now))
        })
        .await
    }

    async fn set_origin(&self, id: &str, origin: &str) -> Result<CdnDistribution> {
        if origin.trim().is_empty() {
            return Err(Error::InvalidRequest {
                provider: PROVIDER.into(),
                operation: Operation::SetOrigin.name().into(),
                message: format!("distribution {id}: the origin must be a domain name"),
            });
        }
        let target = format!("{id} -> {origin}");
        self.call(Operation::SetOrigin, &target, |st, env| {
            let deploy = env.cfg.cdn_deploy.get();
            let d = st
                .cdn
                .distributions
                .get_mut(id)
                .ok_or_else(|| Error::not_found(PROVIDER, format!("distribution {id}")))?;
            if d.origin == origin {
                return Ok(d.view(id, env.now));
            }
            // The version read; another writer may land before the write.
            let read = d.version;
            if d.concurrent > 0 {
                d.concurrent -= 1;
                d.version += 1;
                d.deployed_at = env.now + deploy;
            }
            if d.version != read {
                return Err(Error::PreconditionFailed {
                    provider: PROVIDER.into(),
                    resource: format!("distribution {id}"),
                    expected: format!("version E{read:04}"),
                });
            }
            d.origin = origin.to_string();
            d.version += 1;
            d.deployed_at = env.now + deploy;
            Ok(d.view(id, env.now))
        })
        .await
    }
}
