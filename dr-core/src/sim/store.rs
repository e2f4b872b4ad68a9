//! Snapshot stores of the simulated cloud: in-memory stores behind latency and faults.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

use super::{SimCloud, PROVIDER};
use crate::provider::{
    ByteStream, Capabilities, GetResult, ObjectMeta, Operation, Precondition, PutOptions,
    SnapshotStore, Version,
};
use crate::store::InMemoryStore;
use crate::Result;

const ROLE: &str = "store";

/// A snapshot store of the simulated cloud ([`SimCloud::store`]): an [`InMemoryStore`]
/// whose calls have latency, faults and entries in the call log.
#[derive(Debug, Clone)]
pub struct SimStore {
    cloud: SimCloud,
    name: String,
    inner: InMemoryStore,
}

impl SimStore {
    pub(super) fn new(cloud: SimCloud, name: &str, inner: InMemoryStore) -> Self {
        SimStore {
            cloud,
            name: name.to_string(),
            inner,
        }
    }

    fn target(&self, key: &str) -> String {
        format!("{}/{key}", self.name)
    }

    async fn run<T>(
        &self,
        op: Operation,
        key: &str,
        effect: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let target = self.target(key);
        let fail_after = self.cloud.admit(ROLE, op, &target, &[]).await?;
        let result = effect.await;
        self.cloud.finish(ROLE, op, &target, fail_after, result)
    }
}

#[async_trait]
impl SnapshotStore for SimStore {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn put(&self, key: &str, data: ByteStream, opts: PutOptions) -> Result<ObjectMeta> {
        self.run(Operation::Put, key, self.inner.put(key, data, opts))
            .await
    }

    async fn get(&self, key: &str) -> Result<GetResult> {
        self.run(Operation::Get, key, self.inner.get(key)).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.run(Operation::Head, key, self.inner.head(key)).await
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<ObjectMeta>> {
        futures::stream::once(self.run(Operation::List, prefix, async { Ok(()) }))
            .flat_map(move |admitted| match admitted {
                Ok(()) => self.inner.list(prefix),
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .boxed()
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.run(Operation::Delete, key, self.inner.delete(key))
            .await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        self.run(Operation::Copy, from, self.inner.copy(from, to))
            .await
    }

    async fn put_if(&self, key: &str, data: Bytes, condition: Precondition) -> Result<Version> {
        self.run(
            Operation::PutIf,
            key,
            self.inner.put_if(key, data, condition),
        )
        .await
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Bytes, Version)>> {
        self.run(Operation::GetVersioned, key, self.inner.get_versioned(key))
            .await
    }
}
