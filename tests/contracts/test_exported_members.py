from __future__ import annotations

import atoll


def test_all_is_sorted_and_complete() -> None:
    assert atoll.__all__ == sorted(atoll.__all__)
    public = {name for name in atoll.__all__ if not name.startswith("__")}
    assert public == set(atoll._EXPORTS)


def test_every_export_resolves() -> None:
    for name in atoll.__all__:
        assert getattr(atoll, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        atoll.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
