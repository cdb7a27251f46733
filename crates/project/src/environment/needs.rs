//! Releases ordered by their `needs`: each after those it needs, a cycle or an unknown name
//! refused (also the order of a fleet's environments).

use std::collections::HashMap;

use weaver_core::error::{Error, Result};

use super::{PartialRelease, Release};

/// Refuses a `needs` entry naming no release of the environment, where it is written (which
/// may be a base file); helmfile's `namespace/name` form gets a word of its own.
pub(super) fn check_needs(releases: &[PartialRelease]) -> Result<()> {
    let names: Vec<&str> = releases.iter().map(|r| r.name.as_str()).collect();
    for release in releases {
        for (need, at) in release.needs.iter().flatten() {
            if names.contains(&need.as_str()) {
                continue;
            }
            let here = format!("releases here: {}", names.join(", "));
            let help = match need.rsplit_once('/') {
                Some((_, name)) => format!(
                    "`needs` names a release of this environment (`{name}`), not helmfile's `namespace/name`: release names are unique in an environment; {here}"
                ),
                None => here,
            };
            return Err(Error::at(
                at.clone(),
                format!("release `{}` needs `{need}`, which is not a release of this environment", release.name),
            )
            .with_help(help));
        }
    }
    Ok(())
}

/// Sorts releases so that each comes after the ones it `needs` (declaration order otherwise),
/// rejecting cycles; [`check_needs`] has checked the names.
pub(super) fn order_by_needs(releases: Vec<Release>) -> Result<Vec<Release>> {
    let index: HashMap<&str, usize> = releases.iter().enumerate().map(|(i, r)| (r.name.as_str(), i)).collect();
    let needs: Vec<Vec<usize>> = releases.iter().map(|r| r.needs.iter().map(|n| index[n.as_str()]).collect()).collect();
    let order = needs_order(&needs).map_err(|cycle| {
        let names: Vec<&str> = cycle.iter().map(|&i| releases[i].name.as_str()).collect();
        Error::at(releases[cycle[0]].at.clone(), format!("cycle in `needs`: {}", names.join(" → ")))
            .with_help("remove one of these `needs` entries")
    })?;
    let mut slots: Vec<Option<Release>> = releases.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// An order of nodes `0..needs.len()` in which each comes after the nodes it needs (`needs[i]`),
/// in index order otherwise; or a cycle, as the nodes along it, the first repeated at its end.
/// Releases of an environment and environments of a fleet are ordered by it.
pub fn needs_order(needs: &[Vec<usize>]) -> std::result::Result<Vec<usize>, Vec<usize>> {
    // Depth-first, in index order, so the result is deterministic.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        needs: &[Vec<usize>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) -> std::result::Result<(), Vec<usize>> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                let start = stack.iter().position(|&s| s == i).unwrap_or(0);
                return Err(stack[start..].iter().copied().chain([i]).collect());
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        stack.push(i);
        for &need in &needs[i] {
            visit(need, needs, marks, stack, out)?;
        }
        stack.pop();
        marks[i] = Mark::Done;
        out.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; needs.len()];
    let mut order = Vec::with_capacity(needs.len());
    for i in 0..needs.len() {
        visit(i, needs, &mut marks, &mut Vec::new(), &mut order)?;
    }
    Ok(order)
}
