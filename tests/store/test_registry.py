from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest

from atoll.errors import (
    IntegrityError,
    NotFoundError,
    PackageError,
    PromotionError,
    RegistryError,
)
from atoll.store.registry import Registry
from atoll.types import InvalidNameError, ModelRef

MakePackage = Callable[..., Path]


def _blobs(registry: Registry) -> list[Path]:
    root = registry.artifacts.root  # type: ignore[attr-defined]
    return [p for p in Path(root).rglob("*") if p.is_file()]


def test_register_allocates_consecutive_versions(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package()
    first = registry.register(package, "churn", summary={"auc": 0.9}, tags={"team": "risk"})
    second = registry.register(package, "churn", status="gate_failed")
    assert (first.version, second.version) == (1, 2)
    assert first.summary == {"auc": 0.9}
    assert first.tags == {"team": "risk"}
    assert first.created_by == "tester"
    assert first.created_at.tzinfo is not None
    assert first.created_at.utcoffset() == UTC.utcoffset(None)
    assert second.status == "gate_failed"
    assert first.manifest_digest == second.manifest_digest
    assert [v.version for v in registry.list_versions("churn")] == [1, 2]


def test_list_models_reports_latest_version_count_and_aliases(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package()
    for name in ("b-model", "a-model", "b-model"):
        registry.register(package, name)
    registry.set_alias("b-model", "production", 1)
    models = registry.list_models()
    assert [m.name for m in models] == ["a-model", "b-model"]
    assert models[1].latest_version == 2
    assert models[1].version_count == 2
    assert models[1].aliases == {"production": 1}
    assert models[0].aliases == {}


def test_get_version_by_alias_number_and_bare_name(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package()
    for _ in range(3):
        registry.register(package, "m")
    registry.set_alias("m", "production", 2)
    registry.set_alias("m", "staging", 3)
    assert registry.get_version("m").version == 2
    assert registry.get_version("m@production").version == 2
    assert registry.get_version("m@staging").version == 3
    assert registry.get_version("m@1").version == 1
    assert registry.get_version(ModelRef("m", version=3)).aliases == ["staging"]


def test_unknown_model_alias_and_version_are_not_found(
    registry: Registry, make_package: MakePackage
) -> None:
    with pytest.raises(NotFoundError, match="model 'ghost' is not registered"):
        registry.get_version("ghost")
    with pytest.raises(NotFoundError, match="ghost"):
        registry.list_versions("ghost")
    registry.register(make_package(), "m")
    with pytest.raises(NotFoundError, match=r"no alias 'production' \(its aliases: none yet\)"):
        registry.get_version("m")
    registry.set_alias("m", "staging", 1)
    with pytest.raises(NotFoundError, match=r"no alias 'prod' \(its aliases: staging -> 1\)"):
        registry.get_version("m@prod")
    with pytest.raises(NotFoundError, match="no version 7: the latest is 1"):
        registry.get_version("m@7")
    with pytest.raises(NotFoundError, match="no version 7"):
        registry.set_alias("m", "production", 7)


def test_invalid_names_are_refused_before_anything_is_touched(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package()
    for bad in ("../etc", "a/b", "", "x" * 200):
        with pytest.raises(InvalidNameError):
            registry.register(package, bad)
    with pytest.raises(InvalidNameError):
        registry.set_alias("m", "1st", 1)
    assert registry.list_models() == []
    assert _blobs(registry) == []


def test_set_alias_refuses_a_gate_failed_version_unless_forced(
    registry: Registry, make_package: MakePackage
) -> None:
    registry.register(make_package(), "m", status="gate_failed")
    with pytest.raises(PromotionError, match="failed its gates"):
        registry.set_alias("m", "production", 1)
    with pytest.raises(NotFoundError):
        registry.get_version("m")
    moved = registry.set_alias("m", "production", 1, force=True)
    assert moved.aliases == ["production"]
    entry = registry.audit_log("m", limit=1)[0]
    assert entry.action == "set_alias"
    assert entry.actor == "tester"
    assert entry.detail == {"alias": "production", "from": None, "to": 1, "forced": True}


def test_alias_moves_are_audited_and_rollback_undoes_them_in_turn(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package()
    for _ in range(3):
        registry.register(package, "m")
    for version in (1, 2, 3):
        registry.set_alias("m", "production", version)
    registry.set_alias("m", "staging", 3)
    assert registry.audit_log("m", limit=2)[1].detail == {
        "alias": "production",
        "from": 2,
        "to": 3,
        "forced": False,
    }
    assert registry.rollback("m").version == 2
    assert registry.audit_log("m", limit=1)[0].action == "rollback"
    assert registry.rollback("m", "production").version == 1
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback("m")
    assert registry.get_version("m").version == 1
    assert registry.get_version("m@staging").version == 3


def test_rollback_after_a_new_move_undoes_that_move(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package()
    for _ in range(3):
        registry.register(package, "m")
    registry.set_alias("m", "production", 1)
    registry.set_alias("m", "production", 2)
    assert registry.rollback("m").version == 1
    registry.set_alias("m", "production", 3)
    assert registry.rollback("m").version == 1


def test_rollback_of_a_missing_alias_is_not_found(
    registry: Registry, make_package: MakePackage
) -> None:
    registry.register(make_package(), "m")
    with pytest.raises(NotFoundError, match="no alias 'production'"):
        registry.rollback("m")
    with pytest.raises(NotFoundError):
        registry.rollback("ghost")


def test_setting_an_alias_to_where_it_points_is_not_a_move(
    registry: Registry, make_package: MakePackage
) -> None:
    registry.register(make_package(), "m")
    registry.set_alias("m", "production", 1)
    registry.set_alias("m", "production", 1)
    moves = [e for e in registry.audit_log("m") if e.action == "set_alias"]
    assert len(moves) == 1


def test_tags_can_be_set_overwritten_and_removed_with_audit(
    registry: Registry, make_package: MakePackage
) -> None:
    registry.register(make_package(), "m", tags={"team": "risk"})
    info = registry.set_tags("m", 1, {"team": "fraud", "ticket": "ML-7"})
    assert info.tags == {"team": "fraud", "ticket": "ML-7"}
    assert registry.remove_tag("m", 1, "ticket").tags == {"team": "fraud"}
    with pytest.raises(NotFoundError, match="no tag 'ticket'"):
        registry.remove_tag("m", 1, "ticket")
    with pytest.raises(RegistryError, match="string value"):
        registry.set_tags("m", 1, {"n": 3})  # type: ignore[dict-item]
    actions = [e.action for e in registry.audit_log("m")]
    assert actions == ["remove_tag", "set_tags", "register"]
    assert registry.audit_log("m")[1].detail == {
        "version": 1,
        "tags": {"team": "fraud", "ticket": "ML-7"},
    }


def test_audit_log_filters_by_model_and_limits(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package()
    registry.register(package, "a")
    registry.register(package, "b")
    registry.register(package, "a")
    assert [e.model for e in registry.audit_log()] == ["a", "b", "a"]
    assert [e.detail["version"] for e in registry.audit_log("a")] == [2, 1]
    assert len(registry.audit_log(limit=1)) == 1
    assert registry.audit_log("nobody") == []


def test_summary_is_stored_as_json_with_non_finite_numbers_as_null(
    registry: Registry, make_package: MakePackage
) -> None:
    info = registry.register(make_package(), "m", summary={"auc": float("nan"), "n": [1, 2.5]})
    assert info.summary == {"auc": None, "n": [1, 2.5]}
    with pytest.raises(RegistryError, match="JSON"):
        registry.register(make_package(), "m", summary={"bad": object()})
    with pytest.raises(RegistryError, match="unknown status"):
        registry.register(make_package(), "m", status="great")
    assert [v.version for v in registry.list_versions("m")] == [1]


def test_a_tampered_package_file_is_refused_and_nothing_is_registered(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package()
    (package / "steps" / "scaler.json").write_bytes(b'{"mean": [666]}')
    with pytest.raises(IntegrityError, match=r"steps/scaler\.json") as info:
        registry.register(package, "m")
    assert info.value.context["file"] == "steps/scaler.json"
    assert registry.list_models() == []
    assert registry.audit_log() == []
    assert _blobs(registry) == []


UNSAFE_NAMES = ["../outside.txt", "/etc/passwd", "a\\b.txt", "./model.txt", "a//b", "MANIFEST.json"]


@pytest.mark.parametrize("bad_name", UNSAFE_NAMES)
def test_unsafe_paths_in_a_manifest_are_refused(
    registry: Registry, make_package: MakePackage, bad_name: str
) -> None:
    package = make_package()
    manifest = json.loads((package / "MANIFEST.json").read_text())
    manifest["files"][bad_name] = "0" * 64
    (package / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="unsafe file name"):
        registry.register(package, "m")
    assert registry.list_models() == []


def test_a_directory_without_manifest_is_not_a_package(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackageError, match=r"no readable MANIFEST\.json"):
        registry.register(tmp_path / "empty", "m")


def test_fetch_package_materialises_a_verified_copy(
    registry: Registry, make_package: MakePackage
) -> None:
    package = make_package()
    info = registry.register(package, "m")
    registry.set_alias("m", "production", 1)
    fetched = registry.fetch_package("m")
    assert fetched.name == info.manifest_digest
    assert fetched.parent == registry.cache_root
    for relative in ("MANIFEST.json", "model.txt", "steps/scaler.json"):
        assert (fetched / relative).read_bytes() == (package / relative).read_bytes()
    assert registry.fetch_package("m@1") == fetched  # the cached copy, re-verified
    assert not [p for p in registry.cache_root.iterdir() if p.name.startswith(".")]


def test_a_tampered_blob_is_refused_by_fetch_package(
    registry: Registry, make_package: MakePackage
) -> None:
    registry.register(make_package(), "m")
    digest = json.loads((make_package() / "MANIFEST.json").read_text())["files"]["model.txt"]
    blob = registry.artifacts.root / digest[:2] / digest[2:]  # type: ignore[attr-defined]
    blob.chmod(0o644)
    blob.write_bytes(b"tree 0: leaf=99\n")
    with pytest.raises(IntegrityError, match=r"model\.txt"):
        registry.fetch_package("m@1")
    assert not registry.cache_root.exists() or list(registry.cache_root.iterdir()) == []


@pytest.mark.parametrize("attack", ["alter", "remove", "add"])
def test_a_tampered_cache_copy_is_detected(
    registry: Registry, make_package: MakePackage, attack: str
) -> None:
    registry.register(make_package(), "m")
    fetched = registry.fetch_package("m@1")
    target = fetched / "model.txt"
    if attack == "alter":
        target.write_bytes(b"tree 0: leaf=99\n")
    elif attack == "remove":
        target.unlink()
    else:
        (fetched / "steps" / "extra.py").write_text("import os\n")
    with pytest.raises(IntegrityError):
        registry.fetch_package("m@1")


def test_versions_survive_reopening(
    store_url: str, tmp_path: Path, make_package: MakePackage
) -> None:
    with Registry.open(store_url, tmp_path / "artifacts", actor="one") as first:
        first.register(make_package(), "m")
    with Registry.open(store_url, tmp_path / "artifacts", actor="two") as second:
        info = second.register(make_package(), "m")
        assert info.version == 2
        assert [v.created_by for v in second.list_versions("m")] == ["one", "two"]
        assert second.fetch_package("m@1").is_dir()
