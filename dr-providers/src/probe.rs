//! One health probe per plan health check, behind the single probe the executor holds.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use dr_core::provider::{Capabilities, HealthProbe, HealthStatus, Operation};

/// Routes each target to the probe configured for its health check.
#[derive(Debug, Clone)]
pub(crate) struct RoutedProbe {
    by_target: HashMap<String, Arc<dyn HealthProbe>>,
    fallback: Arc<dyn HealthProbe>,
}

impl RoutedProbe {
    pub(crate) fn new(fallback: Arc<dyn HealthProbe>) -> Self {
        RoutedProbe {
            by_target: HashMap::new(),
            fallback,
        }
    }

    pub(crate) fn route(&mut self, target: &str, probe: Arc<dyn HealthProbe>) {
        self.by_target.insert(target.to_string(), probe);
    }

    /// Routes `target` to the probe `like` is routed to (a record's target, probed with its
    /// service's check); nothing when `like` has no route or `target` has one already.
    pub(crate) fn route_like(&mut self, target: &str, like: &str) {
        if self.by_target.contains_key(target) {
            return;
        }
        if let Some(p) = self.by_target.get(like).cloned() {
            self.by_target.insert(target.to_string(), p);
        }
    }
}

#[async_trait]
impl HealthProbe for RoutedProbe {
    fn name(&self) -> &str {
        "providers"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::of([Operation::Probe])
    }
    async fn check(&self, target: &str) -> dr_core::Result<HealthStatus> {
        self.by_target
            .get(target)
            .unwrap_or(&self.fallback)
            .check(target)
            .await
    }
}
