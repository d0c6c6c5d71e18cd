"""Optional libraries: which pip extra brings each, and a clear error when one is missing.

The base install is the lean serving core: it validates, wrangles and serves,
but brings no scikit-learn, SciPy, LightGBM or pyarrow (``atoll[serve-lite]``
adds ONNX Runtime, ``atoll[full]`` everything). A command that needs a library
the install lacks checks for it on entry and raises
:class:`~atoll.errors.MissingDependencyError` naming the extra, instead of an
``ImportError`` from deep inside a run.
"""

from __future__ import annotations

import importlib.util

from atoll.errors import MissingDependencyError

LIBRARIES: dict[str, tuple[str, str]] = {
    "pandas": ("pandas", "full"),
    "sklearn": ("scikit-learn", "full"),
    "scipy": ("scipy", "full"),
    "skops": ("skops", "full"),
    "fairlearn": ("fairlearn", "full"),
    "lightgbm": ("lightgbm", "full"),
    "onnx": ("onnx", "full"),
    "onnxmltools": ("onnxmltools", "full"),
    "skl2onnx": ("skl2onnx", "full"),
    "dask": ("dask", "full"),
    "distributed": ("distributed", "full"),
    "onnxruntime": ("onnxruntime", "serve-lite"),
    "pyarrow": ("pyarrow", "arrow"),
    "zstandard": ("zstandard", "zstd"),
    "xgboost": ("xgboost-cpu", "xgboost"),
    "psycopg": ("psycopg", "postgres"),
}
"""Import name -> (pip distribution, the atoll extra that installs it)."""

TRAINING = ("pandas", "sklearn", "scipy", "skops", "fairlearn", "pyarrow")
"""What every training run needs: splits and metrics, the skops format, fairness, the hold-out."""

COMPRESSING = (
    "pandas",
    "sklearn",
    "pyarrow",
    "onnx",
    "onnxruntime",
    "onnxmltools",
    "skl2onnx",
    "zstandard",
)
"""What ``atoll compress`` needs: metrics, the hold-out, ONNX export and runtime, archive sizes."""

MONITORING = ("pandas", "scipy")
"""What monitoring reports need: the logged window as a frame, and the drift statistics."""


def require(*modules: str) -> None:
    """Raise for the first of ``modules`` (import names) that is not installed.

    The modules are found, not imported, so a check costs no import time.

    Raises:
        MissingDependencyError: naming the distribution and the extra to install.
    """
    for module in modules:
        if importlib.util.find_spec(module) is None:
            distribution, extra = LIBRARIES.get(module, (module, "full"))
            raise MissingDependencyError(distribution, extra)
