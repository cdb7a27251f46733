#!/usr/bin/env python3
"""Import real helmfile repositories with `weaver import helmfile` and check what it wrote.

    tools/import_corpus.py LIST [--weaver BIN] [--helm BIN] [--helmfile BIN] [--work DIR]

LIST has one line per helmfile: `CHECKOUT<TAB>HELMFILE[<TAB>VAR=value ...]`, CHECKOUT a
directory (a checkout of the repository, never changed: it is copied into --work first),
HELMFILE the state file's path in it, then the environment variables helmfile would need
(`requiredEnv`); `#` starts a comment. For each, in the copy: `weaver import helmfile HELMFILE`
(the copy is the weaver repository), then `weaver envs` (everything written must load) and
for each installed release of a chart of the repository (charts/<name>, or one named by its
path, ./<dir>) in each environment written, `weaver render --env E -r RELEASE` (remote charts
would need `weaver charts lock`, and the network), compared object by object (weaver's own labels
and namespaces aside) with what helmfile itself renders, `helmfile -e E template --output-dir`
(--helmfile, with the helm on PATH; hooks find no cluster: KUBECONFIG names none); where helmfile
fails (a hook that needs a cluster, a remote chart it would fetch), with `helm template` given the
values the environment file gives it (its valuesFiles, then its inline values: what helmfile
passes, as the import converted it) and an `--api-versions` for each of the environment's
`apiVersions` (helmfile's `templateArgs`, as the import converted them); a release with a
`.gotmpl` values file or SOPS secrets is not compared so.

Values: for each installed release of every environment (remote charts too), the values
weaver gives the release's chart are compared with those helmfile passes helm. Both are read
back through a chart that prints `.Values` (tools/values_dump.py): weaver renders the written
environment with every release's chart replaced by it; helmfile (`-e E template`) runs a helm
wrapper that renders it in place of each release's chart with the values files and --set
flags helmfile passes, merged by helm itself. A release helmfile fails on is not compared (its
error is listed).

Prints one row per helmfile: environments, releases (over all environments), the exit code, how
many things were not converted and their most common reasons, the local releases that render, and
those whose render equals helm's out of those compared. Exit 0 whatever the outcome.
"""
import argparse, collections, json, os, re, shutil, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helm_corpus import documents, key, normalise, run  # noqa: E402
from values_dump import differences, dumped, helm_wrapper, point_releases_at_chart, weaver_values  # noqa: E402

import yaml


def read_list(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                checkout, helmfile, *variables = line.split('\t')
                rows.append((checkout, helmfile, dict(v.split('=', 1) for v in variables)))
    return rows


def merge(base, over):
    """weaver's `values` merge through `extends`: maps deeply, anything else replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def releases_of(repo, env):
    """An environment's releases as weaver resolves `extends`: by name, the derived file's
    fields over the base's, `values` merged."""
    chain, name = [], env
    while name:
        with open(os.path.join(repo, 'environments', name + '.yaml')) as f:
            doc = yaml.safe_load(f) or {}
        chain.append(doc)
        name = doc.get('extends')
    releases = {}
    for doc in reversed(chain):
        for r in doc.get('releases') or []:
            have = releases.setdefault(r['name'], {})
            for k, v in r.items():
                have[k] = merge(have.get(k) or {}, v) if k == 'values' else v
    namespace = next((d['namespace'] for d in chain if d.get('namespace')), 'default')
    return releases, namespace


def api_versions_of(repo, env):
    """An environment's `apiVersions` (a derived file's list replaces its base's): what the
    import made of helmfile's `templateArgs: [--api-versions=…]`, which helmfile passes helm."""
    name = env
    while name:
        with open(os.path.join(repo, 'environments', name + '.yaml')) as f:
            doc = yaml.safe_load(f) or {}
        if 'apiVersions' in doc:
            return list(doc['apiVersions'] or [])
        name = doc.get('extends')
    return []


def rels_abstract(repo, env):
    with open(os.path.join(repo, 'environments', env + '.yaml')) as f:
        return bool((yaml.safe_load(f) or {}).get('abstract'))


def objects(text):
    return {key(o): normalise(o) for o in documents(text)}


def same_objects(row, expected_text, actual_text):
    """Whether two renders hold the same objects; counts them in the row."""
    expected, actual = objects(expected_text), objects(actual_text)
    row['objects'] += len(expected)
    row['objects_equal'] += sum(1 for k, v in expected.items() if actual.get(k) == v)
    return expected == actual


def helmfile_renders(helmfile, state, env, repo, variables):
    """What `helmfile template` renders for each release of an environment, by release name
    (one run, each release into a directory of its own; a release helmfile fails on is absent)."""
    out = tempfile.mkdtemp(prefix='helmfile-out-')
    home = tempfile.mkdtemp(prefix='helmfile-home-')
    argv = [helmfile, '-f', state, '-e', env, 'template', '--skip-deps', '--skip-tests', '--include-crds',
            '--kube-version', 'v1.32.0', '--output-dir', out, '--output-dir-template', '{{ .OutputDir }}/{{ .Release.Name }}']
    environ = dict(os.environ, **variables, KUBECONFIG=os.path.join(home, 'none'), HOME=home)
    try:
        subprocess.run(argv, cwd=repo, env=environ, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        pass
    renders = {}
    for name in os.listdir(out):
        texts = []
        for root, _, files in sorted(os.walk(os.path.join(out, name))):
            for f in sorted(files):
                with open(os.path.join(root, f)) as fh:
                    texts.append(fh.read())
        if any(t.strip() for t in texts):  # helmfile makes the directory of a release it fails on
            renders[name] = '\n---\n'.join(texts)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    return renders


def helmfile_values(helmfile, state, env, repo, variables, helm):
    """The values helmfile passes helm for each release of an environment (what helm gives
    a chart as `.Values` for them: values files and --set flags merged by helm itself), by
    release name; and helmfile's error, if it failed."""
    work = tempfile.mkdtemp(prefix='helmfile-values-')
    wrapper, wrapper_env = helm_wrapper(work, helm)
    out = os.path.join(work, 'out')
    argv = [helmfile, '--helm-binary', wrapper, '-f', state, '-e', env, 'template', '--skip-deps',
            '--output-dir', out, '--output-dir-template', '{{ .OutputDir }}/{{ .Release.Name }}']
    environ = dict(os.environ, **variables, **wrapper_env, KUBECONFIG=os.path.join(work, 'none'), HOME=work)
    error, adjusted = None, []
    for _ in range(12):
        error = None
        shutil.rmtree(out, ignore_errors=True)
        try:
            p = subprocess.run(argv, cwd=repo, env=environ, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            error = 'timed out'
            break
        if p.returncode == 0:
            break
        lines = [l for l in p.stderr.strip().splitlines() if len(l.strip()) > 2]
        error = (lines[-1] if lines else f'exit {p.returncode}')[:200]
        adjustment = helmfile_0166_adjustment(p.stderr, repo, state)
        if not adjustment:
            break
        adjusted.append(adjustment)
    values = {}
    if os.path.isdir(out):
        for root, _, files in os.walk(out):
            for f in files:
                with open(os.path.join(root, f)) as fh:
                    values.update(dumped(fh.read()))
    shutil.rmtree(work, ignore_errors=True)
    return values, error, adjusted


MISSING = re.compile(r'values file matching "([^"]+)" does not exist in "([^"]+)"')
UNKNOWN_FIELD = re.compile(r'field (\w+) not found in type state\.HelmSpec')


def helmfile_0166_adjustment(stderr, repo, state):
    """What the only helmfile this machine has (0.166) refuses where helmfile 1 goes on,
    changed in the copy so that it renders; None when nothing is known to change. A release
    values file that is absent (helmfile 1 passes over it with the state's `missingFileHandler:
    Warn`; weaver does not reference it) is made empty, which passes the same values; an
    unknown helmDefaults field (`templateArgs`: helm flags, no values) is removed."""
    made = []
    for name, where in MISSING.findall(stderr):
        path = os.path.normpath(os.path.join(repo, where, name))
        if path.startswith(repo + os.sep) and not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                f.write('{}\n')
            made.append(os.path.relpath(path, repo))
    if made:
        return 'absent values files made empty: ' + ', '.join(sorted(set(made)))
    field = UNKNOWN_FIELD.search(stderr)
    if field:
        path = os.path.join(repo, state)
        with open(path) as f:
            lines = f.read().split('\n')
        out, skip_indent = [], None
        for line in lines:
            indent = len(line) - len(line.lstrip())
            if skip_indent is not None and (not line.strip() or indent > skip_indent):
                continue
            skip_indent = None
            if line.strip().startswith(field.group(1) + ':'):
                skip_indent = indent
                continue
            out.append(line)
        if len(out) != len(lines):
            with open(path, 'w') as f:
                f.write('\n'.join(out))
            return f'helmDefaults.{field.group(1)} removed (helmfile 0.166 lacks it)'
    return None


def compare_values(repo, valrepo, helmfile_bin, helmfile, env, variables, weaver, helm, row):
    """One environment's releases: the values weaver gives each installed release's chart
    against those helmfile passes helm."""
    rels, _ = releases_of(valrepo, env)
    installed = [n for n, r in rels.items() if r.get('installed') is not False]
    if not installed:
        return
    expected, error, adjusted = helmfile_values(helmfile_bin, helmfile, env, repo, variables, helm)
    row['adjusted'] = sorted(set(row.get('adjusted', [])) | set(adjusted))
    actual = weaver_values(weaver, valrepo, env, installed)
    for name in installed:
        if name not in expected:
            row['values_not_compared'].append(f'{env}/{name}: helmfile: {error or "no render"}')
            continue
        got = actual.get(name)
        row['values_compared'] += 1
        if not isinstance(got, dict) and got is not None:
            row['values_differ'].append(f'{env}/{name}: {got}')
            continue
        diff = differences(expected[name], got)
        if diff:
            row['values_differ'].append(f'{env}/{name}: ' + '; '.join(diff[:4]))
        else:
            row['values_equal'] += 1


def compare_release_is_local(repo, release):
    chart = release.get('chart', '')
    if not chart:  # a kustomize directory helmfile makes a chart of (chartify): not compared
        return False
    chart_dir = chart if chart.startswith('./') else os.path.join('charts', chart)
    return (chart.startswith('./') or '/' not in chart) and os.path.isdir(os.path.join(repo, chart_dir)) \
        and release.get('installed') is not False


def compare_release(repo, env, name, release, namespace, weaver, helm, helmfile, row):
    """For an installed release of a chart of the repository: (whether weaver renders it,
    whether that equals helm's render: None when not compared, what it was compared with);
    None for any other release."""
    chart = release.get('chart', '')
    files = release.get('valuesFiles') or []
    chart_dir = chart if chart.startswith('./') else os.path.join('charts', chart)
    if not compare_release_is_local(repo, release):
        return None
    w, _ = run([weaver, 'render', '--env', env, '-r', name, '--show-secrets'], cwd=repo)
    if helmfile is not None:
        rendered = helmfile.get(name)
        if rendered is not None:
            if w.returncode != 0:
                return False, False, 'helmfile'
            return True, same_objects(row, rendered, w.stdout), 'helmfile'
    if release.get('secrets') or any(f.endswith('.gotmpl') for f in files):
        return w.returncode == 0, None, None
    argv = [helm, 'template', name, chart_dir, '-n', release.get('namespace', namespace),
            '--kube-version', 'v1.32.0', '--include-crds', '--skip-tests']
    # helmfile passes its `helmDefaults.templateArgs` (the import's `apiVersions`) to helm template
    argv += [f'--api-versions={v}' for v in api_versions_of(repo, env)]
    for f in files:
        argv += ['-f', f]
    if release.get('values'):
        inline = tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False)
        yaml.safe_dump(release['values'], inline)
        inline.close()
        argv += ['-f', inline.name]
    h, _ = run(argv, cwd=repo)
    if h.returncode != 0 and 'helm dependency build' in h.stderr:
        # what helmfile does before it renders a local chart (file:// dependencies, offline)
        run([helm, 'dependency', 'build', chart_dir, '--skip-refresh'], cwd=repo)
        h, _ = run(argv, cwd=repo)
    if h.returncode != 0 or w.returncode != 0:
        return w.returncode == 0, h.returncode != 0 and w.returncode != 0, 'helm'
    return True, same_objects(row, h.stdout, w.stdout), 'helm'


def reason(line):
    """A not-converted line's reason, without the names in it."""
    what_why = line.split(': ', 2)[-1]
    return re.sub(r'`[^`]*`', 'X', what_why)[:90]


def one(checkout, helmfile, variables, weaver, helm, helmfile_bin, work):
    repo = os.path.join(work, os.path.basename(checkout.rstrip('/')))
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(checkout, repo, symlinks=True)
    env = dict(os.environ, **variables)
    p = subprocess.run([weaver, 'import', 'helmfile', helmfile], cwd=repo, env=env, capture_output=True, text=True)
    left = [l[len('not converted: '):] for l in p.stderr.splitlines() if l.startswith('not converted: ')]
    # The environment files (not weaver-import.lock, the record of what the import wrote).
    written = [l.split(' ', 1)[1] for l in p.stdout.splitlines() if l.startswith('wrote environments/')]
    envs = [os.path.basename(w)[:-5] for w in written[1:]]
    row = {'repo': os.path.basename(checkout.rstrip('/')), 'helmfile': helmfile, 'exit': p.returncode,
           'envs': len(envs), 'not_converted': len(left),
           'reasons': collections.Counter(reason(l) for l in left).most_common(3),
           'error': p.stderr.strip().splitlines()[-1] if p.returncode == 1 else None}
    # weaver renders `.gotmpl` values files reading them too, as helmfile does.
    saved = dict(os.environ)
    os.environ.update(variables)
    loads, _ = run([weaver, 'envs'], cwd=repo)
    row['loads'] = loads.returncode == 0 if written else None
    releases, local, rendered, compared, equal = set(), 0, 0, 0, 0
    by_helmfile = 0
    row.update(values_compared=0, values_equal=0, values_differ=[], values_not_compared=[], objects=0, objects_equal=0)
    valrepo = repo + '.values'
    shutil.rmtree(valrepo, ignore_errors=True)
    shutil.copytree(repo, valrepo, symlinks=True)
    if written:
        point_releases_at_chart(valrepo)
    for e in envs:
        if helmfile_bin and not rels_abstract(repo, e):
            compare_values(repo, valrepo, helmfile_bin, helmfile, e, variables, weaver, helm, row)
        rels, namespace = releases_of(repo, e)
        releases |= {(name, e) for name in rels}
        local_releases = {n for n, r in rels.items() if compare_release_is_local(repo, r)}
        against = helmfile_renders(helmfile_bin, helmfile, e, repo, variables) if helmfile_bin and local_releases else None
        for name, release in rels.items():
            checked = compare_release(repo, e, name, release, namespace, weaver, helm, against, row)
            if checked is None:
                continue
            local += 1
            rendered += checked[0]
            if not checked[0]:
                row.setdefault('render_errors', []).append(f'{e}/{name}')
            if checked[1] is not None:
                compared += 1
                by_helmfile += checked[2] == 'helmfile'
                equal += checked[1]
                if not checked[1]:
                    row.setdefault('differ', []).append(f'{e}/{name}')
    os.environ.clear()
    os.environ.update(saved)
    row.update(releases=len(releases), rendered=f'{rendered}/{local}',
               helm_equal=f'{equal}/{compared}' + (f' ({by_helmfile} by helmfile)' if compared else ''))
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('list')
    ap.add_argument('--weaver', default=os.path.abspath('target/debug/weaver'))
    ap.add_argument('--helm', default=os.environ.get('WEAVER_HELM') or shutil.which('helm'))
    ap.add_argument('--helmfile', default=shutil.which('helmfile'))
    ap.add_argument('--work', default=tempfile.mkdtemp(prefix='import-corpus-'))
    ap.add_argument('--json')
    args = ap.parse_args()
    rows = [one(*r, os.path.abspath(args.weaver), args.helm, args.helmfile, args.work) for r in read_list(args.list)]
    print('| repository | environments | releases (env×release) | exit | not converted | most common reasons '
          '| local releases rendered | = helmfile or helm template | objects equal | values compared | values equal |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        reasons = '; '.join(f'{n}× {why}' for why, n in r['reasons']) or (r['error'] or '')
        print(f"| {r['repo']} | {r['envs']} | {r['releases']} | {r['exit']} | {r['not_converted']} | {reasons} | "
              f"{r['rendered']} | {r['helm_equal']} | {r['objects_equal']}/{r['objects']} | "
              f"{r['values_compared']} | {r['values_equal']} |")
    for r in rows:
        for what in ('render_errors', 'differ', 'values_differ', 'values_not_compared', 'adjusted'):
            for line in r.get(what, []):
                print(f"{r['repo']}: {what}: {line}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
