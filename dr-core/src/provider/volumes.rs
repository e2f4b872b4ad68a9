//! `VolumeSnapshots`: point-in-time copies of block volumes (evidence, backups).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::Capabilities;
use crate::Result;

/// State of a volume snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeSnapshotState {
    /// Being taken.
    Pending,
    /// Complete and usable.
    Completed,
    /// Failed.
    Error,
}

/// A snapshot of one block volume.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeSnapshot {
    /// Snapshot id (`snap-0abc…`).
    pub id: String,
    /// The volume it copies (`vol-0abc…`).
    pub volume: String,
    /// Region of the volume and the snapshot.
    pub region: String,
    /// State.
    pub state: VolumeSnapshotState,
    /// Tags on the snapshot (the incident it belongs to).
    pub tags: BTreeMap<String, String>,
}

/// Block-volume snapshots (EC2 EBS, the simulated cloud).
///
/// A snapshot is tagged when it is created, and a step that takes one looks for a snapshot
/// of the volume with its tag first, so a resumed run never takes a second.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> dr_core::Result<()> {
/// use std::collections::BTreeMap;
/// use dr_core::provider::VolumeSnapshots;
///
/// async fn evidence(v: &dyn VolumeSnapshots) -> dr_core::Result<String> {
///     let tags = BTreeMap::from([("incident".to_string(), "INC-42".to_string())]);
///     let found = v.find_volume_snapshots("us-east-1", "vol-0abc", &tags).await?;
///     match found.into_iter().next() {
///         Some(s) => Ok(s.id),
///         None => Ok(v.create_volume_snapshot("us-east-1", "vol-0abc", "INC-42 evidence", &tags).await?.id),
///     }
/// }
/// # Ok(()) }
/// ```
#[async_trait]
pub trait VolumeSnapshots: std::fmt::Debug + Send + Sync + 'static {
    /// The provider's name (`sim`, `ec2`).
    fn name(&self) -> &str;

    /// The operations this provider supports.
    fn capabilities(&self) -> Capabilities;

    /// Starts a snapshot of `volume` in `region`, tagged with `tags` at creation.
    ///
    /// # Errors
    /// `NotFound` (volume).
    async fn create_volume_snapshot(
        &self,
        region: &str,
        volume: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<VolumeSnapshot>;

    /// One snapshot.
    ///
    /// # Errors
    /// `NotFound` (snapshot).
    async fn describe_volume_snapshot(&self, region: &str, id: &str) -> Result<VolumeSnapshot>;

    /// The snapshots of `volume` carrying every tag of `tags`, oldest first.
    ///
    /// # Errors
    /// Provider errors; an unknown volume yields an empty list.
    async fn find_volume_snapshots(
        &self,
        region: &str,
        volume: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<VolumeSnapshot>>;
}

/// A `VolumeSnapshots` trait object.
pub type DynVolumeSnapshots = dyn VolumeSnapshots;

#[async_trait]
impl<T: VolumeSnapshots + ?Sized> VolumeSnapshots for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    async fn create_volume_snapshot(
        &self,
        region: &str,
        volume: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<VolumeSnapshot> {
        (**self)
            .create_volume_snapshot(region, volume, description, tags)
            .await
    }
    async fn describe_volume_snapshot(&self, region: &str, id: &str) -> Result<VolumeSnapshot> {
        (**self).describe_volume_snapshot(region, id).await
    }
    async fn find_volume_snapshots(
        &self,
        region: &str,
        volume: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<VolumeSnapshot>> {
        (**self).find_volume_snapshots(region, volume, tags).await
    }
}
