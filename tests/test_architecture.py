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
        for package in ("api", "views"):
            yield from sorted((ROOT / app / package).glob("*.py"))


def objects_usages(source: str) -> list[int]:
    """Line numbers where the source reaches a model manager as `<something>.objects`."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "objects"
    ]


def test_the_checker_finds_manager_use():
    source = "from x import Offer\n\ndef view(request):\n    return Offer.objects.filter(pk=1)\n"
    assert objects_usages(source) == [4]
    assert objects_usages("def view(request):\n    return offer_get_visible(actor=None)\n") == []


def test_thin_modules_do_not_query_models_directly():
    """Reads go through selectors and writes through services, never `Model.objects` in thin layers."""
    paths = list(thin_module_paths())
    assert ROOT / "accounts" / "views.py" in paths and ROOT / "accounts" / "api.py" in paths
    offenders = [
        f"{path.relative_to(ROOT)}:{line}" for path in paths for line in objects_usages(path.read_text())
    ]
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
