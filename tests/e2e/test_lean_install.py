"""The lean install (``atoll[serve-lite]``) serves an ONNX package without scikit-learn.

A fresh virtual environment gets the lean serving core and ONNX Runtime, built
by pip from this checkout; the project it serves is trained and compressed
here, with the full install, as a small container's image build would do. pip
needs PyPI (or its cache) for the lean environment's packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from atoll import api
from atoll.model.predictor import Prediction
from tests.serve.running import Project, Server, free_port, make_project, wait_ready

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "sklearn", "scipy", "pyarrow", "lightgbm", "skops", "onnx", "skl2onnx", "dask")
"""Libraries of ``atoll[full]`` that the lean install must not bring."""
INSTALL_TIMEOUT_S = 900
ENV = {k: v for k, v in os.environ.items() if not k.startswith("ATOLL_")}
"""The lean commands use the project's own store, whatever the caller's environment says."""


def source_copy(target: Path) -> Path:
    """The files pip builds atoll from, copied: a build in the checkout would leave build/ there."""
    shutil.copytree(
        REPO / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, target / name)
    return target


def lean_venv(root: Path) -> Path:
    """A fresh venv holding ``atoll[serve-lite]`` and nothing else; returns its bin/ folder."""
    source = source_copy(root / "source")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    result = subprocess.run(
        [*pip, f"{source}[serve-lite]"],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        check=False,
    )
    assert result.returncode == 0, f"pip install failed:\n{result.stdout}\n{result.stderr}"
    return venv / "bin"


@pytest.mark.slow
def test_lean_install_serves_an_onnx_package_without_scikit_learn(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", gates=[])
    compressed = api.compress(f"{project.name}@production", settings=project.settings)
    assert compressed.version is not None
    child = f"{project.name}@{compressed.version.version}"
    api.promote(child, settings=project.settings)
    native = api.load(child, settings=project.settings)
    assert native.manifest["model"]["format"] == "onnx"
    rows = api.demo_request_rows(project.root, 200)  # past every small-input shortcut
    expected = native.predict(rows)

    bin_dir = lean_venv(tmp_path / "lean")
    try:
        no_sklearn = subprocess.run(
            [str(bin_dir / "python"), "-c", "import sklearn"], capture_output=True, text=True
        )
        assert no_sklearn.returncode != 0
        assert "No module named 'sklearn'" in no_sklearn.stderr
        found = subprocess.run(
            [str(bin_dir / "python"), "-c", _FIND_SPECS],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert found == [], f"the lean install brought {found}"
        _serve_and_compare(project, bin_dir / "atoll", rows, expected, compressed.version.version)
        _commands_name_their_extra(project, bin_dir / "atoll")
    finally:
        shutil.rmtree(tmp_path / "lean", ignore_errors=True)  # ~400 MB


_FIND_SPECS = (
    "import importlib.util as u; "
    f"print(' '.join(m for m in {HEAVY!r} if u.find_spec(m) is not None))"
)


def _serve_and_compare(
    project: Project, atoll: Path, rows: list[dict[str, Any]], expected: Prediction, version: int
) -> None:
    """Serve the project with the lean venv's ``atoll``; its answers match the full install's."""
    assert expected.probabilities is not None
    port = free_port()
    log_path = project.root / "lean-server.log"
    command = [str(atoll), "-C", str(project.root), "serve", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=ENV)
    server = Server(project, process, port, log_path)
    try:
        wait_ready(server)
        predictions = []
        for batch in (rows[:5], rows[5:]):  # a few rows, then many
            response = server.client.post(
                f"/v1/models/{project.name}/predict", json={"instances": batch}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["version"] == version
            predictions += body["predictions"]
        served = np.array(
            [[p["probabilities"][str(c)] for c in expected.classes] for p in predictions]
        )
        np.testing.assert_allclose(served, expected.probabilities, rtol=0, atol=1e-6)
        labels = [p["prediction"] for p in predictions]
        assert labels == expected.predictions.tolist()

        docs = server.client.get("/docs")  # Swagger UI ships inside atoll
        assert docs.status_code == 200
        assert server.client.get("/docs/static/swagger-ui-bundle.js").status_code == 200

        csv = server.client.post(
            "/invocations", content=b"age\n30\n", headers={"Content-Type": "text/csv"}
        )
        assert csv.status_code == 415, csv.text
        assert "atoll[arrow]" in csv.text
    finally:
        code = server.stop()
    assert "Traceback" not in server.log()
    assert code == 0, server.log()


def _commands_name_their_extra(project: Project, atoll: Path) -> None:
    """What the lean install cannot do fails with the extra to install, not a traceback."""
    data = str(project.root / "data" / "applications.csv")
    refused = (
        (["train"], "full"),
        (["validate", data], "arrow"),
        (["monitor", "check", project.name], "full"),
    )
    for args, extra in refused:
        done = subprocess.run(
            [str(atoll), "-C", str(project.root), *args], capture_output=True, text=True, env=ENV
        )
        assert done.returncode == 1, done.stderr
        assert f"pip install 'atoll[{extra}]'" in done.stderr
        assert "Traceback" not in done.stderr
    native = f"{project.name}@1"  # LightGBM's own format: the lean server refuses to start
    served = subprocess.run(
        [str(atoll), "-C", str(project.root), "serve", "-m", native, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert served.returncode != 0
    assert "lightgbm is not installed; install it with: pip install 'atoll[full]'" in (
        served.stdout + served.stderr
    )
