//! Rendering ahead: a run's releases rendered on rayon's pool a few chunks ahead of the next one
//! finished, each handed on once the scope of every kind it uses is known, in the releases'
//! order, so that a run never holds every object at once ([`render_in_chunks`]); CRDs rendered
//! twice alike are kept once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use weaver_core::error::{Error, Result};
use weaver_core::manifest::{self, ObjectKey, Scopes};
use weaver_project::{Environment, Project, Release};

use super::{ClusterView, Origins, RenderedRelease, Run, Secrets, check_unique, with_run};

/// How many releases `weaver render` holds rendered and not yet finished, give or take
/// ([`render_in_chunks`]): enough to keep every core busy (a few per core, since releases
/// differ in size), few enough that their objects are a small part of the run's. 435 real
/// charts in one run: 194 MB peak with chunks of 32, 290 MB with one chunk of them all, in the
/// same time. A run of `releases` up to the least chunk is one chunk, whatever the pool's size:
/// it is not asked then, which would start the pool for a one-chart render.
pub fn chunk_releases(releases: usize) -> usize {
    const LEAST: usize = 32;
    if releases <= LEAST { LEAST } else { (4 * rayon::current_num_threads()).max(LEAST) }
}

/// `op` given a scope of rayon's pool to spawn in, or none when `alone`: what would be spawned
/// runs on this thread ([`weaver_core::parallel::map_each`] says why).
fn within_scope<'scope, R>(alone: bool, op: impl FnOnce(Option<&rayon::Scope<'scope>>) -> R) -> R {
    if alone { op(None) } else { rayon::in_place_scope(|scope| op(Some(scope))) }
}

/// A release's objects once they are final, given to [`render_in_chunks`]' `finish`.
pub struct Finished {
    /// The release's place among those rendered.
    pub index: usize,
    pub release: RenderedRelease,
}

/// [`super::render`], with at most twice `chunk` releases rendered ahead of the next one finished,
/// handing each release's final objects to `finish` as soon as they are final (in the
/// releases' order, a few at a time), so that a run never holds every object at once: `finish`
/// keeps what it needs of them (say, their text). Releases are rendered ahead rather than
/// `chunk` at a time because one slow release (RSA keys) would hold up every core at the end
/// of each chunk, and further ahead (up to 16 chunks) while the next one is still rendering
/// and a core would idle: 450 real charts, one taking a second alone, rendered in 2.77 s two
/// chunks ahead, 2.1–2.3 s so, at the same peak RSS (about 180 MB). Returns what `finish`
/// made, in the releases' order, once every release is rendered and no error (which are
/// [`super::render`]'s, in its order) is found; `finish` runs on releases rendered before such an
/// error is found, so it must not show anything itself.
///
/// Like every run, it waits for its releases on the calling thread, which must not be one of
/// rayon's pool: that would hold a thread their rendering needs.
///
/// A release is final once the scope of each of its kinds is known: built in, or a CRD of the
/// run rendered so far says it. A release with a kind still unknown waits (with its objects)
/// until every release is rendered, and is finished with the last ones. Returns `None` when a
/// CRD rendered later changes the scope of a kind some release already finished used (a CRD of
/// a built-in kind's name, or two CRDs of one kind): only a `chunk` as large as the run (which
/// [`super::render`] is: every release rendered before any is finished) gives the right answer then.
pub fn render_in_chunks<R: Send>(
    project: &Project,
    env: &Environment,
    releases: &[&Release],
    secrets: &Secrets,
    cluster: &ClusterView,
    chunk: usize,
    finish: impl FnMut(&[&Value], Vec<Finished>) -> Vec<R>,
) -> Result<Option<Vec<R>>> {
    with_run(project, env, releases, secrets, cluster, |run| {
        run.render_places(releases.iter().map(|release| Place::Render(release)).collect(), chunk, finish)
    })
}

/// A place of a run once it is ready to finish: a release rendered (or the error rendering it
/// found), or one kept.
pub(super) enum Ready {
    /// What rendering gave, or its panic, raised again where the run waits.
    Rendered(std::thread::Result<Result<RenderedRelease>>),
    Kept(RenderedRelease),
}

/// What rendering a batch of releases sent: the first one's place, how many, and what
/// rendering each gave, or the batch's panic.
pub(super) type Sent = (usize, usize, std::thread::Result<Vec<Result<RenderedRelease>>>);

/// How many releases of charts (weaver charts or Helm charts), one after another, a thread
/// renders together when a worker renders their templates: a few batches of them, each one round trip to the worker
/// (see `isolated`), not one each. Few enough that slow ones do not hold one thread while the
/// others idle.
const RENDERED_TOGETHER: usize = 16;

/// Releases started, by every run of the process (a fleet renders several environments at
/// once), that no thread has taken up yet: while there are some, no core is idle, and a run
/// waiting for a slow release renders no further ahead than usual.
pub(super) static WAITING_FOR_A_THREAD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A place in a run's order of releases: one to render, or one rendered before (by
/// [`super::render_again`]'s previous render) and kept as it is, already final.
pub(super) enum Place<'a> {
    Render(&'a Release),
    /// Boxed: a rendered release is large, a place to render is a pointer.
    Kept(Box<RenderedRelease>),
}

/// Splits hooks off the `finished` releases rendered here, hands them to `finish` and keeps
/// what it made and their objects' identities in their places.
pub(super) fn keep<R>(
    run: &Run,
    mut finished: Vec<Finished>,
    rendering: &[Option<&Release>],
    chart_crds: &[&Value],
    origins: &mut Vec<Origins>,
    made: &mut Vec<Option<R>>,
    finish: &mut impl FnMut(&[&Value], Vec<Finished>) -> Vec<R>,
) {
    let places: Vec<usize> = finished.iter().map(|f| f.index).collect();
    let end = places.iter().max().map_or(0, |&last| last + 1);
    if made.len() < end {
        made.resize_with(end, || None);
        origins.resize_with(end, Origins::default);
    }
    for f in finished.iter_mut() {
        origins[f.index] = Origins::of(&f.release);
        // A kept release's hooks were split when it was rendered.
        if let Some(release) = rendering[f.index] {
            run.split_hooks(&mut f.release, release);
        }
    }
    for (index, result) in places.into_iter().zip(finish(chart_crds, finished)) {
        made[index] = Some(result);
    }
}

/// A CRD rendered again, identical (charts bundling the same CRDs, in two releases; a Helm
/// release's own copies are one already, see `transforms::keep_last_copies`), is applied once, as helm installs a CRD once and skips one that
/// exists: each copy after the first (in the run's order) goes, with a warning. A different
/// copy stays, for the check that no object is rendered twice to refuse. `seen` keeps each
/// first copy's release and digest, not the copy: CRDs are the largest objects of a run.
pub(super) fn drop_repeated_crds(finished: &mut [Finished], seen: &mut HashMap<ObjectKey, (String, [u8; 32])>) {
    let mut order: Vec<&mut Finished> = finished.iter_mut().collect();
    order.sort_by_key(|f| f.index);
    for f in order {
        let release = &mut f.release;
        let mut warnings = Vec::new();
        release.manifests.retain(|m| {
            if m.kind() != "CustomResourceDefinition" {
                return true;
            }
            let digest = digest_as_made(&m.object);
            match seen.entry(m.key()) {
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert((release.name.clone(), digest));
                    true
                }
                std::collections::hash_map::Entry::Occupied(first) if first.get().1 == digest => {
                    warnings.push(format!(
                        "release `{}`, {}: {} is also rendered, identical, by release `{}`: it is applied once",
                        release.name,
                        m.source.display(),
                        m.key(),
                        first.get().0
                    ));
                    false
                }
                std::collections::hash_map::Entry::Occupied(_) => true,
            }
        });
        release.warnings.extend(warnings);
    }
}

/// A digest of `object` as the chart made it: without the release's label (each copy carries
/// its own), and with keys in any order, as `Value`'s equality compares maps.
pub(super) fn digest_as_made(object: &Value) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    /// Where a value is: the object, its `metadata`, its labels, or elsewhere.
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        Root,
        Metadata,
        Labels,
        Other,
    }
    // Each value's kind and length go before it, so that no two values feed the same bytes.
    // Written out first and hashed at once: an update a value was most of a CRD's digest.
    fn feed(out: &mut Vec<u8>, value: &Value, at: At) {
        fn tagged(out: &mut Vec<u8>, tag: u8, len: usize) {
            out.push(tag);
            out.extend_from_slice(&len.to_le_bytes());
        }
        match value {
            Value::Null => tagged(out, b'n', 0),
            Value::Bool(b) => tagged(out, b'b', usize::from(*b)),
            Value::Number(n) => {
                let text = n.to_string();
                tagged(out, b'#', text.len());
                out.extend_from_slice(text.as_bytes());
            }
            Value::String(s) => {
                tagged(out, b's', s.len());
                out.extend_from_slice(s.as_bytes());
            }
            Value::Array(items) => {
                tagged(out, b'a', items.len());
                items.iter().for_each(|item| feed(out, item, At::Other));
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> =
                    map.iter().filter(|(k, _)| at != At::Labels || k.as_str() != manifest::LABEL_RELEASE).collect();
                entries.sort_unstable_by_key(|(k, _)| *k);
                tagged(out, b'o', entries.len());
                for (key, value) in entries {
                    tagged(out, b'k', key.len());
                    out.extend_from_slice(key.as_bytes());
                    let inner = match (at, key.as_str()) {
                        (At::Root, "metadata") => At::Metadata,
                        (At::Metadata, "labels") => At::Labels,
                        _ => At::Other,
                    };
                    feed(out, value, inner);
                }
            }
        }
    }
    let mut bytes = Vec::new();
    feed(&mut bytes, object, At::Root);
    Sha256::digest(&bytes).into()
}

impl Run<'_> {
    /// The run's `places` rendered ahead: see [`render_in_chunks`].
    /// Kept releases are final as they are, but their CRDs decide scopes and their objects
    /// count in the check that no object is rendered twice.
    pub(super) fn render_places<R: Send>(
        &self,
        places: Vec<Place>,
        chunk: usize,
        mut finish: impl FnMut(&[&Value], Vec<Finished>) -> Vec<R>,
    ) -> Result<Option<Vec<R>>> {
        // Borrowed, not copied: CRDs are the largest objects of a run.
        let chart_crds = self.chart_crds();
        let rendering: Vec<Option<&Release>> = places
            .iter()
            .map(|place| match place {
                Place::Render(release) => Some(*release),
                Place::Kept(_) => None,
            })
            .collect();
        let mut scopes = Scopes::default();
        // The scope of each (group, kind) finished releases were given.
        let mut decided: HashMap<(String, String), bool> = HashMap::new();
        let mut waiting: Vec<(usize, RenderedRelease)> = Vec::new();
        let mut origins: Vec<Origins> = Vec::with_capacity(places.len());
        // The first copy of each CRD, and its release: see `drop_repeated_crds`.
        let mut crds_seen: HashMap<ObjectKey, (String, [u8; 32])> = HashMap::new();
        let mut made: Vec<Option<R>> = Vec::with_capacity(places.len());
        // A patch's error: reported once every release rendered without one.
        let mut failed: Option<Error> = None;
        let transform = |batch: Vec<(usize, RenderedRelease)>, scopes: &Scopes| -> Result<Vec<Finished>> {
            let mut batch = batch;
            weaver_core::parallel::map_each(batch.iter_mut().collect(), |(index, out)| {
                let release = rendering[*index].expect("only releases rendered here are transformed");
                let helm = release.kustomize.is_none() && self.helm.is_helm_chart(&release.chart);
                crate::transforms::apply(&mut out.manifests, &mut out.warnings, release, &self.env.name, scopes, helm)
            })
            .into_iter()
            .collect::<Result<Vec<()>>>()?;
            Ok(batch.into_iter().map(|(index, release)| Finished { index, release }).collect())
        };
        let total = places.len();
        // Whole: every release rendered before any is finished. Otherwise releases are rendered
        // up to twice `chunk` ahead of the next one finished, in order; and while the next one
        // is still rendering with a core idle (fewer of this run's releases rendering than
        // threads, and none of any run's waiting for a thread), further on, up to `furthest`:
        // one release taking a second (RSA keys) holds up neither the others nor the cores.
        let whole = chunk >= total;
        let ahead = if whole { total } else { chunk.saturating_mul(2) };
        let furthest = if whole { total } else { chunk.saturating_mul(16) };
        // One release renders on this thread ([`weaver_core::parallel::map_each`] says why).
        let alone = rendering.iter().flatten().count() <= 1;
        let threads = if alone { 1 } else { rayon::current_num_threads() };
        // The run waits for its releases on its own thread: the CLI's, a fleet environment's, a
        // controller's blocking section. On a thread of rayon's pool it would hold one their
        // rendering needs (with one thread, all of them).
        debug_assert!(rayon::current_thread_index().is_none(), "a run renders from outside rayon's pool");
        let (sender, receiver) = std::sync::mpsc::channel::<Sent>();
        // Set when the run ends early: releases started by then skip their work.
        let ended = std::sync::atomic::AtomicBool::new(false);
        let mut places = places.into_iter().enumerate().peekable();
        let batches = self.engine.workers().is_some();
        let mut ready: BTreeMap<usize, Ready> = BTreeMap::new();
        let (mut started, mut next, mut in_flight) = (0, 0, 0);
        let outcome = within_scope(alone, |scope| {
            // Starts the next place's rendering (a kept one is ready as it is), with the releases
            // of weaver charts after it in a batch when workers render them: how many places it
            // started, none when none is left.
            let mut start = |ready: &mut BTreeMap<usize, Ready>, in_flight: &mut usize| match places.next() {
                Some((index, Place::Render(release))) => {
                    let mut batch = vec![release];
                    let batched = |release: &Release| batches && self.renders_a_chart(release);
                    while batch.len() < RENDERED_TOGETHER && batched(release) {
                        match places.next_if(|(_, place)| matches!(place, Place::Render(r) if batched(r))) {
                            Some((_, Place::Render(release))) => batch.push(release),
                            _ => break,
                        }
                    }
                    let (sender, ended, count) = (sender.clone(), &ended, batch.len());
                    WAITING_FOR_A_THREAD.fetch_add(count, std::sync::atomic::Ordering::Relaxed);
                    let render = move || {
                        WAITING_FOR_A_THREAD.fetch_sub(count, std::sync::atomic::Ordering::Relaxed);
                        if !ended.load(std::sync::atomic::Ordering::Relaxed) {
                            // The receiver is gone only when the run ended early.
                            let rendered =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.render(&batch)));
                            let _ = sender.send((index, count, rendered));
                        }
                    };
                    match scope {
                        Some(scope) => scope.spawn(move |_| render()),
                        None => render(),
                    }
                    *in_flight += 1;
                    count
                }
                Some((index, Place::Kept(release))) => {
                    ready.insert(index, Ready::Kept(*release));
                    1
                }
                None => 0,
            };
            // What a batch sent, each release in its place; a panic in the first one's, where
            // the run raises it again before it would reach the others.
            let receive = |ready: &mut BTreeMap<usize, Ready>, (first, count, rendered): Sent| match rendered {
                Ok(rendered) => ready.extend((first..).zip(rendered).map(|(at, r)| (at, Ready::Rendered(Ok(r))))),
                Err(panic) => {
                    ready.insert(first, Ready::Rendered(Err(panic)));
                    let never = || Ready::Rendered(Err(Box::new("a release of a batch that panicked")));
                    ready.extend((first + 1..first + count).map(|at| (at, never())));
                }
            };
            let mut run = || -> Result<Option<()>> {
                while next < total {
                    while started < next + ahead {
                        match start(&mut ready, &mut in_flight) {
                            0 => break,
                            count => started += count,
                        }
                    }
                    // The next release in order, then every release after it that is ready too.
                    while !ready.contains_key(&next) || (whole && ready.len() < total - next) {
                        let idle =
                            in_flight < threads && WAITING_FOR_A_THREAD.load(std::sync::atomic::Ordering::Relaxed) == 0;
                        if idle && started < next + furthest {
                            let count = start(&mut ready, &mut in_flight);
                            started += count;
                            if count > 0 {
                                continue;
                            }
                        }
                        let sent = receiver.recv().expect("the run keeps a sender while it waits");
                        in_flight -= 1;
                        receive(&mut ready, sent);
                    }
                    while let Ok(sent) = receiver.try_recv() {
                        in_flight -= 1;
                        receive(&mut ready, sent);
                    }
                    let mut to_render: Vec<(usize, RenderedRelease)> = Vec::new();
                    let mut kept: Vec<Finished> = Vec::new();
                    while let Some(place) = ready.remove(&next) {
                        match place {
                            Ready::Rendered(rendered) => to_render
                                .push((next, rendered.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?)),
                            Ready::Kept(release) => kept.push(Finished { index: next, release }),
                        }
                        next += 1;
                    }
                    // A kept release's CRDs after those rendered: the last CRD of a kind decides.
                    let crds = to_render
                        .iter()
                        .map(|(_, r)| r)
                        .chain(kept.iter().map(|f| &f.release))
                        .flat_map(|r| &r.manifests);
                    for crd in crds.filter(|m| m.kind() == "CustomResourceDefinition") {
                        let Some(kind) = scopes.learn_crd(&crd.object) else { continue };
                        if decided
                            .get(&kind)
                            .is_some_and(|&namespaced| namespaced != scopes.is_namespaced_in(&kind.0, &kind.1))
                        {
                            return Ok(None);
                        }
                    }
                    if failed.is_some() {
                        continue; // only a template's error can still come first
                    }
                    let (ready_now, wait): (Vec<_>, Vec<_>) = to_render
                        .into_iter()
                        .partition(|(_, out)| out.manifests.iter().all(|m| scopes.is_known(m.api_version(), m.kind())));
                    waiting.extend(wait);
                    // Once the last release is rendered, every CRD of the run is known: what waited is
                    // final too, and goes to `finish` with the last ones, so that `finish` sees the
                    // CRDs it carries before it checks the objects that use them.
                    let mut ready_now = ready_now;
                    if next == total {
                        ready_now.append(&mut waiting);
                    }
                    let kinds: BTreeSet<(&str, &str)> = ready_now
                        .iter()
                        .flat_map(|(_, out)| &out.manifests)
                        .map(|m| (manifest::api_group(m.api_version()), m.kind()))
                        .collect();
                    for (group, kind) in kinds {
                        let namespaced = scopes.is_namespaced_in(group, kind);
                        decided.entry((group.to_string(), kind.to_string())).or_insert(namespaced);
                    }
                    match transform(ready_now, &scopes) {
                        Ok(mut finished) => {
                            finished.extend(kept);
                            drop_repeated_crds(&mut finished, &mut crds_seen);
                            keep(self, finished, &rendering, &chart_crds, &mut origins, &mut made, &mut finish)
                        }
                        Err(e) => failed = Some(e),
                    }
                }
                Ok(Some(()))
            };
            let outcome = run();
            ended.store(true, std::sync::atomic::Ordering::Relaxed);
            outcome
        });
        if outcome?.is_none() {
            return Ok(None);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        check_unique(&origins)?;
        Ok(Some(made.into_iter().map(|r| r.expect("every release is finished")).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn copies_of_an_object_digest_alike_whatever_their_release_label_and_key_order() {
        let label = manifest::LABEL_RELEASE;
        let a = json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "x"}}, "spec": {"p": 1, "q": [1, "2"]}});
        let b = json!({"metadata": {"labels": {"app": "x", label: "b"}, "name": "n"}, "spec": {"q": [1, "2"], "p": 1}, "kind": "K"});
        assert_eq!(digest_as_made(&a), digest_as_made(&b));
        for other in [
            json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "y"}}, "spec": {"p": 1, "q": [1, "2"]}}),
            json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "x"}}, "spec": {"p": 1, "q": ["1", "2"]}}),
            json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "x"}}, "spec": {"p": 1.0, "q": [1, "2"]}}),
            // The label is skipped only among metadata.labels.
            json!({"kind": "K", "metadata": {"name": "n", "labels": {label: "a", "app": "x"}}, "spec": {"p": 1, "q": [1, "2"], label: "a"}}),
        ] {
            assert_ne!(digest_as_made(&a), digest_as_made(&other), "{other}");
        }
    }
}
