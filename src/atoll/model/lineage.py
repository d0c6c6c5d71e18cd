"""Lineage: what a model was made from, so any version can be explained and rebuilt."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from atoll._hashing import sha256_bytes

if TYPE_CHECKING:
    import pandas as pd

LIBRARIES = (
    "atoll",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "xgboost-cpu",
    "skops",
    "fairlearn",
)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's numbers (the installed ones)."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_commit(directory: Path) -> str | None:
    """The commit checked out in ``directory``, if it is inside a git work tree."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over every value of the frame (and its column names), order-sensitive."""
    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return sha256_bytes("\x1f".join(map(str, frame.columns)).encode() + hashed.tobytes())
