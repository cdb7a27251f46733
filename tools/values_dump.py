"""The values a chart is given, read back through a chart that prints them.

A release's chart is replaced by a chart of one template, a ConfigMap holding `toJson .Values`
(the chart has no values of its own, so `.Values` is exactly what the release passes: its values
files and values merged as the tool merges them, nulls kept). weaver renders it for a weaver
release (`weaver_values`); helm renders it for what helmfile passes to helm (a helm wrapper that
helmfile runs, `helm_wrapper`) and for values computed for helm-controller (`helm_values`).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

CHART = 'zz-values-dump'
MARK = 'values-dump.weaver.example.com/release'
TEMPLATE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: values-dump-{{ .Release.Name | trunc 40 | trimSuffix "-" }}
  annotations:
    %s: {{ .Release.Name | quote }}
data:
  values: {{ toJson .Values | quote }}
""" % MARK


def write_chart(directory):
    """The printing chart, as a Helm chart in DIRECTORY (made); returns it."""
    os.makedirs(os.path.join(directory, 'templates'), exist_ok=True)
    with open(os.path.join(directory, 'Chart.yaml'), 'w') as f:
        f.write(f'apiVersion: v2\nname: {CHART}\nversion: 0.1.0\n')
    with open(os.path.join(directory, 'templates', 'values.yaml'), 'w') as f:
        f.write(TEMPLATE)
    return directory


def dumped(text):
    """Release name -> values, from a render's output."""
    out = {}
    for doc in yaml.safe_load_all(text):
        if isinstance(doc, dict) and doc.get('kind') == 'ConfigMap':
            release = ((doc.get('metadata') or {}).get('annotations') or {}).get(MARK)
            if release is not None:
                out[release] = json.loads((doc.get('data') or {}).get('values') or 'null')
    return out


def helm_values(helm, values, release='r', namespace='default'):
    """What `.Values` helm gives a chart for these user values (or the error's last line)."""
    work = tempfile.mkdtemp(prefix='values-dump-')
    try:
        chart = write_chart(os.path.join(work, CHART))
        with open(os.path.join(work, 'values.json'), 'w') as f:
            json.dump(values, f)
        p = subprocess.run([helm, 'template', release, chart, '-n', namespace, '-f', os.path.join(work, 'values.json')],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            return None, (p.stderr.strip().splitlines() or ['helm failed'])[-1]
        return dumped(p.stdout).get(release), None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def point_releases_at_chart(repo):
    """In a weaver repository (a copy), every chart release renders the printing chart: its
    `chart` named so, `version` and `patches` (whose targets it lacks) dropped."""
    write_chart(os.path.join(repo, 'charts', CHART))
    envs = os.path.join(repo, 'environments')
    for name in os.listdir(envs):
        if not name.endswith('.yaml'):
            continue
        path = os.path.join(envs, name)
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
        for release in doc.get('releases') or []:
            if 'kustomize' in release:
                continue
            if 'chart' in release:
                release['chart'] = CHART
            release.pop('version', None)
            release.pop('patches', None)
        with open(path, 'w') as f:
            yaml.safe_dump(doc, f, sort_keys=False)


def weaver_values(weaver, repo, env, releases):
    """Release name -> the values weaver gives its chart, for the named chart releases of an
    environment of a repository already pointed at the printing chart; a release weaver fails
    on maps to its error's first line (a str)."""
    out = {}
    argv = [weaver, 'render', '--env', env, '--show-secrets', '--validate=ignore']
    p = subprocess.run(argv + [a for r in releases for a in ('-r', r)], cwd=repo, capture_output=True, text=True, timeout=600)
    if p.returncode == 0:
        out.update(dumped(p.stdout))
    else:
        for r in releases:
            q = subprocess.run(argv + ['-r', r], cwd=repo, capture_output=True, text=True, timeout=600)
            if q.returncode == 0:
                out.update(dumped(q.stdout))
            else:
                out[r] = 'weaver: ' + ((q.stderr.strip().splitlines() or ['failed'])[0])[:200]
    return out


WRAPPER = r'''#!/usr/bin/env python3
# helm as helmfile runs it, but every chart is the printing chart (what helmfile passes: values
# files, --set flags, namespace); repository and dependency commands do nothing.
import os, shutil, sys
real, chart = os.environ['VALUES_DUMP_HELM'], os.environ['VALUES_DUMP_CHART']
args = sys.argv[1:]
if args[:1] == ['template'] and len(args) >= 3:
    rest, out, skip = args[3:], [], False
    for i, a in enumerate(rest):
        if skip:
            skip = False
            continue
        if a in ('--version', '--repo', '--username', '--password', '--ca-file', '--cert-file', '--key-file'):
            skip = True
            continue
        if a.startswith(('--version=', '--repo=', '--post-renderer', '--api-versions', '--kube-version')) or a in ('--devel', '--verify', '--validate', '--include-crds', '--skip-tests', '--skip-crds', '--pass-credentials', '--insecure-skip-tls-verify', '--plain-http'):
            continue
        out.append(a)
    os.execv(real, [real, 'template', args[1], chart] + out)
if args[:1] in (['repo'], ['dependency'], ['dep'], ['registry']):
    sys.exit(0)
if args[:1] in (['pull'], ['fetch']):
    dest = '.'
    for flag in ('--untardir', '--destination', '-d'):
        if flag in args:
            dest = os.path.join(dest, args[args.index(flag) + 1]) if flag == '--untardir' else args[args.index(flag) + 1]
    name = os.path.basename(args[1].rstrip('/'))
    shutil.copytree(chart, os.path.join(dest, name), dirs_exist_ok=True)
    sys.exit(0)
os.execv(real, [real] + args)
'''


def helm_wrapper(directory, helm):
    """A helm for helmfile's --helm-binary that renders the printing chart; returns its path and
    the environment to run it with."""
    chart = write_chart(os.path.join(directory, CHART))
    path = os.path.join(directory, 'helm')
    with open(path, 'w') as f:
        f.write(WRAPPER)
    os.chmod(path, 0o755)
    return path, {'VALUES_DUMP_HELM': helm, 'VALUES_DUMP_CHART': chart}


def differences(expected, actual, path=''):
    """Paths whose values differ, `path: expected != actual`, at most a few."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for k in sorted(set(expected) | set(actual), key=str):
            if k not in actual:
                out.append(f'{path}.{k}: only expected ({json.dumps(expected[k])[:60]})')
            elif k not in expected:
                out.append(f'{path}.{k}: only weaver ({json.dumps(actual[k])[:60]})')
            else:
                out += differences(expected[k], actual[k], f'{path}.{k}')
        return out
    if expected == actual and type(expected) is type(actual) or (
            isinstance(expected, (int, float)) and isinstance(actual, (int, float)) and not isinstance(expected, bool)
            and not isinstance(actual, bool) and expected == actual):
        return []
    return [f'{path or "."}: {json.dumps(expected)[:60]} != {json.dumps(actual)[:60]}']


if __name__ == '__main__':
    print(helm_values(sys.argv[1], json.loads(sys.argv[2])))
