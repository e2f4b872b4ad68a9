//! Simulated block volumes and their snapshots: a snapshot is `pending` until the
//! configured snapshot duration has passed, then `completed`; its tags are kept as given.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::SimInstant as Instant;
use super::{Env, SimCloud, State, PROVIDER};
use crate::provider::{
    Capabilities, Operation, VolumeSnapshot, VolumeSnapshotState, VolumeSnapshots,
};
use crate::{Error, Result};

const ROLE: &str = "volumes";

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Snap {
    volume: String,
    tags: BTreeMap<String, String>,
    description: String,
    ready_at: Instant,
}

/// Volumes and volume snapshots of the simulated cloud, by region.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Volumes {
    /// Volume ids per region.
    volumes: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// Snapshots by (region, id), in creation order of their ids.
    snapshots: BTreeMap<(String, String), Snap>,
    next: u64,
}

impl Volumes {
    fn view(&self, region: &str, id: &str, now: Instant) -> Result<VolumeSnapshot> {
        let s = self
            .snapshots
            .get(&(region.to_string(), id.to_string()))
            .ok_or_else(|| Error::not_found(PROVIDER, format!("volume snapshot {region}/{id}")))?;
        Ok(VolumeSnapshot {
            id: id.to_string(),
            volume: s.volume.clone(),
            region: region.to_string(),
            state: if now >= s.ready_at {
                VolumeSnapshotState::Completed
            } else {
                VolumeSnapshotState::Pending
            },
            tags: s.tags.clone(),
        })
    }
}

impl SimCloud {
    /// Adds a block volume `id` in `region`, so that it can be snapshotted.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> dr_core::Result<()> {
    /// use std::collections::BTreeMap;
    /// use dr_core::provider::{VolumeSnapshotState, VolumeSnapshots};
    /// use dr_core::sim::SimCloud;
    ///
    /// let cloud = SimCloud::new(1);
    /// cloud.add_volume("us-east-1", "vol-0abc");
    /// let tags = BTreeMap::from([("incident".to_string(), "INC-1".to_string())]);
    /// let v = cloud.volumes();
    /// let snap = v.create_volume_snapshot("us-east-1", "vol-0abc", "evidence", &tags).await?;
    /// assert_eq!(snap.state, VolumeSnapshotState::Pending);
    /// tokio::time::sleep(cloud.config().snapshot.get()).await;
    /// let snap = v.describe_volume_snapshot("us-east-1", &snap.id).await?;
    /// assert_eq!(snap.state, VolumeSnapshotState::Completed);
    /// # Ok(()) }
    /// ```
    pub fn add_volume(&self, region: &str, id: &str) {
        self.with_state(|st, _| {
            st.volumes
                .volumes
                .entry(region.to_string())
                .or_default()
                .insert(id.to_string())
        });
    }

    /// The volume snapshots of the cloud, in every region (for assertions).
    pub fn volume_snapshots(&self) -> Vec<VolumeSnapshot> {
        self.with_state(|st, env| {
            st.volumes
                .snapshots
                .keys()
                .filter_map(|(r, id)| st.volumes.view(r, id, env.now).ok())
                .collect()
        })
    }

    /// The volume snapshot service (every region of the cloud).
    pub fn volumes(&self) -> std::sync::Arc<dyn VolumeSnapshots> {
        std::sync::Arc::new(SimVolumes {
            cloud: self.clone(),
        })
    }
}

/// The simulated cloud's [`VolumeSnapshots`] service ([`SimCloud::volumes`]).
#[derive(Debug, Clone)]
pub struct SimVolumes {
    cloud: SimCloud,
}

impl SimVolumes {
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
impl VolumeSnapshots for SimVolumes {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn capabilities(&self) -> Capabilities {
        use Operation::*;
        Capabilities::of([
            CreateVolumeSnapshot,
            DescribeVolumeSnapshot,
            FindVolumeSnapshots,
        ])
    }

    async fn create_volume_snapshot(
        &self,
        region: &str,
        volume: &str,
        description: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<VolumeSnapshot> {
        let target = format!("{region}/{volume}");
        self.call(
            Operation::CreateVolumeSnapshot,
            &target,
            &[region],
            |st, env| {
                let v = &mut st.volumes;
                if !v.volumes.get(region).is_some_and(|s| s.contains(volume)) {
                    return Err(Error::not_found(
                        PROVIDER,
                        format!("volume {region}/{volume}"),
                    ));
                }
                v.next += 1;
                let id = format!("snap-{:017x}", v.next);
                v.snapshots.insert(
                    (region.to_string(), id.clone()),
                    Snap {
                        volume: volume.to_string(),
                        tags: tags.clone(),
                        description: description.to_string(),
                        ready_at: env.now + env.cfg.snapshot.get(),
                    },
                );
                v.view(region, &id, env.now)
            },
        )
        .await
    }

    async fn describe_volume_snapshot(&self, region: &str, id: &str) -> Result<VolumeSnapshot> {
        let target = format!("{region}/{id}");
        self.call(
            Operation::DescribeVolumeSnapshot,
            &target,
            &[],
            |st, env| st.volumes.view(region, id, env.now),
        )
        .await
    }

    async fn find_volume_snapshots(
        &self,
        region: &str,
        volume: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Vec<VolumeSnapshot>> {
        let target = format!("{region}/{volume}");
        self.call(Operation::FindVolumeSnapshots, &target, &[], |st, env| {
            let v = &st.volumes;
            Ok(v.snapshots
                .iter()
                .filter(|((r, _), s)| {
                    r == region
                        && s.volume == volume
                        && tags.iter().all(|(k, val)| s.tags.get(k) == Some(val))
                })
                .filter_map(|((r, id), _)| v.view(r, id, env.now).ok())
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sim::{FaultConfig, FaultRule, SimConfig};

    fn tags(incident: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("incident".to_string(), incident.to_string())])
    }

    #[tokio::test(start_paused = true)]
    async fn snapshots_complete_after_simulated_time_and_keep_their_tags() {
        let cloud = SimCloud::new(1);
        cloud.add_volume("east", "vol-1");
        let v = cloud.volumes();
        let s = v
            .create_volume_snapshot("east", "vol-1", "INC-1", &tags("INC-1"))
            .await
            .unwrap();
        assert_eq!(s.state, VolumeSnapshotState::Pending);
        assert_eq!(s.tags, tags("INC-1"));
        tokio::time::sleep(cloud.config().snapshot.get()).await;
        let s = v.describe_volume_snapshot("east", &s.id).await.unwrap();
        assert_eq!(s.state, VolumeSnapshotState::Completed);
        assert_eq!(s.volume, "vol-1");
        assert_eq!(s.tags, tags("INC-1"));
    }

    #[tokio::test(start_paused = true)]
    async fn find_matches_every_tag_and_the_volume_oldest_first() {
        let cloud = SimCloud::new(1);
        cloud.add_volume("east", "vol-1");
        cloud.add_volume("east", "vol-2");
        let v = cloud.volumes();
        let a = v
            .create_volume_snapshot("east", "vol-1", "", &tags("INC-1"))
            .await
            .unwrap();
        v.create_volume_snapshot("east", "vol-1", "", &tags("INC-2"))
            .await
            .unwrap();
        v.create_volume_snapshot("east", "vol-2", "", &tags("INC-1"))
            .await
            .unwrap();
        let b = v
            .create_volume_snapshot("east", "vol-1", "", &tags("INC-1"))
            .await
            .unwrap();
        let found = v
            .find_volume_snapshots("east", "vol-1", &tags("INC-1"))
            .await
            .unwrap();
        let ids: Vec<_> = found.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, [a.id.as_str(), b.id.as_str()]);
        assert!(v
            .find_volume_snapshots("west", "vol-1", &tags("INC-1"))
            .await
            .unwrap()
            .is_empty());
        assert!(v
            .find_volume_snapshots("east", "vol-9", &BTreeMap::new())
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_volumes_failed_regions_and_faults_are_errors() {
        let cfg = SimConfig::default().with_faults(FaultConfig::default().with_permanent(
            FaultRule::new(Some(Operation::CreateVolumeSnapshot), "east/vol-bad").times(1),
        ));
        let cloud = SimCloud::with_config(1, cfg);
        cloud.add_volume("east", "vol-1");
        cloud.add_volume("east", "vol-bad");
        let v = cloud.volumes();
        let e = v
            .create_volume_snapshot("east", "vol-9", "", &BTreeMap::new())
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let e = v
            .create_volume_snapshot("east", "vol-bad", "", &BTreeMap::new())
            .await
            .unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        assert!(cloud.volume_snapshots().is_empty());
        cloud.fail_region("east");
        let e = v
            .create_volume_snapshot("east", "vol-1", "", &BTreeMap::new())
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(v.describe_volume_snapshot("east", "snap-x").await.is_err());
    }
}
