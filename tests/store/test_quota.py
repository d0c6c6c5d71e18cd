"""The store's size quota and a full disk: a write that does not fit stores nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from atoll._sizes import human_bytes, parse_size
from atoll.errors import AtollError, StorageFullError
from atoll.settings import Settings
from atoll.spec import load_project_options
from atoll.store.registry import Registry
from tests.conftest import MakePackage

MODEL = b"tree 0: leaf=0.5 threshold=0.25\n" * 1000  # 32 KB, compresses well


def _blobs(registry: Registry) -> set[str]:
    return {blob.digest for blob in registry.artifacts.blobs()}


def _nothing_left(registry: Registry, blobs_before: set[str]) -> None:
    assert _blobs(registry) == blobs_before
    staging = registry.artifacts.root / ".tmp"  # type: ignore[attr-defined]
    assert not staging.exists() or list(staging.iterdir()) == []


def test_a_package_over_the_quota_is_refused_and_nothing_is_stored(
    store_url: str, tmp_path: Path, make_package: MakePackage
) -> None:
    package = make_package({"model.txt": MODEL, "profile.json": b"{}"})
    with Registry.open(store_url, tmp_path / "artifacts", max_bytes=20_000) as registry:
        with pytest.raises(StorageFullError) as info:
            registry.register(package, "m")
        message = str(info.value)
        assert "quota of 20.0 KB" in message
        assert "holds 0 B" in message
        assert re.search(r"adds 32\.\d KB", message)  # the package's new bytes, manifest included
        assert "nothing was stored" in message
        assert info.value.context["quota_bytes"] == 20_000
        assert info.value.context["package_bytes"] > len(MODEL)
        assert registry.list_models() == []
        _nothing_left(registry, set())


def test_the_quota_counts_what_is_stored_and_only_new_blobs(
    store_url: str, tmp_path: Path, make_package: MakePackage
) -> None:
    first = make_package({"model.txt": MODEL}, name="first")
    second = make_package({"model.txt": MODEL + b"more"}, name="second")
    with Registry.open(store_url, tmp_path / "artifacts", max_bytes=50_000) as registry:
        registry.register(first, "m")
        before = _blobs(registry)
        with pytest.raises(StorageFullError, match=r"holds 32\.\d KB") as info:
            registry.register(second, "m")
        assert info.value.context["store_bytes"] == registry.artifacts.usage()
        assert [v.version for v in registry.list_versions("m")] == [1]
        _nothing_left(registry, before)
        # The same package again adds no blob, so it fits.
        assert registry.register(first, "m").version == 2
        # Compressed at rest, the second package fits too.
        assert registry.register(second, "m", compress_blobs=True).version == 3
        assert registry.artifacts.usage() <= 50_000


def test_the_quota_comes_from_the_environment_or_the_spec(tmp_path: Path) -> None:
    (tmp_path / "atoll.yaml").write_text("store:\n  max_bytes: 2GiB\n")
    options = load_project_options(tmp_path / "atoll.yaml")
    assert options.store is not None
    assert options.store.max_bytes == 2 * 1024**3
    spec_max = options.store.max_bytes
    assert Settings.from_env(tmp_path, {}, spec_max_bytes=spec_max).store_max_bytes == spec_max
    env = {"ATOLL_STORE_MAX_BYTES": "500MB"}
    assert Settings.from_env(tmp_path, env, spec_max_bytes=spec_max).store_max_bytes == 500 * 10**6
    with pytest.raises(AtollError, match="ATOLL_STORE_MAX_BYTES: 'lots' is not a size"):
        Settings.from_env(tmp_path, {"ATOLL_STORE_MAX_BYTES": "lots"})


@pytest.mark.parametrize(
    ("text", "size"),
    [(1024, 1024), ("1024", 1024), ("1.5 KB", 1500), ("2MiB", 2 * 2**20), (" 3 gb ", 3 * 10**9)],
)
def test_sizes_parse(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-5", "0", "12 parsecs", True, 1.5, None])
def test_bad_sizes_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


def test_sizes_show_in_decimal_units() -> None:
    assert [human_bytes(n) for n in (None, 0, 999, 1000, 453_100, 2 * 10**9)] == [
        "-",
        "0 B",
        "999 B",
        "1.0 KB",
        "453.1 KB",
        "2.0 GB",
    ]


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
from atoll.errors import StorageFullError
from atoll.store.registry import Registry

url, root, package, limit = sys.argv[1:5]
registry = Registry.open(url, Path(root))  # the database exists before the limit
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
try:
    registry.register(Path(package), "m", compress_blobs=sys.argv[5] == "1")
except StorageFullError as exc:
    print(exc)
    sys.exit(0)
sys.exit("registered although no file may grow past the limit")
"""


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "compressed"])
def test_a_full_disk_leaves_no_partial_blob_and_the_registry_unchanged(
    store_url: str, tmp_path: Path, make_package: MakePackage, compress: bool
) -> None:
    """Simulated with a file-size limit: any write past 64 KB fails as on a full disk."""
    big = os.urandom(200_000)  # incompressible: the compressed blob is as large
    package = make_package({"small.json": b"{}", "model.bin": big})
    root = tmp_path / "artifacts"
    args = [store_url, str(root), str(package), str(64 * 1024), "1" if compress else "0"]
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "ran out of space" in done.stdout
    assert "nothing was stored" in done.stdout
    with Registry.open(store_url, root) as registry:
        assert registry.list_models() == []
        _nothing_left(registry, set())
