"""atoll.yaml: parsing, strictness, cross-field checks and errors that say where."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

import atoll
from atoll.errors import SpecError
from atoll.schema import Schema
from atoll.spec import SPEC_FILE, Spec, load_spec, parse_spec
from atoll.types import ColumnType, Role, Task

DEMO_PATH = Path(atoll.__file__).parent / "data" / "demo_spec.yaml"
DEMO_TEXT = DEMO_PATH.read_text(encoding="utf-8")


def demo_dict() -> dict[str, Any]:
    raw = yaml.safe_load(DEMO_TEXT)
    assert isinstance(raw, dict)
    return copy.deepcopy(raw)


def dump(raw: dict[str, Any]) -> str:
    return yaml.safe_dump(raw, sort_keys=False)


def line_of(text: str, fragment: str) -> int:
    """1-based line of the only line of ``text`` containing ``fragment``."""
    hits = [i for i, line in enumerate(text.splitlines(), start=1) if fragment in line]
    assert len(hits) == 1, (fragment, hits)
    return hits[0]


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def problems_of(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    problems = info.value.problems
    assert problems, "a SpecError about content must list its problems"
    for field, line, message in problems:
        assert isinstance(field, str)
        assert line is None or isinstance(line, int)
        assert isinstance(message, str)
    return problems


def only_problem(text: str) -> tuple[str, int | None, str]:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- the valid demo spec ------------------------------------------------------------


def test_demo_spec_parses() -> None:
    spec = parse_spec(DEMO_TEXT)
    assert spec.name == "credit-risk"
    assert spec.task is Task.BINARY
    assert spec.target == "defaulted"
    assert spec.data.path == "data/applications.csv"
    assert spec.data.sql is None
    assert spec.data.time_column == "application_date"
    assert spec.data.on_invalid == "abort"
    assert list(spec.columns)[:3] == ["application_id", "email", "application_date"]
    assert len(spec.columns) == 15
    assert spec.columns["age"].type is ColumnType.INT
    assert spec.columns["age"].min == 18
    assert spec.columns["age"].max == 120
    assert spec.columns["application_id"].role is Role.ID
    assert spec.columns["application_id"].nullable is False
    assert spec.columns["email"].pii is True
    assert spec.columns["term_months"].allowed == ["36", "60"]
    assert spec.columns["purpose"].unknown == "allow"
    assert [s.step for s in spec.features] == ["impute", "log1p", "onehot"]
    assert spec.features[0].columns == ["income", "employment_years", "debt_to_income"]
    assert spec.features[0].params == {"strategy": "median"}
    assert spec.features[1].params == {}
    assert spec.model.estimator == "lightgbm.LGBMClassifier"
    assert spec.model.params == {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 31}
    assert spec.split.method == "time"
    assert spec.split.test_size == pytest.approx(0.2)
    assert spec.split.seed == 0
    assert spec.evaluate.metrics == ["roc_auc", "accuracy", "f1"]
    assert [(g.metric, g.min, g.max, g.column) for g in spec.gates] == [
        ("roc_auc", 0.70, None, None),
        ("demographic_parity_difference", None, 0.10, "sex"),
    ]
    assert spec.sensitive_columns == ["sex"]
    assert spec.fairness_columns == ["sex"]
    assert spec.allow_imports == []


def test_minimal_spec_gets_defaults() -> None:
    text = """
name: m
task: regression
target: y
data: {path: rows.csv}
columns:
  x: {type: float}
  y: {type: float}
model: {estimator: sklearn.linear_model.Ridge}
"""
    spec = parse_spec(text)
    assert spec.split.method == "stratified"
    assert spec.split.test_size == pytest.approx(0.2)
    assert spec.evaluate.metrics == []
    assert spec.evaluate.fairness is None
    assert spec.gates == []
    assert spec.features == []
    assert spec.model.params == {}
    assert spec.data.on_invalid == "abort"


def test_spec_is_frozen() -> None:
    spec = parse_spec(DEMO_TEXT)
    with pytest.raises(ValueError, match="frozen"):
        spec.name = "other"  # type: ignore[misc]


def test_sql_source_parses() -> None:
    raw = demo_dict()
    raw["data"] = {"sql": {"url": "sqlite:///rows.db", "query": "select * from t"}}
    raw["split"] = {"method": "random"}
    spec = parse_spec(dump(raw))
    assert spec.data.path is None
    assert spec.data.sql is not None
    assert spec.data.sql.url == "sqlite:///rows.db"
    assert spec.data.sql.query == "select * from t"


def test_explicit_fairness_columns() -> None:
    raw = demo_dict()
    raw["evaluate"]["fairness"] = ["home_ownership"]
    spec = parse_spec(dump(raw))
    assert spec.fairness_columns == ["home_ownership"]
    assert spec.sensitive_columns == ["sex"]


# --- schema and digest --------------------------------------------------------------


def test_schema_sets_the_target_role() -> None:
    spec = parse_spec(DEMO_TEXT)
    assert spec.columns["defaulted"].role is Role.FEATURE  # as written
    schema = spec.schema
    assert isinstance(schema, Schema)
    assert schema.target == "defaulted"
    assert schema.columns["defaulted"].role is Role.TARGET
    assert schema.columns["defaulted"].type is ColumnType.INT
    assert schema.columns["defaulted"].nullable is False
    assert list(schema.columns) == list(spec.columns)
    assert "defaulted" not in schema.features
    assert "defaulted" not in schema.inputs
    # id, ignored and time columns are not features
    for name in ("application_id", "email", "application_date", "sex"):
        assert name not in schema.features
    assert "age" in schema.features
    assert schema.columns["age"] == spec.columns["age"]


def test_digest_is_stable_across_loads(tmp_path: Path) -> None:
    first = parse_spec(DEMO_TEXT)
    second = parse_spec(DEMO_TEXT)
    (tmp_path / SPEC_FILE).write_text(DEMO_TEXT, encoding="utf-8")
    third = load_spec(tmp_path)
    assert first.digest == second.digest == third.digest
    assert len(first.digest) == 64
    int(first.digest, 16)


def test_digest_ignores_formatting() -> None:
    # the same content, written differently (flow vs block style, comments dropped)
    assert parse_spec(dump(demo_dict())).digest == parse_spec(DEMO_TEXT).digest


def test_digest_changes_when_a_param_changes() -> None:
    raw = demo_dict()
    raw["model"]["params"]["n_estimators"] = 201
    assert parse_spec(dump(raw)).digest != parse_spec(DEMO_TEXT).digest


def test_digest_changes_when_a_column_rule_changes() -> None:
    raw = demo_dict()
    raw["columns"]["age"]["max"] = 121
    assert parse_spec(dump(raw)).digest != parse_spec(DEMO_TEXT).digest


def test_digest_changes_with_the_split_seed() -> None:
    raw = demo_dict()
    raw["split"]["seed"] = 1
    assert parse_spec(dump(raw)).digest != parse_spec(DEMO_TEXT).digest


# --- malformed YAML -----------------------------------------------------------------


def test_malformed_yaml_carries_the_line() -> None:
    text = "name: m\ntask: binary\ncolumns:\n  a: {type: float\n  b: [1, 2\n"
    field, line, message = only_problem(text)
    assert field == "(yaml)"
    assert isinstance(line, int)
    assert 4 <= line <= 6
    assert message


def test_malformed_yaml_mapping_error_line() -> None:
    text = "name: m\ntask: binary\n  target: y\n"
    with pytest.raises(SpecError) as info:
        parse_spec(text, source="proj/atoll.yaml")
    error = info.value
    assert error.problems == [("(yaml)", 3, "mapping values are not allowed here")]
    assert "malformed YAML" in str(error)
    assert "proj/atoll.yaml" in str(error)
    assert "line 3" in str(error)
    assert error.context == {"path": "proj/atoll.yaml"}


def test_malformed_yaml_in_the_demo_spec_points_at_the_broken_line() -> None:
    broken = replace_once(DEMO_TEXT, "  age: {type: int, min: 18, max: 120}", "  age: {type: int")
    field, line, _ = only_problem(broken)
    assert field == "(yaml)"
    assert line is not None
    assert line >= line_of(DEMO_TEXT, "  age: {type: int")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n", "just text\n", "42\n"])
def test_spec_must_be_a_mapping(text: str) -> None:
    with pytest.raises(SpecError, match="must be a mapping") as info:
        parse_spec(text)
    assert info.value.problems == []


# --- unknown keys -------------------------------------------------------------------


def test_unknown_top_level_key() -> None:
    text = DEMO_TEXT + "\nextra_section: 1\n"
    assert only_problem(text) == ("extra_section", line_of(text, "extra_section"), "unknown key")


def test_typo_of_a_section_name() -> None:
    text = replace_once(DEMO_TEXT, "\nevaluate:\n", "\nevaluation:\n")
    assert only_problem(text) == ("evaluation", line_of(text, "evaluation:"), "unknown key")


def test_unknown_nested_column_key() -> None:
    text = replace_once(
        DEMO_TEXT,
        "  income: {type: float, min: 0}",
        "  income: {type: float, min: 0}\n  b:\n    type: float\n    colour: red",
    )
    field, line, message = only_problem(text)
    assert field == "columns.b.colour"
    assert line == line_of(text, "colour: red")
    assert message == "unknown key"


def test_unknown_key_in_a_flow_mapping() -> None:
    text = replace_once(DEMO_TEXT, "  credit_score: {type: int,", "  credit_score: {typ: int,")
    problems = problems_of(text)
    fields = {p[0] for p in problems}
    assert "columns.credit_score.typ" in fields
    assert "columns.credit_score.type" in fields  # and the real key is now missing
    wanted = line_of(text, "credit_score: {typ")
    assert all(line == wanted for _, line, _ in problems)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("  on_invalid: abort", "  on_invalid: abort\n  compression: gzip", "data.compression"),
        ("  estimator: lightgbm", "  engine: x\n  estimator: lightgbm", "model.engine"),
        ("split: {method: time,", "split: {shuffle: true, method: time,", "split.shuffle"),
        ("  metrics: [roc_auc", "  plots: true\n  metrics: [roc_auc", "evaluate.plots"),
        (
            "{metric: roc_auc, min: 0.70}",
            "{metric: roc_auc, min: 0.70, hard: true}",
            "gates[0].hard",
        ),
    ],
)
def test_unknown_keys_in_every_section(old: str, new: str, field: str) -> None:
    text = replace_once(DEMO_TEXT, old, new)
    problems = problems_of(text)
    assert (field, "unknown key") in {(f, m) for f, _, m in problems}
    key = field.rsplit(".", 1)[-1]
    line = next(line for f, line, _ in problems if f == field)
    assert line is not None
    assert key in text.splitlines()[line - 1]


def test_several_problems_are_all_reported() -> None:
    text = replace_once(DEMO_TEXT, "task: binary", "task: trinary")
    text = replace_once(text, "  loan_amount: {type: float,", "  loan_amount: {type: decimal,")
    text += "\nowner: me\n"
    problems = problems_of(text)
    fields = {field for field, _, _ in problems}
    assert {"task", "columns.loan_amount.type", "owner"} <= fields
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    for field in ("task", "columns.loan_amount.type", "owner"):
        assert field in message


def test_step_parameters_are_free_form() -> None:
    text = replace_once(DEMO_TEXT, "    strategy: median", "    strategy: median\n    fill: 0")
    spec = parse_spec(text)
    assert spec.features[0].params == {"strategy": "median", "fill": 0}


# --- wrong types and values ---------------------------------------------------------


def test_unknown_task() -> None:
    text = replace_once(DEMO_TEXT, "task: binary", "task: trinary")
    field, line, message = only_problem(text)
    assert field == "task"
    assert line == line_of(text, "task: trinary")
    assert "binary" in message
    assert "regression" in message


def test_test_size_out_of_range() -> None:
    text = replace_once(DEMO_TEXT, "test_size: 0.2}", "test_size: 2}")
    field, line, message = only_problem(text)
    assert field == "split.test_size"
    assert line == line_of(text, "test_size: 2")
    assert "less than 1" in message


@pytest.mark.parametrize("value", ["0", "0.0", "1", "-0.1", "lots"])
def test_test_size_bounds(value: str) -> None:
    text = replace_once(DEMO_TEXT, "test_size: 0.2}", f"test_size: {value}}}")
    field, _, _ = only_problem(text)
    assert field == "split.test_size"


def test_unknown_split_method() -> None:
    text = replace_once(DEMO_TEXT, "method: time", "method: kfold")
    field, _, message = only_problem(text)
    assert field == "split.method"
    assert "stratified" in message


def test_unknown_column_type() -> None:
    text = replace_once(DEMO_TEXT, "  income: {type: float,", "  income: {type: money,")
    field, line, _ = only_problem(text)
    assert field == "columns.income.type"
    assert line == line_of(text, "income: {type: money")


def test_wrong_type_for_a_list() -> None:
    text = replace_once(DEMO_TEXT, "metrics: [roc_auc, accuracy, f1]", "metrics: roc_auc")
    field, line, _ = only_problem(text)
    assert field == "evaluate.metrics"
    assert line == line_of(text, "metrics: roc_auc")


def test_min_on_a_category_column() -> None:
    text = replace_once(
        DEMO_TEXT,
        "  home_ownership: {type: category,",
        "  home_ownership: {min: 1, type: category,",
    )
    field, line, message = only_problem(text)
    assert field == "columns.home_ownership"
    assert line == line_of(text, "home_ownership:")
    assert "min/max" in message


def test_min_greater_than_max() -> None:
    text = replace_once(
        DEMO_TEXT, "{type: int, min: 18, max: 120}", "{type: int, min: 120, max: 18}"
    )
    field, _, message = only_problem(text)
    assert field == "columns.age"
    assert "greater than max" in message


def test_allowed_on_a_float_column() -> None:
    text = replace_once(
        DEMO_TEXT, "  income: {type: float, min: 0}", "  income: {type: float, allowed: [a]}"
    )
    field, _, message = only_problem(text)
    assert field == "columns.income"
    assert "category" in message


@pytest.mark.parametrize("name", ["../escape", "a/b", "", "-x", "has space"])
def test_invalid_project_name(name: str) -> None:
    raw = demo_dict()
    raw["name"] = name
    field, _, message = only_problem(dump(raw))
    assert field == "name"
    assert "pattern" in message


def test_no_columns() -> None:
    raw = demo_dict()
    raw["columns"] = {}
    problems = problems_of(dump(raw))
    assert "columns" in {field for field, _, _ in problems}


@pytest.mark.parametrize("section", ["name", "task", "target", "data", "columns", "model"])
def test_required_sections(section: str) -> None:
    raw = demo_dict()
    del raw[section]
    problems = problems_of(dump(raw))
    assert (section, "Field required") in {(f, m) for f, _, m in problems}


# --- cross-field checks -------------------------------------------------------------


def test_target_not_among_columns() -> None:
    text = replace_once(DEMO_TEXT, "target: defaulted", "target: churned")
    field, line, message = only_problem(text)
    assert field == "target"
    assert line == text.splitlines().index("target: churned") + 1
    assert "target 'churned' is not one of the columns" in message


def test_regression_target_must_be_numeric() -> None:
    raw = demo_dict()
    raw["task"] = "regression"
    raw["target"] = "purpose"
    field, _, message = only_problem(dump(raw))
    assert "regression target must be numeric" in message
    assert field == "columns.purpose.type"


def test_regression_on_a_numeric_target_is_fine() -> None:
    raw = demo_dict()
    raw["task"] = "regression"
    raw["target"] = "loan_amount"
    spec = parse_spec(dump(raw))
    assert spec.schema.columns["loan_amount"].role is Role.TARGET


def test_target_cannot_be_an_id_column() -> None:
    raw = demo_dict()
    raw["target"] = "application_id"
    _, _, message = only_problem(dump(raw))
    assert "cannot have role" in message


def test_time_split_without_time_column() -> None:
    text = replace_once(DEMO_TEXT, "  time_column: application_date\n", "")
    field, _, message = only_problem(text)
    assert field == "split.method"
    assert "a time split needs data.time_column" in message


def test_time_column_must_be_a_column() -> None:
    text = replace_once(DEMO_TEXT, "time_column: application_date", "time_column: applied_on")
    field, _, message = only_problem(text)
    assert (field, message) == ("data.time_column", "unknown columns: applied_on")


def test_step_naming_an_unknown_column() -> None:
    text = replace_once(DEMO_TEXT, "columns: [income, loan_amount]", "columns: [income, salary]")
    field, _, message = only_problem(text)
    assert (field, message) == ("features[1].columns", "unknown columns: salary")


def test_gate_naming_an_unknown_column() -> None:
    text = replace_once(DEMO_TEXT, "column: sex, max: 0.10", "column: gender, max: 0.10")
    field, _, message = only_problem(text)
    assert field.startswith("gates[") and field.endswith("].column")
    assert message == "unknown columns: gender"


def test_fairness_naming_an_unknown_column() -> None:
    raw = demo_dict()
    raw["evaluate"]["fairness"] = ["sex", "race"]
    field, _, message = only_problem(dump(raw))
    assert (field, message) == ("evaluate.fairness", "unknown columns: race")


def test_data_with_both_path_and_sql() -> None:
    raw = demo_dict()
    raw["data"]["sql"] = {"url": "sqlite:///x.db", "query": "select 1"}
    field, line, message = only_problem(dump(raw))
    assert field == "data"
    assert line is not None
    assert "exactly one of 'path' or 'sql'" in message


def test_data_with_neither_path_nor_sql() -> None:
    text = replace_once(DEMO_TEXT, "  path: data/applications.csv\n", "")
    field, line, message = only_problem(text)
    assert field == "data"
    assert line == line_of(text, "data:")
    assert "exactly one of 'path' or 'sql'" in message


def test_sql_source_needs_a_query() -> None:
    raw = demo_dict()
    raw["data"] = {"sql": {"url": "sqlite:///x.db"}, "time_column": "application_date"}
    problems = problems_of(dump(raw))
    assert ("data.sql.query", "Field required") in {(f, m) for f, _, m in problems}


def test_unknown_on_invalid_policy() -> None:
    text = replace_once(DEMO_TEXT, "on_invalid: abort", "on_invalid: ignore")
    field, line, _ = only_problem(text)
    assert field == "data.on_invalid"
    assert line == line_of(text, "on_invalid: ignore")


def test_gate_without_bounds() -> None:
    text = replace_once(DEMO_TEXT, "{metric: roc_auc, min: 0.70}", "{metric: roc_auc}")
    field, line, message = only_problem(text)
    assert field == "gates[0]"
    assert line == line_of(text, "{metric: roc_auc}")
    assert "a gate needs 'min' or 'max'" in message


def test_gate_with_both_bounds_is_fine() -> None:
    text = replace_once(
        DEMO_TEXT, "{metric: roc_auc, min: 0.70}", "{metric: roc_auc, min: 0.7, max: 1}"
    )
    assert parse_spec(text).gates[0].max == 1


# --- YAML tags are data, never code -------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system",
        "!!python/object/new:os.system",
        "!!python/object/apply:subprocess.call",
    ],
)
def test_python_tags_are_refused_and_never_run(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    payload = f"[[sh, -c, '{command}']]" if "subprocess" in tag else f"['{command}']"
    text = replace_once(DEMO_TEXT, "description: Probability", f"description: {tag} {payload}\n# ")
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert not marker.exists()
    field, line, message = info.value.problems[0]
    assert field == "(yaml)"
    assert line == line_of(text, tag)
    assert "constructor" in message


def test_python_name_tag_is_refused() -> None:
    with pytest.raises(SpecError, match="malformed YAML"):
        parse_spec("name: !!python/name:os.system ''\n")


# --- load_spec ----------------------------------------------------------------------


def test_load_spec_from_a_file(tmp_path: Path) -> None:
    file = tmp_path / "custom.yaml"
    file.write_text(DEMO_TEXT, encoding="utf-8")
    assert load_spec(file) == parse_spec(DEMO_TEXT)
    assert load_spec(str(file)).name == "credit-risk"


def test_load_spec_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / SPEC_FILE).write_text(DEMO_TEXT, encoding="utf-8")
    assert load_spec(tmp_path).name == "credit-risk"


def test_load_spec_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match="cannot read spec") as info:
        load_spec(missing)
    assert str(missing) in str(info.value)
    assert info.value.context == {"path": str(missing)}


def test_load_spec_directory_without_a_spec(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec") as info:
        load_spec(tmp_path)
    assert str(tmp_path / SPEC_FILE) in str(info.value)


def test_load_spec_errors_name_the_file(tmp_path: Path) -> None:
    file = tmp_path / SPEC_FILE
    file.write_text(replace_once(DEMO_TEXT, "task: binary", "task: trinary"), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert str(file) in str(info.value)
    assert info.value.context == {"path": str(file)}
    assert info.value.problems[0][:2] == ("task", line_of(DEMO_TEXT, "task: binary"))


def test_spec_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_spec("name: [unclosed\n")


def test_spec_model_validate_directly() -> None:
    spec = Spec.model_validate(demo_dict())
    assert spec == parse_spec(DEMO_TEXT)


def test_duplicate_keys_are_refused_with_their_line() -> None:
    text = MINIMAL_YAML_FOR_DUPLICATES
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert info.value.problems == [("task", 3, "key given twice")]


MINIMAL_YAML_FOR_DUPLICATES = """\
name: m
task: binary
task: regression
target: y
data: {path: d.csv}
columns: {y: {type: int}}
model: {estimator: sklearn.linear_model.LogisticRegression}
"""


def test_positive_class_is_for_binary_tasks_only() -> None:
    text = MINIMAL_YAML_FOR_DUPLICATES.replace("task: regression\n", "").replace(
        "task: binary", "task: multiclass"
    )
    with pytest.raises(SpecError) as info:
        parse_spec(text + "evaluate: {positive_class: 1}\n")
    assert info.value.problems[0][:1] == ("evaluate.positive_class",)
    assert parse_spec(text.replace("multiclass", "binary") + "evaluate: {positive_class: 1}\n")
