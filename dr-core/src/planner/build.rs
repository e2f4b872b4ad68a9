//! Assembling steps into a graph, and the forecasts over it.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::time::Duration;

use crate::duration::human;
use crate::graph::{Action, FastMap, FastSet, RecoveryGraph, Risk, ServiceForecast, Step, StepId};
use crate::plan::{Plan, Scenario, Service};
use crate::planner::PlanningError;

use super::ObservedState;

/// Estimate of a call that only starts a long operation (the wait step that follows carries
/// the operation's own estimate).
pub(super) const API_CALL: Duration = Duration::from_secs(5);
/// The kind whose plan timeout a call that only starts an operation takes (the quickest call).
const API_CALL_KIND: &str = "scale";
/// Its default: a minute.
const API_CALL_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct GraphBuilder<'a> {
    pub(super) plan: &'a Plan,
    pub(super) scenario: &'a Scenario,
    pub(super) observed: &'a ObservedState,
    steps: Vec<Step>,
    /// Position of each step by the hash of its id (the last step of an id wins, as in a
    /// map collected from the steps), checked against the step it points at.
    positions: FastMap<u64, usize>,
    /// The hasher of `positions`.
    hasher: foldhash::fast::RandomState,
    /// Position of each step by where its id's shared text lives: a dependency that is a
    /// clone of a step's id (as every id a builder method returns is) is found without
    /// reading its text.
    by_addr: FastMap<usize, usize>,
    /// Whether two steps have the same id (then the last one wins, found by text).
    duplicates: bool,
    /// Each service with steps, by name: its place in `services`.
    by_service: FastMap<std::sync::Arc<str>, usize>,
    /// Each service with steps: its name, shared by its steps, and the indices of its steps,
    /// so per-service queries do not scan every step.
    services: Vec<(std::sync::Arc<str>, Vec<usize>)>,
    /// Data-loss window forecast per database name recovered in this scenario.
    pub(super) db_loss: BTreeMap<String, Duration>,
    pub(super) risks: Vec<Risk>,
    /// The service each database's recovery is reported under, computed once.
    owners: std::sync::OnceLock<FastMap<&'a str, &'a str>>,
    /// Milestones reached at a later step than the one whose kind marks them (a promotion
    /// is done when the promoted database is available, not when the call returns).
    reached_at: Vec<(&'static str, StepId)>,
}

impl<'a> GraphBuilder<'a> {
    pub(super) fn new(plan: &'a Plan, scenario: &'a Scenario, observed: &'a ObservedState) -> Self {
        // Sized once for the usual few steps per service: growing a large vector and map by
        // doubling copies them and, with glibc, consolidates the freed blocks each time.
        let hint = plan.services.len() * 5 + plan.databases.len() * 4 + 32;
        GraphBuilder {
            plan,
            scenario,
            observed,
            steps: Vec::with_capacity(hint),
            positions: FastMap::with_capacity_and_hasher(hint, Default::default()),
            hasher: foldhash::fast::RandomState::default(),
            by_addr: FastMap::with_capacity_and_hasher(hint, Default::default()),
            duplicates: false,
            by_service: FastMap::with_capacity_and_hasher(plan.services.len(), Default::default()),
            services: Vec::with_capacity(plan.services.len()),
            db_loss: BTreeMap::new(),
            risks: Vec::new(),
            reached_at: Vec::new(),
            owners: std::sync::OnceLock::new(),
        }
    }

    /// Adds a critical step estimated and timed by its kind; returns its id.
    pub(super) fn add(
        &mut self,
        id: impl Into<StepId>,
        action: Action,
        service: Option<&str>,
        depends_on: Vec<StepId>,
    ) -> StepId {
        let (estimate, timeout) = (
            self.plan.estimate_of(&action),
            self.plan.timeout_of(&action),
        );
        self.push(id.into(), action, service, depends_on, estimate, timeout)
    }

    /// Adds a step that only starts a long operation, `waited` by a later step.
    pub(super) fn add_call(
        &mut self,
        id: impl Into<StepId>,
        action: Action,
        service: Option<&str>,
        depends_on: Vec<StepId>,
    ) -> StepId {
        // An API call that only starts the operation is timed like the quickest call, not
        // like the operation it starts.
        let timeout = self.plan.timeout(API_CALL_KIND, API_CALL_TIMEOUT);
        self.push(id.into(), action, service, depends_on, API_CALL, timeout)
    }

    /// Adds a wait step whose estimate and timeout are those of the operation it waits for.
    pub(super) fn add_wait(
        &mut self,
        id: impl Into<StepId>,
        action: Action,
        waited: &Action,
        service: Option<&str>,
        depends_on: Vec<StepId>,
    ) -> StepId {
        let (estimate, timeout) = (self.plan.estimate_of(waited), self.plan.timeout_of(waited));
        self.push(id.into(), action, service, depends_on, estimate, timeout)
    }

    /// Adds an optional step: its failure degrades the run instead of failing it.
    pub(super) fn add_optional(
        &mut self,
        id: impl Into<StepId>,
        action: Action,
        service: Option<&str>,
        depends_on: Vec<StepId>,
    ) -> StepId {
        let id = self.add(id, action, service, depends_on);
        if let Some(s) = self.steps.last_mut() {
            s.critical = false;
        }
        id
    }

    /// Makes the step `id`, already added, optional: its failure degrades the run, and its
    /// dependants run without it.
    pub(super) fn make_optional(&mut self, id: &str) {
        if let Some(i) = self.position(id) {
            self.steps[i].critical = false;
        }
    }

    /// Adds a critical step ([`add_optional`](Self::add_optional) clears the flag).
    fn push(
        &mut self,
        id: StepId,
        action: Action,
        service: Option<&str>,
        mut depends_on: Vec<StepId>,
        estimate: Duration,
        timeout: Duration,
    ) -> StepId {
        if depends_on.len() > 1 {
            depends_on.sort_unstable();
            depends_on.dedup();
        }
        let (plan, scenario) = (self.plan.name.as_str(), self.scenario.name.as_str());
        let mut idempotency_key = String::with_capacity(plan.len() + scenario.len() + id.len() + 2);
        for part in [plan, ":", scenario, ":", id.as_str()] {
            idempotency_key.push_str(part);
        }
        let at = self.steps.len();
        let service = service.map(|name| {
            let k = match self.by_service.get(name) {
                Some(&k) => k,
                None => {
                    let k = self.services.len();
                    let shared: std::sync::Arc<str> = name.into();
                    self.by_service.insert(shared.clone(), k);
                    self.services.push((shared, Vec::with_capacity(4)));
                    k
                }
            };
            let (shared, own) = &mut self.services[k];
            own.push(at);
            shared.clone()
        });
        if self
            .positions
            .insert(self.hasher.hash_one(id.as_str()), at)
            .is_some()
        {
            // The same id again (or two ids of one hash): the text decides from now on.
            self.duplicates = true;
        }
        self.by_addr.insert(id.addr(), at);
        self.steps.push(Step {
            id: id.clone(),
            action,
            service,
            depends_on,
            idempotency_key,
            retry: None,
            estimate,
            timeout,
            critical: true,
        });
        id
    }

    /// Adds one of the plan's own steps, with everything the plan said about it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_plan_step(
        &mut self,
        id: StepId,
        action: Action,
        service: Option<&str>,
        depends_on: Vec<StepId>,
        estimate: Duration,
        timeout: Duration,
        critical: bool,
        retry: Option<crate::RetryPolicy>,
    ) {
        self.push(id, action, service, depends_on, estimate, timeout);
        if let Some(s) = self.steps.last_mut() {
            s.critical = critical;
            s.retry = retry;
        }
    }

    /// The position of the last step with id `id`.
    fn position(&self, id: &str) -> Option<usize> {
        match self.positions.get(&self.hasher.hash_one(id)) {
            Some(&i) if self.steps.get(i).is_some_and(|s| s.id == id) => Some(i),
            // Two ids with one hash (or none): the slow way, with the same answer.
            _ => self.steps.iter().rposition(|s| s.id == id),
        }
    }

    /// The position of the step a dependency names: by the address of its text when it is
    /// a step's own id and no id is used twice, else by its text, as [`position`](Self::position).
    fn resolve(&self, dep: &StepId) -> Option<usize> {
        if !self.duplicates {
            if let Some(&i) = self.by_addr.get(&dep.addr()) {
                return Some(i);
            }
        }
        self.position(dep)
    }

    /// The ids of every step so far.
    pub(super) fn step_ids(&self) -> FastSet<StepId> {
        self.steps.iter().map(|s| s.id.clone()).collect()
    }

    /// The service a database's recovery is reported under: a service that is only the
    /// database, else the first (most critical, then first declared) service using it.
    pub(super) fn owner_of(&self, db: &str) -> Option<&'a str> {
        let plan = self.plan;
        let owners = self.owners.get_or_init(|| {
            let mut by_tier: Vec<&'a Service> = plan.services.iter().collect();
            by_tier.sort_by_key(|s| s.tier);
            let mut owners: FastMap<&'a str, &'a str> = FastMap::default();
            let mut bare: FastMap<&'a str, &'a str> = FastMap::default();
            for s in by_tier {
                if let Some(d) = s.database.as_deref() {
                    owners.entry(d).or_insert(s.name.as_str());
                    if s.workloads.is_empty() {
                        bare.entry(d).or_insert(s.name.as_str());
                    }
                }
            }
            owners.extend(bare);
            owners
        });
        owners.get(db).copied()
    }

    /// Records that `milestone` is reached when step `id` is done.
    pub(super) fn reached(&mut self, milestone: &'static str, id: &StepId) {
        self.reached_at.push((milestone, id.clone()));
    }

    /// The ids of the steps after which `milestone` is reached.
    pub(super) fn milestone_steps(&self, milestone: &str) -> Vec<StepId> {
        let later: Vec<StepId> = self
            .reached_at
            .iter()
            .filter(|(m, _)| *m == milestone)
            .map(|(_, id)| id.clone())
            .collect();
        if !later.is_empty() {
            return later;
        }
        self.steps
            .iter()
            .filter(|s| s.action.milestone() == Some(milestone))
            .map(|s| s.id.clone())
            .collect()
    }

    /// The milestones reached by the steps so far.
    pub(super) fn milestones(&self) -> Vec<&'static str> {
        let set: BTreeSet<&'static str> = self
            .steps
            .iter()
            .filter_map(|s| s.action.milestone())
            .collect();
        set.into_iter().collect()
    }

    pub(super) fn risk(&mut self, service: Option<&str>, message: impl Into<String>) {
        self.risks.push(Risk {
            service: service.map(str::to_string),
            message: message.into(),
        });
    }

    /// The ids of `service`'s steps that no other step of the same service depends on: the
    /// steps after which the service counts as recovered.
    pub(super) fn service_sinks(&self, service: &str) -> Vec<StepId> {
        let Some(&k) = self.by_service.get(service) else {
            return Vec::new();
        };
        let own = &self.services[k].1;
        // A service has a handful of steps: comparing each with every dependency of the
        // others (shared text first, so mostly without reading it) beats building a set.
        own.iter()
            .map(|&i| &self.steps[i])
            .filter(|s| {
                !own.iter()
                    .any(|&o| self.steps[o].depends_on.contains(&s.id))
            })
            .map(|s| s.id.clone())
            .collect()
    }

    /// Every step no other step depends on.
    pub(super) fn sinks(&self) -> Vec<StepId> {
        let depended: FastSet<&str> = self
            .steps
            .iter()
            .flat_map(|s| s.depends_on.iter().map(StepId::as_str))
            .collect();
        self.steps
            .iter()
            .filter(|s| !depended.contains(s.id.as_str()))
            .map(|s| s.id.clone())
            .collect()
    }

    pub(super) fn has_steps(&self) -> bool {
        !self.steps.is_empty()
    }

    /// Sorts steps topologically (stable: a step keeps its place unless a dependency comes
    /// later), computes the critical path and the forecasts, and returns the graph.
    ///
    /// # Errors
    /// Steps that wait on each other in a cycle (a plan step's `after:` naming a step that
    /// itself waits for the plan step): [`PlanningError::InvalidStep`] at that plan step's
    /// `after`, or [`PlanningError::Cycle`] when no plan step is on it, the cycle named.
    pub(super) fn finish(mut self) -> std::result::Result<RecoveryGraph, PlanningError> {
        // Every dependency by position, once: the order check and the timing share it.
        let n = self.steps.len();
        let mut deps = Vec::with_capacity(n * 3);
        let mut starts = Vec::with_capacity(n + 1);
        let mut in_order = true;
        for (i, s) in self.steps.iter().enumerate() {
            starts.push(deps.len());
            for d in &s.depends_on {
                if let Some(j) = self.resolve(d) {
                    in_order &= j < i;
                    deps.push(j);
                }
            }
        }
        starts.push(deps.len());
        let timing = if in_order {
            Timing::from_deps(&self.steps, deps, starts)
        } else {
            let lists: Vec<Vec<usize>> = (0..n)
                .map(|i| deps[starts[i]..starts[i + 1]].to_vec())
                .collect();
            let order = kahn(&lists);
            if let Some(cycle) = cycle_among(&lists, &order) {
                return Err(self.cycle_error(&cycle));
            }
            // Each service's steps by their new positions.
            let mut moved_to = vec![0; n];
            for (new, &old) in order.order.iter().enumerate() {
                moved_to[old] = new;
            }
            for (_, own) in &mut self.services {
                for i in own.iter_mut() {
                    *i = moved_to[*i];
                }
            }
            self.steps = reorder(std::mem::take(&mut self.steps), order.order);
            Timing::of(&self.steps)
        };
        let mut graph = RecoveryGraph {
            plan: self.plan.name.clone(),
            scenario: self.scenario.name.clone(),
            steps: self.steps,
            critical_path: Vec::new(),
            forecast: Duration::ZERO,
            services: Vec::new(),
            risks: Vec::new(),
            interlocks: self.plan.interlocks.clone(),
            compensate_on_failure: self.scenario.compensate_on_failure,
            limits: self.plan.limits.clone().filter(|l| !l.is_empty()),
        };
        let (path, total) = timing.critical_path(&graph.steps);
        // Each service's forecast: when its last critical step is done.
        let forecast_of: Vec<Option<Duration>> = self
            .services
            .iter()
            .map(|(_, own)| {
                own.iter()
                    .filter(|&&i| graph.steps[i].critical)
                    .map(|&i| timing.finish[i])
                    .max()
            })
            .collect();
        let mut services = Vec::with_capacity(forecast_of.len());
        let loss = data_loss_of(self.plan, &self.db_loss);
        let mut ordered: Vec<(usize, &Service)> = self.plan.services.iter().enumerate().collect();
        ordered.sort_by_key(|(_, s)| s.tier);
        let risks = &mut self.risks;
        for (i, svc) in ordered {
            let Some(forecast_rto) = self
                .by_service
                .get(svc.name.as_str())
                .and_then(|&k| forecast_of[k])
            else {
                continue;
            };
            let forecast_rpo = loss[i];
            let rto_target = self.scenario.rto.map_or(svc.rto.get(), |r| r.get());
            let rto_ok = forecast_rto <= rto_target;
            let rpo_ok = forecast_rpo.is_none_or(|r| r <= svc.rpo.get());
            if !rto_ok {
                risks.push(Risk {
                    service: Some(svc.name.clone()),
                    message: format!(
                        "forecast recovery {} exceeds RTO {}",
                        human(forecast_rto),
                        human(rto_target)
                    ),
                });
            }
            if let (false, Some(r)) = (rpo_ok, forecast_rpo) {
                risks.push(Risk {
                    service: Some(svc.name.clone()),
                    message: format!(
                        "forecast data loss {} exceeds RPO {}",
                        human(r),
                        human(svc.rpo.get())
                    ),
                });
            }
            services.push(ServiceForecast {
                name: svc.name.clone(),
                rto_target,
                forecast_rto,
                rpo_target: svc.rpo.get(),
                forecast_rpo,
                within_targets: rto_ok && rpo_ok,
            });
        }
        graph.critical_path = path;
        graph.forecast = total;
        graph.services = services;
        graph.risks = self.risks;
        Ok(graph)
    }

    /// The error for steps (by position) that wait on each other in a cycle, each waiting
    /// for the one after it, named from a plan step on it when there is one.
    fn cycle_error(&self, cycle: &[usize]) -> PlanningError {
        let own: BTreeSet<&str> = self.scenario.steps.iter().map(|s| s.id.as_str()).collect();
        // Each runs before the next: reverse the "waits for" order, and start at a plan step.
        let mut ids: Vec<&str> = cycle
            .iter()
            .rev()
            .map(|&i| self.steps[i].id.as_str())
            .collect();
        let start = ids.iter().position(|id| own.contains(id));
        if let Some(k) = start {
            ids.rotate_left(k);
        }
        let mut shown = ids.clone();
        shown.push(ids[0]);
        let path = shown.join(" → ");
        match start {
            Some(_) => PlanningError::InvalidStep {
                at: format!("scenarios[{}].steps[{}].after", self.scenario.name, ids[0]),
                message: format!(
                    "waits for a step that, through the scenario's own order, waits for it: \
                     a cycle {path}"
                ),
            },
            None => PlanningError::Cycle {
                scenario: self.scenario.name.clone(),
                cycle: path,
            },
        }
    }
}

/// A cycle among the steps [`kahn`] could not place: positions each waiting for the next
/// (the last waits for the first), or `None` when every step was placed.
fn cycle_among(deps: &[Vec<usize>], order: &Kahn) -> Option<Vec<usize>> {
    let first = *order.order.get(order.placed..)?.first()?;
    let mut placed = vec![false; deps.len()];
    for &i in &order.order[..order.placed] {
        placed[i] = true;
    }
    // Every step left waits for at least one other step left, so walking such waits from
    // any of them comes back to a step already seen: the walk from there is the cycle.
    let mut seen_at: FastMap<usize, usize> = FastMap::default();
    let mut walk = Vec::new();
    let mut current = first;
    loop {
        if let Some(&k) = seen_at.get(&current) {
            return Some(walk.split_off(k));
        }
        seen_at.insert(current, walk.len());
        walk.push(current);
        current = *deps[current].iter().find(|&&j| !placed[j])?;
    }
}

/// Services by name.
pub(super) fn service_index(plan: &Plan) -> FastMap<&str, &Service> {
    plan.services.iter().map(|s| (s.name.as_str(), s)).collect()
}

/// Databases a service uses, directly or through the services it depends on.
pub(super) fn databases_of(index: &FastMap<&str, &Service>, service: &Service) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![service];
    let mut seen = BTreeSet::new();
    while let Some(s) = stack.pop() {
        if !seen.insert(s.name.as_str()) {
            continue;
        }
        if let Some(db) = &s.database {
            out.insert(db.clone());
        }
        stack.extend(
            s.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied()),
        );
    }
    out
}

/// The data-loss forecast of every service (by index): the largest window of the databases
/// it uses, directly or through the services it depends on — [`databases_of`] for every
/// service at once, in linear time (one pass over the dependency graph's strongly connected
/// components, dependencies first) instead of a closure walked again per service.
fn data_loss_of(plan: &Plan, db_loss: &BTreeMap<String, Duration>) -> Vec<Option<Duration>> {
    let adj = crate::plan::deps::service_graph(plan);
    let (comp, count) = crate::plan::deps::components(&adj);
    let mut by_comp: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (i, &c) in comp.iter().enumerate() {
        by_comp[c].push(i);
    }
    let mut comp_loss: Vec<Option<Duration>> = vec![None; count];
    // Components are numbered dependencies first, so every other component an edge reaches
    // is final when its dependant's is computed.
    for (c, members) in by_comp.iter().enumerate() {
        let mut worst: Option<Duration> = None;
        for &i in members {
            let own = plan.services[i]
                .database
                .as_ref()
                .and_then(|d| db_loss.get(d))
                .copied();
            worst = worst.max(own);
            for &j in &adj[i] {
                if comp[j] != c {
                    worst = worst.max(comp_loss[comp[j]]);
                }
            }
        }
        comp_loss[c] = worst;
    }
    comp.iter().map(|&c| comp_loss[c]).collect()
}

/// `steps` in the order of positions `order` (a permutation, as [`kahn`] returns).
fn reorder(steps: Vec<Step>, order: Vec<usize>) -> Vec<Step> {
    let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// A topological order by position, as [`kahn`] finds it.
struct Kahn {
    /// Every position once: the placed ones in order, then those left on or behind a cycle.
    order: Vec<usize>,
    /// How many of `order` were placed (all of them unless there is a cycle).
    placed: usize,
}

/// Kahn's algorithm on dependency lists by position, smallest ready position first; any
/// step left on a cycle keeps its place at the end rather than being dropped.
fn kahn(deps: &[Vec<usize>]) -> Kahn {
    let n = deps.len();
    let mut indegree: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            dependants[j].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &k in &dependants[i] {
            indegree[k] -= 1;
            if indegree[k] == 0 {
                ready.insert(k);
            }
        }
    }
    let count = order.len();
    if count < n {
        let mut placed = vec![false; n];
        for &i in &order {
            placed[i] = true;
        }
        order.extend((0..n).filter(|&i| !placed[i]));
    }
    Kahn {
        order,
        placed: count,
    }
}

/// The critical path of a finished graph (see [`Timing::critical_path`]).
pub(super) fn critical_path_of(graph: &RecoveryGraph) -> (Vec<String>, Duration) {
    Timing::of(&graph.steps).critical_path(&graph.steps)
}

/// Earliest finish times over steps in topological order, by position: one name lookup per
/// dependency, then plain indexing.
struct Timing {
    /// Each step's earliest finish when it starts as soon as its dependencies finished and
    /// takes its estimate (unbounded concurrency), as [`RecoveryGraph::earliest_finish`].
    finish: Vec<Duration>,
    /// Every step's dependencies by position, in the order written, one step after the
    /// other: those of step `i` are `deps[starts[i]..starts[i + 1]]`.
    deps: Vec<usize>,
    starts: Vec<usize>,
}

impl Timing {
    /// The timing of `steps`, resolving each dependency by name (the last step of an id
    /// wins, as in a map collected from the steps).
    fn of(steps: &[Step]) -> Timing {
        let mut index: FastMap<&str, usize> =
            FastMap::with_capacity_and_hasher(steps.len(), Default::default());
        // A dependency that is a clone of a step's id (as the planner's are) is found by
        // where its text lives, without reading the text again; when an id is used twice,
        // by its text, so that the last step of an id wins.
        let mut by_addr: FastMap<usize, usize> =
            FastMap::with_capacity_and_hasher(steps.len(), Default::default());
        let mut duplicates = false;
        for (i, s) in steps.iter().enumerate() {
            duplicates |= index.insert(s.id.as_str(), i).is_some();
            by_addr.insert(s.id.addr(), i);
        }
        let find = |d: &StepId| {
            if !duplicates {
                if let Some(&j) = by_addr.get(&d.addr()) {
                    return Some(j);
                }
            }
            index.get(d.as_str()).copied()
        };
        let mut deps = Vec::with_capacity(steps.len() * 3);
        let mut starts = Vec::with_capacity(steps.len() + 1);
        for step in steps {
            starts.push(deps.len());
            deps.extend(step.depends_on.iter().filter_map(find));
        }
        starts.push(deps.len());
        Timing::from_deps(steps, deps, starts)
    }

    /// The timing of `steps` whose dependencies are already resolved to positions (those
    /// of step `i` are `deps[starts[i]..starts[i + 1]]`).
    fn from_deps(steps: &[Step], deps: Vec<usize>, starts: Vec<usize>) -> Timing {
        let mut finish: Vec<Duration> = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            // Only dependencies placed before the step count, as in `earliest_finish`.
            let start = deps[starts[i]..starts[i + 1]]
                .iter()
                .filter(|&&j| j < i)
                .map(|&j| finish[j])
                .max()
                .unwrap_or_default();
            finish.push(start.saturating_add(step.estimate));
        }
        Timing {
            finish,
            deps,
            starts,
        }
    }

    fn deps_of(&self, i: usize) -> &[usize] {
        &self.deps[self.starts[i]..self.starts[i + 1]]
    }

    /// The longest estimated chain ending in a critical step, and its length.
    fn critical_path(&self, steps: &[Step]) -> (Vec<String>, Duration) {
        // The recovery is over when the last critical step is; optional steps
        // (notifications, a new replica) may run on without holding it up.
        let Some(last) = (0..steps.len())
            .filter(|&i| steps[i].critical)
            .max_by_key(|&i| self.finish[i])
        else {
            return (Vec::new(), Duration::ZERO);
        };
        let mut path = vec![steps[last].id.to_string()];
        let mut current = last;
        // Steps are in topological order, so the walk back ends after at most one visit per
        // step; the guard keeps it finite even for a graph with a cycle.
        while let Some(prev) = self
            .deps_of(current)
            .iter()
            .copied()
            .max_by_key(|&j| self.finish[j])
        {
            if path.len() > steps.len() {
                break;
            }
            path.push(steps[prev].id.to_string());
            current = prev;
        }
        path.reverse();
        (path, self.finish[last])
    }
}
