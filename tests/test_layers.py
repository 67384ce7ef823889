"""Layers point down: each module imports only from layers below it.

The layers, bottom first (DESIGN.md): errors and values; sans-I/O codecs;
conversations and the engine; families; sources; the pure detector and
tracker; the monitor; outputs; config; the command line.  Checked on the
import statements themselves, so a module that imports upwards fails here
even if nothing calls it yet.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from conftest import ROOT

PACKAGE = ROOT / "whitegoodsd"

# What a module in each place may import from whitegoodsd (prefixes).
ALLOWED = {
    "whitegoodsd.errors": set(),
    "whitegoodsd.status": {"whitegoodsd.errors"},
    "whitegoodsd.cycle": {"whitegoodsd.status"},
    "whitegoodsd.detector": {"whitegoodsd.cycle", "whitegoodsd.status"},
    "whitegoodsd.conversation": set(),
    "whitegoodsd.protocols": {"whitegoodsd.errors", "whitegoodsd.conversation",
                              "whitegoodsd.protocols"},
    "whitegoodsd.engine": {"whitegoodsd.errors", "whitegoodsd.conversation"},
    "whitegoodsd.notices": {"whitegoodsd.status"},
    "whitegoodsd.tracker": {"whitegoodsd.notices", "whitegoodsd.detector", "whitegoodsd.errors",
                            "whitegoodsd.status"},
}  # fmt: skip


def imports(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "whitegoodsd":
            found.update(f"whitegoodsd.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("whitegoodsd")}


def module_files() -> list[tuple[str, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT)
        name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        out.append((name, str(relative)))
    return out


@pytest.mark.parametrize(
    ("name", "path"),
    [(n, p) for n, p in module_files() if any(n.startswith(k) for k in ALLOWED)],
    ids=lambda v: v,
)
def test_a_lower_layer_imports_nothing_above_it(name: str, path: str) -> None:
    layer = max((k for k in ALLOWED if name.startswith(k)), key=len)
    allowed = ALLOWED[layer]
    upward = {m for m in imports(path) if not any(m.startswith(a) for a in allowed)}
    assert upward == set(), f"{path} imports {sorted(upward)}"


def test_the_detector_loads_no_asyncio() -> None:
    code = "import sys, whitegoodsd.detector, whitegoodsd.tracker; print('asyncio' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_the_daemon_loads_no_subcommand_module() -> None:
    code = (
        "import sys\n"
        "from whitegoodsd import cli\n"
        "cli.build_parser().parse_args(['-c', 'x.ini', '--check-config'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[-1] in "
        "('demo', 'discover', 'command', 'serve')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
