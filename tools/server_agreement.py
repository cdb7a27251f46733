#!/usr/bin/env python3
"""Measure whether weaver's offline validation agrees with a real API server on real charts.

    tools/server_agreement.py CORPUS --kubeconfig KUBECONFIG [--weaver BIN] [--json OUT]
                              [--jobs N] [--only NAME...]

For each chart of a corpus made by `helm_corpus.py build`, as `helm_corpus.py compare` renders
it (`helm template rel CHART -n ns --kube-version v1.32.0 --include-crds --skip-tests`):

- weaver renders the same release with `--validate=strict` and every object it refuses is
  taken from its error (release, template, `Kind[.group] [namespace/]name`);
- the chart's CRDs are applied to the server for real (server-side apply, forced), as an
  install would, and every other object is sent as a server-side apply dry run
  (`dryRun=All`, `fieldValidation=Strict`) into namespace `ns` when namespaced;
- each object counts in one of four cells: both accept, both refuse, weaver alone refuses
  (a defect: a refusal the server would not make), the server alone refuses. Objects of a
  kind the server does not serve (a CRD installed another way, a removed API version), custom
  resources whose CRD the chart does not carry (weaver does not validate them offline) and
  charts helm or weaver cannot render for another reason are counted apart.

The server is the judge; use a scratch one (it keeps the CRDs). Prints one line per chart
with a disagreement, then the totals; exit 0 whatever the outcome.
"""
import argparse, base64, concurrent.futures, json, os, re, ssl, subprocess, sys, tempfile, threading
import urllib.error, urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helm_corpus import documents, weaver_release  # noqa: E402

NAMESPACE = 'ns'
# The API groups of Kubernetes' own kinds, which weaver validates offline.
BUILT_IN_GROUPS = {'', 'apps', 'batch', 'policy', 'autoscaling', 'rbac.authorization.k8s.io', 'networking.k8s.io',
                   'storage.k8s.io', 'scheduling.k8s.io', 'admissionregistration.k8s.io', 'apiextensions.k8s.io',
                   'apiregistration.k8s.io', 'coordination.k8s.io', 'discovery.k8s.io', 'node.k8s.io',
                   'certificates.k8s.io', 'flowcontrol.apiserver.k8s.io', 'events.k8s.io', 'resource.k8s.io'}
MANAGER = 'weaver-agreement'


class Server:
    """Just enough of a Kubernetes client: discovery and server-side apply, with the
    kubeconfig's client certificate."""

    def __init__(self, kubeconfig):
        with open(kubeconfig) as f:
            config = yaml.safe_load(f)
        context = next(c['context'] for c in config['contexts'] if c['name'] == config['current-context'])
        cluster = next(c['cluster'] for c in config['clusters'] if c['name'] == context['cluster'])
        user = next(u['user'] for u in config['users'] if u['name'] == context['user'])
        self.base = cluster['server'].rstrip('/')
        self.tls = ssl.create_default_context()
        self.work = tempfile.mkdtemp()
        ca = cluster.get('certificate-authority') or self._file('ca', cluster.get('certificate-authority-data'))
        self.tls.load_verify_locations(ca)
        cert = user.get('client-certificate') or self._file('cert', user.get('client-certificate-data'))
        key = user.get('client-key') or self._file('key', user.get('client-key-data'))
        self.tls.load_cert_chain(cert, key)
        self.resources = {}  # (apiVersion, kind) -> (path prefix, plural, namespaced)
        self.lock = threading.Lock()
        self.discovered = set()

    def _file(self, name, data):
        path = os.path.join(self.work, name)
        with open(path, 'wb') as f:
            f.write(base64.b64decode(data))
        os.chmod(path, 0o600)
        return path

    def request(self, method, path, body=None, content_type='application/json'):
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header('Content-Type', content_type)
        try:
            with urllib.request.urlopen(req, context=self.tls, timeout=60) as answer:
                return answer.status, json.loads(answer.read() or b'{}')
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read() or b'{}')
            except ValueError:
                return e.code, {}

    def discover(self, api_version, refresh=False):
        """Learns the resources of one group version (again, when refresh)."""
        with self.lock:
            if api_version in self.discovered and not refresh:
                return
            self.discovered.add(api_version)
        prefix = '/api/v1' if api_version == 'v1' else f'/apis/{api_version}'
        status, answer = self.request('GET', prefix)
        if status != 200:
            return
        with self.lock:
            for r in answer.get('resources', []):
                if '/' not in r['name']:
                    self.resources[(api_version, r['kind'])] = (prefix, r['name'], r['namespaced'])

    def resource(self, api_version, kind, refresh=False):
        self.discover(api_version, refresh)
        return self.resources.get((api_version, kind))

    def apply(self, obj, dry_run):
        """Server-side apply; returns (status, Status or object), or None for a kind the
        server does not serve."""
        found = self.resource(obj.get('apiVersion'), obj.get('kind'))
        if found is None:
            return None
        prefix, plural, namespaced = found
        name = (obj.get('metadata') or {}).get('name', '')
        body = json.loads(json.dumps(obj, default=str))
        if namespaced:
            body.setdefault('metadata', {})['namespace'] = NAMESPACE
            path = f'{prefix}/namespaces/{NAMESPACE}/{plural}/{urllib.request.quote(str(name), safe="")}'
        else:
            (body.get('metadata') or {}).pop('namespace', None)
            path = f'{prefix}/{plural}/{urllib.request.quote(str(name), safe="")}'
        query = f'?fieldManager={MANAGER}&force=true&fieldValidation=Strict' + ('&dryRun=All' if dry_run else '')
        # Unescaped: go-yaml refuses JSON's surrogate-pair escapes of characters outside the BMP.
        return self.request('PATCH', path + query, json.dumps(body, ensure_ascii=False), 'application/apply-patch+yaml')


OBJECT = re.compile(r'^  release `rel`, [^:]+: (\S+) (?:[^/\s]+/)?(\S+): (.*)$')


def weaver_refusals(chart_dir, weaver):
    """The objects weaver's offline validation refuses, by (kind, name), with their problems;
    or a string when weaver fails for another reason."""
    run, _ = weaver_release(chart_dir, weaver, ['--validate=strict'], namespace=NAMESPACE)
    if run.returncode == 0:
        return {}
    if 'found by offline schema validation' not in run.stderr:
        return (run.stderr.strip().splitlines() or ['?'])[0][:200]
    refused = {}
    for line in run.stderr.splitlines():
        m = OBJECT.match(line)
        if m:
            refused.setdefault((m[1].split('.')[0], m[2]), []).append(m[3])
    return refused


def judge(chart_dir, weaver, server):
    helm = subprocess.run(['helm', 'template', 'rel', chart_dir, '-n', NAMESPACE, '--kube-version', 'v1.32.0',
                           '--include-crds', '--skip-tests'], capture_output=True, text=True)
    if helm.returncode != 0:
        return {'skipped': 'helm refuses'}
    try:
        objects = documents(helm.stdout)
    except yaml.YAMLError:
        return {'skipped': 'helm output unreadable'}
    refused = weaver_refusals(chart_dir, weaver)
    if isinstance(refused, str):
        return {'skipped': f'weaver fails: {refused}'}
    crds = [o for o in objects if o.get('kind') == 'CustomResourceDefinition']
    for crd in crds:
        server.apply(crd, dry_run=False)
    for crd in crds:
        spec = crd.get('spec') or {}
        for version in spec.get('versions') or []:
            api_version = f"{spec.get('group')}/{version.get('name')}"
            for _ in range(20):
                if server.resource(api_version, (spec.get('names') or {}).get('kind'), refresh=True):
                    break
                threading.Event().wait(0.25)
    cells = {'both accept': 0, 'both refuse': 0, 'weaver alone refuses': [], 'server alone refuses': [],
             'not served': 0, 'not validated offline': 0}
    # Only apiextensions.k8s.io/v1 CRDs carry the schemas weaver validates with.
    defined = {((c.get('spec') or {}).get('group'), ((c.get('spec') or {}).get('names') or {}).get('kind'))
               for c in crds if c.get('apiVersion') == 'apiextensions.k8s.io/v1'}
    for obj in objects:
        if obj.get('kind') == 'CustomResourceDefinition':
            continue
        group = str(obj.get('apiVersion', '')).rpartition('/')[0]
        if group not in BUILT_IN_GROUPS and (group, obj.get('kind')) not in defined:
            # A custom resource whose CRD the chart does not carry: weaver says it is not
            # validated offline (the server may know its CRD from another chart).
            cells['not validated offline'] += 1
            continue
        key = (obj.get('kind'), str((obj.get('metadata') or {}).get('name')))
        answer = server.apply(obj, dry_run=True)
        if answer is None:
            cells['not served'] += 1
            continue
        status, body = answer
        server_refuses = status >= 400
        why = body.get('message', '')[:300] if server_refuses else ''
        if server_refuses and status in (404, 403, 409):
            cells['not served'] += 1  # a namespace or an owner missing, not the object's content
            continue
        weaver_refuses = key in refused
        if weaver_refuses and server_refuses:
            cells['both refuse'] += 1
        elif weaver_refuses:
            cells['weaver alone refuses'].append(f'{key[0]}/{key[1]}: {refused[key][0][:200]}')
        elif server_refuses:
            cells['server alone refuses'].append(f'{key[0]}/{key[1]}: {why}')
        else:
            cells['both accept'] += 1
    return cells


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('corpus')
    p.add_argument('--kubeconfig', required=True)
    p.add_argument('--weaver', default=os.path.join(os.path.dirname(__file__), '..', 'target', 'release', 'weaver'))
    p.add_argument('--json')
    p.add_argument('--jobs', type=int, default=os.cpu_count())
    p.add_argument('--only', nargs='*', help='chart directory names to judge (default: all)')
    args = p.parse_args()
    server = Server(args.kubeconfig)
    server.request('POST', '/api/v1/namespaces', json.dumps({'metadata': {'name': NAMESPACE}}))
    charts = args.only or [n for n in sorted(os.listdir(args.corpus))
                           if os.path.exists(os.path.join(args.corpus, n, 'Chart.yaml'))]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for name, cells in zip(charts, pool.map(lambda n: judge(os.path.join(args.corpus, n), args.weaver, server),
                                                charts)):
            results[name] = cells
            for cell in ('weaver alone refuses', 'server alone refuses'):
                for line in cells.get(cell, []):
                    print(f'{name}: {cell}: {line}', flush=True)
    totals = {'both accept': 0, 'both refuse': 0, 'weaver alone refuses': 0, 'server alone refuses': 0,
              'not served': 0, 'not validated offline': 0}
    skipped = 0
    for cells in results.values():
        if 'skipped' in cells:
            skipped += 1
            continue
        for cell, value in cells.items():
            totals[cell] += value if isinstance(value, int) else len(value)
    judged = sum(v for k, v in totals.items() if k not in ('not served', 'not validated offline'))
    agree = totals['both accept'] + totals['both refuse']
    print(f'{len(results) - skipped} charts judged ({skipped} skipped: helm or weaver fails for another reason); '
          f'{judged} objects: {agree} agree ({100.0 * agree / max(judged, 1):.2f} %), '
          f'{totals["both refuse"]} refused by both, {totals["weaver alone refuses"]} by weaver alone, '
          f'{totals["server alone refuses"]} by the server alone; {totals["not served"]} of kinds not served, '
          f'{totals["not validated offline"]} custom resources whose CRD the chart does not carry')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'totals': totals, 'charts': results}, f, indent=1)


if __name__ == '__main__':
    main()
