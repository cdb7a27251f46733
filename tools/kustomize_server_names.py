#!/usr/bin/env python3
"""Check that a real API server refuses what weaver refuses in kustomizations for a name.

    tools/kustomize_server_names.py COMPARISON.json CORPUS --kubeconfig KUBECONFIG [--only TEXT...]

COMPARISON.json is `kustomize_corpus.py compare --json` of CORPUS. For each directory weaver
refuses for a missing or invalid `metadata.name` or `namespace` (the class the comparison counts
apart), the objects `kubectl kustomize` builds with such a name or namespace (up to three) are
sent alone as a server-side apply dry run. A custom kind gets a permissive CRD of its own first
(applied for real, forced: use a scratch server) and is sent with its metadata only, so that only
its name can be refused. A directory counts as refused by the server when one of its objects is
refused for its name or namespace. Prints a line per directory, then the totals; exit 0.
"""
import argparse, json, re, subprocess

import yaml

SERVER_REFUSES = re.compile(r'has no `metadata\.name`|has an invalid `metadata\.(name|namespace)`')
BUILT_IN = {'', 'rbac.authorization.k8s.io', 'networking.k8s.io', 'admissionregistration.k8s.io',
            'apiextensions.k8s.io', 'apiregistration.k8s.io', 'storage.k8s.io', 'scheduling.k8s.io',
            'flowcontrol.apiserver.k8s.io', 'policy', 'apps', 'batch', 'autoscaling', 'coordination.k8s.io',
            'discovery.k8s.io', 'node.k8s.io', 'certificates.k8s.io'}
NOT_A_NAME = re.compile(r'[^a-z0-9.\-]')
REFUSED_FOR_NAME = re.compile(r'metadata\.(name|namespace)|namespaces? "|Invalid value')


def kubectl(kubeconfig, args, document=None):
    return subprocess.run(['kubectl', '--kubeconfig', kubeconfig, *args], input=document,
                          capture_output=True, text=True)


def permissive_crd(kubeconfig, group, version, kind):
    plural = kind.lower() + 's'
    crd = {'apiVersion': 'apiextensions.k8s.io/v1', 'kind': 'CustomResourceDefinition',
           # Groups under k8s.io are protected: the annotation lets a test CRD in.
           'metadata': {'name': f'{plural}.{group}',
                        'annotations': {'api-approved.kubernetes.io': 'unapproved, test only'}},
           'spec': {'group': group, 'scope': 'Namespaced', 'names': {'plural': plural, 'kind': kind},
                    'versions': [{'name': version, 'served': True, 'storage': True, 'schema': {
                        'openAPIV3Schema': {'type': 'object', 'x-kubernetes-preserve-unknown-fields': True}}}]}}
    kubectl(kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', '-'], json.dumps(crd))
    kubectl(kubeconfig, ['wait', '--for=condition=Established', f'crd/{plural}.{group}', '--timeout=20s'])


def verdicts(kubeconfig, directory):
    built = subprocess.run(['kubectl', 'kustomize', directory], capture_output=True, text=True)
    objects = [o for o in yaml.safe_load_all(built.stdout) if o]
    named = lambda o, field: o.get('metadata', {}).get(field) or ''
    suspects = [o for o in objects if not named(o, 'name') or NOT_A_NAME.search(named(o, 'name'))
                or NOT_A_NAME.search(named(o, 'namespace'))]
    out = []
    for o in suspects[:3]:
        group, _, version = o['apiVersion'].rpartition('/')
        custom = group not in BUILT_IN
        if custom:
            permissive_crd(kubeconfig, group, version, o['kind'])
        meta = o.setdefault('metadata', {})
        # A valid namespace, or one beside an invalid name, is `ns`: the name is what is judged.
        if 'namespace' in meta and (not NOT_A_NAME.search(meta['namespace']) or NOT_A_NAME.search(named(o, 'name'))):
            meta['namespace'] = 'ns'
        sent = {'apiVersion': o['apiVersion'], 'kind': o['kind'], 'metadata': meta} if custom else o
        r = kubectl(kubeconfig, ['apply', '--server-side', '--dry-run=server', '-f', '-'], json.dumps(sent))
        refused = r.returncode != 0 and bool(REFUSED_FOR_NAME.search(r.stderr))
        out.append((o['kind'], meta.get('name'), refused, (r.stderr or r.stdout).strip()[:200]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('comparison')
    parser.add_argument('corpus')
    parser.add_argument('--kubeconfig', required=True)
    parser.add_argument('--only', nargs='*', default=[], help='directories whose name holds one of these')
    args = parser.parse_args()
    items = json.load(open(args.comparison))['items']
    judged = refused = 0
    for key, item in items.items():
        if item['outcome'] != 'differ' or not SERVER_REFUSES.search(item['detail']):
            continue
        if args.only and not any(text in key for text in args.only):
            continue
        repo, path = key.split(':', 1)
        result = verdicts(args.kubeconfig, f'{args.corpus}/{repo}/{path}')
        judged += 1
        refused += any(v[2] for v in result)
        print(key, result, flush=True)
    print(f'{judged} directories weaver refuses for a name or namespace; the server refuses one of '
          f'their objects for its name or namespace in {refused}')


if __name__ == '__main__':
    main()
