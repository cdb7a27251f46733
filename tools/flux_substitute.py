"""Flux's variable substitution as kustomize-controller applies it (`postBuild.substitute`):
the object written as YAML the way Flux writes it (`flux_text`), then `${var}` replaced
(`envsubst`). Shared by tools/flux_corpus.py and tools/flux_values.py."""

import re

import yaml

NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")


def envsubst(text, variables, strict=True):
    """Flux's envsubst: ${var}, ${var:=default} (and :-, =; defaults may nest), $$ is $; a
    variable nothing sets is an error (strict), else empty (Flux's default)."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            name = NAME.match(text, i + 2)
            if not name:
                out.append(text[i])
                i += 1
                continue
            j = name.end()
            op = next((o for o in (":=", ":-", "=") if text.startswith(o, j)), None)
            default = None
            if op:
                depth, k = 1, j + len(op)
                while k < len(text) and depth:
                    depth += {"{": 1, "}": -1}.get(text[k], 0)
                    k += 1
                default, j = text[j + len(op) : k - 1], k
            elif text.startswith("}", j):
                j += 1
            else:
                out.append(text[i])
                i += 1
                continue
            value = variables.get(name.group(0))
            if default is not None and not value:
                out.append(envsubst(default, variables, strict))
            elif value is None:
                if strict:
                    raise KeyError(name.group(0))
            else:
                out.append(value)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def flux_text(obj):
    """An object's text as kustomize-controller substitutes it: its JSON written as YAML by
    go-yaml v2 (sigs.k8s.io/yaml), which quotes a string only where YAML needs it, so how the
    repository wrote a scalar is lost (`"${PORT}"` comes back a number). PyYAML's emitter makes
    the same choices (both are libyaml's)."""
    return yaml.safe_dump(obj, allow_unicode=True, width=float("inf"), default_flow_style=False)
