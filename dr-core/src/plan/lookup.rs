//! Name lookups on a plan in constant time, without making the plan's public fields lie.
//!
//! A [`Plan`](super::Plan) is plain data with public fields that callers may change at any
//! time, so an index built once could go stale. Each index here maps the hash of a name to
//! the position of its first declaration and is only a hint: a hit is checked against the
//! entry it points at, and a miss or a mismatch falls back to the linear search. Answers are
//! therefore always those of the linear search (for plans without duplicate names, which
//! validation refuses), and cost O(1) for the names the plan declared when the index was
//! built.

use std::hash::BuildHasher;
use std::sync::OnceLock;

use crate::graph::FastMap;

type Hints = FastMap<u64, usize>;

/// Lazily built lookup hints, one per section; cloning or comparing a plan ignores them.
#[derive(Default)]
pub(crate) struct Lookup {
    services: OnceLock<Hints>,
    databases: OnceLock<Hints>,
    regions: OnceLock<Hints>,
    clusters: OnceLock<Hints>,
    dns: OnceLock<Hints>,
    health_checks: OnceLock<Hints>,
    scenarios: OnceLock<Hints>,
    /// (cluster position, workload name) → workload position.
    workloads: OnceLock<FastMap<(usize, u64), usize>>,
    /// The hasher of names (seeded per process).
    hasher: foldhash::fast::RandomState,
}

/// Which section a lookup is in.
#[derive(Clone, Copy)]
pub(crate) enum Section {
    Services,
    Databases,
    Regions,
    Clusters,
    Dns,
    HealthChecks,
    Scenarios,
}

impl Lookup {
    fn hash(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    fn hints(&self, section: Section) -> &OnceLock<Hints> {
        match section {
            Section::Services => &self.services,
            Section::Databases => &self.databases,
            Section::Regions => &self.regions,
            Section::Clusters => &self.clusters,
            Section::Dns => &self.dns,
            Section::HealthChecks => &self.health_checks,
            Section::Scenarios => &self.scenarios,
        }
    }

    /// The first item of `items` whose `name_of` is `name`.
    pub(crate) fn find<'a, T>(
        &self,
        section: Section,
        items: &'a [T],
        name_of: impl Fn(&T) -> &str,
        name: &str,
    ) -> Option<&'a T> {
        // Small sections: a scan is as fast as hashing.
        if items.len() <= 8 {
            return items.iter().find(|i| name_of(i) == name);
        }
        let hints = self.hints(section).get_or_init(|| {
            let mut h = Hints::with_capacity_and_hasher(items.len(), Default::default());
            for (i, item) in items.iter().enumerate() {
                h.entry(self.hash(name_of(item))).or_insert(i);
            }
            h
        });
        match hints.get(&self.hash(name)).and_then(|&i| items.get(i)) {
            Some(item) if name_of(item) == name => Some(item),
            _ => items.iter().find(|i| name_of(i) == name),
        }
    }

    /// The workload `name` on the cluster at position `cluster` of `clusters`.
    pub(crate) fn workload<'a>(
        &self,
        clusters: &'a [super::Cluster],
        cluster: usize,
        name: &str,
    ) -> Option<&'a super::Workload> {
        let workloads = &clusters.get(cluster)?.workloads;
        let hints = self.workloads.get_or_init(|| {
            let total = clusters.iter().map(|c| c.workloads.len()).sum();
            let mut h = FastMap::with_capacity_and_hasher(total, Default::default());
            for (c, cl) in clusters.iter().enumerate() {
                for (i, w) in cl.workloads.iter().enumerate() {
                    h.entry((c, self.hash(&w.name))).or_insert(i);
                }
            }
            h
        });
        match hints
            .get(&(cluster, self.hash(name)))
            .and_then(|&i| workloads.get(i))
        {
            Some(w) if w.name == name => Some(w),
            _ => workloads.iter().find(|w| w.name == name),
        }
    }
}

impl Clone for Lookup {
    /// A clone starts without hints: it is usually changed next.
    fn clone(&self) -> Self {
        Lookup::default()
    }
}

impl PartialEq for Lookup {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup")
    }
}
