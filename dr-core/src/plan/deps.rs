//! The services' dependency graph as indices, and the linear, iterative algorithms on it
//! that validation and the planner share (no recursion: a 40,000-service chain must not
//! overflow the stack).

use super::Plan;

/// `adj[i]`: the indices of the services service `i` depends on, in the order written,
/// unknown names and self-dependencies left out. A name declared twice resolves to its
/// last declaration (validation reports the duplicate).
pub(crate) fn service_graph(plan: &Plan) -> Vec<Vec<usize>> {
    let mut index: crate::graph::FastMap<&str, usize> =
        crate::graph::FastMap::with_capacity_and_hasher(plan.services.len(), Default::default());
    for (i, s) in plan.services.iter().enumerate() {
        index.insert(s.name.as_str(), i);
    }
    plan.services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .filter(|&j| j != i)
                .collect()
        })
        .collect()
}

/// Strongly connected components (Tarjan's algorithm, iterative). Returns the component of
/// every node and the number of components; components are numbered dependencies first:
/// an edge `u → v` between two components has `comp[v] < comp[u]`.
pub(crate) fn components(adj: &[Vec<usize>]) -> (Vec<usize>, usize) {
    const UNSEEN: usize = usize::MAX;
    let n = adj.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![UNSEEN; n];
    let mut stack = Vec::new();
    let mut frames: Vec<(usize, usize)> = Vec::new();
    let mut next = 0;
    let mut count = 0;
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        frames.push((root, 0));
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (u, ref mut e)) = frames.last_mut() {
            if let Some(&v) = adj[u].get(*e) {
                *e += 1;
                if index[v] == UNSEEN {
                    index[v] = next;
                    low[v] = next;
                    next += 1;
                    stack.push(v);
                    on_stack[v] = true;
                    frames.push((v, 0));
                } else if on_stack[v] {
                    low[u] = low[u].min(index[v]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[u]);
            }
            if low[u] == index[u] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = count;
                    if w == u {
                        break;
                    }
                }
                count += 1;
            }
        }
    }
    (comp, count)
}

/// Every dependency that closes a cycle, found by a depth-first search in declaration
/// order; `on_cycle` receives the cycle's members in dependency order (starting at the
/// member first entered) and returns whether it wants more.
pub(crate) fn cycles(adj: &[Vec<usize>], mut on_cycle: impl FnMut(&[usize]) -> bool) {
    const NEW: u8 = 0;
    const ACTIVE: u8 = 1;
    const DONE: u8 = 2;
    let n = adj.len();
    let mut mark = vec![NEW; n];
    // Position of each active node on the path, for an O(1) cycle start.
    let mut pos = vec![0usize; n];
    let mut path: Vec<usize> = Vec::new();
    let mut frames: Vec<(usize, usize)> = Vec::new();
    let mut wants_more = true;
    for root in 0..n {
        if mark[root] != NEW {
            continue;
        }
        mark[root] = ACTIVE;
        pos[root] = 0;
        path.push(root);
        frames.push((root, 0));
        while let Some(&mut (u, ref mut e)) = frames.last_mut() {
            if let Some(&v) = adj[u].get(*e) {
                *e += 1;
                match mark[v] {
                    NEW => {
                        mark[v] = ACTIVE;
                        pos[v] = path.len();
                        path.push(v);
                        frames.push((v, 0));
                    }
                    ACTIVE if wants_more => wants_more = on_cycle(&path[pos[v]..]),
                    _ => {}
                }
                continue;
            }
            frames.pop();
            path.pop();
            mark[u] = DONE;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_come_dependencies_first() {
        // 0 → 1 → 2 → 1, 3 → 0
        let adj = vec![vec![1], vec![2], vec![1], vec![0]];
        let (comp, count) = components(&adj);
        assert_eq!(count, 3);
        assert_eq!(comp[1], comp[2]);
        assert!(comp[1] < comp[0] && comp[0] < comp[3]);
    }

    #[test]
    fn a_long_chain_does_not_recurse() {
        let n = 200_000;
        let adj: Vec<Vec<usize>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { vec![] })
            .collect();
        let (_, count) = components(&adj);
        assert_eq!(count, n);
        let mut found = 0;
        cycles(&adj, |_| {
            found += 1;
            true
        });
        assert_eq!(found, 0);
    }

    #[test]
    fn cycles_are_named_in_order() {
        let adj = vec![vec![1], vec![2], vec![0]];
        let mut found = Vec::new();
        cycles(&adj, |c| {
            found.push(c.to_vec());
            true
        });
        assert_eq!(found, [vec![0, 1, 2]]);
    }
}
