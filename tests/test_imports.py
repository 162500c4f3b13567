"""The import graph of pipeline/: no module imports itself back through others, lazy imports included."""

import ast

from pipeline import REPO_ROOT

PACKAGE = REPO_ROOT / "pipeline"


def module_name(path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules: set[str]) -> set[str]:
    """pipeline modules that `path` imports anywhere in it (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pipeline import tracking` imports a module; `from pipeline import LABELS` the package
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
    return found & modules


def graph() -> dict[str, set[str]]:
    paths = list(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) - {module_name(p)} for p in paths}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (a -> b -> a), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_checker_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_sees_lazy_and_package_imports():
    edges = graph()
    assert "pipeline.tracking" in edges["pipeline.train"]  # imported inside a function
    assert "pipeline.models.base" in edges["pipeline.models.kobert"]
    assert "pipeline.manual" in edges["pipeline.label"]


def test_label_does_not_import_the_interactive_review():
    edges = graph()
    assert "pipeline.manual" in edges["pipeline.review"] and "pipeline.review" not in edges["pipeline.label"]


def test_pipeline_has_no_import_circle():
    assert find_cycle(graph()) is None


MLFLOW_MODULES = {"pipeline.tracking", "pipeline.registry", "pipeline.serving"}


def imports_mlflow(path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if any(n == "mlflow" or n.startswith("mlflow.") for n in names):
            return True
    return False


def test_only_tracking_registry_and_serving_import_mlflow():
    found = {module_name(p) for p in PACKAGE.rglob("*.py") if imports_mlflow(p)}
    assert found == MLFLOW_MODULES
    edges = graph()
    assert "pipeline.registry" in edges["pipeline.promote"] and "pipeline.tracking" not in edges["pipeline.promote"]
    assert "pipeline.serving" in edges["pipeline.score"] and "pipeline.tracking" not in edges["pipeline.serve"]
