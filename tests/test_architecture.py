"""Architecture rules enforced as tests (Zulip style): views, API modules, forms and tasks hold no queries."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["accounts", "grid", "trading", "settlement"]
THIN_MODULES = ["views.py", "api.py", "forms.py", "tasks.py"]


def thin_module_paths():
    for app in APPS:
        for name in THIN_MODULES:
            path = ROOT / app / name
            if path.exists():
                yield path
        yield from (ROOT / app / "api").glob("*.py") if (ROOT / app / "api").is_dir() else []


def test_thin_modules_do_not_query_models_directly():
    """Reads go through selectors and writes through services, never `Model.objects` in thin layers."""
    offenders = []
    for path in thin_module_paths():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "objects":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_engines_import_no_django():
    engines = [
        ROOT / "flexmarket" / "ptu.py",
        ROOT / "settlement" / "baselines.py",
        ROOT / "grid" / "network.py",
    ]
    engines += list((ROOT / "trading" / "clearing").glob("*.py"))
    for path in engines:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                assert not any(
                    name.split(".")[0] in {"django", "rest_framework", "celery"} for name in names
                ), path
