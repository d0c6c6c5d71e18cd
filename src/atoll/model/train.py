"""Training: validated rows in, a complete model package on disk out.

validate -> split -> fit wrangling (train part only) -> fit the estimator ->
evaluate and check fairness on the held-out part *through the saved model
file* -> gates -> reference profile -> package. Registration is the store's
job; this module knows nothing of databases.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from atoll._extras import TRAINING, require
from atoll._progress import Stages
from atoll.data.profile import profile_frame, profile_predictions
from atoll.data.split import split_rows
from atoll.data.wrangler import Wrangler
from atoll.errors import DataError, SchemaError, TrainingError
from atoll.model import formats, holdout
from atoll.model.estimators import DEFAULT_PREFIXES, build_estimator
from atoll.model.evaluate import evaluate, feature_importance, headline
from atoll.model.fairness import fairness_report
from atoll.model.gates import GateResult, check_gate_names, check_gates
from atoll.model.lineage import frame_fingerprint, git_commit, library_versions
from atoll.model.package import json_bytes, write_package
from atoll.model.predictor import Predictor, schema_to_manifest
from atoll.types import Role, Task

if TYPE_CHECKING:
    import pandas as pd

    from atoll.schema import ValidationReport
    from atoll.spec import Spec


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced: the package and the verdicts on it."""

    package_dir: Path
    manifest: dict[str, Any]
    evaluation: dict[str, Any]
    gates: list[GateResult]
    predictor: Predictor

    @property
    def passed_gates(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass(frozen=True)
class _Prepared:
    frame: pd.DataFrame
    y: np.ndarray
    classes: list[Any]
    rows: dict[str, int]
    validation: dict[str, Any]


def train_package(
    spec: Spec,
    frame: pd.DataFrame,
    out_dir: Path,
    stages: Stages | None = None,
    source: str = "",
    project_dir: Path | None = None,
    data_fingerprint: str | None = None,
) -> TrainResult:
    """Train the model the spec describes on ``frame`` and write its package to ``out_dir``.

    ``data_fingerprint`` identifies the data for lineage (e.g. the source files'
    hash); without it the rows themselves are hashed.
    """
    stages = stages or Stages()
    check_spec(spec)
    prepared = _validate(spec, frame, stages, source)
    train, test = _split(spec, prepared, stages)
    wrangler, estimator = _fit(spec, prepared, train, stages)
    out_dir.mkdir(parents=True, exist_ok=True)
    with stages.stage("evaluate") as note:
        model_format, model_file = formats.save(estimator, out_dir)
        scorer = formats.load(
            model_format, out_dir / model_file, spec.task, list(spec.allow_imports)
        )
        predictor = Predictor(spec.schema, wrangler, scorer, spec.task, prepared.classes)
        evaluation, scores = _evaluate(spec, predictor, prepared, test, estimator)
        note.text = headline(spec.task.value, evaluation["metrics"])
    gates = check_gates(spec.gates, evaluation["metrics"], evaluation.get("fairness", {}))
    with stages.stage("package") as note:
        files = {
            "wrangler.json": json_bytes(wrangler.to_state()),
            "evaluation.json": json_bytes({**evaluation, "gates": [g.to_dict() for g in gates]}),
            "profile.json": json_bytes(_profile(spec, prepared, train, test, scores)),
            "spec.json": json_bytes(spec.model_dump(mode="json")),
        }
        fingerprint = data_fingerprint or frame_fingerprint(frame)
        lineage = _lineage(spec, prepared, stages, source, project_dir, fingerprint)
        entries = _manifest(spec, prepared, model_format, model_file, evaluation, gates, lineage)
        kept = holdout.holdout_bytes(spec, prepared.frame, test)
        if kept is not None:
            files[holdout.FILE] = kept[0]
            entries["holdout"] = {"file": holdout.FILE, "rows": kept[1]}
        manifest = write_package(out_dir, entries, files)
        note.text = f"{len(manifest['files'])} files"
    return TrainResult(out_dir, manifest, evaluation, gates, predictor)


def check_spec(spec: Spec) -> None:
    """Check everything that needs no data (gates, steps, estimator), so typos fail at once.

    Raises:
        MissingDependencyError: training needs ``atoll[full]`` (the lean serving
            install lacks scikit-learn and the estimator's library).
    """
    library = spec.model.estimator.partition(".")[0]
    require(*TRAINING, *([library] if library in DEFAULT_PREFIXES else []))
    check_gate_names(spec.gates, spec.task, spec.evaluate.metrics, spec.fairness_columns)
    Wrangler.from_spec(spec.features, spec.schema.features, list(spec.allow_imports))
    build_estimator(spec)


def _validate(spec: Spec, frame: pd.DataFrame, stages: Stages, source: str) -> _Prepared:
    with stages.stage("validate") as note:
        result = spec.schema.validate(frame, "train")
        fatal = any(
            v.rule in ("missing_column", "unexpected_column") for v in result.report.violations
        )
        if not result.report.ok and (fatal or spec.data.on_invalid == "abort"):
            raise SchemaError(result.report, source or None)
        valid = result.frame.loc[~result.invalid_rows].reset_index(drop=True)
        if valid.empty:
            raise DataError(f"no valid rows to train on: all {len(frame):,} rows are invalid")
        y, classes = _encode_target(spec, valid[spec.target])
        rows = {"read": len(frame), "invalid": int(result.invalid_rows.sum()), "used": len(valid)}
        note.text = f"{rows['used']:,} rows" + _dropped(result.report)
    return _Prepared(valid, y, classes, rows, result.report.to_dict())


def _dropped(report: ValidationReport) -> str:
    """E.g. ``", 12 dropped (age: min 10, income: type 2)"``; empty when nothing was."""
    if report.ok:
        return ""
    rules = ", ".join(f"{v.column}: {v.rule} {v.count}" for v in report.violations[:4])
    more = ", ..." if len(report.violations) > 4 else ""
    return f", {report.n_invalid_rows:,} dropped ({rules}{more})"


def _encode_target(spec: Spec, target: pd.Series[Any]) -> tuple[np.ndarray, list[Any]]:
    if target.isna().any():
        raise DataError(f"target column {spec.target!r} has {int(target.isna().sum())} null values")
    if not spec.task.is_classification:
        return target.to_numpy(dtype=np.float64), []
    labels, y = np.unique(target.to_numpy(), return_inverse=True)
    classes = [holdout.plain_label(v) for v in labels.tolist()]
    if len(classes) < 2:
        raise DataError(f"target column {spec.target!r} has one class only ({classes[0]!r})")
    if spec.task is Task.BINARY and len(classes) > 2:
        raise DataError(
            f"task is binary but target {spec.target!r} has {len(classes)} classes; "
            "use task: multiclass"
        )
    if spec.task is Task.BINARY and _positive_first(spec, classes):
        return (1 - y).astype(np.int64), classes[::-1]
    return y.astype(np.int64), classes


def _positive_first(spec: Spec, classes: list[Any]) -> bool:
    """Whether the configured positive class sorted first (it must be index 1)."""
    positive = spec.evaluate.positive_class
    if positive is None:
        return False
    matches = [i for i, label in enumerate(classes) if str(label) == str(positive)]
    if not matches:
        raise DataError(
            f"evaluate.positive_class {positive!r} is not a value of target {spec.target!r} "
            f"(its classes: {classes})"
        )
    return matches[0] == 0


def _split(spec: Spec, prepared: _Prepared, stages: Stages) -> tuple[np.ndarray, np.ndarray]:
    with stages.stage("split") as note:
        time = prepared.frame[spec.data.time_column].to_numpy() if spec.data.time_column else None
        stratify = prepared.y if spec.task.is_classification else None
        train, test = split_rows(len(prepared.frame), spec.split, stratify, time)
        note.text = f"{len(train):,} train / {len(test):,} test ({spec.split.method})"
    prepared.rows.update(train=len(train), test=len(test))
    return train, test


def _fit(
    spec: Spec, prepared: _Prepared, train: np.ndarray, stages: Stages
) -> tuple[Wrangler, Any]:
    with stages.stage("wrangle") as note:
        part = prepared.frame.take(train).reset_index(drop=True)
        features = spec.schema.features
        wrangler = Wrangler.from_spec(spec.features, features, list(spec.allow_imports)).fit(part)
        matrix = wrangler.matrix(part)
        note.text = f"{len(features)} columns -> {matrix.shape[1]} features"
    with stages.stage("fit") as note:
        estimator = build_estimator(spec)
        try:
            estimator.fit(matrix, prepared.y[train])
        except Exception as exc:  # any estimator may fail in its own way; name it
            raise TrainingError(f"{spec.model.estimator} failed to fit: {exc}") from exc
        note.text = spec.model.estimator.rsplit(".", 1)[-1]
    return wrangler, estimator


def _evaluate(
    spec: Spec, predictor: Predictor, prepared: _Prepared, test: np.ndarray, estimator: Any
) -> tuple[dict[str, Any], np.ndarray]:
    part = prepared.frame.take(test).reset_index(drop=True)
    try:
        scores = predictor.scorer.scores(predictor.wrangler.matrix(part))
    except Exception as exc:  # a fitted model that cannot predict is a training failure
        raise TrainingError(f"{spec.model.estimator} failed to predict: {exc}") from exc
    y_true = prepared.y[test]
    proba = scores if spec.task.is_classification else None
    y_pred = np.argmax(scores, axis=1) if proba is not None else scores
    report = evaluate(spec.task.value, y_true, y_pred, proba, prepared.classes)
    report["feature_importance"] = feature_importance(estimator, predictor.wrangler.feature_names_)
    sensitive = {c: part[c].to_numpy() for c in spec.fairness_columns}
    if sensitive:
        report["fairness"] = fairness_report(spec.task.value, y_true, y_pred, sensitive)
    return report, scores


def _profile(
    spec: Spec, prepared: _Prepared, train: np.ndarray, test: np.ndarray, scores: np.ndarray
) -> dict[str, Any]:
    schema = spec.schema
    kinds = {
        n: c.type.profile_kind
        for n, c in schema.columns.items()
        if not c.pii and c.role is not Role.ID  # personal data and row ids are no distribution
    }
    part = prepared.frame.take(train)[list(kinds)]
    proba = scores if spec.task.is_classification else None
    predictions = np.argmax(scores, axis=1) if proba is not None else scores
    return {
        "inputs": profile_frame(part, kinds),
        "predictions": profile_predictions(spec.task.value, predictions, proba, prepared.classes),
        "rows": {"inputs": len(train), "predictions": len(test)},
    }


def _lineage(
    spec: Spec,
    prepared: _Prepared,
    stages: Stages,
    source: str,
    project_dir: Path | None,
    fingerprint: str,
) -> dict[str, Any]:
    return {
        "data_fingerprint": fingerprint,
        "data_source": source,
        "spec_digest": spec.digest,
        "git_commit": git_commit(project_dir) if project_dir else None,
        "libraries": library_versions(),
        "rows": prepared.rows,
        "validation": prepared.validation,
        "timings": dict(stages.timings),
    }


def _manifest(
    spec: Spec,
    prepared: _Prepared,
    model_format: str,
    model_file: str,
    evaluation: dict[str, Any],
    gates: list[GateResult],
    lineage: dict[str, Any],
) -> dict[str, Any]:
    return {
        "name": spec.name,
        "task": spec.task.value,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "input_schema": schema_to_manifest(spec.schema),
        "output_schema": _output_schema(spec, prepared.classes),
        "classes": prepared.classes,
        "model": {"format": model_format, "file": model_file, "estimator": spec.model.estimator},
        "wrangler": "wrangler.json",
        "profile": "profile.json",
        "evaluation": "evaluation.json",
        "metrics": evaluation["metrics"],
        "gates": {"passed": all(g.passed for g in gates), "results": [g.to_dict() for g in gates]},
        "lineage": lineage,
    }


def _output_schema(spec: Spec, classes: list[Any]) -> dict[str, Any]:
    if not spec.task.is_classification:
        return {"prediction": {"type": "number"}}
    return {"prediction": {"enum": classes}, "probabilities": {"classes": classes}}
