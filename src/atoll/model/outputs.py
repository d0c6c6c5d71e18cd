"""What a prediction looks like in the prediction log: one plain dict per row.

Kept apart from the predictor (and free of numpy and pandas) so that the log
process, which only writes records, starts without loading the model stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def output_records(
    labels: Sequence[Any], probabilities: Iterable[Sequence[float]] | None, classes: Sequence[Any]
) -> list[dict[str, Any]]:
    """The per-row output dicts every prediction log stores, from plain Python values.

    One definition for the server, its log process and batch scoring, so a
    prediction is logged the same whichever of them logged it.
    """
    if probabilities is None:
        return [{"prediction": label} for label in labels]
    keys = [str(c) for c in classes]
    return [
        {"prediction": label, "probabilities": dict(zip(keys, row, strict=True))}
        for label, row in zip(labels, probabilities, strict=True)
    ]
