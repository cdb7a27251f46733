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
passes, as the import converted it; a release with a `.gotmpl` values file or SOPS secrets is
not compared so).

Prints one row per helmfile: environments, releases (over all environments), the exit code, how
many things were not converted and their most common reasons, the local releases that render, and
those whose render equals helm's out of those compared. Exit 0 whatever the outcome.
"""
import argparse, collections, json, os, re, shutil, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helm_corpus import documents, key, normalise, run  # noqa: E402

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


def objects(text):
    return {key(o): normalise(o) for o in documents(text)}


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
        renders[name] = '\n---\n'.join(texts)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    return renders


def compare_release_is_local(repo, release):
    chart = release.get('chart', '')
    chart_dir = chart if chart.startswith('./') else os.path.join('charts', chart)
    return (chart.startswith('./') or '/' not in chart) and os.path.isdir(os.path.join(repo, chart_dir)) \
        and release.get('installed') is not False


def compare_release(repo, env, name, release, namespace, weaver, helm, helmfile):
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
            return True, objects(rendered) == objects(w.stdout), 'helmfile'
    if release.get('secrets') or any(f.endswith('.gotmpl') for f in files):
        return w.returncode == 0, None, None
    argv = [helm, 'template', name, chart_dir, '-n', release.get('namespace', namespace),
            '--kube-version', 'v1.32.0', '--include-crds', '--skip-tests']
    for f in files:
        argv += ['-f', f]
    if release.get('values'):
        inline = tempfile.NamedTemporaryFile('w', suffix='.yaml', delete=False)
        yaml.safe_dump(release['values'], inline)
        inline.close()
        argv += ['-f', inline.name]
    h, _ = run(argv, cwd=repo)
    if h.returncode != 0 or w.returncode != 0:
        return w.returncode == 0, h.returncode != 0 and w.returncode != 0, 'helm'
    return True, objects(h.stdout) == objects(w.stdout), 'helm'


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
    written = [l.split(' ', 1)[1] for l in p.stdout.splitlines() if l.startswith('wrote ')]
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
    for e in envs:
        rels, namespace = releases_of(repo, e)
        releases |= {(name, e) for name in rels}
        local_releases = {n for n, r in rels.items() if compare_release_is_local(repo, r)}
        against = helmfile_renders(helmfile_bin, helmfile, e, repo, variables) if helmfile_bin and local_releases else None
        for name, release in rels.items():
            checked = compare_release(repo, e, name, release, namespace, weaver, helm, against)
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
    print('| repo | envs | releases (env×release) | exit | not converted | most common reasons | local releases rendered | = helmfile or helm template |')
    print('|---|---|---|---|---|---|---|---|')
    for r in rows:
        reasons = '; '.join(f'{n}× {why}' for why, n in r['reasons']) or (r['error'] or '')
        print(f"| {r['repo']} | {r['envs']} | {r['releases']} | {r['exit']} | {r['not_converted']} | {reasons} | "
              f"{r['rendered']} | {r['helm_equal']} |")
    for r in rows:
        for what in ('render_errors', 'differ'):
            for line in r.get(what, []):
                print(f"{r['repo']}: {what}: {line}")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
