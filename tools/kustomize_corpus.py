#!/usr/bin/env python3
"""Compare weaver's build of real kustomizations with `kubectl kustomize`.

    tools/kustomize_corpus.py build CORPUS SOURCE...   extract repositories into CORPUS
    tools/kustomize_corpus.py compare CORPUS [--weaver BIN] [--kubectl BIN] [--json OUT] [--jobs N]
                                      [--every N [--offset K]]

`build` extracts each source (a directory, or a git directory whose HEAD is read with `git
archive`, each top-level directory that holds a kustomization) into CORPUS/<name>.

`compare` finds every directory holding a kustomization (`kustomization.yaml`, `.yml`,
`Kustomization`) in each extracted repository, and builds it with `kubectl kustomize DIR`
(`--enable-helm` with $WEAVER_HELM or helm on PATH, as weaver inflates `helmCharts`) and
with `weaver render` of a release `kustomize: DIR` (namespace `corpus`; the repository itself is
weaver's, so confinement is the repository's). Both outputs are parsed and compared: the same
objects (order aside), the same content, weaver's own labels and the namespace weaver gives
objects that have none aside. Where kubectl fails, weaver must fail too, naming the
kustomization file (values are compared exactly: nothing here is random). One line per
directory, then the differences by class, the total and the times of both tools, as
helm_corpus.py prints and writes them (`report`; the JSON's seconds are {kustomize, weaver});
`--jobs` directories at once; `--every N --offset K` compares only the directories K, K+N,
K+2N... of the sorted list (a sample across all repositories, when the whole run takes too
long). Exit 0 whatever the outcome.
"""
import argparse, concurrent.futures, json, operator, os, re, shutil, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helm_corpus import content_class, counted_apart, difference, documents, extract, message_class, objects_class, report, run  # noqa: E402
from helm_corpus import normalise  # noqa: E402

KUSTOMIZATION_FILES = ('kustomization.yaml', 'kustomization.yml', 'Kustomization')
RELEASE_NAMESPACE = 'corpus'


def build(corpus, sources):
    os.makedirs(corpus, exist_ok=True)
    for source in sources:
        name = os.path.basename(os.path.dirname(source.rstrip('/'))) if source.rstrip('/').endswith('/repo') \
            else os.path.basename(source.rstrip('/'))
        dest = os.path.join(corpus, name)
        if os.path.exists(dest):
            shutil.rmtree(dest)
        extract(source, dest, KUSTOMIZATION_FILES)
        print(f'{name}: {len(kustomizations(dest))} kustomization directories')


def kustomizations(repo):
    found = []
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = sorted(d for d in dirnames if d not in ('.git', 'node_modules', 'vendor'))
        if any(f in filenames for f in KUSTOMIZATION_FILES):
            found.append(os.path.relpath(dirpath, repo))
    return sorted(found)


def key(obj):
    md = obj.get('metadata') or {}
    return (obj.get('apiVersion'), obj.get('kind'), md.get('namespace'), md.get('name'))


def weaver_objects(objects, kubectl_keys):
    """weaver's objects, with the release namespace removed where kustomize set none."""
    out = {}
    for obj in objects:
        md = obj.get('metadata') or {}
        k = key(obj)
        if md.get('namespace') == RELEASE_NAMESPACE and k not in kubectl_keys:
            k = (k[0], k[1], None, k[3])
        out[k] = normalise(obj)
    return out


def compare_one(repo, directory, index, weaver, kubectl):
    """{'outcome', 'detail', 'class', 'seconds': {'kustomize', 'weaver'}}"""
    # --enable-helm: weaver inflates `helmCharts`, so kubectl does too (with $WEAVER_HELM or helm).
    helm = os.environ.get('WEAVER_HELM') or shutil.which('helm')
    enable_helm = ['--enable-helm', '--helm-command', helm] if helm else []
    kube, kube_s = run([kubectl, 'kustomize', os.path.join(repo, directory)] + enable_helm)
    env = f'kustomize-corpus-{index}'
    env_file = os.path.join(repo, 'environments', f'{env}.yaml')
    os.makedirs(os.path.dirname(env_file), exist_ok=True)
    with open(env_file, 'w') as f:
        f.write(f'releases:\n  - name: rel\n    kustomize: {json.dumps(directory)}\n'
                f'    namespace: {RELEASE_NAMESPACE}\n')
    try:
        w, weaver_s = run([weaver, '--repo', repo, 'render', '--env', env, '--show-secrets', '--validate=warn'])
    finally:
        os.remove(env_file)
    outcome, detail, cls = compare_outputs(kube, w)
    return {'outcome': outcome, 'detail': detail, 'class': cls, 'seconds': {'kustomize': kube_s, 'weaver': weaver_s},
            'cpu_seconds': {'kustomize': kube.cpu, 'weaver': w.cpu}}


def kubectl_error(stderr):
    """The error of kubectl's klog line (`E1123 ... run.go:72] "command failed" err="..."`, or
    `err=<` and the message on the lines after it up to `>`), on one line."""
    m = re.search(r'err=<\n(.*?)\n\s*>\s*$', stderr, re.S) or re.search(r'err="(.*)"\s*$', stderr, re.S)
    if not m:
        return ' '.join(stderr.split())
    return ' '.join(m[1].replace('\\"', '"').replace('\\n', ' ').split())


def compare_outputs(kube, w):
    if kube.returncode != 0:
        reason = kubectl_error(kube.stderr)
        if w.returncode == 0:
            return 'differ', 'kustomize fails, weaver builds: ' + reason[:200], \
                'kustomize fails, weaver builds: ' + message_class(reason)
        if 'kustomization' not in w.stderr.lower():
            return 'differ', 'both fail, weaver names no kustomization: ' + ' '.join(w.stderr.split())[:200], \
                'both fail, weaver names no kustomization: ' + message_class((w.stderr.strip().splitlines() or [''])[0])
        return 'both-fail', reason[:200], 'both fail: ' + message_class(reason)
    if w.returncode != 0:
        weaver_error = (w.stderr.strip().splitlines() or [''])[0]
        return 'differ', 'weaver fails: ' + weaver_error[:300], 'weaver fails: ' + message_class(weaver_error)
    try:
        k = {key(o): normalise(o) for o in documents(kube.stdout)}
        wv = weaver_objects(documents(w.stdout), set(k))
    except Exception as e:  # yaml errors, and weaver output that is not objects
        return 'differ', 'unparseable output: ' + str(e).splitlines()[0], 'unparseable output'
    if set(k) != set(wv):
        only_k, only_w = sorted(set(k) - set(wv), key=str), sorted(set(wv) - set(k), key=str)
        return 'differ', f'objects: kustomize only {only_k[:3]}, weaver only {only_w[:3]}', \
            objects_class(only_k, only_w, 'kustomize')
    for obj_key in sorted(k, key=str):
        d = difference(k[obj_key], wv[obj_key], 'kustomize', equal=operator.eq)  # nothing is random
        if d:
            return 'differ', f'{obj_key[1]}/{obj_key[3]}{d[0]}: {d[1]}', content_class(obj_key[1], *d, ref='kustomize')
    return 'equal', f'{len(k)} objects', ''


def compare(corpus, weaver, kubectl, out, jobs=None, every=1, offset=0):
    cases = [(repo, d) for repo in sorted(os.listdir(corpus)) if os.path.isdir(os.path.join(corpus, repo))
             for d in kustomizations(os.path.join(corpus, repo))]
    # The index names each case's environment file: the sample keeps the cases' own.
    indexed = list(enumerate(cases))[offset::every]
    cases = [case for _, case in indexed]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(jobs or os.cpu_count()) as pool:
        outcomes = pool.map(lambda c: compare_one(os.path.join(corpus, c[1][0]), c[1][1], c[0], weaver, kubectl),
                            indexed)
        for (repo, directory), result in zip(cases, outcomes):
            results[f'{repo}:{directory}'] = result
            print(f'{repo}:{directory}: {result["outcome"]}: {result["detail"]}', flush=True)
    built = [r for r in results.values() if r['outcome'] != 'both-fail' and not r['detail'].startswith('kustomize fails')]
    equal = sum(1 for r in results.values() if r['outcome'] == 'equal')
    repos = sorted({name.split(':')[0] for name, r in results.items() if r['outcome'] == 'equal'})
    report(results, 'kustomize', out,
           f'{len(results)} directories: kustomize builds {len(built)}, weaver equal on {equal} '
           f'({100.0 * equal / max(len(built), 1):.1f} %) from {len(repos)} repositories'
           f'{counted_apart(equal, len(built), results)}; '
           f'{sum(1 for r in results.values() if r["outcome"] == "both-fail")} fail in both')


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True)
    b = sub.add_parser('build')
    b.add_argument('corpus')
    b.add_argument('sources', nargs='+')
    c = sub.add_parser('compare')
    c.add_argument('corpus')
    c.add_argument('--weaver', default=os.path.join(os.path.dirname(__file__), '..', 'target', 'release', 'weaver'))
    c.add_argument('--kubectl', default=shutil.which('kubectl') or 'kubectl')
    c.add_argument('--json')
    c.add_argument('--jobs', type=int, default=os.cpu_count(), help='directories compared at once')
    c.add_argument('--every', type=int, default=1, help='compare every Nth directory only')
    c.add_argument('--offset', type=int, default=0, help='the first directory compared with --every')
    args = p.parse_args()
    if args.command == 'build':
        build(args.corpus, args.sources)
    else:
        compare(args.corpus, args.weaver, args.kubectl, args.json, args.jobs, args.every, args.offset)


if __name__ == '__main__':
    main()
