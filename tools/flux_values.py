"""What Flux's controllers apply for a cluster, and the values helm-controller gives each
HelmRelease's chart: worked out here from the repository alone, without weaver, to compare
with what `weaver import flux` wrote.

From the cluster's root directory (the one the bootstrap's or the FluxInstance's sync names), as
kustomize-controller does: each Kustomization's path is built with `kubectl kustomize
--load-restrictor LoadRestrictionsNone` (a directory without a kustomization.yaml generated as
Flux generates one), under a kustomization of its `targetNamespace`, `patches`, `images`,
`namePrefix`/`nameSuffix` and `components`; when it has `postBuild`, each object but those
marked `kustomize.toolkit.fluxcd.io/substitute: disabled` is substituted (its `substituteFrom`
ConfigMaps and Secrets in order, read from what the cluster's Kustomizations apply, then
`substitute`); the Kustomizations it holds are built in turn. Then for each HelmRelease
(`values_of`): its `valuesFrom` in order (valuesKey default `values.yaml`, YAML 1.1 as
helm-controller reads it; `targetPath` set as a string; `optional` ones not found skipped),
merged as helm-controller merges them (maps recursively, later wins, nulls kept), and its
inline `spec.values` over them.
"""
import base64
import os
import re
import shutil
import subprocess
import tempfile

import yaml

from flux_substitute import envsubst, flux_text

KUSTOMIZATION = 'kustomize.toolkit.fluxcd.io'
HELMRELEASE = 'helm.toolkit.fluxcd.io'
VAR = re.compile(r'(?<!\$)\$\{([_a-zA-Z][_a-zA-Z0-9]*)')


class Unreadable(Exception):
    """What a value depends on that the repository does not hold readably."""


class Yaml11(yaml.SafeLoader):
    """YAML 1.1 as go-yaml v2 (sigs.k8s.io/yaml, helm-controller) reads it: booleans yes/no/on/off,
    octal 0777; but timestamps stay strings (JSON has none) and no base-60 numbers."""


class Yaml12(yaml.SafeLoader):
    """As kustomize's kyaml (go-yaml v3) reads a manifest: only true/false are booleans."""


for loader in (Yaml11, Yaml12):
    loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != 'tag:yaml.org,2002:timestamp']
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()}
    # `=` is text for go-yaml, not PyYAML's value key
    loader.yaml_implicit_resolvers['='] = []
Yaml12.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != 'tag:yaml.org,2002:bool']
    for k, v in Yaml12.yaml_implicit_resolvers.items()}
Yaml12.add_implicit_resolver('tag:yaml.org,2002:bool', re.compile(r'^(?:true|True|TRUE|false|False|FALSE)$'),
                             list('tTfF'))
# 0o17 too: go-yaml (v2 and v3) tries Go's strconv.ParseInt(s, 0, 64), which reads the 0o prefix
INT = re.compile(r'''^(?:[-+]?0b[0-1_]+|[-+]?0o[0-7_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$''')
FLOAT = re.compile(r'''^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$''')
for loader in (Yaml11, Yaml12):
    # no base-60 numbers (1:20 stays a string, as go-yaml reads it)
    loader.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag not in ('tag:yaml.org,2002:int', 'tag:yaml.org,2002:float')]
        for k, v in loader.yaml_implicit_resolvers.items()}
    loader.add_implicit_resolver('tag:yaml.org,2002:int', INT, list('-+0123456789'))
    loader.add_implicit_resolver('tag:yaml.org,2002:float', FLOAT, list('-+0123456789.'))


def load11(text):
    value = yaml.load(text, Loader=Yaml11)
    return value


def merge_maps(a, b):
    """helm-controller's transform.MergeMaps: b over a, maps recursively, anything else replaced
    (null included)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_maps(out[k], v)
        else:
            out[k] = v
    return out


def set_string(values, path, text):
    """helm's strvals.ParseIntoString of `path=text`: a.b, a\\.b, list[0]."""
    keys, cur, i = [], '', 0
    while i < len(path):
        c = path[i]
        if c == '\\' and i + 1 < len(path):
            cur += path[i + 1]
            i += 2
            continue
        if c == '.':
            keys.append(cur)
            cur = ''
        elif c == '[':
            j = path.index(']', i)
            keys.append(cur)
            cur = int(path[i + 1:j])
            i = j + 1
            if i < len(path) and path[i] == '.':
                keys.append(cur)
                cur = ''
                i += 1
            continue
        else:
            cur += c
        i += 1
    keys.append(cur)
    keys = [k for k in keys if k != '']
    node = values
    for n, k in enumerate(keys):
        last = n == len(keys) - 1
        if isinstance(k, int):
            while len(node) <= k:
                node.append(None)
            if last:
                node[k] = text
            else:
                if not isinstance(node[k], (dict, list)):
                    node[k] = [] if isinstance(keys[n + 1], int) else {}
                node = node[k]
        else:
            if last:
                node[k] = text
            else:
                if not isinstance(node.get(k), (dict, list)):
                    node[k] = [] if isinstance(keys[n + 1], int) else {}
                node = node[k]
    return values


def manifest_file(path):
    try:
        with open(path) as f:
            docs = list(yaml.safe_load_all(f))
    except Exception:
        return False
    return any(isinstance(d, dict) and d.get('apiVersion') and d.get('kind') for d in docs)


def generate(directory):
    """Flux's generated kustomization for a directory without one: its manifests and its
    subdirectories' (those with a kustomization are taken whole)."""
    resources = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        if root != directory and any(os.path.exists(os.path.join(root, k)) for k in
                                     ('kustomization.yaml', 'kustomization.yml', 'Kustomization')):
            resources.append(os.path.relpath(root, directory))
            dirs[:] = []
            continue
        for f in sorted(files):
            if f.endswith(('.yaml', '.yml')) and manifest_file(os.path.join(root, f)):
                resources.append(os.path.relpath(os.path.join(root, f), directory))
    with open(os.path.join(directory, 'kustomization.yaml'), 'w') as f:
        yaml.safe_dump({'apiVersion': 'kustomize.config.k8s.io/v1beta1', 'kind': 'Kustomization',
                        'resources': resources}, f)


def has_kustomization(directory):
    return any(os.path.exists(os.path.join(directory, k)) for k in ('kustomization.yaml', 'kustomization.yml', 'Kustomization'))


def url_identity(url):
    """A git URL as a repository's identity: no scheme, user, `.git` or trailing `/`; an scp-like
    `host:path` as `host/path`."""
    url = re.sub(r'^[a-z+]+://', '', (url or '').strip().lower())
    url = re.sub(r'^[^@/]+@', '', url)
    url = re.sub(r'^([^/:]+):(?!\d)', r'\1/', url)
    return re.sub(r'(\.git)?/*$', '', url)


def own_urls(repo):
    """The URLs the repository's clusters sync from: a FluxInstance's `spec.sync.url`, a
    flux-instance HelmRelease's `instance.sync.url` (inline), the bootstrap GitRepository's."""
    urls = set()
    for root, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if not d.startswith('.')]
        for f in files:
            if not f.endswith(('.yaml', '.yml')):
                continue
            try:
                with open(os.path.join(root, f)) as fh:
                    docs = list(yaml.load_all(fh, Loader=Yaml12))
            except Exception:
                continue
            for doc in docs:
                if not isinstance(doc, dict):
                    continue
                spec = doc.get('spec') if isinstance(doc.get('spec'), dict) else {}
                kind, name = doc.get('kind'), (doc.get('metadata') or {}).get('name')
                if kind == 'FluxInstance':
                    urls.add(url_identity((spec.get('sync') or {}).get('url')))
                elif kind == 'HelmRelease':
                    values = spec.get('values') if isinstance(spec.get('values'), dict) else {}
                    urls.add(url_identity(((values.get('instance') or {}).get('sync') or {}).get('url')))
                elif kind == 'GitRepository' and name == 'flux-system':
                    urls.add(url_identity(spec.get('url')))
    urls.discard('')
    return urls


class Cluster:
    """Everything a cluster's Kustomizations apply, as Flux builds it."""

    def __init__(self, repo, root):
        self.repo = repo
        # A GitRepository of the URL the cluster syncs from is this repository (as the import
        # takes it).
        self.own = own_urls(repo)
        self.objects = {}  # (kind, namespace, name) -> (object, substituted_by_yaml11)
        self.problems = []
        self.wrap = tempfile.mkdtemp(prefix='flux-wrap-', dir=repo)
        self.built = set()
        queue = [{'metadata': {'name': 'flux-system', 'namespace': 'flux-system'}, 'spec': {'path': root}}]
        deferred = 0
        while queue:
            ks = queue.pop(0)
            try:
                children = self.build(ks)
            except Unreadable as e:
                # A variable source applied by a later Kustomization: once more at the end.
                if deferred < 200 and 'not yet' in str(e):
                    deferred += 1
                    queue.append(ks)
                    continue
                self.problems.append(f"Kustomization {ks['metadata'].get('name')}: {e}")
                continue
            queue += children
        shutil.rmtree(self.wrap, ignore_errors=True)

    def variables(self, ks, namespace, own):
        """A Kustomization's variables, and the sources it could not read; a source neither
        applied yet nor in its own build (`own`: Flux reads it from the cluster, where this
        Kustomization applied it before) is Unreadable, to try again later."""
        post = (ks.get('spec') or {}).get('postBuild') or {}
        variables, unread = {}, []
        for ref in post.get('substituteFrom') or []:
            obj = self.objects.get((ref.get('kind'), namespace, ref.get('name'))) or own.get(
                (ref.get('kind'), namespace, ref.get('name')))
            if obj is None:
                if ref.get('optional'):
                    continue
                raise Unreadable(f"substituteFrom {ref.get('kind')} {ref.get('name')} not yet applied")
            obj = obj[0]
            if 'sops' in obj:
                unread.append(f"{ref.get('kind')} {ref.get('name')} (SOPS)")
                continue
            data = {k: (base64.b64decode(v).decode() if ref.get('kind') == 'Secret' else str(v))
                    for k, v in (obj.get('data') or {}).items()}
            if ref.get('kind') == 'Secret':
                data.update({k: str(v) for k, v in (obj.get('stringData') or {}).items()})
            variables.update(data)
        variables.update({k: str(v) for k, v in (post.get('substitute') or {}).items()})
        return variables, unread

    def build(self, ks):
        meta, spec = ks.get('metadata') or {}, ks.get('spec') or {}
        namespace = meta.get('namespace') or 'flux-system'
        ident = (namespace, meta.get('name'))
        if ident in self.built:
            return []
        source = spec.get('sourceRef') or {}
        repository = self.objects.get(('GitRepository', source.get('namespace') or namespace, source.get('name')))
        another = repository is not None and url_identity(
            ((repository[0].get('spec') or {}).get('url'))) not in self.own
        if source.get('kind', 'GitRepository') != 'GitRepository' or (
                source.get('name', 'flux-system') != 'flux-system' and another):
            self.built.add(ident)
            self.problems.append(f"Kustomization {meta.get('name')}: source {source.get('kind')} {source.get('name')}")
            return []
        path = os.path.normpath(os.path.join(self.repo, (spec.get('path') or '.').lstrip('/')))
        if not os.path.isdir(path):
            self.built.add(ident)
            self.problems.append(f"Kustomization {meta.get('name')}: no directory {spec.get('path')}")
            return []
        substituting = 'postBuild' in spec
        if not has_kustomization(path):
            generate(path)
        wrapper = tempfile.mkdtemp(dir=self.wrap)
        kz = {'apiVersion': 'kustomize.config.k8s.io/v1beta1', 'kind': 'Kustomization',
              'resources': [os.path.relpath(path, wrapper)]}
        for k in ('patches', 'images', 'namePrefix', 'nameSuffix'):
            if spec.get(k):
                kz[k] = spec[k]
        if spec.get('components'):
            kz['components'] = [os.path.relpath(os.path.join(path, c), wrapper) for c in spec['components']]
        if spec.get('targetNamespace'):
            kz['namespace'] = spec['targetNamespace']
        with open(os.path.join(wrapper, 'kustomization.yaml'), 'w') as f:
            yaml.safe_dump(kz, f)
        p = subprocess.run(['kubectl', 'kustomize', '--load-restrictor', 'LoadRestrictionsNone', wrapper],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            self.problems.append(f"Kustomization {meta.get('name')}: kustomize: {p.stderr.strip().splitlines()[-1][:150]}")
            return []
        texts = [t for t in re.split(r'(?m)^---\n', p.stdout) if t.strip()]
        own = {}
        for text in texts:
            obj = yaml.load(text, Loader=Yaml12)
            if isinstance(obj, dict):
                m = obj.get('metadata') or {}
                own[(obj.get('kind'), m.get('namespace') or '', m.get('name'))] = (obj, False)
        variables, unread = self.variables(ks, namespace, own) if substituting else ({}, [])
        self.built.add(ident)
        children = []
        for text in texts:
            if not text.strip():
                continue
            obj = yaml.load(text, Loader=Yaml12)
            if not isinstance(obj, dict):
                continue
            yaml11 = False
            m = obj.get('metadata') or {}
            disabled = any((m.get(w) or {}).get('kustomize.toolkit.fluxcd.io/substitute') == 'disabled'
                           for w in ('labels', 'annotations'))
            if substituting and not disabled:
                used = set(VAR.findall(text)) - set(variables)
                if used and unread:
                    obj['x-unreadable'] = f"variables {sorted(used)} may come from {', '.join(unread)}"
                else:
                    # kustomize-controller substitutes the object's text as go-yaml v2 writes
                    # it and reads it back with sigs.k8s.io/yaml: YAML 1.1.
                    obj = load11(envsubst(flux_text(obj), variables, strict=False))
                    yaml11 = True
            group = (obj.get('apiVersion') or '').partition('/')[0]
            m = obj.get('metadata') or {}
            self.objects[(obj.get('kind'), m.get('namespace') or '', m.get('name'))] = (obj, yaml11)
            if obj.get('kind') == 'Kustomization' and group == KUSTOMIZATION and 'x-unreadable' not in obj:
                children.append(obj)
        return children

    def helm_releases(self):
        for (kind, _, _), (obj, yaml11) in self.objects.items():
            if kind == 'HelmRelease' and (obj.get('apiVersion') or '').startswith(HELMRELEASE):
                yield obj


def release_name(hr):
    spec, meta = hr.get('spec') or {}, hr.get('metadata') or {}
    if spec.get('releaseName'):
        return spec['releaseName']
    if spec.get('targetNamespace'):
        return f"{spec['targetNamespace']}-{meta.get('name')}"
    return meta.get('name')


def values_of(cluster, hr):
    """The values helm-controller passes helm for a HelmRelease (Unreadable when a source is
    not in the repository readably)."""
    if 'x-unreadable' in hr:
        raise Unreadable(hr['x-unreadable'])
    spec, meta = hr.get('spec') or {}, hr.get('metadata') or {}
    namespace = meta.get('namespace') or ''
    result = {}
    for ref in spec.get('valuesFrom') or []:
        kind, name = ref.get('kind'), ref.get('name')
        found = cluster.objects.get((kind, namespace, name))
        if found is None:
            if ref.get('optional'):
                continue
            raise Unreadable(f'valuesFrom {kind} {name}: not in the repository')
        obj = found[0]
        if 'x-unreadable' in obj:
            raise Unreadable(f'valuesFrom {kind} {name}: {obj["x-unreadable"]}')
        if 'sops' in obj:
            raise Unreadable(f'valuesFrom {kind} {name}: SOPS-encrypted')
        key = ref.get('valuesKey') or 'values.yaml'
        if kind == 'Secret':
            data = {k: base64.b64decode(v).decode() for k, v in (obj.get('data') or {}).items()}
            data.update({k: str(v) for k, v in (obj.get('stringData') or {}).items()})
        else:
            data = {k: str(v) if not isinstance(v, str) else v for k, v in (obj.get('data') or {}).items()}
        if key not in data:
            if ref.get('optional'):
                continue
            raise Unreadable(f'valuesFrom {kind} {name}: no key {key}')
        if ref.get('targetPath'):
            result = set_string(result, ref['targetPath'], data[key])
            continue
        parsed = load11(data[key]) or {}
        if not isinstance(parsed, dict):
            raise Unreadable(f'valuesFrom {kind} {name}: {key} is not a map')
        result = merge_maps(result, parsed)
    return merge_maps(result, spec.get('values') or {})
