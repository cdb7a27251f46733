#!/usr/bin/env python3
"""Imports Flux repositories with `weaver import flux` and compares what weaver renders with
what Flux's controllers would apply.

    tools/flux_corpus.py WEAVER REPO_DIR... [--work DIR] [--helm HELM] [--details] [--json FILE]

Each repository is copied into DIR (default /tmp/flux-corpus-work) and imported there. Then:

- objects: for every environment, each `kustomize:` release is rendered with `weaver render
  --show-secrets` and compared, object by object (weaver's labels and the namespace weaver gives
  objects without one set aside), with `kubectl kustomize --load-restrictor LoadRestrictionsNone`
  (as kustomize-controller builds) of the same directory after substituting the release's
  variables as Flux does;
- values: for every cluster the import found (its `cluster DIR → environments/ENV.yaml` line),
  tools/flux_values.py works out from the repository alone what the cluster's Kustomizations
  apply and the values helm-controller would give each HelmRelease's chart (valuesFrom, then
  inline values, after postBuild substitution); tools/values_dump.py reads back the values
  weaver gives the converted release's chart (its chart replaced by one printing `.Values`),
  and passes the expected values through helm and the same chart, so both sides are what a
  chart sees. A HelmRelease whose values depend on what the repository does not hold readably
  (a SOPS-encrypted Secret's variables, a valuesFrom object of the cluster) is counted apart.

Prints one table row per repository, Markdown; --details lists the differences on stderr.
"""

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys

import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flux_substitute import envsubst, flux_text  # noqa: E402 (beside this file)

class Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but `=` is text, as for go-yaml (PyYAML makes it a `value` key)."""


Loader.yaml_implicit_resolvers = dict(yaml.SafeLoader.yaml_implicit_resolvers, **{"=": []})


WEAVER_LABELS = ("app.kubernetes.io/managed-by", "weaver.example.com/release", "weaver.example.com/environment")


def file_variables(doc):
    """A substituteFrom file's variables: a ConfigMap's data, a Secret's data decoded then its
    stringData (as Flux reads the objects), or the flat file itself."""
    if doc.get("apiVersion") == "v1" and doc.get("kind") in ("ConfigMap", "Secret"):
        out = {}
        for k, v in (doc.get("data") or {}).items():
            out[k] = base64.b64decode(v).decode() if doc["kind"] == "Secret" else str(v)
        if doc["kind"] == "Secret":
            out.update({k: str(v) for k, v in (doc.get("stringData") or {}).items()})
        return out
    return {k: str(v) for k, v in doc.items()}


def substitute(doc_text, variables):
    obj = yaml.load(doc_text, Loader=Loader) or {}
    meta = obj.get("metadata", {}) or {}
    for where in ("labels", "annotations"):
        if (meta.get(where) or {}).get("kustomize.toolkit.fluxcd.io/substitute") == "disabled":
            return obj
    return yaml.load(envsubst(flux_text(obj), variables), Loader=Loader)


def key(obj):
    meta = obj.get("metadata") or {}
    group = (obj.get("apiVersion") or "").rpartition("/")[0]
    return (obj.get("kind"), meta.get("namespace") or "", meta.get("name"), group)


def strip(obj, namespace=None):
    meta = obj.setdefault("metadata", {})
    for where in ("labels",):
        labels = meta.get(where) or {}
        for label in WEAVER_LABELS:
            labels.pop(label, None)
        if not labels:
            meta.pop(where, None)
    if namespace is not None and meta.get("namespace") == namespace:
        meta.pop("namespace", None)
    return obj


def run(args, cwd):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)


def compare_release(weaver, work, env, release, rows):
    if release.get("installed") is False:
        return "installed: false (variables the import could not read)"
    directory = release["kustomize"]
    # kustomize-controller builds with LoadRestrictionsNone.
    built = run(["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", directory], work)
    if built.returncode != 0:
        return "kubectl: " + built.stderr.strip().splitlines()[-1][:120]
    variables = {}
    for path in release.get("substituteFrom", []):
        with open(os.path.join(work, path)) as f:
            variables.update(file_variables(yaml.safe_load(f) or {}))
    variables.update({k: str(v) for k, v in (release.get("substitute") or {}).items()})
    expected = {}
    substituting = "substitute" in release or "substituteFrom" in release
    for text in re.split(r"(?m)^---\n", built.stdout):
        if not text.strip():
            continue
        try:
            obj = substitute(text, variables) if substituting else yaml.load(text, Loader=Loader)
        except KeyError as err:
            return f"unset variable {err}"
        except yaml.YAMLError:
            return "kubectl's output substituted is not YAML"
        expected[key(obj)] = strip(obj)
    rendered = run([weaver, "render", "--env", env, "-r", release["name"], "--show-secrets", "--validate=ignore"], work)
    if rendered.returncode != 0:
        lines = rendered.stderr.strip().splitlines()
        return "weaver: " + (lines[0] if lines else "failed")[:160]
    namespace = release.get("namespace", "default")
    actual = {}
    for obj in yaml.load_all(rendered.stdout, Loader=Loader):
        if obj:
            obj = strip(obj)
            k = key(obj)
            if k not in expected and (k[0], "", k[2], k[3]) in expected:
                k = (k[0], "", k[2], k[3])
                obj = strip(obj, namespace)
            actual[k] = obj
    rows["objects"] += len(expected)
    rows["objects_equal"] += sum(1 for k in expected if actual.get(k) == expected[k])
    if actual == expected:
        return None
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    differ = [k for k in expected if k in actual and expected[k] != actual[k]]
    return f"missing {missing[:2]} extra {extra[:2]} differ {differ[:2]}"


def values_rows(weaver, helm, repo, work, clusters, rows):
    """Compares, for each HelmRelease of each cluster, the values helm-controller would give
    its chart (flux_values, from the repository) with those weaver gives the converted
    release's chart (values_dump, through weaver render)."""
    from flux_values import Cluster, Unreadable, release_name, values_of
    from values_dump import differences, helm_values, point_releases_at_chart, weaver_values

    point_releases_at_chart(work)
    for root, env in clusters:
        copy = tempfile.mkdtemp(prefix='flux-values-')
        shutil.copytree(repo, copy, ignore=shutil.ignore_patterns('.git'), symlinks=True, dirs_exist_ok=True)
        cluster = Cluster(copy, root)
        shutil.rmtree(copy, ignore_errors=True)
        rows['problems'] += [f'{env}: {p}' for p in cluster.problems]
        with open(os.path.join(work, 'environments', env + '.yaml')) as f:
            releases = {r['name']: r for r in (yaml.safe_load(f) or {}).get('releases') or [] if 'kustomize' not in r}
        expected = {}
        for hr in cluster.helm_releases():
            rows['helmreleases'] += 1
            name = release_name(hr)
            try:
                values = values_of(cluster, hr)
            except Unreadable as e:
                values = e
            if name in expected:
                # weaver converts one release of a name, and lists the others
                rows['values_absent'].append(f'{env}/{name}: a second HelmRelease of this release name')
                expected[name].append(values)
            else:
                expected[name] = [values]
        wanted = [n for n in expected if n in releases and releases[n].get('installed') is not False]
        actual = weaver_values(weaver, work, env, wanted) if wanted else {}
        for name, candidates in sorted(expected.items()):
            values = candidates[0]
            release = releases.get(name)
            if release is None:
                rows['values_absent'].append(f'{env}/{name}')
                continue
            rows['converted'] += 1
            if release.get('installed') is False:
                rows['values_not_installed'] += 1
                continue
            if isinstance(values, Unreadable):
                rows['values_unreadable'].append(f'{env}/{name}: {values}')
                continue
            got = actual.get(name)
            if len(candidates) > 1:
                # the one weaver kept: the first in its order, maybe not in this one
                normals = [None if isinstance(v, Unreadable) else helm_values(helm, v, name)[0] for v in candidates]
                values = next((v for v, n in zip(candidates, normals) if n == got), values)
            normal, err = helm_values(helm, values, name)
            if isinstance(got, str) or got is None or err:
                rows['values_differ'].append(f'{env}/{name}: {got or err or "no values rendered"}')
                rows['values_compared'] += 1
                continue
            rows['values_compared'] += 1
            diff = differences(normal, got)
            if diff:
                rows['values_differ'].append(f'{env}/{name}: ' + '; '.join(diff[:4]))
            else:
                rows['values_equal'] += 1


def corpus(weaver, helm, repo, work_root):
    name = os.path.basename(repo.rstrip("/"))
    work = os.path.join(work_root, name)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(repo, work, ignore=shutil.ignore_patterns(".git"), symlinks=True)
    imported = run([weaver, "import", "flux", "."], work)
    if imported.returncode not in (0, 2):
        return name, f"import failed: {imported.stderr.strip()[:200]}", []
    left_out = [line for line in imported.stderr.splitlines() if line.startswith("not converted: ")]
    clusters = []
    for root, env, how in re.findall(r"^cluster (\S+) → environments/(\S+)\.yaml: (.*)$", imported.stdout + imported.stderr, re.M):
        # Taken for a cluster's root, the path of a Kustomization (no bootstrap file, no
        # FluxInstance sync path the import could read): Flux applies that Kustomization from
        # the directory of its file, with its own patches and variables.
        parent = re.match(r"the path of Kustomization \S+ \((\S+)\)", how)
        clusters.append((os.path.dirname(parent.group(1)) if parent else root, env))
    envs = sorted(f[:-5] for f in os.listdir(os.path.join(work, "environments")) if f.endswith(".yaml"))
    loaded = run([weaver, "envs"], work)
    rows = {"envs": len(envs), "kustomize": 0, "charts": 0, "equal": 0, "not_installed": 0, "unequal": [],
            "loads": loaded.returncode == 0, "sops_key": 0, "objects": 0, "objects_equal": 0, "helmreleases": 0, "converted": 0,
            "values_compared": 0, "values_equal": 0, "values_differ": [], "values_unreadable": [],
            "values_absent": [], "values_not_installed": 0, "problems": []}
    if not rows["loads"]:
        rows["unequal"].append("weaver envs: " + loaded.stderr.strip()[:200])
    for env in envs:
        with open(os.path.join(work, "environments", env + ".yaml")) as f:
            data = yaml.safe_load(f) or {}
        for release in data.get("releases") or []:
            if "kustomize" in release:
                rows["kustomize"] += 1
                problem = compare_release(weaver, work, env, release, rows)
                if release.get("installed") is False:
                    rows["not_installed"] += 1
                elif problem is not None and "no age identity" in problem:
                    # substituteFrom a SOPS file: weaver renders it with the cluster's key only
                    rows["sops_key"] += 1
                elif problem is None:
                    rows["equal"] += 1
                else:
                    rows["unequal"].append(f"{env}/{release['name']}: {problem}")
            else:
                rows["charts"] += 1
    if helm:
        values_rows(weaver, helm, repo, work, clusters, rows)
    return name, rows, left_out


def why_counts(left_out):
    counts = {}
    for line in left_out:
        parts = line.split(": ")
        # `not converted: FILE:LINE: what: why` -> the why's first words
        why = ": ".join(parts[3:])[:60] if len(parts) > 3 else line
        counts[why] = counts.get(why, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("weaver")
    parser.add_argument("repos", nargs="+")
    parser.add_argument("--work", default="/tmp/flux-corpus-work")
    parser.add_argument("--helm", default=os.environ.get("WEAVER_HELM") or shutil.which("helm"),
                        help="helm, to compare HelmReleases' values (none: not compared)")
    parser.add_argument("--details", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    weaver = os.path.abspath(args.weaver)
    print("| repository | clusters | kustomize releases: render equal (of those rendered) | objects equal | HelmReleases | converted "
          "| not converted | installed: false | values compared | values equal |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    everything = {}
    for repo in args.repos:
        name, rows, left_out = corpus(weaver, args.helm, os.path.abspath(repo), args.work)
        if isinstance(rows, str):
            print(f"| {name} | {rows} |")
            continue
        everything[name] = dict(rows, left_out=left_out)
        print(
            f"| {name} | {rows['envs']} | {rows['equal']}/{rows['kustomize'] - rows['not_installed'] - rows['sops_key']}"
            f"{f' ({n} need the SOPS key)' if (n := rows['sops_key']) else ''} | "
            f"{rows['objects_equal']}/{rows['objects']} | {rows['helmreleases']} | {rows['converted']} | "
            f"{len(left_out)} | {rows['not_installed'] + rows['values_not_installed']} | "
            f"{rows['values_compared']} | {rows['values_equal']} |", flush=True
        )
        if args.details:
            for why, n in why_counts(left_out)[:8]:
                print(f"    {n:4} {why}", file=sys.stderr)
            for what in ("unequal", "values_differ", "values_unreadable", "values_absent", "problems"):
                for line in rows[what][:12]:
                    print(f"    {what} {line}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(everything, f, indent=1)


if __name__ == "__main__":
    main()
