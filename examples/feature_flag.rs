//! A step kind of the program's own, for `examples/custom-step.rs` and its test: a feature
//! flag set through a (stand-in) feature-flag service, with a read-back and an undo.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use dr_core::step::{Action, Call, Observed, Role, StepAction, StepContext, StepRegistry};

/// A stand-in for the feature-flag service a program would call (LaunchDarkly, Unleash, a
/// config map): flags by name.
pub fn flags() -> &'static Mutex<BTreeMap<String, bool>> {
    static FLAGS: OnceLock<Mutex<BTreeMap<String, bool>>> = OnceLock::new();
    FLAGS.get_or_init(Default::default)
}

/// Sets a feature flag. Idempotent, with a read-back, and undone by setting the value it
/// found before.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureFlag {
    /// The flag's name.
    pub flag: String,
    /// The value to set.
    pub enabled: bool,
}

#[async_trait]
impl StepAction for FeatureFlag {
    fn kind(&self) -> &str {
        "feature_flag"
    }
    fn params(&self) -> serde_json::Value {
        serde_json::json!({ "flag": self.flag, "enabled": self.enabled })
    }
    fn calls(&self) -> Vec<Call> {
        let flags = Role::External {
            service: "feature-flags".into(),
        };
        vec![
            Call::new(flags.clone(), "read", &self.flag),
            Call::new(flags, "set", format!("{} = {}", self.flag, self.enabled)),
        ]
    }
    fn idempotent(&self) -> bool {
        true
    }
    fn default_estimate(&self) -> Duration {
        Duration::from_secs(5)
    }
    async fn prepare(&self, ctx: &mut StepContext<'_>) -> Observed {
        let before = flags().lock().map(|f| f.get(&self.flag).copied());
        match before {
            Ok(before) => {
                ctx.memory.set("before", before);
                if before == Some(self.enabled) {
                    Observed::Done
                } else {
                    Observed::NotDone
                }
            }
            Err(_) => Observed::Unknown,
        }
    }
    async fn execute(&self, _ctx: &mut StepContext<'_>) -> dr_core::Result<()> {
        let mut f = flags().lock().map_err(|_| dr_core::Error::Unavailable {
            provider: "feature-flags".into(),
            operation: "set".into(),
            source: None,
        })?;
        f.insert(self.flag.clone(), self.enabled);
        tracing::info!(flag = %self.flag, enabled = self.enabled, "feature flag set");
        Ok(())
    }
    fn compensable(&self) -> bool {
        true
    }
    async fn compensate(&self, ctx: &mut StepContext<'_>) -> dr_core::Result<()> {
        let before: Option<bool> = ctx.memory.get("before").unwrap_or(None);
        if let Ok(mut f) = flags().lock() {
            match before {
                Some(v) => f.insert(self.flag.clone(), v),
                None => f.remove(&self.flag),
            };
        }
        Ok(())
    }
}

/// The built-in kinds and `feature_flag`.
pub fn registry() -> StepRegistry {
    let mut registry = StepRegistry::builtin();
    registry.register("feature_flag", |params| {
        let step: FeatureFlag = serde_json::from_value(params.clone())
            .map_err(|e| format!("invalid parameters: {e}"))?;
        Ok(Action::new(step))
    });
    registry
}
