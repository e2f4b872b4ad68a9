//! Step kinds by name, for the steps a plan adds to its scenarios.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::Action;

/// Builds an [`Action`] from a plan step's parameters, or says what is wrong with them.
pub type StepFactory =
    Arc<dyn Fn(&serde_json::Value) -> Result<Action, String> + Send + Sync + 'static>;

/// The step kinds a plan may name in its `steps:` entries: `webhook`, `command` and
/// `approval` built in, and whatever the embedding service registers.
///
/// # Examples
///
/// ```
/// use dr_core::step::StepRegistry;
///
/// let registry = StepRegistry::builtin();
/// let kinds: Vec<&str> = registry.kinds().collect();
/// assert_eq!(kinds, ["approval", "command", "webhook"]);
/// let err = registry.build("warm_cache", &serde_json::json!({})).unwrap_err();
/// assert!(err.contains("unknown step kind `warm_cache`"));
/// assert!(err.contains("approval, command, webhook"));
/// ```
#[derive(Clone, Default)]
pub struct StepRegistry {
    kinds: BTreeMap<String, StepFactory>,
}

impl fmt::Debug for StepRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.kinds.keys()).finish()
    }
}

impl StepRegistry {
    /// No kinds at all.
    pub fn empty() -> Self {
        StepRegistry::default()
    }

    /// The kinds that ship with the library: `webhook`, `command` and `approval`.
    pub fn builtin() -> Self {
        let mut r = StepRegistry::empty();
        r.register("webhook", super::webhook::Webhook::from_params);
        r.register("command", super::command::Command::from_params);
        r.register("approval", super::approval::Approval::from_params);
        r
    }

    /// Registers (or replaces) the kind `name`.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        factory: impl Fn(&serde_json::Value) -> Result<Action, String> + Send + Sync + 'static,
    ) -> &mut Self {
        self.kinds.insert(name.into(), Arc::new(factory));
        self
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.kinds.contains_key(name)
    }

    /// The registered kinds, in name order.
    pub fn kinds(&self) -> impl Iterator<Item = &str> + '_ {
        self.kinds.keys().map(String::as_str)
    }

    /// Builds a step of kind `name` from its parameters.
    ///
    /// # Errors
    /// An unknown kind (listing the registered ones), or what the kind's factory found wrong.
    pub fn build(&self, name: &str, params: &serde_json::Value) -> Result<Action, String> {
        match self.kinds.get(name) {
            Some(factory) => factory(params),
            None => Err(format!(
                "unknown step kind `{name}` (registered kinds: {})",
                self.kinds().collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// Deserialises a kind's parameters, naming the field at fault.
pub(crate) fn params<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, String> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            format!("invalid parameters: {inner}")
        } else {
            format!("invalid parameter `{path}`: {inner}")
        }
    })
}
