"""Signed packages: HMAC over the manifest, checked wherever a key is set, never shown."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from atoll import api
from atoll.errors import AtollError, IntegrityError
from atoll.model.package import MANIFEST, sign_package, verify_package, write_package
from atoll.model.predictor import Predictor
from atoll.model.signing import signature_of
from atoll.settings import Settings
from atoll.store.registry import Registry
from tests.conftest import write_demo_project

KEY = b"k" * 32
OTHER = b"o" * 32
FILES = {"state.json": b'{"a": 1}', "sub/x.json": b"[]"}


def _manifest(directory: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((directory / MANIFEST).read_bytes())
    return loaded


def _rewrite(directory: Path, manifest: dict[str, object]) -> None:
    (directory / MANIFEST).write_text(json.dumps(manifest))


def test_a_signed_package_verifies_with_its_key(tmp_path: Path) -> None:
    written = write_package(tmp_path / "p", {"name": "m"}, FILES, signing_key=KEY)
    assert str(written["signature"]).startswith("hmac-sha256:")
    assert verify_package(tmp_path / "p", signing_key=KEY) == written
    # Formatting is not content: a re-indented manifest still verifies.
    _rewrite(tmp_path / "p", _manifest(tmp_path / "p"))
    verify_package(tmp_path / "p", signing_key=KEY)


def test_with_a_key_an_unsigned_package_is_refused_and_named(tmp_path: Path) -> None:
    write_package(tmp_path / "p", {"name": "m"}, FILES)
    with pytest.raises(IntegrityError, match=rf"package {tmp_path / 'p'} is not signed"):
        verify_package(tmp_path / "p", signing_key=KEY)


def test_another_key_or_an_edited_manifest_is_refused(tmp_path: Path) -> None:
    write_package(tmp_path / "p", {"name": "m", "metrics": {"auc": 0.7}}, FILES, signing_key=KEY)
    with pytest.raises(IntegrityError, match="does not match the signing key"):
        verify_package(tmp_path / "p", signing_key=OTHER)
    manifest = _manifest(tmp_path / "p")
    manifest["metrics"] = {"auc": 0.99}  # every file still matches its hash
    _rewrite(tmp_path / "p", manifest)
    with pytest.raises(IntegrityError, match="does not match the signing key"):
        verify_package(tmp_path / "p", signing_key=KEY)


def test_without_a_key_signatures_are_not_checked(tmp_path: Path) -> None:
    write_package(tmp_path / "p", {"name": "m"}, FILES, signing_key=KEY)
    manifest = _manifest(tmp_path / "p")
    manifest["signature"] = "hmac-sha256:" + "0" * 64
    _rewrite(tmp_path / "p", manifest)
    assert verify_package(tmp_path / "p")["name"] == "m"


def test_a_copied_signature_is_dropped_and_sign_package_signs(tmp_path: Path) -> None:
    parent = write_package(tmp_path / "parent", {"name": "m"}, FILES, signing_key=KEY)
    child = write_package(tmp_path / "child", {**parent, "name": "child"}, FILES)
    assert "signature" not in child
    signed = sign_package(tmp_path / "child", KEY)
    assert verify_package(tmp_path / "child", signing_key=KEY) == signed


def test_the_manifest_bytes_given_are_the_ones_verified(tmp_path: Path) -> None:
    """A caller that read MANIFEST.json once has exactly those bytes checked, not a re-read."""
    write_package(tmp_path / "p", {"name": "m"}, FILES, signing_key=KEY)
    signed = (tmp_path / "p" / MANIFEST).read_bytes()
    unsigned = _manifest(tmp_path / "p")
    del unsigned["signature"]
    _rewrite(tmp_path / "p", unsigned)  # the file changes after the caller's read
    assert verify_package(tmp_path / "p", signing_key=KEY, manifest_bytes=signed)["signature"]
    with pytest.raises(IntegrityError, match="is not signed"):
        verify_package(tmp_path / "p", signing_key=KEY)
    reread = json.dumps(unsigned).encode()
    with pytest.raises(IntegrityError, match="is not signed"):
        verify_package(tmp_path / "p", signing_key=KEY, manifest_bytes=reread)


def test_a_nan_metric_is_signed_and_verifies(tmp_path: Path) -> None:
    """AUC of a one-class holdout is NaN: the canonical JSON writes it the same way each time."""
    manifest = {"name": "m", "metrics": {"auc": float("nan")}}
    written = write_package(tmp_path / "p", manifest, FILES, signing_key=KEY)
    assert signature_of(_manifest(tmp_path / "p"), KEY) == written["signature"]
    assert verify_package(tmp_path / "p", signing_key=KEY)["signature"] == written["signature"]


def test_the_key_comes_from_the_environment_and_never_shows(tmp_path: Path) -> None:
    secret = "correct horse battery staple"
    settings = Settings.from_env(tmp_path, {"ATOLL_SIGNING_KEY": secret})
    assert settings.signing_key == secret.encode()
    assert secret not in repr(settings)
    assert Settings.from_env(tmp_path, {}).signing_key is None
    with pytest.raises(AtollError, match="too short") as info:
        Settings.from_env(tmp_path, {"ATOLL_SIGNING_KEY": "short-key"})
    assert "short-key" not in str(info.value)


def test_a_signed_store_signs_on_train_and_refuses_unsigned_packages(tmp_path: Path) -> None:
    """Train and load with a key; the same store refuses a package without a signature."""
    spec_path = write_demo_project(tmp_path / "project")
    keyless = Settings.from_env(tmp_path / "project", {})
    settings = dataclasses.replace(keyless, signing_key=KEY)
    trained = api.train(spec_path, settings=settings).version
    ref = f"{trained.name}@{trained.version}"
    assert api.load(ref, settings=settings).manifest["signature"].startswith("hmac-sha256:")

    with Registry.from_settings(settings) as registry:
        fetched = registry.fetch_package(ref)
        with pytest.raises(IntegrityError, match="is not signed"):
            registry.register(_unsigned_copy(fetched, tmp_path / "copy"), trained.name)
        assert len(registry.list_versions(trained.name)) == 1

    # A version registered while no key was set is refused on load, named by its ref.
    with Registry.from_settings(keyless) as registry:
        old = registry.register(_unsigned_copy(fetched, tmp_path / "copy2"), trained.name)
    with pytest.raises(
        IntegrityError, match=rf"package {trained.name}@{old.version} is not signed"
    ):
        api.load(f"{trained.name}@{old.version}", settings=settings)
    assert api.load(f"{trained.name}@{old.version}", settings=keyless).name == trained.name
    with pytest.raises(IntegrityError, match="is not signed"):
        Predictor.open(tmp_path / "copy2", signing_key=KEY)
    assert Predictor.open(fetched, signing_key=KEY).name == trained.name


def _unsigned_copy(package: Path, dest: Path) -> Path:
    """The package's files written again with an unsigned manifest."""
    manifest = _manifest(package)
    listed = manifest.pop("files")
    assert isinstance(listed, dict)
    write_package(dest, manifest, {name: (package / name).read_bytes() for name in listed})
    return dest
