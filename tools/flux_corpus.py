#!/usr/bin/env python3
"""Imports Flux repositories with `weaver import flux` and compares what weaver renders with
`kubectl kustomize` plus Flux's variable substitution.

    tools/flux_corpus.py WEAVER REPO_DIR... [--work DIR]

Each repository is copied into DIR (default /tmp/flux-corpus-work), imported there, and, for
every environment, each `kustomize:` release is rendered with `weaver render --show-secrets`
and compared, object by object (weaver's labels and the namespace weaver gives objects
without one set aside), with `kubectl kustomize --load-restrictor LoadRestrictionsNone` (as
kustomize-controller builds) of the same directory after substituting the release's variables
as Flux does. Chart releases are counted, not rendered (their charts are
remote). Prints one table row per repository, Markdown.
"""

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys

import yaml

WEAVER_LABELS = ("app.kubernetes.io/managed-by", "weaver.example.com/release", "weaver.example.com/environment")
NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


def envsubst(text, variables):
    """Flux's strict envsubst: ${var}, ${var:=default} (and :-, =; defaults may nest), $$ is $."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            name = NAME.match(text, i + 2)
            if not name:
                out.append(text[i])
                i += 1
                continue
            j = name.end()
            op = next((o for o in (":=", ":-", "=") if text.startswith(o, j)), None)
            default = None
            if op:
                depth, k = 1, j + len(op)
                while k < len(text) and depth:
                    depth += {"{": 1, "}": -1}.get(text[k], 0)
                    k += 1
                default, j = text[j + len(op) : k - 1], k
            elif text.startswith("}", j):
                j += 1
            else:
                out.append(text[i])
                i += 1
                continue
            value = variables.get(name.group(0))
            if default is not None and not value:
                out.append(envsubst(default, variables))
            elif value is None:
                raise KeyError(name.group(0))
            else:
                out.append(value)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


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
    labels = yaml.safe_load(doc_text) or {}
    meta = labels.get("metadata", {}) or {}
    for where in ("labels", "annotations"):
        if (meta.get(where) or {}).get("kustomize.toolkit.fluxcd.io/substitute") == "disabled":
            return labels
    return yaml.safe_load(envsubst(doc_text, variables))


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


def compare_release(weaver, work, env, release):
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
            obj = substitute(text, variables) if substituting else yaml.safe_load(text)
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
    for obj in yaml.safe_load_all(rendered.stdout):
        if obj:
            obj = strip(obj)
            k = key(obj)
            if k not in expected and (k[0], "", k[2], k[3]) in expected:
                k = (k[0], "", k[2], k[3])
                obj = strip(obj, namespace)
            actual[k] = obj
    if actual == expected:
        return None
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    differ = [k for k in expected if k in actual and expected[k] != actual[k]]
    return f"missing {missing[:2]} extra {extra[:2]} differ {differ[:2]}"


def corpus(weaver, repo, work_root):
    name = os.path.basename(repo.rstrip("/"))
    work = os.path.join(work_root, name)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(repo, work, ignore=shutil.ignore_patterns(".git"), symlinks=True)
    imported = run([weaver, "import", "flux", "."], work)
    if imported.returncode not in (0, 2):
        return name, f"import failed: {imported.stderr.strip()[:200]}", []
    left_out = [line for line in imported.stderr.splitlines() if line.startswith("not converted: ")]
    envs = sorted(f[:-5] for f in os.listdir(os.path.join(work, "environments")) if f.endswith(".yaml"))
    loaded = run([weaver, "envs"], work)
    rows = {"envs": len(envs), "kustomize": 0, "charts": 0, "equal": 0, "not_installed": 0, "unequal": [],
            "loads": loaded.returncode == 0}
    if not rows["loads"]:
        rows["unequal"].append("weaver envs: " + loaded.stderr.strip()[:200])
    for env in envs:
        with open(os.path.join(work, "environments", env + ".yaml")) as f:
            data = yaml.safe_load(f) or {}
        for release in data.get("releases") or []:
            if "kustomize" in release:
                rows["kustomize"] += 1
                problem = compare_release(weaver, work, env, release)
                if release.get("installed") is False:
                    rows["not_installed"] += 1
                elif problem is None:
                    rows["equal"] += 1
                else:
                    rows["unequal"].append(f"{env}/{release['name']}: {problem}")
            else:
                rows["charts"] += 1
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
    parser.add_argument("--details", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    weaver = os.path.abspath(args.weaver)
    print("| repository | envs | kustomize releases | chart releases | not converted | loads | installed: false | render equal |")
    print("|---|---|---|---|---|---|---|---|")
    for repo in args.repos:
        name, rows, left_out = corpus(weaver, os.path.abspath(repo), args.work)
        if isinstance(rows, str):
            print(f"| {name} | {rows} |")
            continue
        print(
            f"| {name} | {rows['envs']} | {rows['kustomize']} | {rows['charts']} | {len(left_out)} | "
            f"{'y' if rows['loads'] else 'n'} | {rows['not_installed']} | "
            f"{rows['equal']}/{rows['kustomize'] - rows['not_installed']} |"
        )
        if args.details:
            for why, n in why_counts(left_out)[:8]:
                print(f"    {n:4} {why}", file=sys.stderr)
            for line in rows["unequal"][:8]:
                print(f"    unequal {line}", file=sys.stderr)


if __name__ == "__main__":
    main()
