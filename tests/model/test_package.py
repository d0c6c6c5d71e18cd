from __future__ import annotations

import json
from pathlib import Path

import pytest

from atoll.errors import IntegrityError, PackageError
from atoll.model.package import MANIFEST, read_json, verify_package, write_package


def _package(tmp_path: Path) -> Path:
    directory = tmp_path / "pkg"
    directory.mkdir()
    (directory / "model.bin").write_bytes(b"\x00model bytes")
    write_package(directory, {"name": "m"}, {"state.json": b'{"a": 1}', "sub/x.json": b"[]"})
    return directory


def test_manifest_lists_every_file_with_its_hash(tmp_path: Path) -> None:
    directory = _package(tmp_path)
    manifest = verify_package(directory)
    assert set(manifest["files"]) == {"model.bin", "state.json", "sub/x.json"}
    assert manifest["format_version"] == 1
    assert manifest["name"] == "m"
    assert read_json(directory, "state.json") == {"a": 1}


def test_an_altered_file_is_refused(tmp_path: Path) -> None:
    directory = _package(tmp_path)
    (directory / "state.json").write_bytes(b'{"a": 2}')
    with pytest.raises(IntegrityError, match=r"state\.json .* altered"):
        verify_package(directory)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    directory = _package(tmp_path)
    (directory / "model.bin").unlink()
    with pytest.raises(PackageError, match=r"missing model\.bin"):
        verify_package(directory)


def test_an_unlisted_file_is_refused(tmp_path: Path) -> None:
    directory = _package(tmp_path)
    (directory / "payload.pkl").write_bytes(b"cos\nsystem\n")
    with pytest.raises(PackageError, match=r"unlisted file payload\.pkl"):
        verify_package(directory)


@pytest.mark.parametrize("name", ["../escape.json", "/etc/passwd", "a\\b.json"])
def test_unsafe_names_in_the_manifest_are_refused(tmp_path: Path, name: str) -> None:
    directory = _package(tmp_path)
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"][name] = "0" * 64
    (directory / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="unsafe file name"):
        verify_package(directory)


def test_no_manifest_or_wrong_version_is_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="not a model package"):
        verify_package(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({"format_version": 99, "files": {}}))
    with pytest.raises(PackageError, match="unsupported package format version 99"):
        verify_package(tmp_path)
