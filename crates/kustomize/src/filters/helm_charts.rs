//! `helmCharts`: kustomize's HelmChartInflationGenerator (`kustomize build --enable-helm`),
//! through weaver's own Helm-chart rendering instead of a helm binary. Each entry renders the
//! chart in `<chartHome>/<name>` (`<chartHome>/<name>-<version>/<name>` with a `repo` and a
//! `version`; `chartHome` is `charts` beside the kustomization unless `helmGlobals` says
//! otherwise) as `helm template` with the entry's flags: the values are `valuesFile` (the
//! chart's own `values.yaml` if none), with `valuesInline` over it (`valuesMerge: override`, the
//! default), under it (`merge`) or instead of it (`replace`), then each of
//! `additionalValuesFiles`; `includeCRDs`, `skipTests`, `skipHooks`, `kubeVersion` and
//! `apiVersions` as helm's flags.
//!
//! Differences, by design: weaver pulls nothing (a chart that is not in the repository is an
//! error saying where to vendor it); without `releaseName` the release is named after the chart
//! (kustomize lets helm generate a random name); without `namespace` it is `default`, as helm
//! with no kubeconfig namespace. Lists in `valuesInline` replace the file's lists (kyaml's
//! merge would merge lists of maps by their `name`).

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use serde_saphyr::Spanned;

use super::super::kustomization::{HelmChartArgs, Kustomization};
use super::super::{Resource, Target, shown};
use weaver_core::error::{Error, Location, Result};
use weaver_helm::{Capabilities, DEFAULT_KUBE_VERSION, Output, ReleaseInput};
use weaver_project::source::lexical;
use weaver_project::values::merge_overrides;

const DEFAULT_CHART_HOME: &str = "charts";

pub(crate) fn run(target: &Target, k: &Kustomization, resources: &mut Vec<Resource>) -> Result<()> {
    let globals = k.helm_globals.clone().unwrap_or_default();
    let home = if globals.chart_home.is_empty() { DEFAULT_CHART_HOME } else { globals.chart_home.as_str() };
    for entry in k.helm_charts.iter().flatten() {
        let rendered = inflate(target, home, entry)?;
        super::super::append(target, resources, rendered, &entry.referenced)?;
    }
    Ok(())
}

fn inflate(target: &Target, home: &str, entry: &Spanned<HelmChartArgs>) -> Result<Vec<Resource>> {
    let (args, at) = (&entry.value, &entry.referenced);
    let error = |message: String| target.error(at, format!("`helmCharts`: {message}"));
    if args.name.is_empty() {
        return Err(error("an entry needs the chart's `name`".into()));
    }
    if !args.name_template.is_empty() {
        return Err(error("`nameTemplate` is not supported by weaver: set `releaseName`".into()));
    }
    let merge = match args.values_merge.as_str() {
        "" | "override" => Merge::Override,
        "merge" => Merge::Merge,
        "replace" => Merge::Replace,
        other => return Err(error(format!("`valuesMerge: {other}` is not one of override, merge, replace"))),
    };
    let Some(home_dir) = lexical(&target.dir.join(home)).filter(|_| !Path::new(home).is_absolute()) else {
        return Err(error(format!("`chartHome: {home}` leads outside the repository")));
    };
    let home_dir = if args.repo.is_empty() || args.version.is_empty() {
        home_dir
    } else {
        home_dir.join(format!("{}-{}", args.name, args.version))
    };
    let chart_dir = home_dir.join(&args.name);
    if !target.source.exists(&chart_dir.join("Chart.yaml")) {
        return Err(error(format!("no Helm chart at {} (no Chart.yaml there)", shown(&chart_dir))).with_help(
            "weaver pulls no charts: vendor it there (`helm pull --untar --untardir <that directory's parent> ...`) and commit it",
        ));
    }
    let location = super::super::kustomization::location(&target.file, at);
    let chart = weaver_helm::load_dir(
        target.source,
        &args.name,
        &chart_dir,
        &location,
        weaver_helm::Unvendored::vendored_only(),
    )?;

    let mut values = match (merge, args.values_inline.clone()) {
        (Merge::Replace, Some(inline)) => inline,
        (merge, inline) => {
            let mut file = values_file(target, at, args, &chart)?;
            match (merge, inline) {
                (Merge::Override, Some(inline)) => {
                    merge_overrides(&mut file, inline);
                    file
                }
                (Merge::Merge, Some(mut inline)) => {
                    merge_overrides(&mut inline, file);
                    inline
                }
                _ => file,
            }
        }
    };
    for extra in &args.additional_values_files {
        let (path, text) = target.read_file(extra, at, "helmCharts")?;
        merge_overrides(&mut values, weaver_helm::chart::read_values(&path, text.as_bytes())?);
    }

    let kube_version = if args.kube_version.is_empty() { DEFAULT_KUBE_VERSION } else { args.kube_version.as_str() };
    let capabilities = Capabilities::offline(kube_version, &args.api_versions).ok_or_else(|| {
        error(format!("`kubeVersion: {kube_version}` is not a Kubernetes version (expected v1.32.0)"))
    })?;
    let name = if args.release_name.is_empty() { args.name.as_str() } else { args.release_name.as_str() };
    let input = ReleaseInput {
        name,
        namespace: if args.namespace.is_empty() { "default" } else { args.namespace.as_str() },
        values,
        capabilities: Arc::new(capabilities),
        // kustomize runs `helm template`: lookup finds nothing.
        live: Default::default(),
        output: Output { include_crds: args.include_crds, skip_tests: args.skip_tests, hooks: !args.skip_hooks },
        limits: target.limits.clone(),
    };
    let documents = weaver_helm::render(&chart, &input).map_err(|e| match e.help {
        None => e.with_help(format!("in `helmCharts` entry `{}` of {}", args.name, target.file.display())),
        Some(_) => e,
    })?;
    documents
        .into_iter()
        .map(|document| match weaver_core::manifest::shape_problem(&document.object) {
            Some(problem) => Err(Error::at(
                Location::file(&document.source),
                format!("document {} of chart `{}`'s output {problem}", document.document, args.name),
            )),
            None => Ok(Resource::new(document.object, document.source, document.document)),
        })
        .collect()
}

// The values of kustomize's `valuesMerge`, named as it names them.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy)]
enum Merge {
    Override,
    Merge,
    Replace,
}

/// `valuesFile` (relative to the kustomization), or the chart's own `values.yaml` as the
/// chart loaded it (kustomize reads that file, so a chart without one is an error).
fn values_file(
    target: &Target,
    at: &serde_saphyr::Location,
    args: &HelmChartArgs,
    chart: &weaver_helm::HelmChart,
) -> Result<Map<String, Value>> {
    if args.values_file.is_empty() {
        let path = chart.chart.origin.join("values.yaml");
        if !target.source.exists(&path) {
            return Err(target.error(at, format!("`helmCharts`: {} does not exist (set `valuesFile`)", path.display())));
        }
        return Ok(chart.chart.values.clone());
    }
    let (path, text) = target.read_file(&args.values_file, at, "helmCharts")?;
    weaver_helm::chart::read_values(&path, text.as_bytes())
}
