"""What a model's thread does with one batch: predict, check the output, split it back.

A batch that fails validation is predicted again request by request, so each
request learns only its own problems (with its own row numbers) and the valid
requests stacked beside a bad one still get their answers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from atoll.errors import SchemaError
from atoll.model.predictor import Prediction, Predictor
from atoll.serve.batching import Columns, RunBatch
from atoll.serve.errors import InvalidOutput

log = logging.getLogger("atoll.serve")

PROBABILITY_TOLERANCE = 1e-6


def predictor_runner(predictor: Predictor, label: str) -> RunBatch[Prediction]:
    """The batch function of one served version (``label`` names it in incident logs)."""

    def run(columns: Columns, counts: list[int]) -> list[Prediction | BaseException]:
        try:
            prediction = _checked(predictor.predict(columns), label)
        except SchemaError as error:
            if len(counts) == 1:
                return [error]
            return [_alone(predictor, part, label) for part in _parts(columns, counts)]
        except InvalidOutput as error:
            return [error] * len(counts)
        return split(prediction, counts)

    return run


def split(prediction: Prediction, counts: Sequence[int]) -> list[Prediction | BaseException]:
    """One prediction per request, by row counts, in order."""
    if len(counts) == 1:
        return [prediction]
    out: list[Prediction | BaseException] = []
    start = 0
    for count in counts:
        stop = start + count
        probabilities = prediction.probabilities
        out.append(
            Prediction(
                prediction.predictions[start:stop],
                None if probabilities is None else probabilities[start:stop],
                prediction.classes,
            )
        )
        start = stop
    return out


def check_output(prediction: Prediction) -> str | None:
    """Why an output must not be sent (None when it is sound)."""
    probabilities = prediction.probabilities
    if probabilities is None:
        values = np.asarray(prediction.predictions)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            return "non-finite predicted values"
        return None
    if not np.isfinite(probabilities).all():
        return "non-finite probabilities"
    if (probabilities < -PROBABILITY_TOLERANCE).any() or (
        probabilities > 1 + PROBABILITY_TOLERANCE
    ).any():
        return "probabilities outside [0, 1]"
    if (np.abs(probabilities.sum(axis=1) - 1.0) > PROBABILITY_TOLERANCE * 100).any():
        return "probabilities that do not sum to 1"
    return None


def _checked(prediction: Prediction, label: str) -> Prediction:
    problem = check_output(prediction)
    if problem is not None:
        log.error("incident: %s produced %s; the answer was not sent", label, problem)
        raise InvalidOutput(f"the model produced {problem}; the answer was withheld")
    return prediction


def _alone(predictor: Predictor, columns: Columns, label: str) -> Prediction | BaseException:
    try:
        return _checked(predictor.predict(columns), label)
    except (SchemaError, InvalidOutput) as error:
        return error


def _parts(columns: Columns, counts: Sequence[int]) -> list[Columns]:
    parts, start = [], 0
    for count in counts:
        parts.append({name: values[start : start + count] for name, values in columns.items()})
        start += count
    return parts
