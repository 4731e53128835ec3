"""The runner portability rules of transforms/portable.py hold across the code: checked on the source itself."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PORTABLE = ROOT / "transforms" / "portable.py"
SOURCES = sorted(p for d in ("transforms", "pipelines") for p in (ROOT / d).rglob("*.py") if p != PORTABLE)


def _calls(tree: ast.AST, attribute: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attribute
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_multi_output_pardo_outside_the_portable_module(path):
    # Beam's DaskRunner hands every output of a .with_outputs() ParDo to every consumer: TaggedParDo instead.
    assert _calls(ast.parse(path.read_text()), "with_outputs") == [], path


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_batch_elements_and_no_emitting_finish_bundle(path):
    tree = ast.parse(path.read_text())
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "BatchElements" not in names, f"{path}: use transforms.portable.Batch"
    # combiners.Top runs a DoFn that emits from finish_bundle: on Dask it silently gives nothing.
    assert "Top" not in names, f"{path}: combiners.Top loses its output on Dask; use a CombineFn"
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "finish_bundle":
            emits = [n for n in ast.walk(node) if isinstance(n, (ast.Yield, ast.YieldFrom, ast.Return)) and n.value]
            assert not emits, f"{path}:{node.lineno}: finish_bundle must not emit (Dask drops it)"


def test_the_checks_see_a_violation(tmp_path):
    bad = "class F:\n    def finish_bundle(self):\n        yield 1\n\nx = p | beam.ParDo(F()).with_outputs('a')\n"
    tree = ast.parse(bad)
    assert _calls(tree, "with_outputs") == [5]
    assert any(isinstance(n, ast.Yield) for n in ast.walk(tree))
