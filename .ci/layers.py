#!/usr/bin/env python3
"""The layer check (issue #18): imports inside the crate point one way.

The layers are the table in docs/architecture.md ("Layers"), one row per top-level module of
src/; this script reads them from there, so the document and the check cannot disagree. It finds
every path into the crate in code (`use crate::…`, `crate::a::b` in expressions and types, and
names the root re-exports, such as `crate::Gate`, resolved to the module that defines them) and
fails when

- a module imports a module of a higher layer;
- a module imports another of its own layer where the layer forbids it (a scheme never imports
  another scheme);
- a module imports a module its row names under "never" (adapters know the Gate and the
  principal, not config or stores);
- a module of src/ has no row, or a row names no module;
- the module graph has a cycle (within a layer that allows imports among its modules).

Comments are not code: an intra-doc link (`[`Gate`](crate::Gate)`) is not an import and is not
checked (rustdoc resolves it without a `use`, and the doc build checks that it resolves).
`src/lib.rs` (the root: declarations and re-exports) and `src/bin/` (the CLI, which sees only the
public API through `portcullis::`) are not modules of the graph.

    python3 .ci/layers.py               check src/ against docs/architecture.md
    python3 .ci/layers.py --self-test   the parser's cases, and the fixture must fail
    python3 .ci/layers.py --graph       print the module graph
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def strip_comments(text):
    """The code of a Rust file without comments (line, doc and block) or string literals."""
    out = []
    i, n = 0, len(text)
    depth = 0
    while i < n:
        c = text[i]
        two = text[i : i + 2]
        if depth:
            if two == "/*":
                depth += 1
                i += 2
            elif two == "*/":
                depth -= 1
                i += 2
            else:
                if c == "\n":
                    out.append("\n")
                i += 1
            continue
        if two == "//":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif two == "/*":
            depth = 1
            i += 2
        elif c == "r" and re.match(r'r#*"', text[i : i + 8]) and not re.match(r"\w", text[i - 1 : i] or " "):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4]):
            # A char literal ('"', '/'); a lifetime ('a) has no closing quote.
            i += text.find("'", i + 1 + (text[i + 1] == "\\")) - i + 1
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def use_group_heads(group):
    """The first segment of each item of a `{…}` use group (its text without the braces)."""
    heads, depth, item = [], 0, ""
    for c in group + ",":
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            head = re.match(r"\s*(\w+)", item)
            if head:
                heads.append(head.group(1))
            item = ""
        else:
            item += c
    return heads


def crate_paths(code):
    """The first segment after `crate::` of every path into the crate in `code`."""
    return [head for _, head in crate_path_heads(code)]


def crate_path_heads(code):
    """(offset, first segment after `crate::`) of every path into the crate in `code`."""
    heads = []
    for m in re.finditer(r"(?<![\w$])crate::", code):
        rest = code[m.end() :]
        if rest.startswith("{"):
            depth, j = 0, 0
            for j, c in enumerate(rest):
                depth += c == "{"
                depth -= c == "}"
                if depth == 0:
                    break
            heads.extend((m.start(), h) for h in use_group_heads(rest[1:j]))
        else:
            head = re.match(r"(\w+)", rest)
            if head:
                heads.append((m.start(), head.group(1)))
    return heads


def root_reexports(lib_code):
    """Names the crate root re-exports (`pub use a::b::{C, D}`) -> the module defining them."""
    names = {}
    for m in re.finditer(r"^pub use (\w+)::([^;]*);", lib_code, re.M):
        module, rest = m.group(1), m.group(2)
        for name in re.findall(r"\b([A-Z]\w*)\b", rest):
            names[name] = module
    return names


def modules_of(src):
    mods = set()
    for entry in os.listdir(src):
        path = os.path.join(src, entry)
        if entry in ("lib.rs", "bin"):
            continue
        if entry.endswith(".rs"):
            mods.add(entry[:-3])
        elif os.path.isdir(path):
            mods.add(entry)
    return mods


def graph(src):
    """{module: {imported module: [file:line, …]}} for the crate under `src`."""
    mods = modules_of(src)
    reexports = root_reexports(strip_comments(open(os.path.join(src, "lib.rs")).read()))
    edges = {m: {} for m in mods}
    for module in mods:
        files = []
        base = os.path.join(src, module)
        if os.path.isdir(base):
            for d, _, fs in os.walk(base):
                files += [os.path.join(d, f) for f in fs if f.endswith(".rs")]
        else:
            files.append(base + ".rs")
        for path in sorted(files):
            code = strip_comments(open(path).read())
            for offset, head in crate_path_heads(code):
                target = head if head in mods else reexports.get(head)
                if target and target != module:
                    lineno = code.count("\n", 0, offset) + 1
                    where = f"{os.path.relpath(path, os.path.dirname(src))}:{lineno}"
                    edges[module].setdefault(target, []).append(where)
    return edges


def read_layers(doc):
    """The layer table of `doc`: rows `| `module` | layer | never |` after the heading `## Layers`.

    Returns (modules: {module: (layer index, never set)}, layers: [(name, allows imports within)]).
    Layers are numbered in the order they first appear, lowest first.
    """
    text = open(doc).read()
    section = text.split("\n## Layers", 1)
    if len(section) < 2:
        raise SystemExit(f"{doc}: no `## Layers` section")
    rows = re.findall(r"^\|\s*`([\w/]+)`\s*\|\s*(\d+)\s+([^|]*?)\s*\|\s*([^|]*?)\s*\|", section[1], re.M)
    modules, layers = {}, {}
    for module, number, name, never in rows:
        within = "(one-way)" not in name
        layers[int(number)] = (name.replace("(one-way)", "").strip(), within)
        modules[module.rstrip("/")] = (int(number), set(re.findall(r"`(\w+)`", never)))
    return modules, layers


def check(src, doc):
    """Every violation found, as lines; empty when the crate keeps its layers."""
    modules, layers = read_layers(doc)
    edges = graph(src)
    problems = []
    for module in sorted(set(edges) - set(modules)):
        problems.append(f"src/{module}: no row in the layer table of {doc}")
    for module in sorted(set(modules) - set(edges)):
        problems.append(f"{doc}: the layer table names `{module}`, which is not a module of src/")
    for module, targets in sorted(edges.items()):
        if module not in modules:
            continue
        layer, never = modules[module]
        for target, places in sorted(targets.items()):
            if target not in modules:
                continue
            why = None
            if target in never:
                why = f"`{module}` never imports `{target}`"
            elif modules[target][0] > layer:
                why = (
                    f"layer {layer} ({layers[layer][0]}) imports layer {modules[target][0]} "
                    f"({layers[modules[target][0]][0]})"
                )
            elif modules[target][0] == layer and not layers[layer][1]:
                why = f"modules of layer {layer} ({layers[layer][0]}) never import each other"
            if why is None:
                continue
            problems.append(f"{module} -> {target}: {why} ({', '.join(places[:3])})")
    # Cycles, which imports within a layer could still make.
    allowed = {m: {t for t in ts if t in modules} for m, ts in edges.items()}
    state = {}

    def visit(m, stack):
        state[m] = 1
        for t in sorted(allowed.get(m, ())):
            if state.get(t) == 1:
                problems.append("cycle: " + " -> ".join(stack[stack.index(t) :] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in sorted(allowed):
        if m not in state:
            visit(m, [m])
    return problems


def self_test():
    failures = []

    def expect(what, got, want):
        if got != want:
            failures.append(f"{what}: got {got!r}, want {want!r}")

    expect(
        "use group",
        crate_paths(strip_comments("use crate::{a::B, c, d::{e, f::G}};")),
        ["a", "c", "d"],
    )
    expect("path in code", crate_paths("let x = crate::json::parse(y);"), ["json"])
    expect("doc link", crate_paths(strip_comments("/// [`Gate`](crate::gate::Gate)\nfn f() {}")), [])
    expect("line comment", crate_paths(strip_comments("x(); // crate::config\n")), [])
    expect("block comment", crate_paths(strip_comments("/* crate::a /* crate::b */ */ crate::c")), ["c"])
    expect("string", crate_paths(strip_comments('let s = "crate::config"; crate::d::x')), ["d"])
    expect("raw string", crate_paths(strip_comments('r#"crate::a"#; crate::b::c')), ["b"])
    expect("char quote", crate_paths(strip_comments("let q = '\"'; crate::b::c")), ["b"])
    expect("macro crate", crate_paths(strip_comments("$crate::a::b")), [])
    expect("re-exports", root_reexports("pub use gate::{Gate, GateBuilder};\npub use x::y::Z;"),
           {"Gate": "gate", "GateBuilder": "gate", "Z": "x"})

    fixture = os.path.join(ROOT, ".ci", "fixtures", "layers")
    problems = check(os.path.join(fixture, "src"), os.path.join(fixture, "architecture.md"))
    want = [
        "principal -> scheme_a: layer 0 (basics) imports layer 2 (schemes)",
        "scheme_a -> scheme_b: modules of layer 2 (schemes) never import each other",
        "adapters -> store: `adapters` never imports `store`",
        "cycle: ",
    ]
    for w in want:
        if not any(w in p for p in problems):
            failures.append(f"fixture: no problem reported like {w!r} in {problems}")
    if any("gate ->" in p for p in problems):
        failures.append(f"fixture: an allowed import (gate -> principal, a doc link) was reported: {problems}")
    for f in failures:
        print("self-test:", f)
    if failures:
        sys.exit(1)
    print(f"layers self-test: the fixture fails as it should ({len(problems)} problems found)")


def main():
    src = os.path.join(ROOT, "src")
    doc = os.path.join(ROOT, "docs", "architecture.md")
    if "--self-test" in sys.argv:
        self_test()
        return
    if "--graph" in sys.argv:
        for m, ts in sorted(graph(src).items()):
            print(m, "->", " ".join(sorted(ts)))
        return
    problems = check(src, doc)
    for p in problems:
        print("layers:", p)
    if problems:
        print(f"{len(problems)} imports against the layers (docs/architecture.md, \"Layers\")")
        sys.exit(1)
    print("layers: every import inside the crate points down (docs/architecture.md, \"Layers\")")


if __name__ == "__main__":
    main()
