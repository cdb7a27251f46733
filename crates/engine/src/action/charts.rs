//! Charts: pin the remote Helm charts every deployable environment names in `charts.lock` (`lock`),
//! with the subcharts its Helm charts (local, or those remote archives) declare remotely and do
//! not vendor, and pull what the lock pins into the chart cache (`fetch`), as helmfile's `deps`
//! and `fetch`.
//! The only actions that reach chart repositories and registries.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{OnProgress, Progress, open_project};
use weaver_core::error::{Error, Location, Result};
use weaver_project::chart::{ChartKeys, RemoteChart};
use weaver_source::charts::{Cache, ChartRef, Fetcher, LOCK_FILE, Lock, Outcome, http::Machine};

#[derive(Debug, Clone)]
pub struct ChartsOptions {
    /// The repository root (the working tree: the lock is written there).
    pub repo: PathBuf,
    /// `fetch --rev`: the commit whose lock to fetch (a CI job rendering `--rev`); the working
    /// tree when None. `lock` writes the working tree's lock and never reads another commit.
    pub rev: Option<String>,
    /// `lock --update`: resolve every chart again, not only new and changed ones.
    pub update: bool,
}

/// One remote chart, with the releases naming it.
#[derive(Debug, Clone)]
pub struct ChartStatus {
    pub chart: RemoteChart,
    /// `<environment>/<release>`, sorted.
    pub releases: Vec<String>,
    pub version: String,
    pub digest: String,
    pub outcome: Outcome,
    /// Who signed its provenance file, for a repository with `verify: true`.
    pub signed_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChartsReport {
    pub charts: Vec<ChartStatus>,
    /// Whether `charts.lock` was written (it changed).
    pub lock_written: bool,
    pub cache: PathBuf,
}

/// Resolves every remote chart not pinned yet (all with `update`), writes `charts.lock` when it
/// changed (dropping charts no release names any more), and pulls every pinned chart.
pub fn lock(options: &ChartsOptions, on: OnProgress) -> Result<ChartsReport> {
    run(options, true, on)
}

/// Pulls every chart `charts.lock` pins for a release into the cache, verifying its digest; a
/// chart the lock lacks is an error.
pub fn fetch(options: &ChartsOptions, on: OnProgress) -> Result<ChartsReport> {
    run(options, false, on)
}

fn run(options: &ChartsOptions, locking: bool, on: OnProgress) -> Result<ChartsReport> {
    let project = open_project(&options.repo, options.rev.as_deref())?;
    let source = project.source.as_ref();
    let mut users: BTreeMap<RemoteChart, Vec<String>> = BTreeMap::new();
    // The subcharts each Helm chart of the repository declares remotely and does not vendor.
    let mut subcharts: BTreeMap<String, Vec<RemoteChart>> = BTreeMap::new();
    // Each deployable environment's `repositories:`, which `@name` dependencies name.
    let mut repositories = BTreeMap::new();
    // The remote charts releases name (the others are subcharts).
    let mut named = BTreeSet::new();
    for name in project.environment_names()? {
        let env = project.environment(&name)?;
        // An abstract environment is never rendered: only what deployable ones name is pinned.
        if env.is_abstract {
            continue;
        }
        repositories.insert(name.clone(), env.repositories.clone());
        for release in &env.releases {
            let user = format!("{name}/{}", release.name);
            if let Some(chart) = &release.remote {
                named.insert(chart.clone());
                users.entry(chart.clone()).or_default().push(user);
            } else if weaver_helm::is_helm_release(source, release) {
                if !subcharts.contains_key(&release.chart) {
                    let chart = weaver_helm::read(source, &release.chart, &release.chart_at)?;
                    subcharts.insert(release.chart.clone(), weaver_helm::unvendored_remote(&chart, &env.repositories));
                }
                for subchart in &subcharts[&release.chart] {
                    users.entry(subchart.clone()).or_default().push(user.clone());
                }
            }
        }
    }
    let before = Lock::load(project.source.as_ref())?;
    let mut lock = before.clone();
    let cache = Cache::from_env(|key| std::env::var(key).ok())?;
    let mut fetcher = Fetcher::new(Machine::load(|key| std::env::var(key).ok())?, cache.clone());
    // The keys of the repositories that check their charts (`verify: true`), from the
    // repository as this commit has them: OpenPGP keyrings and cosign's public keys.
    let all_keys: BTreeSet<&ChartKeys> =
        repositories.values().flat_map(|r| r.values()).filter_map(|r| r.keys.as_ref()).collect();
    for keys in all_keys {
        let keyring = match keys {
            ChartKeys::Cosign(path) => {
                fetcher.trust_cosign(path, super::verify::cosign_keys(source, path, None)?);
                continue;
            }
            ChartKeys::Keyring(path) => path,
        };
        let path = Path::new(keyring);
        let bytes = source.read(path).map_err(|e| Error::io("read the keyring", path, e))?.ok_or_else(|| {
            Error::at(Location::file(path), "keyring: no such file")
                .with_help("a repository with `verify: true` names the OpenPGP public keys of its signers: `gpg --export KEY > FILE`")
        })?;
        let keys = weaver_verify::Keyring::from_bytes(&bytes).map_err(|e| {
            Error::at(Location::file(path), format!("keyring: {}", e.message)).with_help(
                "a keyring is OpenPGP public keys, binary (`gpg --export`) or armored (`gpg --armor --export`)",
            )
        })?;
        if keys.is_empty() {
            return Err(Error::at(Location::file(path), "keyring: it holds no key, so no chart can pass"));
        }
        fetcher.trust(keyring, keys);
    }
    let mut charts: Vec<ChartStatus> = Vec::new();
    let mut pin = |chart: RemoteChart, releases: Vec<String>, lock: &mut Lock| -> Result<ChartStatus> {
        on(Progress::Info(format!("{} {}", if locking { "locking" } else { "fetching" }, chart.describe())));
        let outcome = match locking {
            true => fetcher.lock(lock, &chart, options.update),
            false => fetcher.fetch(lock, &chart),
        }
        .map_err(|e| e.context(format!("chart {} (releases {})", chart.describe(), releases.join(", "))))?;
        let locked = lock.find(&chart).expect("a locked or fetched chart is in the lock");
        let (version, digest, signed_by) = (locked.version.clone(), locked.digest.clone(), locked.signed_by.clone());
        Ok(ChartStatus { chart, releases, version, digest, outcome, signed_by })
    };
    // The subcharts that the archives of charts releases name declare and do not vendor come
    // after them (one level, as helm resolves them): they are known once the archives are cached.
    let mut archive_subcharts: BTreeMap<RemoteChart, Vec<String>> = BTreeMap::new();
    // Each of those subcharts, with the charts whose archives declare it.
    let mut required_by: BTreeMap<ChartRef, BTreeSet<ChartRef>> = BTreeMap::new();
    for (chart, releases) in users {
        charts.push(pin(chart.clone(), releases.clone(), &mut lock)?);
        if !named.contains(&chart) {
            continue;
        }
        let (data, origin) = weaver_source::charts::cached_archive(&lock, &cache, &releases.join(", "), &chart)?;
        let archive = weaver_helm::chart::Chart::from_archive(&data, &origin)?;
        for user in releases {
            let env = user.split_once('/').map_or(user.as_str(), |(env, _)| env);
            for subchart in weaver_helm::unvendored_remote(&archive, &repositories[env]) {
                required_by.entry(ChartRef::of(&subchart)).or_default().insert(ChartRef::of(&chart));
                archive_subcharts.entry(subchart).or_default().push(user.clone());
            }
        }
    }
    for (chart, releases) in archive_subcharts {
        match charts.iter_mut().find(|status| status.chart == chart) {
            Some(status) => {
                status.releases.extend(releases);
                status.releases.sort();
                status.releases.dedup();
            }
            None => charts.push(pin(chart, releases, &mut lock)?),
        }
    }
    let mut lock_written = false;
    if locking {
        lock.charts.retain(|locked| charts.iter().any(|c| locked.is_for(&c.chart)));
        for locked in &mut lock.charts {
            let parents = required_by.remove(&locked.chart_ref()).unwrap_or_default();
            locked.required_by = Some(parents.into_iter().collect());
        }
        if lock != before {
            write_lock(&options.repo.join(LOCK_FILE), &lock)?;
            lock_written = true;
        }
    }
    Ok(ChartsReport { charts, lock_written, cache: cache.dir })
}

/// Replaces the lock file whole: written aside in its directory, then renamed.
fn write_lock(path: &Path, lock: &Lock) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io("write", path, e))?;
    file.write_all(lock.to_yaml().as_bytes()).map_err(|e| Error::io("write", path, e))?;
    file.persist(path).map_err(|e| Error::io("write", path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::testing::{Heard, Repo, failure};

    fn options(repo: &Repo) -> ChartsOptions {
        ChartsOptions { repo: repo.path(), rev: None, update: false }
    }

    /// A release of chart `web` of the chart repository `stable`, which no test serves.
    const REMOTE: &str = "namespace: dev\nrepositories:\n  - name: stable\n    url: https://charts.example.com\n\
                          releases:\n  - name: web\n    chart: stable/web\n    version: ^1.0.0\n";

    #[test]
    fn a_pin_no_release_names_any_more_is_dropped_from_the_lock() {
        let repo = Repo::new();
        let pin = "charts:\n  - repository: https://charts.example.com\n    name: web\n    constraint: ^1.0.0\n    \
                   version: 1.0.0\n    url: https://charts.example.com/web-1.0.0.tgz\n    digest: sha256:{}\n";
        repo.write(LOCK_FILE, &pin.replace("{}", &"0".repeat(64)));
        let report = lock(&options(&repo), Heard::default().cx().on).unwrap();
        assert!(report.charts.is_empty() && report.lock_written);
        let written = std::fs::read_to_string(repo.path().join(LOCK_FILE)).unwrap();
        assert!(!written.contains("web") && written.contains("charts: []"), "{written}");
        assert!(!lock(&options(&repo), Heard::default().cx().on).unwrap().lock_written, "an unchanged lock written");
    }

    #[test]
    fn fetching_a_chart_the_lock_lacks_names_it_and_its_release() {
        let repo = Repo::new();
        repo.write("environments/dev.yaml", REMOTE);
        let message = failure(fetch(&options(&repo), Heard::default().cx().on));
        let chart = "chart `stable/web` version `^1.0.0`";
        let help = "(help: run `weaver charts lock` to resolve it and pin it, then commit charts.lock)";
        assert_eq!(message, format!("{chart} (releases dev/web): {chart} is not in charts.lock {help}"));
        assert!(!repo.path().join(LOCK_FILE).exists());
    }
}
