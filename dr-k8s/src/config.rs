//! Building a [`KubeDeployer`]: one kube [`Client`] per cluster name.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use dr_core::{Error, Result};
use kube::config::{Config, KubeConfigOptions};
use kube::core::ApiResource;
use kube::Client;

use crate::deployer::KubeDeployer;
use crate::error::PROVIDER;

/// The field manager of every server-side apply, unless set with
/// [`KubeDeployerBuilder::field_manager`].
pub const DEFAULT_FIELD_MANAGER: &str = "dr-orchestrator";

enum Source {
    Client(Client),
    Context(String),
    InCluster,
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Client(_) => f.write_str("Client"),
            Source::Context(c) => write!(f, "Context({c})"),
            Source::InCluster => f.write_str("InCluster"),
        }
    }
}

/// Builds a [`KubeDeployer`]; see [`KubeDeployer::builder`].
#[derive(Debug)]
pub struct KubeDeployerBuilder {
    clusters: Vec<(String, Source)>,
    field_manager: String,
}

impl Default for KubeDeployerBuilder {
    fn default() -> Self {
        KubeDeployerBuilder {
            clusters: Vec::new(),
            field_manager: DEFAULT_FIELD_MANAGER.to_string(),
        }
    }
}

impl KubeDeployerBuilder {
    /// Addresses cluster `name` through `client` (tests pass a client over a mock service).
    pub fn cluster(mut self, name: impl Into<String>, client: Client) -> Self {
        self.clusters.push((name.into(), Source::Client(client)));
        self
    }

    /// Addresses cluster `name` through `context` of the kubeconfig (`$KUBECONFIG` or
    /// `~/.kube/config`), with that context's credentials.
    pub fn cluster_from_context(
        mut self,
        name: impl Into<String>,
        context: impl Into<String>,
    ) -> Self {
        self.clusters
            .push((name.into(), Source::Context(context.into())));
        self
    }

    /// Addresses cluster `name` through the service account of the pod this runs in.
    pub fn in_cluster(mut self, name: impl Into<String>) -> Self {
        self.clusters.push((name.into(), Source::InCluster));
        self
    }

    /// The field manager of server-side applies (default [`DEFAULT_FIELD_MANAGER`]).
    pub fn field_manager(mut self, manager: impl Into<String>) -> Self {
        self.field_manager = manager.into();
        self
    }

    /// Loads every cluster's configuration and builds the deployer.
    ///
    /// # Errors
    /// `InvalidRequest` when a cluster is named twice or none is given; `Unauthorized` when a
    /// kubeconfig context or the in-cluster service account cannot be loaded.
    pub async fn build(self) -> Result<KubeDeployer> {
        install_crypto_provider();
        if self.clusters.is_empty() {
            return Err(crate::error::invalid_request(
                "build",
                "no cluster configured",
            ));
        }
        let mut clusters = BTreeMap::new();
        for (name, source) in self.clusters {
            let client = match source {
                Source::Client(c) => c,
                Source::Context(ctx) => {
                    let opts = KubeConfigOptions {
                        context: Some(ctx.clone()),
                        ..KubeConfigOptions::default()
                    };
                    let config = Config::from_kubeconfig(&opts).await.map_err(|e| {
                        config_error(&name, &format!("kubeconfig context {ctx}"), e)
                    })?;
                    Client::try_from(config).map_err(|e| config_error(&name, "client", e))?
                }
                Source::InCluster => {
                    let config = Config::incluster()
                        .map_err(|e| config_error(&name, "in-cluster configuration", e))?;
                    Client::try_from(config).map_err(|e| config_error(&name, "client", e))?
                }
            };
            let handle = Arc::new(Cluster {
                name: name.clone(),
                client,
                discovered: Mutex::default(),
            });
            if clusters.insert(name.clone(), handle).is_some() {
                return Err(crate::error::invalid_request(
                    "build",
                    format!("cluster {name} configured twice"),
                ));
            }
        }
        Ok(KubeDeployer::new(clusters, self.field_manager))
    }
}

/// Installs rustls' ring provider as the process default unless one is installed already:
/// rustls picks none by itself when a build enables both ring (kube) and aws-lc-rs (the AWS
/// SDK), and kube's TLS configuration would panic.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn config_error(cluster: &str, what: &str, e: impl fmt::Display) -> Error {
    Error::Unauthorized {
        provider: PROVIDER.to_string(),
        message: format!("cluster {cluster}: cannot load {what}: {e}"),
    }
}

/// One cluster: its client and what discovery found on it.
pub(crate) struct Cluster {
    pub(crate) name: String,
    pub(crate) client: Client,
    /// `(apiVersion, kind)` → resource and whether it is namespaced.
    pub(crate) discovered: Mutex<HashMap<(String, String), (ApiResource, bool)>>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
