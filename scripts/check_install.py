"""Is this checkout's environment complete? Answered offline, from installed metadata only.

Run with the environment's own Python (``.venv/bin/python scripts/check_install.py``).
Exit 0 and print nothing when everything ``pyproject.toml`` asks for is installed: the
dependencies and the ``test`` extra, each at a version its specifier allows; ``emgfb``
itself installed editable from this folder, from the ``pyproject.toml`` as it is now (a
stamp holds its hash); and ``pip check`` content with every installed package's own
requirements.
Otherwise exit 1 and print one line per missing or stale item. ``install.sh`` calls pip,
and so the network, only then.

``--stamp`` records the current ``pyproject.toml`` after a successful install.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
STAMP = Path(sys.prefix) / "emgfb-pyproject.sha256"
EXTRAS = ("test",)


def _pyproject() -> dict:
    with PYPROJECT.open("rb") as fh:
        return tomllib.load(fh)


def _digest() -> str:
    return hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()


def requirements(project: dict) -> list[str]:
    """Dependencies and the extras' requirements, as written."""
    deps = list(project["project"]["dependencies"])
    for extra in EXTRAS:
        deps += project["project"].get("optional-dependencies", {}).get(extra, [])
    return deps


def problems() -> list[str]:
    """One line per requirement that is missing, at a wrong version or stale."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # a fresh venv: nothing of ours is there yet
        return ["packaging: not installed (a fresh environment)"]
    out = []
    for text in requirements(_pyproject()):
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            out.append(f"{text}: not installed")
            continue
        if not req.specifier.contains(have, prereleases=True):
            out.append(f"{text}: {have} installed")
    try:
        dist = metadata.distribution("emgfb")
    except metadata.PackageNotFoundError:
        return out + ["emgfb: not installed"]
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if not direct.get("dir_info", {}).get("editable") or direct.get("url") != ROOT.as_uri():
        out.append(f"emgfb: not installed editable from {ROOT}")
    if not STAMP.is_file() or STAMP.read_text().strip() != _digest():
        out.append("emgfb: pyproject.toml changed since the last install")
    check = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True,
                           text=True, check=False)
    if check.returncode:
        out += [f"pip check: {line}" for line in check.stdout.splitlines() if line.strip()]
    return out


def main(argv: list[str]) -> int:
    if argv == ["--stamp"]:
        STAMP.write_text(_digest() + "\n")
        return 0
    found = problems()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
