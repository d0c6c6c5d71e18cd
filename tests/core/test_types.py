"""ModelRef parsing, the name and alias allow-lists, and the small enums."""

from __future__ import annotations

import pytest

from atoll.errors import AtollError
from atoll.types import (
    ColumnType,
    InvalidNameError,
    ModelRef,
    Task,
    check_alias,
    check_model_name,
)


def test_bare_name() -> None:
    ref = ModelRef.parse("credit-risk")
    assert ref == ModelRef("credit-risk")
    assert ref.alias is None
    assert ref.version is None


def test_name_with_alias() -> None:
    ref = ModelRef.parse("credit-risk@production")
    assert ref.name == "credit-risk"
    assert ref.alias == "production"
    assert ref.version is None


def test_name_with_version() -> None:
    ref = ModelRef.parse("credit-risk@3")
    assert ref.name == "credit-risk"
    assert ref.version == 3
    assert isinstance(ref.version, int)
    assert ref.alias is None


def test_large_version() -> None:
    assert ModelRef.parse("m@1234567").version == 1234567


def test_leading_zeros_read_as_the_version_number() -> None:
    assert ModelRef.parse("m@007") == ModelRef("m", version=7)


@pytest.mark.parametrize(
    "text",
    ["m", "m@production", "m@staging", "m@3", "model_v2.1@canary-b", "a", "9lives@x9"],
)
def test_str_round_trips(text: str) -> None:
    ref = ModelRef.parse(text)
    assert str(ref) == text
    assert ModelRef.parse(str(ref)) == ref


def test_str_of_constructed_refs() -> None:
    assert str(ModelRef("m")) == "m"
    assert str(ModelRef("m", alias="prod")) == "m@prod"
    assert str(ModelRef("m", version=12)) == "m@12"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "../x",
        "a/b",
        "a\\b",
        "..",
        ".hidden",
        "-dash",
        "_under",
        "has space",
        "tab\tname",
        "né",
        "x" * 129,
        "@production",
        "@3",
    ],
)
def test_invalid_names_are_refused(text: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid model name"):
        ModelRef.parse(text)


@pytest.mark.parametrize("selector", ["0", "00", "-1", "-3", "3a", "1.5", "+2", "_x", ".x", "a b"])
def test_invalid_selectors_are_refused(selector: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid alias"):
        ModelRef.parse(f"m@{selector}")


def test_second_at_sign_is_refused() -> None:
    with pytest.raises(InvalidNameError):
        ModelRef.parse("m@prod@3")


def test_alias_can_never_look_like_a_version() -> None:
    # a selector starting with a digit is a version or nothing: never an alias
    with pytest.raises(InvalidNameError):
        check_alias("3")
    with pytest.raises(InvalidNameError):
        check_alias("3rd")
    assert ModelRef.parse("m@3").alias is None


def test_name_length_limit() -> None:
    assert check_model_name("x" * 128) == "x" * 128
    with pytest.raises(InvalidNameError):
        check_model_name("x" * 129)


def test_alias_length_limit() -> None:
    assert check_alias("a" * 64) == "a" * 64
    with pytest.raises(InvalidNameError):
        check_alias("a" * 65)


@pytest.mark.parametrize("name", ["m", "M", "0", "9lives", "a.b", "a_b", "a-b", "v1.2.3-rc_1"])
def test_check_model_name_returns_valid_names(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["", " m", "m ", "m\n", "a/b", "../x", "a:b", "a@b", "é"])
def test_check_model_name_refuses(name: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        check_model_name(name)
    assert info.value.context == {"model": name}
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("alias", ["production", "p", "Staging", "a1", "champion-2", "x.y_z"])
def test_check_alias_returns_valid_aliases(alias: str) -> None:
    assert check_alias(alias) == alias


@pytest.mark.parametrize("alias", ["", "1", "-a", ".a", "_a", "a/b", "a b", "a\n", "a@b"])
def test_check_alias_refuses(alias: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        check_alias(alias)
    assert info.value.context == {"alias": alias}


def test_invalid_name_error_is_a_value_error_and_an_atoll_error() -> None:
    with pytest.raises(ValueError):
        check_model_name("a/b")
    with pytest.raises(AtollError):
        check_alias("9")


def test_model_ref_is_frozen_and_hashable() -> None:
    ref = ModelRef.parse("m@2")
    with pytest.raises(AttributeError):
        ref.version = 3  # type: ignore[misc]
    assert {ref, ModelRef("m", version=2)} == {ref}


def test_task_classification() -> None:
    assert Task.BINARY.is_classification
    assert Task.MULTICLASS.is_classification
    assert not Task.REGRESSION.is_classification
    assert Task("binary") is Task.BINARY


def test_column_type_kinds() -> None:
    assert {t for t in ColumnType if t.is_numeric} == {
        ColumnType.FLOAT,
        ColumnType.INT,
        ColumnType.BOOL,
    }
    assert ColumnType.BOOL.profile_kind == "numeric"
    assert ColumnType.DATETIME.profile_kind == "datetime"
    assert ColumnType.CATEGORY.profile_kind == "categorical"
    assert ColumnType.STRING.profile_kind == "categorical"


@pytest.mark.parametrize("text", ["m\n", "m@prod\n", "m@3\n", "m\n@prod"])
def test_trailing_newline_is_refused(text: str) -> None:
    # ``$`` alone would match before a final newline: names must match in full
    with pytest.raises(InvalidNameError):
        ModelRef.parse(text)


@pytest.mark.parametrize("selector", ["\u00b3", "\u0663", "\uff11"])
def test_non_ascii_digits_are_not_versions(selector: str) -> None:
    with pytest.raises(InvalidNameError, match="invalid alias"):
        ModelRef.parse(f"m@{selector}")


def test_empty_selector_is_refused() -> None:
    # a dangling '@' is a typo, not a request for the default alias
    with pytest.raises(InvalidNameError, match="invalid alias"):
        ModelRef.parse("m@")
