#!/usr/bin/env python3
"""Build the corpora of real charts and kustomizations from a pinned list of repositories.

    tools/corpus.py build [--sources TSV] MIRRORS CORPUS
    tools/corpus.py pin MIRRORS KIND OWNER/NAME...      print TSV lines for mirrors at their HEAD

The sources list (tools/corpus-sources.tsv) has one line per repository and use:
`KIND<TAB>OWNER/NAME<TAB>COMMIT`, KIND `helm` (its charts go into CORPUS/helm) or `kustomize`
(its kustomizations go into CORPUS/kust); a repository used both ways has two lines; `#` starts a
comment. MIRRORS is the directory holding the repositories' git directories, one per repository
at MIRRORS/OWNER+NAME/repo (or MIRRORS/OWNER+NAME), as the mirror tool leaves them.

`build` checks each mirror: at the listed commit, it is used as it is; holding that commit
elsewhere in its history, a git directory sharing the mirror's objects with HEAD at that commit
is used instead; without it, the repository is left out and said. Then the chart repositories go
to `helm_corpus.py build CORPUS/helm ...` (together, so that a chart's dependencies are found in
any of them) and the kustomize repositories to `kustomize_corpus.py build CORPUS/kust ...`.
Compare them with `helm_corpus.py compare CORPUS/helm` and `kustomize_corpus.py compare CORPUS/kust`.
"""
import argparse, os, subprocess, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helm_corpus  # noqa: E402
import kustomize_corpus  # noqa: E402

SOURCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus-sources.tsv')


def read_sources(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line:
                kind, repo, commit = line.split('\t')
                assert kind in ('helm', 'kustomize'), f'{path}: unknown kind {kind}'
                rows.append((kind, repo, commit))
    return rows


def git_dir(mirrors, repo):
    for candidate in (os.path.join(mirrors, repo.replace('/', '+'), 'repo'), os.path.join(mirrors, repo.replace('/', '+'))):
        if os.path.exists(os.path.join(candidate, 'HEAD')):
            return candidate
    return None


def git(directory, *args):
    return subprocess.run(['git', f'--git-dir={directory}', *args], capture_output=True, text=True)


def at_commit(mirror, commit, scratch):
    """A git directory with HEAD at commit: the mirror itself, or one sharing its objects."""
    if git(mirror, 'rev-parse', 'HEAD').stdout.strip() == commit:
        return mirror
    if git(mirror, 'cat-file', '-e', f'{commit}^{{commit}}').returncode != 0:
        return None
    # Named OWNER+NAME/repo like the mirror, so that the corpus names its items the same.
    view = os.path.join(scratch, os.path.basename(os.path.dirname(mirror)), 'repo')
    os.makedirs(os.path.join(view, 'refs'))
    os.symlink(os.path.abspath(os.path.join(mirror, 'objects')), os.path.join(view, 'objects'))
    if os.path.exists(os.path.join(mirror, 'shallow')):
        with open(os.path.join(mirror, 'shallow')) as src, open(os.path.join(view, 'shallow'), 'w') as dst:
            dst.write(src.read())
    with open(os.path.join(view, 'HEAD'), 'w') as f:
        f.write(commit + '\n')
    return view


def build(sources, mirrors, corpus):
    scratch = tempfile.mkdtemp()
    by_kind = {'helm': [], 'kustomize': []}
    for kind, repo, commit in read_sources(sources):
        mirror = git_dir(mirrors, repo)
        source = mirror and at_commit(mirror, commit, os.path.join(scratch, kind))
        if source is None:
            print(f'left out: {repo}: {"no mirror" if mirror is None else f"the mirror lacks {commit}"}')
            continue
        by_kind[kind].append(source)
    if by_kind['helm']:
        helm_corpus.build(os.path.join(corpus, 'helm'), by_kind['helm'])
    if by_kind['kustomize']:
        kustomize_corpus.build(os.path.join(corpus, 'kust'), by_kind['kustomize'])
    subprocess.run(['rm', '-rf', scratch])


def pin(mirrors, kind, repos):
    for repo in repos:
        mirror = git_dir(mirrors, repo)
        commit = mirror and git(mirror, 'rev-parse', 'HEAD').stdout.strip()
        if commit:
            print(f'{kind}\t{repo}\t{commit}')
        else:
            print(f'{repo}: no mirror in {mirrors}', file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='command', required=True)
    b = sub.add_parser('build')
    b.add_argument('--sources', default=SOURCES)
    b.add_argument('mirrors')
    b.add_argument('corpus')
    q = sub.add_parser('pin')
    q.add_argument('mirrors')
    q.add_argument('kind', choices=('helm', 'kustomize'))
    q.add_argument('repos', nargs='+')
    args = p.parse_args()
    if args.command == 'build':
        build(args.sources, args.mirrors, args.corpus)
    else:
        pin(args.mirrors, args.kind, args.repos)


if __name__ == '__main__':
    main()
