//! Work shared out on rayon's pool only when there is more than one piece of it.

use rayon::prelude::*;

/// `f` over `items`, on rayon's pool when there are several, on this thread when there is one:
/// one item gains nothing from the pool, and starting the pool (its threads, and the memory
/// each touches first) costs a one-chart render more than validating or formatting it.
pub fn map_each<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    if items.len() <= 1 { items.into_iter().map(f).collect() } else { items.into_par_iter().map(f).collect() }
}
