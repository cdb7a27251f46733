#!/usr/bin/env python3
"""Compare weaver's rendering of real Helm charts with `helm template`.

    tools/helm_corpus.py build CORPUS SOURCE...   collect charts into CORPUS
    tools/helm_corpus.py compare CORPUS [--weaver BIN] [--json OUT] [--ci-values] [--jobs N]

`build` takes chart repositories (directories, or git directories whose HEAD is read with
`git archive`) and copies every chart in them (a directory with a Chart.yaml that is not itself
vendored in another chart's charts/) into CORPUS/<repo>--<chart>; <chart> is the directory's
name, or the chart's name where the directory is named after a version (charts/NAME/1.2.3/), and
of several charts of one <chart> only the newest version is taken. A chart already in CORPUS is
kept, so build can be run again with more sources. A dependency (in Chart.yaml, or in
requirements.yaml for apiVersion v1 charts) not already vendored is vendored as `helm dependency
build` would leave it (a directory in charts/), from the chart of that name in the same
repository, else in another source, in the newest version in the source's git history that
meets the dependency's constraint; a chart whose dependencies cannot all be found is left out
and listed. tools/corpus.py builds the corpus from the pinned list tools/corpus-sources.tsv.

`compare` renders each chart with `helm template rel <chart> -n ns --kube-version v1.32.0
--include-crds --skip-tests` and with `weaver render` (one release `rel`, namespace `ns`,
`--show-secrets`), parses both, and compares the objects, weaver's own labels aside. Values
helm generates at random (passwords, certificates, UUIDs) need only agree in type and length.
It prints one line per chart, then the differences by class (`summarise`: each outcome but
`equal` under a signature with names, paths and numbers as placeholders: weaver's or helm's
error message, `Kind .field[].path: value|only in helm|...` for the first content difference,
`objects differ: ...` by kind; most frequent first, two examples each; refusals both tools agree
on after the differences), the total, and each tool's time (each tool has 300 s a chart). With
`--json OUT`, it writes {total, timing, classes, items: {name: {outcome, detail, class, seconds:
{helm, weaver}}}}. `--jobs` charts are compared at once (default: the number of CPUs). Exit 0
whatever the outcome.

With `--ci-values`, each chart is rendered instead once per values file in its `ci/` directory
(the files chart-testing installs it with), and charts without one are skipped: `helm template
... -f ci/FILE` against a weaver release with `valuesFiles: [charts/CHART/ci/FILE]`, reported as
`CHART@ci/FILE`.
"""
import argparse, base64, concurrent.futures, functools, json, os, re, shutil, signal, subprocess, sys, tempfile, threading, time
import yaml


class Loader(getattr(yaml, 'CSafeLoader', yaml.SafeLoader)):  # libyaml's parser: 7 times faster
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
    are taken: a mirror may lack large files (archive_tree leaves out those alone, and says so)."""
    if os.path.isdir(os.path.join(source, 'objects')) and os.path.exists(os.path.join(source, 'HEAD')):
        os.makedirs(dest)
        listing = subprocess.run(['git', f'--git-dir={source}', 'ls-tree', '-r', '--name-only', 'HEAD'],
                                 check=True, capture_output=True, text=True).stdout.splitlines()
        tops = sorted({p.split('/')[0] for p in listing if p.endswith(tuple(marks)) and '/' in p})
        # A chart at the repository's root (hashicorp/vault-helm): the whole tree.
        if any(p in marks for p in listing):
            tops = [':/']
        for top in tops:
            absent = archive_tree(source, top, dest)
            if absent:
                print(f'{source}: left out, absent from the mirror: {", ".join(absent[:5])}'
                      f'{f" and {len(absent) - 5} more" if len(absent) > 5 else ""}')
    else:
        shutil.copytree(source, dest, symlinks=True)
    return dest


def archive_tree(source, path, dest):
    """Extracts path (a directory or file at HEAD of the git directory source) into dest; where
    the archive fails (the mirror lacks a blob: a snapshot lacks files of 4 MiB and more), each
    entry of the directory is extracted alone, down to the absent files. Returns those left out."""
    archive = subprocess.run(['git', f'--git-dir={source}', 'archive', 'HEAD', path], capture_output=True)
    if archive.returncode == 0:
        subprocess.run(['tar', 'x', '-C', dest], input=archive.stdout, check=True)
        return []
    tree = ['HEAD'] if path == ':/' else ['HEAD', path.rstrip('/') + '/']
    entries = subprocess.run(['git', f'--git-dir={source}', 'ls-tree', '--name-only', *tree],
                             capture_output=True, text=True)
    children = entries.stdout.splitlines() if entries.returncode == 0 else []
    if not children or children == [path.rstrip('/')]:  # a file, or a tree that cannot be read
        return [path]
    return [p for child in children for p in archive_tree(source, child, dest)]


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


@functools.lru_cache(maxsize=None)
def history(source, path):
    """The versions of the chart at path in git directory source, newest first: [(commit, version)]
    (one read of the history for all the charts that depend on it)."""
    log = subprocess.run(['git', f'--git-dir={source}', 'log', '--format=%H', '--', f'{path}/Chart.yaml'],
                         capture_output=True, text=True).stdout.split()
    found = []
    for commit in log:
        text = subprocess.run(['git', f'--git-dir={source}', 'show', f'{commit}:{path}/Chart.yaml'],
                              capture_output=True, text=True).stdout
        try:
            version = (yaml.load(text, Loader=Loader) or {}).get('version')
        except (yaml.YAMLError, AttributeError):
            continue
        if version is not None and (not found or found[-1][1] != version):
            found.append((commit, version))
    return found


def from_history(source, path, constraint, dest):
    """Extracts the newest version of the chart at path (in git directory source) that meets
    constraint into dest; returns whether one was found."""
    if source is None:
        return False
    for commit, version in history(source, path):
        if satisfies(version, constraint):
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
    requirements = os.path.join(chart, 'requirements.yaml')  # apiVersion v1 charts list them there
    if not deps and os.path.exists(requirements):
        with open(requirements) as f:
            deps = (yaml.load(f, Loader=Loader) or {}).get('dependencies') or []
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
        # A symbolic link to a chart elsewhere in the repository (rook's charts/library) points
        # nowhere once the chart is copied out: the dependency is vendored in its place.
        if os.path.islink(target) and not os.path.exists(target):
            os.unlink(target)
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


def newest_by_dir_name(charts):
    """(name, chart) for each name: a chart's directory name, or its Chart.yaml name where the
    directory is named after a version (charts/NAME/1.2.3/, as rancher/charts keeps them); of
    several charts of one name (versions side by side), the newest version."""
    best = {}
    for c in charts:
        try:
            meta = chart_meta(c)
        except (yaml.YAMLError, OSError):
            meta = {}
        name = os.path.basename(c)
        if parse_version(name.split('+')[0]) is not None and meta.get('name'):
            name = str(meta['name'])
        version = parse_version(meta.get('version', '')) or ((-1, -1, -1), None)
        rank = (version[0], version[1] is None)  # a release above its pre-releases
        if name not in best or rank > best[name][0]:
            best[name] = (rank, c)
    return sorted((name, c) for name, (_, c) in best.items())


def build(corpus, sources):
    os.makedirs(corpus, exist_ok=True)
    work = tempfile.mkdtemp()
    repos, everywhere = [], {}
    for source in sources:
        stripped = source.rstrip('/')
        repo = os.path.basename(os.path.dirname(stripped) if stripped.endswith('/repo') else stripped)
        root = extract(source, os.path.join(work, repo))
        git_dir = source if os.path.exists(os.path.join(source, 'HEAD')) else None
        charts, by_name = [], {}
        for c in charts_in(root):
            try:
                name = chart_meta(c).get('name')
            except (yaml.YAMLError, OSError, AttributeError) as e:
                print(f'{repo}/{os.path.relpath(c, root)} left out: unreadable Chart.yaml: {str(e).splitlines()[0]}')
                continue
            charts.append(c)
            by_name.setdefault(name, []).append((c, git_dir, os.path.relpath(c, root)))
        for name, found in by_name.items():
            everywhere.setdefault(name, []).extend(found)
        repos.append((repo, root, charts, by_name))
    kept, left = 0, []
    for repo, root, charts, by_name in repos:
        # A dependency comes from the same repository first, then from the other sources.
        lookup = {name: by_name.get(name, []) + [c for c in found if c not in by_name.get(name, [])]
                  for name, found in everywhere.items()}
        for name, c in newest_by_dir_name(charts):
            if c == root:  # named after its repository's directory: its own name instead
                name = chart_meta(c).get('name')
            dest = os.path.join(corpus, f'{repo}--{name}')
            if os.path.exists(dest):
                continue
            shutil.copytree(c, dest, symlinks=True)
            try:
                missing = vendor(dest, lookup)
            except (yaml.YAMLError, OSError, AttributeError, TypeError) as e:
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
        if m is None:
            # `labels: null` written in the source: weaver puts its own labels there.
            md.pop(field, None)
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


def difference(a, b, ref='helm', path='', parts=(), equal=same):
    """The first difference of a (the reference tool's) and b (weaver's): (path, what, the path's
    keys and indices), or None; leaves are compared with equal (by default `same`)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                return f'{path}.{k}', f'only in {"weaver" if k not in a else ref}', parts + (k,)
            d = difference(a[k], b[k], ref, f'{path}.{k}', parts + (k,), equal)
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = difference(x, y, ref, f'{path}[{i}]', parts + (i,), equal)
            if d:
                return d
        return None
    if equal(a, b):
        return None
    if isinstance(a, list) and isinstance(b, list):
        return path, f'{ref} {len(a)} items, weaver {len(b)}: {ref} {str(a)[:60]!r} weaver {str(b)[:60]!r}', parts
    if type(a) is not type(b):
        return path, f'{ref} {type(a).__name__} {str(a)[:60]!r}, weaver {type(b).__name__} {str(b)[:60]!r}', parts
    if isinstance(a, str) and isinstance(b, str) and (len(a) > 60 or len(b) > 60):
        # Long text (a config file in a ConfigMap): where it starts to differ.
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        start = max(0, at - 20)
        return path, f'{ref} {a[start:at + 40]!r} weaver {b[start:at + 40]!r} (from character {start})', parts
    return path, f'{ref} {str(a)[:60]!r} weaver {str(b)[:60]!r}', parts


def first_difference(a, b, path='', ref='helm'):
    d = difference(a, b, ref, path)
    return d and f'{d[0]}: {d[1]}'


# Differences by class: each outcome other than `equal` gets a signature (`class`) in which names,
# paths and numbers are placeholders, so that the same cause in many charts counts once.
NAMED_MAPS = ('data', 'stringData', 'binaryData', 'properties', 'patternProperties', 'definitions')


def field_class(parts):
    """A field path (its keys and indices) with list indices as [] and the keys of maps of names
    (a ConfigMap's data, a schema's properties) as *, cut after 7 fields."""
    out = []
    for p in parts:
        if isinstance(p, int):
            out.append('[]')
        elif out and out[-1].lstrip('.') in NAMED_MAPS:
            out.append('.*')
        else:
            out.append(f'.{p}')
    fields = [p for p in out if p != '[]']
    if len(fields) > 7:
        keep, n = [], 0
        for p in out:
            n += p != '[]'
            if n > 7:
                break
            keep.append(p)
        out = keep + ['…']
    return ''.join(out)


def content_class(kind, path, what, parts, ref='helm'):
    """`Kind .field.path: what differs` (a value, a type, a list's length, a field on one side)."""
    if what.startswith('only in'):
        nature = what
    elif re.match(rf'{ref} \d+ items', what):
        nature = 'list length'
    elif re.match(rf'{ref} (\w+) .*, weaver (\w+) ', what) and not what.startswith(f'{ref} \''):
        m = re.match(rf'{ref} (\w+) .*, weaver (\w+) ', what)
        nature = f'{ref} {m[1]}, weaver {m[2]}'
    else:
        nature = 'value'
    return f'{kind} {field_class(parts)}: {nature}'


def objects_class(ref_only, weaver_only, ref='helm'):
    """Objects one side lacks, by kind; the keys are tuples whose second item is the kind."""
    kinds = lambda keys: ','.join(sorted({str(k[1]) for k in keys})[:4]) or '-'
    return f'objects differ: {ref} only {kinds(ref_only)}; weaver only {kinds(weaver_only)}'


def message_class(message):
    """An error message with names, paths and numbers as placeholders."""
    m = re.sub(r'\x1b\[[0-9;]*m', '', message).strip()
    m = re.sub(r'^(Error|error):\s*', '', m)
    m = re.sub(r'<\.[^>]*>', '<…>', m)  # template actions: <.Values.a.b>
    m = re.sub(r'(interface \{\}|map\[[^]]*\][\w{}]*)\.\w+', r'\1.…', m)
    quoted = lambda q: q.group(0) if re.fullmatch(r'.[A-Za-z_][A-Za-z0-9_-]{0,23}.', q.group(0)) else q.group(0)[0] + '…' + q.group(0)[-1]
    m = re.sub(r'"[^"]*"|\'[^\']*\'|`[^`]*`', quoted, m)
    m = re.sub(r'(?<![\w.])(?:[\w.@+~-]*/)+[\w.@+~-]*', '<path>', m)
    m = re.sub(r'\b[0-9a-f]{7,40}\b', '<hex>', m)
    m = re.sub(r'(?<![A-Za-z])\d+(?![A-Za-z])', 'N', m)  # k8s and v1beta1 stay
    m = re.sub(r'\s+', ' ', m)
    return m[:160]


# weaver's refusals of objects that every API server refuses (a missing or invalid name or
# namespace, such as a `${CLUSTER_NAME}` placeholder): issue 36 counts these apart.
SERVER_REFUSES = re.compile(r'has no `metadata\.name`|has an invalid `metadata\.(name|namespace)`')


def counted_apart(equal, total, results):
    """The headline's addition: equal items, and those weaver refuses as a server would."""
    n = sum(1 for r in results.values() if r['outcome'] == 'differ' and SERVER_REFUSES.search(r['detail']))
    return (f'; {equal + n} ({100.0 * (equal + n) / max(total, 1):.1f} %) counting apart the {n} '
            f'that weaver refuses for a name or namespace every server refuses')


def summarise(results, examples=2):
    """results: name -> {'outcome', 'detail', 'class'}. The classes of the outcomes other than
    `equal`, most frequent first: [{'class', 'outcome', 'count', 'examples': [[name, detail]]}]."""
    groups = {}
    for name, r in results.items():
        if r['outcome'] == 'equal':
            continue
        g = groups.setdefault((r['outcome'], r['class']), {'class': r['class'], 'outcome': r['outcome'],
                                                           'count': 0, 'examples': []})
        g['count'] += 1
        if len(g['examples']) < examples:
            g['examples'].append([name, r['detail']])
    # Differences first, then refusals both tools agree on; each by count.
    return sorted(groups.values(), key=lambda g: (g['outcome'] != 'differ', -g['count'], g['class']))


def report(results, ref, out, headline):
    """Prints the summary by class and the timings after the per-item lines (and the headline
    total), and writes everything to out (JSON) if given."""
    classes = summarise(results)
    print(f'\n== differences by class ({sum(g["count"] for g in classes if g["outcome"] == "differ")} items, '
          f'{sum(1 for g in classes if g["outcome"] == "differ")} classes; then refusals both agree on) ==')
    for g in classes:
        print(f'{g["count"]:5}  [{g["outcome"]}] {g["class"]}')
        for name, detail in g['examples']:
            print(f'         e.g. {name}: {" ".join(detail.split())[:300]}')
    seconds = {tool: sum(r['seconds'].get(tool, 0) for r in results.values()) for tool in (ref, 'weaver')}
    both = [r['seconds'] for r in results.values() if r['outcome'] == 'equal']
    eq = {tool: sum(s.get(tool, 0) for s in both) for tool in (ref, 'weaver')}
    cpu = {tool: sum(r.get('cpu_seconds', {}).get(tool, 0) for r in results.values()) for tool in (ref, 'weaver')}
    timing = (f'time: {ref} {seconds[ref]:.1f} s, weaver {seconds["weaver"]:.1f} s in all '
              f'(weaver/{ref} {seconds["weaver"] / max(seconds[ref], 1e-9):.2f}); on the {len(both)} equal items '
              f'{ref} {eq[ref]:.1f} s, weaver {eq["weaver"]:.1f} s; CPU time {ref} {cpu[ref]:.1f} s, '
              f'weaver {cpu["weaver"]:.1f} s')
    print(f'\n{headline}\n{timing}')
    if out:
        with open(out, 'w') as f:
            json.dump({'total': headline, 'timing': {'seconds': seconds, 'equal_items_seconds': eq, 'cpu_seconds': cpu},
                       'classes': classes, 'items': results}, f, indent=1)


def run(argv, cwd=None, timeout=300):
    """subprocess.run, timed: (CompletedProcess, seconds); a run past timeout fails. The
    process's CPU time (user and system, its threads included) is `.cpu` of the first: wall
    time is what a user waits, but on a busy machine only CPU time compares runs fairly."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd)
        timer = threading.Timer(timeout, p.kill)
        timer.daemon = True
        timer.start()
        try:
            # wait4, not Popen.wait: it gives this child's own resource usage.
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
        finally:
            timer.cancel()
            if p.returncode is None:  # interrupted: the child must not outlive the run
                p.kill()
                p.wait()
        seconds = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode('utf-8', 'replace') for f in (out, err))
    if p.returncode == -signal.SIGKILL and seconds >= timeout:
        r = subprocess.CompletedProcess(argv, 124, '', f'timed out after {timeout} s')
    else:
        r = subprocess.CompletedProcess(argv, p.returncode, stdout, stderr)
    r.cpu = usage.ru_utime + usage.ru_stime
    return r, seconds


def weaver_release(chart_dir, weaver, flags, values=None, namespace='ns'):
    """`weaver render FLAGS` of a repository whose one release `rel` (in `namespace`) is a copy
    of the chart (repository confinement refuses a chart linked from outside the repository),
    with the chart's values file `values` if given: (CompletedProcess, seconds)."""
    name = os.path.basename(chart_dir)
    repo = tempfile.mkdtemp()
    try:
        shutil.copytree(chart_dir, os.path.join(repo, 'charts', name), symlinks=True)
        os.makedirs(os.path.join(repo, 'environments'))
        with open(os.path.join(repo, 'environments', 'corpus.yaml'), 'w') as f:
            f.write(f'releases:\n  - name: rel\n    chart: {name}\n    namespace: {namespace}\n')
            if values:
                f.write(f'    valuesFiles: [{json.dumps(f"charts/{name}/{values}")}]\n')
        # Absolute: `--weaver target/release/weaver` would be looked for in the temporary repository.
        return run([os.path.abspath(weaver), 'render', '--env', 'corpus', *flags], cwd=repo)
    finally:
        shutil.rmtree(repo)


def file_named(stderr):
    """The first chart file an error names, relative to the chart."""
    m = re.search(r'templates/[\w./-]+|values\.schema\.json|Chart\.yaml|charts/[\w./-]+', stderr)
    return m.group(0) if m else None


def compare_one(chart_dir, weaver, values=None):
    """values: a values file of the chart, relative to it, given to both. Returns
    {'outcome', 'detail', 'class', 'seconds': {'helm', 'weaver'}}."""
    name = os.path.basename(chart_dir)
    helm_values = ['-f', os.path.join(chart_dir, values)] if values else []
    helm, helm_s = run(['helm', 'template', 'rel', chart_dir, '-n', 'ns', '--kube-version', 'v1.32.0',
                        '--include-crds', '--skip-tests', *helm_values])
    w, weaver_s = weaver_release(chart_dir, weaver, ['--show-secrets', '--validate=warn'], values)
    outcome, detail, cls = compare_outputs(helm, w, name)
    return {'outcome': outcome, 'detail': detail, 'class': cls, 'seconds': {'helm': helm_s, 'weaver': weaver_s},
            'cpu_seconds': {'helm': helm.cpu, 'weaver': w.cpu}}


def compare_outputs(helm, w, name):
    if helm.returncode != 0:
        # The `Error:` line: after it helm may add a hint (`Use --debug flag to render out invalid YAML`).
        lines = helm.stderr.strip().splitlines() or ['']
        helm_error = next((l for l in lines if l.startswith('Error:')), lines[-1])
        if w.returncode == 0:
            return 'differ', 'helm refuses, weaver renders: ' + helm_error[:200], \
                'helm refuses, weaver renders: ' + message_class(helm_error)
        hf, wf = file_named(helm.stderr), file_named(w.stderr.replace(f'charts/{name}/', ''))
        if hf and wf and hf != wf and not hf.endswith(wf) and not wf.endswith(hf):
            return 'differ', f'both refuse, helm names {hf}, weaver {wf}', 'both refuse, naming different files'
        return 'refused', 'both refuse: ' + helm_error[:160], 'both refuse: ' + message_class(helm_error)
    if w.returncode != 0:
        weaver_error = (w.stderr.strip().splitlines() or [''])[0]
        return 'differ', 'weaver refuses: ' + weaver_error[:240], 'weaver refuses: ' + message_class(weaver_error)
    try:
        h = {key(o): normalise(o) for o in documents(helm.stdout)}
        wv = {key(o): normalise(o) for o in documents(w.stdout)}
    except yaml.YAMLError as e:
        return 'differ', 'unparseable output: ' + str(e).splitlines()[0], 'unparseable output'
    if set(h) != set(wv):
        only_h, only_w = sorted(set(h) - set(wv), key=str), sorted(set(wv) - set(h), key=str)
        return 'differ', f'objects: helm only {only_h[:3]}, weaver only {only_w[:3]}', objects_class(only_h, only_w)
    for k in sorted(h, key=str):
        d = difference(h[k], wv[k])
        if d:
            return 'differ', f'{k[1]}/{k[2]}{d[0]}: {d[1]}', content_class(k[1], *d)
    return 'equal', f'{len(h)} objects', ''


def ci_values(chart_dir):
    """The chart's ci/*.yaml values files, relative to it."""
    ci = os.path.join(chart_dir, 'ci')
    if not os.path.isdir(ci):
        return []
    return [f'ci/{f}' for f in sorted(os.listdir(ci)) if f.endswith(('.yaml', '.yml'))]


def compare(corpus, weaver, out, with_ci_values=False, jobs=None):
    charts = [n for n in sorted(os.listdir(corpus)) if os.path.exists(os.path.join(corpus, n, 'Chart.yaml'))]
    if with_ci_values:
        cases = [(n, v) for n in charts for v in ci_values(os.path.join(corpus, n))]
    else:
        cases = [(n, None) for n in charts]
    names = [n if v is None else f'{n}@{v}' for n, v in cases]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(jobs or os.cpu_count()) as pool:
        outcomes = pool.map(lambda case: compare_one(os.path.join(corpus, case[0]), weaver, case[1]), cases)
        for name, result in zip(names, outcomes):
            results[name] = result
            print(f'{name}: {result["outcome"]}: {result["detail"]}', flush=True)
    agree = sum(1 for r in results.values() if r['outcome'] in ('equal', 'refused'))
    helm_renders = sum(1 for r in results.values() if not r['detail'].startswith(('both refuse', 'helm refuses')))
    equal = sum(1 for r in results.values() if r['outcome'] == 'equal')
    report(results, 'helm', out,
           f'{len(results)} cases: {equal} of the {helm_renders} helm renders give equal objects '
           f'({100.0 * equal / max(helm_renders, 1):.1f} %){counted_apart(equal, helm_renders, results)}; '
           f'{agree} of {len(results)} agree (equal, or both refuse)')


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
    c.add_argument('--jobs', type=int, default=os.cpu_count(), help='charts compared at once')
    args = p.parse_args()
    if args.command == 'build':
        build(args.corpus, args.sources)
    else:
        compare(args.corpus, args.weaver, args.json, args.ci_values, args.jobs)


if __name__ == '__main__':
    main()
