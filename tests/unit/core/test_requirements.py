"""The image installs requirements.txt (and requirements-nodeps.txt) alone: every third-party package the
installed product imports must be there, and nothing only tests or tools use."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from deploy.docker.check_image import dev_only, pinned

ROOT = Path(__file__).resolve().parents[3]
PRODUCT = ROOT / "src" / "emofactory"
# Modules the runtime provides, not pip: Triton's Python backend gives its models this one.
PROVIDED = {"triton_python_backend_utils"}


def imported_top_levels() -> set[str]:
    names = set()
    for path in PRODUCT.rglob("*.py"):
        if "v1" in path.relative_to(PRODUCT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - PROVIDED - {"emofactory", "__future__"}


def test_every_package_the_product_imports_is_a_runtime_requirement():
    runtime = pinned(ROOT / "requirements.txt") | pinned(ROOT / "requirements-nodeps.txt")
    dev = dev_only(ROOT)
    owners = packages_distributions()
    for module in sorted(imported_top_levels()):
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        assert dists & runtime, f"src imports {module} ({sorted(dists)}), which requirements.txt does not pin"
        assert not dists & dev, f"src imports {module}, pinned only for development"


def test_the_image_check_finds_a_dev_only_package_where_one_is_installed():
    """check_image.py (the image's last build step) run here, where pytest is installed, flags it and
    finds the product loading."""
    from deploy.docker.check_image import problems

    found = problems(ROOT)
    assert "dev-only package pytest" in found
    assert not [line for line in found if "does not" in line]
