#!/usr/bin/env python3
"""Fail when the modules of `src/` depend on each other in a cycle.

Every `crate::`, `super::` and `self::` path and every `use` tree of a module is resolved to
the module that defines the item: through the names each module imports (public or not, since
child modules see their parent's imports) and, for glob imports, through every name the source
module defines or imports. A reference from module A to module B becomes an edge between the
two siblings under their common parent that contain them (`net::http` using `client::Config`
is an edge `net -> client`); references between a module and its own ancestors or descendants
are a module and its parts, not layers, and are not counted. Unit tests (`#[cfg(test)]` items,
and test modules in files of their own) are not counted either: a test may use any module.
The siblings of every parent must form a directed acyclic graph.

Inline `mod x { ... }` blocks are refused (they would shift what `super` means): the crate
keeps one module per file.

Usage: scripts/check_layers.py [SRC_DIR]   (default: src)
Prints the layers it found, or each cycle with one source line per edge, and exits 1.
"""

import os
import re
import sys
from collections import defaultdict


def module_path(src, path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "mod"):
        rel = rel[:-1]
    return tuple(rel)


def strip(text):
    """Blank out comments, strings and char literals, keeping line numbers."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c in "bcr" and re.match(r'[bc]?r#*"', text[i:i + 12]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'[bc]?r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:i + 12]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_unit_tests(text):
    """Remove `#[cfg(test)]` and `#[cfg(all(test, ...))]` items (`mod tests { ... }` and
    helpers), keeping line numbers."""
    out, pos = [], 0
    item = re.compile(
        r"\s*(#\[[^\]]*\]\s*)*(pub(\([^)]*\))?\s+)?"
        r"(mod|fn|use|impl|struct|enum|const|static|type|trait|macro_rules|unsafe|async|extern)\b"
    )
    # `#[cfg(test)]`, or `#[cfg(all(test, ...))]` (tests of one feature profile).
    for m in re.finditer(r"#\[cfg\((?:test|all\(test\b[^\]]*\))\)\]", text):
        if m.start() < pos or not item.match(text, m.end()):
            continue
        brace = text.find("{", m.end())
        semi = text.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            end = semi + 1
        else:
            depth, j = 0, brace
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            end = j + 1
        out.append(text[pos:m.start()])
        out.append("\n" * text.count("\n", m.start(), end))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::d}` -> [(['a','b'], 'b'), (['a','c','d'], 'd')] (aliases are `d@e` here)."""
    tree = re.sub(r"\s+", "", tree)
    results = []

    def parse(s, prefix):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        parts.append(cur)
        for part in parts:
            if not part:
                continue
            if "{" in part:
                head, rest = part.split("{", 1)
                head = [seg for seg in head.split("::") if seg]
                parse(rest[:-1], prefix + head)
            else:
                segs = [seg for seg in part.split("::") if seg]
                results.append((prefix + segs, segs[-1] if segs else None))

    parse(tree, [])
    return results


USE_RE = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
PATH_RE = re.compile(r"\b(crate|super|self)((?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)")


def parse_use_trees(text):
    """Yield (is_pub, [(segments, alias)], line) for every `use` item."""
    for m in USE_RE.finditer(text):
        body = m.group(2)
        aliased = []
        # Turn `a as b` into `a@b` so whitespace removal keeps the alias.
        body = re.sub(r"([A-Za-z0-9_]+)\s+as\s+([A-Za-z0-9_]+)", r"\1@\2", body)
        for segs, alias in expand_use(body):
            if segs and "@" in segs[-1]:
                name, alias = segs[-1].split("@", 1)
                segs = segs[:-1] + [name]
            aliased.append((segs, alias))
        yield bool(m.group(1)), aliased, text.count("\n", 0, m.start()) + 1


def absolute(segs, here, modules):
    """Resolve a path's segments against module `here` to an absolute segment list."""
    if not segs:
        return None
    head = segs[0]
    if head == "crate":
        return list(segs[1:])
    base = list(here)
    i = 0
    while i < len(segs) and segs[i] in ("super", "self"):
        if segs[i] == "super":
            if not base:
                return None
            base = base[:-1]
        i += 1
    if i:
        return base + list(segs[i:])
    if tuple(here) + (head,) in modules:
        return list(here) + list(segs)
    return None  # an external crate, a prelude name or a local item


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                files[module_path(src, path)] = path
    modules = set(files)
    raw = {m: strip(open(p, encoding="utf-8").read()) for m, p in files.items()}

    # Test modules kept in files of their own (`#[cfg(test)] mod tests;`) are not counted.
    test_only = set()
    for mod, text in raw.items():
        for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
            test_only.add(mod + (m.group(1),))
    def is_test(mod):
        return any(mod[: len(t)] == t for t in test_only)
    texts = {m: drop_unit_tests(t) for m, t in raw.items() if not is_test(m)}

    # Inline `mod x { ... }` blocks would shift what `super` and `self` mean: refuse them
    # rather than misread them (the crate keeps one module per file).
    inline = []
    for mod, text in texts.items():
        for m in re.finditer(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", text):
            inline.append(f"{files[mod]}:{text.count(chr(10), 0, m.start()) + 1}")
    if inline:
        print("inline modules are not supported by this check (one module per file):")
        for where in inline:
            print(f"  {where}")
        return 1

    # Names a module imports (`use`, public or not: its child modules see them too) ->
    # absolute path of the item; and the modules it glob-imports.
    imports = defaultdict(dict)
    globs = defaultdict(list)
    uses = defaultdict(list)  # module -> [(absolute segments, line)]
    for mod, text in texts.items():
        for _is_pub, items, line in parse_use_trees(text):
            for segs, alias in items:
                absol = absolute(segs, mod, modules)
                if absol is None:
                    continue
                if alias == "*":
                    globs[mod].append(absol[:-1])
                    absol = absol[:-1]
                uses[mod].append((absol, line))
                if alias and alias not in ("self", "*"):
                    imports[mod][alias] = absol
        for m in PATH_RE.finditer(text):
            segs = [m.group(1)] + [s for s in re.split(r"\s*::\s*", m.group(2)) if s]
            absol = absolute(segs, mod, modules)
            if absol is not None:
                uses[mod].append((absol, text.count("\n", 0, m.start()) + 1))

    # Items each module defines itself.
    item_re = re.compile(
        r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+|async\s+|unsafe\s+)*"
        r"(?:struct|enum|union|fn|const|static|type|trait|mod|macro_rules!)\s+(\w+)"
    )
    defined = {mod: set(item_re.findall(text)) for mod, text in texts.items()}

    def resolve(owner, name, seen):
        """The module defining `name` as seen from module `owner`, or None if unknown there."""
        if (owner, name) in seen:
            return None
        seen = seen | {(owner, name)}
        if name in defined.get(owner, ()):
            return owner
        target = imports.get(owner, {}).get(name)
        if target is not None:
            return defining_module(target, seen)
        for source in globs.get(owner, ()):
            found = resolve(tuple(source), name, seen)
            if found is not None:
                return found
        return None

    def defining_module(absol, seen=frozenset()):
        segs = [s for s in absol if s not in ("self", "*")]
        k = len(segs)
        while k and tuple(segs[:k]) not in modules:
            k -= 1
        owner = tuple(segs[:k])
        if k < len(segs):
            found = resolve(owner, segs[k], seen)
            if found is not None:
                # A path through a found module goes on from there (`a::b::C`).
                rest = segs[k + 1:]
                if rest and found + (segs[k],) in modules:
                    return defining_module(list(found) + [segs[k]] + rest, seen)
                return found
        return owner

    # A glob import may bring any name its source defines or imports: count them all.
    for mod, sources in globs.items():
        for source in sources:
            src_mod = tuple(source)
            names = set(defined.get(src_mod, ())) | set(imports.get(src_mod, {}))
            for name in names:
                uses[mod].append((list(source) + [name], 0))

    edges = defaultdict(lambda: defaultdict(list))  # parent -> (a, b) -> [witness]
    for mod, refs in uses.items():
        for absol, line in refs:
            target = defining_module(absol)
            if target[: len(mod)] == mod or mod[: len(target)] == target:
                continue
            k = 0
            while mod[k] == target[k]:
                k += 1
            parent, a, b = mod[:k], mod[k], target[k]
            edges[parent][(a, b)].append(f"{files[mod]}:{line} uses {'::'.join(absol)}")

    failed = False
    for parent in sorted(edges):
        graph = defaultdict(set)
        for a, b in edges[parent]:
            graph[a].add(b)
        for scc in strongly_connected(graph):
            if len(scc) < 2:
                continue
            failed = True
            where = "::".join(parent) or "crate"
            print(f"cycle in {where}: {' <-> '.join(sorted(scc))}")
            for (a, b), witness in sorted(edges[parent].items()):
                if a in scc and b in scc:
                    print(f"  {a} -> {b}: {witness[0]}" + (f" (+{len(witness) - 1} more)" if len(witness) > 1 else ""))
    if failed:
        return 1
    for parent in sorted(edges):
        graph = defaultdict(set)
        for a, b in edges[parent]:
            graph[a].add(b)
        order = layers(graph)
        where = "::".join(parent) or "crate"
        print(f"{where}: " + " | ".join(", ".join(sorted(layer)) for layer in order))
    print("no module cycles")
    return 0


def strongly_connected(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    nodes = set(graph) | {b for bs in graph.values() for b in bs}

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            out.append(comp)

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def layers(graph):
    """Modules in dependency order, lowest layer first (each layer uses only those before it)."""
    nodes = set(graph) | {b for bs in graph.values() for b in bs}
    placed, order = set(), []
    while len(placed) < len(nodes):
        layer = {v for v in nodes - placed if graph.get(v, set()) - {v} <= placed}
        order.append(layer)
        placed |= layer
    return order


if __name__ == "__main__":
    sys.exit(main())
