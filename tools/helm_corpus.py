#!/usr/bin/env python3
"""Compare weaver's rendering of real Helm charts with `helm template`.

    tools/helm_corpus.py build CORPUS SOURCE...   collect charts into CORPUS
    tools/helm_corpus.py compare CORPUS [--weaver BIN] [--json OUT] [--ci-values]

`build` takes chart repositories (directories, or git directories whose HEAD is read with
`git archive`) and copies every chart in them (a directory with a Chart.yaml that is not itself
vendored in another chart's charts/) into CORPUS/<repo>--<chart>. A dependency not already
vendored is vendored as `helm dependency build` would leave it (a directory in charts/), from
the chart of that name in the same repository, else in another source, in the newest version in
the source's git history that meets the dependency's constraint; a chart whose dependencies
cannot all be found is left out and listed.

`compare` renders each chart with `helm template rel <chart> -n ns --kube-version v1.32.0
--include-crds --skip-tests` and with `weaver render` (one release `rel`, namespace `ns`,
`--show-secrets`), parses both, and compares the objects, weaver's own labels aside. Values
helm generates at random (passwords, certificates, UUIDs) need only agree in type and length.
It prints one line per chart and a total; exit 0 whatever the outcome.

With `--ci-values`, each chart is rendered instead once per values file in its `ci/` directory
(the files chart-testing installs it with), and charts without one are skipped: `helm template
... -f ci/FILE` against a weaver release with `valuesFiles: [charts/CHART/ci/FILE]`, reported as
`CHART@ci/FILE`.
"""
import argparse, base64, concurrent.futures, json, os, re, shutil, subprocess, sys, tempfile
import yaml


class Loader(yaml.SafeLoader):
    pass


# helm's YAML (go-yaml v2) writes `=` unquoted; PyYAML reads it as the `value` tag.
Loader.add_constructor('tag:yaml.org,2002:value', lambda l, n: l.construct_scalar(n))
# go-yaml (and so the API server) reads `1e-05` as a float; PyYAML's YAML 1.1 float needs a dot.
Loader.add_implicit_resolver('tag:yaml.org,2002:float', re.compile(r'^[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+$'),
                             list('-+0123456789'))


def chart_meta(path):
    with open(os.path.join(path, 'Chart.yaml')) as f:
        return yaml.load(f, Loader=Loader) or {}


def extract(source, dest, marks=('Chart.yaml',)):
    """Copies a repository (directory or git directory) to dest; returns dest. From a git
    directory, only the top-level directories holding a file whose name ends with one of `marks`
    are taken: a mirror may lack large unrelated files (a directory whose archive fails is left
    out and said)."""
    if os.path.isdir(os.path.join(source, 'objects')) and os.path.exists(os.path.join(source, 'HEAD')):
        os.makedirs(dest)
        listing = subprocess.run(['git', f'--git-dir={source}', 'ls-tree', '-r', '--name-only', 'HEAD'],
                                 check=True, capture_output=True, text=True).stdout.splitlines()
        tops = sorted({p.split('/')[0] for p in listing if p.endswith(tuple(marks)) and '/' in p})
        for top in tops:
            archive = subprocess.run(['git', f'--git-dir={source}', 'archive', 'HEAD', top], capture_output=True)
            if archive.returncode != 0:
                print(f'{source}: {top}/ left out: {archive.stderr.decode().strip().splitlines()[0]}')
                continue
            subprocess.run(['tar', 'x', '-C', dest], input=archive.stdout, check=True)
    else:
        shutil.copytree(source, dest, symlinks=True)
    return dest


def charts_in(root):
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if 'Chart.yaml' in filenames:
            found.append(dirpath)
            dirnames[:] = []  # a chart's charts/ holds its vendored dependencies, not new charts
        dirnames[:] = [d for d in dirnames if not d.startswith('.')]
    return sorted(found)


def parse_version(text):
    m = re.match(r'^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$', str(text).strip())
    if not m:
        return None
    return (int(m[1]), int(m[2] or 0), int(m[3] or 0)), m[4]


def satisfies(version, constraint):
    """Masterminds/semver constraints as helm reads them: `||` of comma- or space-joined terms."""
    parsed = parse_version(version)
    if parsed is None:
        return False
    v, pre = parsed
    for alternative in str(constraint).split('||'):
        terms = re.findall(r'(!=|>=|<=|=>|=<|>|<|=|~>|~|\^)?\s*(v?[0-9xX*][0-9A-Za-z.*+-]*)', alternative)
        if terms and all(term_holds(v, pre, op, text) for op, text in terms):
            return True
    return False


def term_holds(v, pre, op, text):
    parts = text.lstrip('v').split('-')[0].split('.')
    wild = [p in ('x', 'X', '*') for p in parts] + [True] * (3 - len(parts))
    nums = [int(p) if p.isdigit() else 0 for p in parts] + [0] * (3 - len(parts))
    fixed = wild.index(True) if True in wild else 3
    lo = tuple(nums)
    if pre and '-' not in text:
        return False  # a pre-release satisfies only a constraint that names one
    if op in ('', '=') and fixed < 3:
        op = '~' if fixed > 0 else '>='
    if op in ('', '='):
        return v == lo
    if op == '!=':
        return v != lo
    if op in ('>=', '=>'):
        return v >= lo
    if op in ('<=', '=<'):
        return v <= lo
    if op == '>':
        return v > lo
    if op == '<':
        return v < lo
    if op in ('~', '~>'):
        hi = (lo[0] + 1, 0, 0) if fixed <= 1 else (lo[0], lo[1] + 1, 0)
        return lo <= v < hi
    if op == '^':
        hi = (lo[0] + 1, 0, 0) if lo[0] > 0 or fixed == 0 else ((0, lo[1] + 1, 0) if lo[1] > 0 or fixed == 1 else (0, 0, lo[2] + 1))
        return lo <= v < hi
    return False


def from_history(source, path, constraint, dest):
    """Extracts the newest version of the chart at path (in git directory source) that meets
    constraint into dest; returns whether one was found."""
    if source is None:
        return False
    log = subprocess.run(['git', f'--git-dir={source}', 'log', '--format=%H', '--', f'{path}/Chart.yaml'],
                         capture_output=True, text=True).stdout.split()
    for commit in log:
        text = subprocess.run(['git', f'--git-dir={source}', 'show', f'{commit}:{path}/Chart.yaml'],
                              capture_output=True, text=True).stdout
        try:
            version = (yaml.load(text, Loader=Loader) or {}).get('version')
        except yaml.YAMLError:
            continue
        if version is not None and satisfies(version, constraint):
            archive = subprocess.run(['git', f'--git-dir={source}', 'archive', commit, path], capture_output=True).stdout
            work = tempfile.mkdtemp()
            subprocess.run(['tar', 'x', '-C', work], input=archive, check=True)
            shutil.copytree(os.path.join(work, path), dest, symlinks=True)
            shutil.rmtree(work)
            return True
    return False


def vendor(chart, by_name, seen=()):
    """Vendors chart's missing dependencies from by_name (name -> candidates: directory, git
    directory, path in it), in a version that meets the constraint, from the first candidate
    that has one; returns what it could not find."""
    missing = []
    meta = chart_meta(chart)
    deps = meta.get('dependencies') or []
    present = set()
    charts_dir = os.path.join(chart, 'charts')
    if os.path.isdir(charts_dir):
        for entry in os.listdir(charts_dir):
            p = os.path.join(charts_dir, entry)
            if os.path.isdir(p) and os.path.exists(os.path.join(p, 'Chart.yaml')):
                present.add(chart_meta(p).get('name'))
            elif entry.endswith('.tgz'):
                present.add(re.sub(r'-v?\d+\.\d+\.\d+.*\.tgz$', '', entry))
    for dep in deps:
        name = dep.get('name')
        if name in present:
            continue
        target = os.path.join(charts_dir, name)
        constraint = dep.get('version')
        candidates = [] if name in seen else by_name.get(name, [])
        if not candidates:
            missing.append(name)
            continue
        for directory, git_dir, path in candidates:
            if not constraint or satisfies(chart_meta(directory).get('version'), constraint):
                shutil.copytree(directory, target, symlinks=True)
                break
            if from_history(git_dir, path, constraint, target):
                break
        else:
            missing.append(f'{name} {constraint}')
            continue
        present.add(name)
        missing += vendor(target, by_name, seen + (name,))
    return missing


def build(corpus, sources):
    os.makedirs(corpus, exist_ok=True)
    work = tempfile.mkdtemp()
    repos, everywhere = [], {}
    for source in sources:
        stripped = source.rstrip('/')
        repo = os.path.basename(os.path.dirname(stripped) if stripped.endswith('/repo') else stripped)
        root = extract(source, os.path.join(work, repo))
        git_dir = source if os.path.exists(os.path.join(source, 'HEAD')) else None
        charts = charts_in(root)
        by_name = {}
        for c in charts:
            by_name.setdefault(chart_meta(c).get('name'), []).append((c, git_dir, os.path.relpath(c, root)))
        for name, found in by_name.items():
            everywhere.setdefault(name, []).extend(found)
        repos.append((repo, charts, by_name))
    kept, left = 0, []
    for repo, charts, by_name in repos:
        # A dependency comes from the same repository first, then from the other sources.
        lookup = {name: by_name.get(name, []) + [c for c in found if c not in by_name.get(name, [])]
                  for name, found in everywhere.items()}
        for c in charts:
            name = os.path.basename(c)
            dest = os.path.join(corpus, f'{repo}--{name}')
            if os.path.exists(dest):
                continue
            shutil.copytree(c, dest, symlinks=True)
            try:
                missing = vendor(dest, lookup)
            except (yaml.YAMLError, OSError) as e:
                missing = [f'unreadable: {e}'.splitlines()[0]]
            if missing:
                shutil.rmtree(dest)
                left.append(f'{repo}/{name}: dependencies in no source: {", ".join(missing)}')
            else:
                kept += 1
    shutil.rmtree(work)
    print(f'{kept} charts in {corpus}')
    for line in left:
        print('left out:', line)


WEAVER_KEYS = ('weaver.example.com/', 'app.kubernetes.io/managed-by')


def documents(text):
    return [d for d in yaml.load_all(text, Loader=Loader) if isinstance(d, dict) and d]


def normalise(obj):
    obj = json.loads(json.dumps(obj, default=str))
    md = obj.get('metadata') or {}
    # weaver sets the release namespace on namespaced objects; helm template leaves it unset.
    md.pop('namespace', None)
    for field in ('labels', 'annotations'):
        m = md.get(field)
        if isinstance(m, dict):
            for k in [k for k in m if k.startswith(WEAVER_KEYS)]:
                del m[k]
            if not m:
                md.pop(field)
    return obj


def key(obj):
    md = obj.get('metadata') or {}
    return (obj.get('apiVersion'), obj.get('kind'), md.get('name'))


RANDOM = re.compile(r'^[A-Za-z0-9+/=_-]{8,}$')
# htpasswd's bcrypt hashes: a random salt in its own alphabet, which has `.`.
BCRYPT = re.compile(r'\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}')
SEPARATOR = re.compile(r'([^A-Za-z0-9+/=_-]+)')


def pem_type(text):
    """The first line of a PEM block, in text or in base64-encoded text."""
    if not text.startswith('-----BEGIN '):
        try:
            text = base64.b64decode(text, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
    return text.splitlines()[0] if text.startswith('-----BEGIN ') else None


def same(a, b):
    """Equal, or differing only where both hold random values of the same type: keys and
    certificates of the same PEM type, bcrypt hashes, or random tokens of the same length."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if a == b:
        return True
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    a, b = BCRYPT.sub('$2a$bcrypt', a), BCRYPT.sub('$2a$bcrypt', b)
    if a == b:
        return True
    if pem_type(a) is not None and pem_type(a) == pem_type(b):
        return True
    ta, tb = SEPARATOR.split(a), SEPARATOR.split(b)
    return len(ta) == len(tb) and all(
        x == y or (len(x) == len(y) and RANDOM.match(x) and RANDOM.match(y)) or
        (pem_type(x) is not None and pem_type(x) == pem_type(y))
        for x, y in zip(ta, tb))


def first_difference(a, b, path=''):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f'{path}.{k}: only in {"weaver" if k not in a else "helm"}'
            d = first_difference(a[k], b[k], f'{path}.{k}')
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f'{path}[{i}]')
            if d:
                return d
        return None
    return None if same(a, b) else f'{path}: helm {str(a)[:60]!r} weaver {str(b)[:60]!r}'


def file_named(stderr):
    """The first chart file an error names, relative to the chart."""
    m = re.search(r'templates/[\w./-]+|values\.schema\.json|Chart\.yaml|charts/[\w./-]+', stderr)
    return m.group(0) if m else None


def compare_one(chart_dir, weaver, values=None):
    """values: a values file of the chart, relative to it, given to both."""
    name = os.path.basename(chart_dir)
    helm_values = ['-f', os.path.join(chart_dir, values)] if values else []
    helm = subprocess.run(['helm', 'template', 'rel', chart_dir, '-n', 'ns', '--kube-version', 'v1.32.0',
                           '--include-crds', '--skip-tests', *helm_values], capture_output=True, text=True)
    repo = tempfile.mkdtemp()
    try:
        # A copy: repository confinement refuses a chart linked from outside the repository.
        shutil.copytree(chart_dir, os.path.join(repo, 'charts', name), symlinks=True)
        os.makedirs(os.path.join(repo, 'environments'))
        with open(os.path.join(repo, 'environments', 'corpus.yaml'), 'w') as f:
            f.write(f'releases:\n  - name: rel\n    chart: {name}\n    namespace: ns\n')
            if values:
                f.write(f'    valuesFiles: [{json.dumps(f"charts/{name}/{values}")}]\n')
        w = subprocess.run([weaver, 'render', '--env', 'corpus', '--show-secrets', '--validate=warn'], capture_output=True, text=True, cwd=repo)
    finally:
        shutil.rmtree(repo)
    if helm.returncode != 0:
        if w.returncode == 0:
            return 'differ', 'helm refuses, weaver renders: ' + helm.stderr.strip().splitlines()[-1][:200]
        hf, wf = file_named(helm.stderr), file_named(w.stderr.replace(f'charts/{name}/', ''))
        if hf and wf and hf != wf and not hf.endswith(wf) and not wf.endswith(hf):
            return 'differ', f'both refuse, helm names {hf}, weaver {wf}'
        return 'refused', 'both refuse: ' + helm.stderr.strip().splitlines()[-1][:160]
    if w.returncode != 0:
        return 'differ', 'weaver refuses: ' + (w.stderr.strip().splitlines() or [''])[0][:240]
    try:
        h = {key(o): normalise(o) for o in documents(helm.stdout)}
        wv = {key(o): normalise(o) for o in documents(w.stdout)}
    except yaml.YAMLError as e:
        return 'differ', 'unparseable output: ' + str(e).splitlines()[0]
    if set(h) != set(wv):
        return 'differ', f'objects: helm only {sorted(set(h) - set(wv), key=str)[:3]}, weaver only {sorted(set(wv) - set(h), key=str)[:3]}'
    for k in sorted(h, key=str):
        d = first_difference(h[k], wv[k])
        if d:
            return 'differ', f'{k[1]}/{k[2]}{d}'
    return 'equal', f'{len(h)} objects'


def ci_values(chart_dir):
    """The chart's ci/*.yaml values files, relative to it."""
    ci = os.path.join(chart_dir, 'ci')
    if not os.path.isdir(ci):
        return []
    return [f'ci/{f}' for f in sorted(os.listdir(ci)) if f.endswith(('.yaml', '.yml'))]


def compare(corpus, weaver, out, with_ci_values=False):
    charts = [n for n in sorted(os.listdir(corpus)) if os.path.exists(os.path.join(corpus, n, 'Chart.yaml'))]
    if with_ci_values:
        cases = [(n, v) for n in charts for v in ci_values(os.path.join(corpus, n))]
    else:
        cases = [(n, None) for n in charts]
    names = [n if v is None else f'{n}@{v}' for n, v in cases]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        outcomes = pool.map(lambda case: compare_one(os.path.join(corpus, case[0]), weaver, case[1]), cases)
        for name, result in zip(names, outcomes):
            results[name] = result
            print(f'{name}: {result[0]}: {result[1]}', flush=True)
    agree = sum(1 for r in results.values() if r[0] in ('equal', 'refused'))
    helm_renders = sum(1 for r in results.values() if not r[1].startswith(('both refuse', 'helm refuses')))
    equal = sum(1 for r in results.values() if r[0] == 'equal')
    print(f'{len(results)} cases: {equal} of the {helm_renders} helm renders give equal objects '
          f'({100.0 * equal / max(helm_renders, 1):.1f} %); {agree} of {len(results)} agree (equal, or both refuse)')
    if out:
        with open(out, 'w') as f:
            json.dump({k: {'outcome': v[0], 'detail': v[1]} for k, v in results.items()}, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True)
    b = sub.add_parser('build')
    b.add_argument('corpus')
    b.add_argument('sources', nargs='+')
    c = sub.add_parser('compare')
    c.add_argument('corpus')
    c.add_argument('--weaver', default=os.path.join(os.path.dirname(__file__), '..', 'target', 'release', 'weaver'))
    c.add_argument('--json')
    c.add_argument('--ci-values', action='store_true', help="render each chart with each of its ci/*.yaml values files instead of its defaults")
    args = p.parse_args()
    if args.command == 'build':
        build(args.corpus, args.sources)
    else:
        compare(args.corpus, args.weaver, args.json, args.ci_values)


if __name__ == '__main__':
    main()
