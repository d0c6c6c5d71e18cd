"""The ``atoll`` command line: help, exit codes, error lines and every command's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version as dist_version
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result

from atoll import api
from atoll.cli.main import cli
from atoll.settings import Settings
from atoll.spec import load_spec
from tests.conftest import write_demo_project

ATOLL = Path(sys.executable).with_name("atoll")
NAME = "credit-risk"
EASY_GATES = [{"metric": "roc_auc", "min": 0.5}]
IMPOSSIBLE_GATES = [{"metric": "roc_auc", "min": 0.99}]

# Store location comes from these; the tests must not inherit a developer's setting.
CLEAN_ENV: dict[str, str | None] = {
    "ATOLL_DB_URL": None,
    "ATOLL_ARTIFACT_ROOT": None,
    "ATOLL_PROJECT_DIR": None,
    "ATOLL_ACTOR": "cli-test",
    "COLUMNS": "200",  # wide enough that rich tables do not wrap names
}

ROOT_COMMANDS = [
    "init",
    "validate",
    "train",
    "predict",
    "demo",
    "schema",
    "models",
    "serve",
    "keys",
]
MODELS_COMMANDS = ["list", "show", "compare", "promote", "rollback", "tag", "history"]


def atoll(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    """Run the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(
        cli, [str(a) for a in args], env=CLEAN_ENV | (env or {}), prog_name="atoll"
    )


def atoll_process(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, for real exit codes and real stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOLL_")}
    env["ATOLL_ACTOR"] = "cli-test"
    return subprocess.run(
        [str(ATOLL), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_ok(result: Result) -> None:
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)


def assert_clean_failure(result: Result, *fragments: str) -> str:
    """Exit 1 through atoll's error path: stage lines, then one ``error: ...`` line."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), result.exception
    *stages, last = result.stderr.strip().splitlines()
    assert all(line[:1] in ("✓", "✗") for line in stages), result.stderr  # progress lines only
    assert last.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in last
    return last


def json_out(result: Result) -> object:
    assert_ok(result)
    return json.loads(result.stdout)


# --- help, version, usage errors ------------------------------------------------------


def test_root_help_lists_every_command() -> None:
    result = atoll("--help")
    assert_ok(result)
    assert "Usage: atoll" in result.stdout
    for command in ROOT_COMMANDS:
        assert f"  {command} " in result.stdout, command
    assert "--project" in result.stdout
    assert atoll("-h").stdout == result.stdout


def test_models_help_lists_its_commands() -> None:
    result = atoll("models", "--help")
    assert_ok(result)
    for command in MODELS_COMMANDS:
        assert f"  {command} " in result.stdout, command


def test_schema_help_lists_infer() -> None:
    result = atoll("schema", "--help")
    assert_ok(result)
    assert "  infer " in result.stdout


@pytest.mark.parametrize(
    "path",
    [[c] for c in ROOT_COMMANDS if c not in ("schema", "models")]
    + [["models", c] for c in MODELS_COMMANDS]
    + [["schema", "infer"]],
    ids=" ".join,
)
def test_every_command_has_help(path: list[str]) -> None:
    result = atoll(*path, "--help")
    assert_ok(result)
    assert result.stdout.startswith(f"Usage: atoll {' '.join(path)}")
    assert "Options:" in result.stdout
    assert "--help" in result.stdout


def test_version() -> None:
    result = atoll("--version")
    assert_ok(result)
    assert result.stdout.strip() == f"atoll, version {dist_version('atoll')}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--no-such-option"], "No such option"),
        (["train", "--no-such-option"], "No such option"),
        (["models", "show"], "Missing argument"),
        (["schema", "infer"], "Missing argument"),
        (["predict", "--input", "x.csv", "--output", "y.csv"], "Missing option '--model'"),
        (["no-such-command"], "No such command"),
        (["models", "tag", "m@1", "not-a-pair"], "is not KEY=VALUE"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_usage_errors_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = atoll("-C", tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert "Usage: atoll" in result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_usage_errors_exit_2_as_a_real_process(tmp_path: Path) -> None:
    for args in (["--no-such-option"], ["models", "show"]):
        done = atoll_process(*args, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "Usage: atoll" in done.stderr
        assert "Traceback" not in done.stderr


# --- errors: exit 1, one line, no traceback ---------------------------------------------


def test_malformed_spec_fails_with_its_line_number(tmp_path: Path) -> None:
    (tmp_path / "atoll.yaml").write_text(
        "name: x\ntask: binary\ncolumns:\n  a: {type: int\n  b: 3\n", encoding="utf-8"
    )
    done = atoll_process("train", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    first, *details = done.stderr.strip().splitlines()
    # The first line is the error; the spec error lists where, one problem per line.
    assert first.startswith("error: ")
    assert "malformed YAML" in first
    assert "atoll.yaml" in first
    assert "line 5" in done.stderr
    assert all(line.startswith("  ") for line in details)
    assert done.stdout == ""


def test_invalid_spec_names_field_and_line(tmp_path: Path) -> None:
    spec = write_demo_project(tmp_path, rows=500)
    text = spec.read_text().replace("task: binary", "task: binary\nbogus_key: 1")
    spec.write_text(text)
    line = text.splitlines().index("bogus_key: 1") + 1
    result = atoll("-C", tmp_path, "train")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error: ")
    assert f"bogus_key (line {line}): unknown key" in result.stderr


def test_missing_data_file_fails_cleanly(tmp_path: Path) -> None:
    write_demo_project(tmp_path, rows=500)
    (tmp_path / "data" / "applications.csv").unlink()
    assert_clean_failure(atoll("-C", tmp_path, "train"), "data file not found", "applications.csv")
    assert_clean_failure(
        atoll("-C", tmp_path, "validate", tmp_path / "nothere.csv"),
        "data file not found",
        "nothere.csv",
    )


def test_unknown_model_fails_cleanly_as_a_real_process(tmp_path: Path) -> None:
    done = atoll_process("models", "show", "nope@production", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: model 'nope' is not registered"
    assert done.stdout == ""


def test_unknown_model_fails_cleanly(tmp_path: Path) -> None:
    assert_clean_failure(atoll("-C", tmp_path, "models", "show", "nope@production"), "'nope'")
    assert_clean_failure(atoll("-C", tmp_path, "models", "show", "nope"), "'nope'")


def test_invalid_model_name_fails_cleanly(tmp_path: Path) -> None:
    line = assert_clean_failure(
        atoll("-C", tmp_path, "models", "show", "../etc@1"), "invalid model name"
    )
    assert "'../etc'" in line
    assert not (tmp_path / "etc").exists()


def test_predict_with_unknown_model_fails_cleanly(tmp_path: Path) -> None:
    write_demo_project(tmp_path, rows=500)
    out = tmp_path / "out.csv"
    result = atoll(
        "-C", tmp_path, "predict", "--model", "nope@production",
        "--input", tmp_path / "data" / "new_applications.csv", "--output", out,
    )  # fmt: skip
    assert_clean_failure(result, "'nope'", "not registered")
    assert not out.exists()


# --- init, schema, validate -----------------------------------------------------------


def test_init_writes_a_spec_and_refuses_to_overwrite(tmp_path: Path) -> None:
    project = tmp_path / "new"
    result = atoll("-C", project, "init")
    assert_ok(result)
    spec = project / "atoll.yaml"
    assert f"wrote {spec}" in result.stdout
    assert "atoll schema infer" in result.stdout
    text = spec.read_text()
    assert "name: my-model" in text
    assert "task: binary" in text
    spec.write_text(text + "# mine\n")

    again = atoll("-C", project, "init")
    assert_clean_failure(again, "already exists", "not overwriting")
    assert spec.read_text() == text + "# mine\n"
    assert_clean_failure(atoll("-C", project, "init", "--demo"), "already exists")
    assert not (project / "data").exists()


def test_init_demo_writes_data_and_a_loadable_spec(tmp_path: Path) -> None:
    result = atoll("-C", tmp_path, "init", "--demo", "--rows", "500")
    assert_ok(result)
    assert "atoll train" in result.stdout
    spec = load_spec(tmp_path / "atoll.yaml")
    assert spec.name == NAME
    train = pd.read_csv(tmp_path / "data" / "applications.csv")
    assert len(train) == 500
    assert "defaulted" in train.columns
    new = pd.read_csv(tmp_path / "data" / "new_applications.csv")
    assert len(new) == 100
    assert "defaulted" not in new.columns
    assert "application_id" in new.columns


@pytest.fixture(scope="module")
def small_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo project that nothing trains on: for schema and validate."""
    root = tmp_path_factory.mktemp("small")
    write_demo_project(root, rows=500)
    return root


def test_schema_infer_prints_a_yaml_columns_section(small_project: Path) -> None:
    data = small_project / "data" / "applications.csv"
    result = atoll("schema", "infer", data, "--target", "defaulted")
    assert_ok(result)
    assert result.stdout.startswith("# drafted from")
    columns = yaml.safe_load(result.stdout)["columns"]
    assert list(columns) == list(pd.read_csv(data, nrows=1).columns)
    types = {name: column["type"] for name, column in columns.items()}
    assert types["age"] == "int"
    assert types["income"] == "float"
    assert types["application_date"] == "datetime"
    assert types["home_ownership"] == "category"
    assert types["application_id"] == "string"
    assert sorted(columns["home_ownership"]["allowed"]) == ["mortgage", "other", "own", "rent"]
    assert columns["defaulted"]["role"] == "target"
    assert columns["application_id"]["role"] == "id"
    assert columns["email"]["pii"] is True

    as_json = json_out(atoll("schema", "infer", data, "--target", "defaulted", "--json"))
    assert as_json == columns


def test_schema_infer_with_an_unknown_target_fails(small_project: Path) -> None:
    data = small_project / "data" / "applications.csv"
    assert_clean_failure(atoll("schema", "infer", data, "--target", "nope"), "'nope'")


def test_validate_accepts_good_data(small_project: Path) -> None:
    data = small_project / "data" / "applications.csv"
    result = atoll("-C", small_project, "validate", data)
    assert_ok(result)
    assert "500 rows" in result.stdout
    assert "no violations" in result.stdout
    report = json_out(atoll("-C", small_project, "validate", data, "--json"))
    assert report == {"ok": True, "n_rows": 500, "n_invalid_rows": 0, "violations": []}


def test_validate_reports_bad_data_as_a_table_and_json(small_project: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(small_project / "data" / "applications.csv")
    frame.loc[[3, 7], "age"] = 5
    frame.loc[2, "home_ownership"] = "castle"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)

    result = atoll("-C", small_project, "validate", bad)
    assert result.exit_code == 1
    assert "500 rows, 3 invalid" in result.stdout
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert set(rows) == {"age", "home_ownership"}
    assert "min" in rows["age"]
    assert "3, 7" in rows["age"]
    assert "unknown_category" in rows["home_ownership"]

    as_json = atoll("-C", small_project, "validate", bad, "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert report["n_invalid_rows"] == 3
    found = {(v["column"], v["rule"]): v for v in report["violations"]}
    assert set(found) == {("age", "min"), ("home_ownership", "unknown_category")}
    assert found["age", "min"]["rows"] == [3, 7]
    assert found["home_ownership", "unknown_category"]["count"] == 1


def test_validate_for_predict_accepts_a_file_without_the_target(small_project: Path) -> None:
    new = small_project / "data" / "new_applications.csv"
    as_training = atoll("-C", small_project, "validate", new, "--json")
    assert as_training.exit_code == 1
    violations = json.loads(as_training.stdout)["violations"]
    assert [(v["column"], v["rule"]) for v in violations] == [("defaulted", "missing_column")]

    result = atoll("-C", small_project, "validate", new, "--for-predict")
    assert_ok(result)
    assert "no violations" in result.stdout
    assert (
        json_out(atoll("-C", small_project, "validate", new, "--for-predict", "--json"))["ok"]
        is True
    )


# --- train and the registry -----------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    root: Path
    text: Result
    as_json: Result


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """Two versions of credit-risk, trained through the CLI: once as text, once as JSON."""
    root = tmp_path_factory.mktemp("registered")
    write_demo_project(root, rows=1500, gates=EASY_GATES)
    text = atoll("-C", root, "train")
    as_json = atoll("-C", root, "train", "--json")
    return Registered(root, text, as_json)


def test_train_prints_stage_lines_and_the_registered_version(registered: Registered) -> None:
    result = registered.text
    assert_ok(result)
    stages = [line.split()[1] for line in result.stderr.splitlines() if line.startswith("✓")]
    assert stages == [
        "read", "validate", "split", "wrangle", "fit", "evaluate", "package", "register"
    ]  # fmt: skip
    assert "1,500 rows" in result.stderr
    assert f"registered {NAME}@1 (ready)" in result.stdout
    assert "held-out metrics" in result.stdout
    assert "roc_auc" in result.stdout
    assert "pass" in result.stdout


def test_train_json(registered: Registered) -> None:
    out = json_out(registered.as_json)
    assert isinstance(out, dict)
    assert out["model"] == NAME
    assert out["version"] == 2
    assert out["status"] == "ready"
    assert 0.5 <= out["metrics"]["roc_auc"] <= 1.0
    assert 0.0 <= out["metrics"]["accuracy"] <= 1.0
    assert [(g["metric"], g["passed"]) for g in out["gates"]] == [("roc_auc", True)]
    assert out["gates"][0]["value"] == out["metrics"]["roc_auc"]
    assert "fit" in out["timings"]
    assert registered.as_json.stderr == ""  # no stage lines in machine mode


def test_models_list(registered: Registered) -> None:
    result = atoll("-C", registered.root, "models", "list")
    assert_ok(result)
    assert NAME in result.stdout
    [model] = json_out(atoll("-C", registered.root, "models", "list", "--json"))
    assert model["name"] == NAME
    assert model["latest_version"] == 2
    assert model["version_count"] == 2


def test_models_show_name_lists_its_versions(registered: Registered) -> None:
    result = atoll("-C", registered.root, "models", "show", NAME)
    assert_ok(result)
    assert "roc_auc" in result.stdout
    assert "cli-test" in result.stdout
    versions = json_out(atoll("-C", registered.root, "models", "show", NAME, "--json"))
    assert [v["version"] for v in versions] == [1, 2]
    assert {v["created_by"] for v in versions} == {"cli-test"}


def test_models_show_one_version(registered: Registered) -> None:
    result = atoll("-C", registered.root, "models", "show", f"{NAME}@1")
    assert_ok(result)
    assert f"{NAME}@1" in result.stdout
    assert "package sha256" in result.stdout
    assert "LGBMClassifier" in result.stdout
    shown = json_out(atoll("-C", registered.root, "models", "show", f"{NAME}@1", "--json"))
    assert shown["name"] == NAME
    assert shown["version"] == 1
    assert shown["status"] == "ready"
    assert len(shown["manifest_digest"]) == 64
    assert shown["summary"]["rows"]["read"] == 1500
    assert_clean_failure(atoll("-C", registered.root, "models", "show", f"{NAME}@9"))


def test_models_compare(registered: Registered) -> None:
    result = atoll("-C", registered.root, "models", "compare", f"{NAME}@1", f"{NAME}@2")
    assert_ok(result)
    assert f"{NAME}@1" in result.stdout
    assert f"{NAME}@2" in result.stdout
    assert "roc_auc" in result.stdout
    compared = json_out(
        atoll("-C", registered.root, "models", "compare", f"{NAME}@1", f"{NAME}@2", "--json")
    )
    assert [v["version"] for v in compared] == [1, 2]
    assert all("roc_auc" in v["summary"]["metrics"] for v in compared)


def test_compare_stars_the_best_value_in_each_direction() -> None:
    from atoll.cli.models import _compare_row

    assert _compare_row("roc_auc", [0.7, 0.8, None]) == ("roc_auc", "0.7000", "0.8000 *", "-")
    assert _compare_row("log_loss", [0.4, 0.5]) == ("log_loss", "0.4000 *", "0.5000")
    assert _compare_row("rmse", [1.0]) == ("rmse", "1.0000")


def test_models_history(registered: Registered) -> None:
    result = atoll("-C", registered.root, "models", "history", NAME)
    assert_ok(result)
    assert "register" in result.stdout
    entries = json_out(atoll("-C", registered.root, "models", "history", NAME, "--json"))
    registers = [e for e in entries if e["action"] == "register"]
    assert sorted(e["detail"]["version"] for e in registers) == [1, 2]
    assert {e["actor"] for e in registers} == {"cli-test"}
    assert all(e["model"] == NAME for e in entries)


def test_promote_without_a_version_fails_clearly(registered: Registered) -> None:
    result = atoll("-C", registered.root, "models", "promote", NAME)
    assert_clean_failure(result, "name the version to promote", f"{NAME}@3")


def test_promote_rollback_and_tag(registered: Registered) -> None:
    root = registered.root

    def production() -> int:
        [model] = json_out(atoll("-C", root, "models", "list", "--json"))
        return int(model["aliases"]["production"])

    first = atoll("-C", root, "models", "promote", f"{NAME}@1")
    assert_ok(first)
    assert first.stdout.strip() == f"{NAME}@production -> version 1"
    second = atoll("-C", root, "models", "promote", f"{NAME}@2")
    assert_ok(second)
    assert production() == 2
    staged = atoll("-C", root, "models", "promote", f"{NAME}@1", "--alias", "staging")
    assert_ok(staged)
    assert f"{NAME}@staging -> version 1" in staged.stdout

    back = atoll("-C", root, "models", "rollback", NAME)
    assert_ok(back)
    assert back.stdout.strip() == f"{NAME}@production -> version 1"
    assert production() == 1

    tagged = atoll("-C", root, "models", "tag", f"{NAME}@1", "team=risk", "tier=gold")
    assert_ok(tagged)
    assert "team" in tagged.stdout
    assert "risk" in tagged.stdout
    shown = json_out(atoll("-C", root, "models", "show", f"{NAME}@1", "--json"))
    assert shown["tags"] == {"team": "risk", "tier": "gold"}
    assert "production" in shown["aliases"]
    assert "staging" in shown["aliases"]

    untagged = atoll("-C", root, "models", "tag", f"{NAME}@1", "--remove", "tier")
    assert_ok(untagged)
    shown = json_out(atoll("-C", root, "models", "show", f"{NAME}@1", "--json"))
    assert shown["tags"] == {"team": "risk"}
    assert atoll("-C", root, "models", "tag", f"{NAME}@1").exit_code == 2

    entries = json_out(atoll("-C", root, "models", "history", NAME, "--json"))
    actions = {e["action"] for e in entries}
    assert {"register", "set_alias", "rollback", "set_tags"} <= actions
    rollback = next(e for e in entries if e["action"] == "rollback")
    assert (rollback["detail"]["from"], rollback["detail"]["to"]) == (2, 1)


def test_predict_writes_one_row_per_input_row(registered: Registered, tmp_path: Path) -> None:
    root = registered.root
    assert_ok(atoll("-C", root, "models", "promote", f"{NAME}@1"))
    source = root / "data" / "new_applications.csv"
    out = tmp_path / "out" / "scored.csv"
    result = atoll(
        "-C", root, "predict", "--model", f"{NAME}@production", "--input", source, "--output", out
    )
    assert_ok(result)
    new = pd.read_csv(source)
    assert f"scored {len(new):,} rows with {NAME}@production" in result.stdout
    scored = pd.read_csv(out)
    assert list(scored.columns) == [
        "application_id",
        "row",
        "prediction",
        "probability_0",
        "probability_1",
        "model_version",
    ]
    assert len(scored) == len(new)
    assert scored["row"].tolist() == list(range(len(new)))
    assert set(scored["model_version"]) == {1}
    assert scored["application_id"].tolist() == new["application_id"].tolist()
    assert set(scored["prediction"]) <= {0, 1}
    total = scored["probability_0"] + scored["probability_1"]
    assert total.between(1 - 1e-9, 1 + 1e-9).all()
    expected = (scored["probability_1"] >= 0.5).astype(int)
    assert (scored["prediction"] == expected).mean() > 0.99


def test_a_failing_gate_fails_train_and_blocks_promotion(tmp_path: Path) -> None:
    write_demo_project(tmp_path, rows=1500, gates=IMPOSSIBLE_GATES)
    result = atoll("-C", tmp_path, "train")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"registered {NAME}@1 (gate_failed)" in result.stdout
    assert "FAIL" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == (f"{NAME}@1 failed its gates; not promotable")

    refused = atoll("-C", tmp_path, "models", "promote", f"{NAME}@1")
    assert_clean_failure(refused, "failed its gates")
    forced = atoll("-C", tmp_path, "models", "promote", f"{NAME}@1", "--force")
    assert_ok(forced)
    settings = Settings.from_env(project_dir=tmp_path, environ={})
    [model] = api.list_models(settings=settings)
    assert model.aliases == {"production": 1}
    assert api.show(f"{NAME}@1", settings=settings).status == "gate_failed"


@pytest.mark.postgres
def test_atoll_db_url_puts_the_registry_in_postgres(tmp_path: Path, postgres_url: str) -> None:
    write_demo_project(tmp_path, rows=1500, gates=EASY_GATES)
    env: dict[str, str | None] = {"ATOLL_DB_URL": postgres_url}
    trained = json_out(atoll("-C", tmp_path, "train", "--json", env=env))
    assert trained["version"] == 1
    [model] = json_out(atoll("-C", tmp_path, "models", "list", "--json", env=env))
    assert (model["name"], model["latest_version"]) == (NAME, 1)

    assert not (tmp_path / ".atoll" / "atoll.db").exists()
    settings = Settings.from_env(project_dir=tmp_path, environ={"ATOLL_DB_URL": postgres_url})
    assert [m.name for m in api.list_models(settings=settings)] == [NAME]
    assert not (tmp_path / ".atoll" / "atoll.db").exists()


@pytest.mark.postgres
def test_the_spec_store_url_puts_the_registry_in_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    write_demo_project(tmp_path, rows=1500, gates=EASY_GATES, store={"url": postgres_url})
    trained = json_out(atoll("-C", tmp_path, "train", "--json"))
    assert trained["version"] == 1
    [model] = json_out(atoll("-C", tmp_path, "models", "list", "--json"))
    assert model["name"] == NAME
    assert not (tmp_path / ".atoll" / "atoll.db").exists()

    # ATOLL_DB_URL wins over the spec: a fresh SQLite registry is empty.
    local = f"sqlite:///{tmp_path / 'other.db'}"
    assert (
        json_out(atoll("-C", tmp_path, "models", "list", "--json", env={"ATOLL_DB_URL": local}))
        == []
    )


def test_file_system_errors_are_clean_failures(tmp_path: Path) -> None:
    root = tmp_path / "p"
    write_demo_project(root, rows=500, gates=EASY_GATES)
    assert_ok(atoll("-C", root, "train"))
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    result = atoll(
        "-C",
        root,
        "predict",
        "--model",
        f"{NAME}@1",
        "--input",
        root / "data" / "new_applications.csv",
        "--output",
        blocker / "out.csv",
    )
    assert_clean_failure(result, "afile")


def test_init_demo_never_overwrites_data_or_takes_too_few_rows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "applications.csv").write_text("precious\n")
    assert_clean_failure(atoll("-C", tmp_path, "init", "--demo", "--rows", "600"), "already exists")
    assert (data / "applications.csv").read_text() == "precious\n"
    assert_clean_failure(atoll("-C", tmp_path / "q", "init", "--demo", "--rows", "5"), "at least")


def test_a_failed_stage_is_marked_and_the_spec_is_checked_before_reading(tmp_path: Path) -> None:
    spec_path = write_demo_project(tmp_path, rows=500)
    spec = yaml.safe_load(spec_path.read_text())
    spec["features"].append({"step": "impute", "columns": ["age"], "strategy": "medain"})
    spec["data"]["path"] = "data/missing.csv"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = atoll("-C", tmp_path, "train")
    # the step's typo is reported, not the missing file: the spec is checked first
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "medain" in result.stderr
    assert "missing.csv" not in result.stderr
    assert "Traceback" not in result.output


def test_train_with_spec_registers_in_the_specs_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    spec_path = write_demo_project(project, rows=500, gates=EASY_GATES)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert_ok(atoll("train", "--spec", spec_path))
    assert (project / ".atoll" / "atoll.db").exists()
    assert not (elsewhere / ".atoll").exists()
