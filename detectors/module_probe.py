"""Whether a detector's "module:Class" target can load, judged from the module's source without importing it.

Used by the registry so that listing detectors names a missing package (or a missing class) without running
any detector module, which would import torch or onnxruntime.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any


def find_module_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """Where module `name` is, or None; a dotted name is looked up without running its packages' __init__."""
    loaded = sys.modules.get(name)
    if loaded is not None:  # already imported (perhaps with no spec, as __main__ under `python -c`)
        return getattr(loaded, "__spec__", None) or importlib.machinery.ModuleSpec(name, None)
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    for depth in range(2, len(parts) + 1):
        if spec is None or spec.submodule_search_locations is None:
            return None
        full = ".".join(parts[:depth])
        parent = sys.modules.get(".".join(parts[:depth - 1]))
        try:
            if parent is not None:  # already imported: its __path__ is authoritative
                spec = importlib.util.find_spec(full)
            else:
                spec = importlib.machinery.PathFinder.find_spec(full, list(spec.submodule_search_locations))
        except (ImportError, ValueError):
            return None
    return spec


def source_tree(spec: importlib.machinery.ModuleSpec) -> ast.Module | None:
    """The parsed source of a pure-Python module, or None for compiled / built-in / unreadable ones."""
    origin = spec.origin
    if not spec.has_location or not origin or not origin.endswith(".py"):
        return None
    try:
        text = Path(origin).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return ast.parse(text, filename=origin)


def defined_names(tree: ast.Module) -> set[str] | None:
    """Names a module binds at its top level (in if / try blocks too); None when that cannot be told from the
    source (a star import, a module __getattr__, or globals() / exec / setattr at work)."""
    names: set[str] = set()
    for node in _top_level_statements(tree.body):
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names):
            return None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        else:
            for child in ast.walk(node):
                if isinstance(child, ast.Name) and child.id in _DYNAMIC_BINDERS:
                    return None
                if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                    names.add(child.id)
    return None if "__getattr__" in names else names


_DYNAMIC_BINDERS = frozenset({"globals", "vars", "exec", "setattr", "__import__"})


def _top_level_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements, looking inside if / try / with / for blocks but not into functions or classes."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            blocks = [getattr(node, key, []) for key in ("body", "orelse", "finalbody")]
            blocks += [handler.body for handler in getattr(node, "handlers", [])]
            for block in blocks:
                out.extend(_top_level_statements(block))
        else:
            out.append(node)
    return out


def unconditional_imports(tree: ast.Module) -> list[str]:
    """Top-level packages a module imports as soon as it runs (plain module-level imports, not in try / if)."""
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.extend(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module.split(".")[0])
    return list(dict.fromkeys(name for name in found if name != "__future__"))


def target_problem(target: str) -> tuple[str, str] | None:
    """(what is missing, why) when a 'module:Class' target cannot load, judged without importing it; else None."""
    module_name, _, attr = target.partition(":")
    if not attr or not all(part.isidentifier() for part in [*module_name.split("."), *attr.split(".")]):
        return target, f"'{target}' is not of the form 'module:Class'"
    if module_name in sys.modules:  # already imported: look at the module itself
        if _resolves(sys.modules[module_name], attr):
            return None
        return target, f"its module '{module_name}' defines no '{attr}'"
    spec = find_module_spec(module_name)
    if spec is None:
        return module_name, f"its module '{module_name}' is not installed"
    try:
        tree = source_tree(spec)
    except SyntaxError as exc:
        return module_name, f"its module '{module_name}' does not parse ({exc.filename}:{exc.lineno}: {exc.msg})"
    if tree is None:
        return None
    for package in unconditional_imports(tree):
        if find_module_spec(package) is None:
            return package, f"its module '{module_name}' imports '{package}', which is not installed"
    names = defined_names(tree)
    head = attr.split(".")[0]
    if names is not None and head not in names and find_module_spec(f"{module_name}.{head}") is None:
        return target, f"its module '{module_name}' defines no '{head}'"
    return None


def _resolves(module: Any, attr: str) -> bool:
    """Whether the dotted attribute path `attr` exists on `module`."""
    found = module
    for part in attr.split("."):
        if not hasattr(found, part):
            return False
        found = getattr(found, part)
    return True
