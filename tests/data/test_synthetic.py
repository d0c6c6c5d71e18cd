from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from atoll.data.synthetic import TARGET, credit_risk
from atoll.errors import DataError

N_ROWS = 20_000

STRING_DTYPE = pd.Series(["x"]).dtype  # "str" on pandas 3, object before

EXPECTED_DTYPES = {
    "application_id": STRING_DTYPE,
    "email": STRING_DTYPE,
    "application_date": np.dtype("datetime64[ns]"),
    "age": np.dtype("int64"),
    "sex": STRING_DTYPE,
    "income": np.dtype("float64"),
    "employment_years": np.dtype("float64"),
    "home_ownership": STRING_DTYPE,
    "purpose": STRING_DTYPE,
    "loan_amount": np.dtype("float64"),
    "term_months": np.dtype("int64"),
    "credit_score": np.dtype("int64"),
    "num_open_accounts": np.dtype("int64"),
    "debt_to_income": np.dtype("float64"),
    "defaulted": np.dtype("int64"),
}

PURPOSES = {
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "car",
    "medical",
    "education",
    "small_business",
    "other",
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return credit_risk(N_ROWS, seed=0)


def test_target_constant_names_the_label_column(frame: pd.DataFrame) -> None:
    assert TARGET == "defaulted"
    assert frame.columns[-1] == TARGET


def test_same_seed_gives_identical_frame() -> None:
    pd.testing.assert_frame_equal(credit_risk(3_000, seed=7), credit_risk(3_000, seed=7))


def test_other_seed_gives_different_data() -> None:
    a, b = credit_risk(3_000, seed=7), credit_risk(3_000, seed=8)
    assert not a.equals(b)
    assert not np.array_equal(a["income"].to_numpy(), b["income"].to_numpy(), equal_nan=True)
    assert (a["credit_score"] != b["credit_score"]).mean() > 0.9


def test_default_arguments_give_fifty_thousand_rows() -> None:
    assert len(credit_risk()) == 50_000


def test_columns_and_dtypes_are_exact(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(EXPECTED_DTYPES)
    assert frame.dtypes.to_dict() == EXPECTED_DTYPES
    assert len(frame) == N_ROWS
    assert isinstance(frame.index, pd.RangeIndex)
    for column, dtype in EXPECTED_DTYPES.items():
        if dtype == STRING_DTYPE:
            assert all(isinstance(v, str) for v in frame[column].head(50)), column


def test_application_date_is_naive(frame: pd.DataFrame) -> None:
    assert frame["application_date"].dt.tz is None


def test_zero_rows_keeps_the_schema() -> None:
    empty = credit_risk(0, seed=0)
    assert empty.empty
    assert empty.dtypes.to_dict() == EXPECTED_DTYPES


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_invalid_row_count_is_rejected(bad: object) -> None:
    with pytest.raises(DataError, match="n_rows"):
        credit_risk(bad, seed=0)  # type: ignore[arg-type]


def test_application_ids_are_unique_and_well_formed(frame: pd.DataFrame) -> None:
    ids = frame["application_id"]
    assert ids.is_unique
    assert ids.str.fullmatch(r"A\d{7}").all()


def test_ids_follow_date_order_but_rows_are_shuffled(frame: pd.DataFrame) -> None:
    dates = frame["application_date"]
    assert not dates.is_monotonic_increasing
    assert not dates.is_monotonic_decreasing
    by_date = frame.sort_values(["application_date", "application_id"])
    assert by_date["application_id"].is_monotonic_increasing


def test_emails_are_plausible_and_fake(frame: pd.DataFrame) -> None:
    emails = frame["email"]
    assert emails.str.fullmatch(r"[a-z]+\.[a-z]+\d{1,3}@example\.com").all()
    assert emails.nunique() > N_ROWS // 4


def test_dates_span_2023_and_2024_uniformly(frame: pd.DataFrame) -> None:
    dates = frame["application_date"]
    assert dates.min() >= pd.Timestamp("2023-01-01")
    assert dates.max() < pd.Timestamp("2025-01-01")
    assert dates.min() < pd.Timestamp("2023-01-05")
    assert dates.max() > pd.Timestamp("2024-12-27")
    per_quarter = dates.dt.to_period("Q").value_counts(normalize=True)
    assert len(per_quarter) == 8
    assert per_quarter.between(0.11, 0.14).all()


def test_numeric_values_stay_in_range(frame: pd.DataFrame) -> None:
    assert frame["age"].between(18, 90).all()
    assert (frame["income"].dropna() > 0).all()
    assert frame["employment_years"].dropna().between(0, 50).all()
    assert frame["loan_amount"].between(500, 50_000).all()
    assert set(frame["term_months"]) == {36, 60}
    assert frame["credit_score"].between(300, 850).all()
    assert frame["num_open_accounts"].between(0, 40).all()
    assert frame["debt_to_income"].dropna().between(0, 1.5).all()
    assert set(frame[TARGET]) == {0, 1}


def test_values_are_spread_not_degenerate(frame: pd.DataFrame) -> None:
    assert frame["age"].std() > 8
    assert frame["credit_score"].nunique() > 200
    assert frame["loan_amount"].nunique() > 200
    income = frame["income"].dropna()
    assert income.mean() > income.median()  # log-normal: right-skewed


def test_categories_are_the_allowed_ones(frame: pd.DataFrame) -> None:
    assert set(frame["sex"]) == {"female", "male"}
    assert set(frame["home_ownership"]) == {"rent", "own", "mortgage", "other"}
    assert set(frame["purpose"]) == PURPOSES


def test_sex_is_balanced(frame: pd.DataFrame) -> None:
    assert frame["sex"].eq("female").mean() == pytest.approx(0.5, abs=0.02)


def test_home_ownership_frequencies_are_unequal(frame: pd.DataFrame) -> None:
    shares = frame["home_ownership"].value_counts(normalize=True)
    assert shares.max() > 2 * shares.min()


@pytest.mark.parametrize(
    ("column", "rate", "tolerance"),
    [("income", 0.04, 0.008), ("employment_years", 0.06, 0.01), ("debt_to_income", 0.02, 0.005)],
)
def test_null_rates_are_as_specified(
    frame: pd.DataFrame, column: str, rate: float, tolerance: float
) -> None:
    assert frame[column].isna().mean() == pytest.approx(rate, abs=tolerance)


def test_only_the_documented_columns_have_nulls(frame: pd.DataFrame) -> None:
    with_nulls = set(frame.columns[frame.isna().any()])
    assert with_nulls == {"income", "employment_years", "debt_to_income"}


def test_missingness_carries_no_label_information(frame: pd.DataFrame) -> None:
    overall = frame[TARGET].mean()
    for column in ("income", "employment_years"):
        missing_rate = frame.loc[frame[column].isna(), TARGET].mean()
        assert missing_rate == pytest.approx(overall, abs=0.06), column


def test_default_rate_is_realistic(frame: pd.DataFrame) -> None:
    assert 0.15 <= frame[TARGET].mean() <= 0.25


def test_risk_factors_point_the_right_way(frame: pd.DataFrame) -> None:
    rate = frame.groupby("purpose")[TARGET].mean()
    assert rate["small_business"] > rate["debt_consolidation"] + 0.05
    assert rate["medical"] > rate["debt_consolidation"]
    term_rate = frame.groupby("term_months")[TARGET].mean()
    assert term_rate[60] > term_rate[36]
    score = frame["credit_score"]
    low = frame.loc[score < score.quantile(0.25), TARGET].mean()
    high = frame.loc[score > score.quantile(0.75), TARGET].mean()
    assert low > 2 * high


def test_relationship_is_learnable_but_noisy(frame: pd.DataFrame) -> None:
    features = frame.select_dtypes("number").drop(columns=TARGET)
    assert "credit_score" in features.columns
    train, test = slice(0, 15_000), slice(15_000, None)
    model = HistGradientBoostingClassifier(random_state=0)
    model.fit(features.iloc[train], frame[TARGET].iloc[train])
    scores = model.predict_proba(features.iloc[test])[:, 1]
    auc = roc_auc_score(frame[TARGET].iloc[test], scores)
    assert 0.7 <= auc <= 0.92


def test_income_drifts_upward_over_time(frame: pd.DataFrame) -> None:
    dates = frame["application_date"]
    first = frame.loc[dates < pd.Timestamp("2023-04-01"), "income"].mean()
    last = frame.loc[dates >= pd.Timestamp("2024-10-01"), "income"].mean()
    assert last >= 1.10 * first


def test_credit_scores_drift_slightly_down(frame: pd.DataFrame) -> None:
    year = frame["application_date"].dt.year
    early = frame.loc[year == 2023, "credit_score"].mean()
    late = frame.loc[year == 2024, "credit_score"].mean()
    assert 2 < early - late < 25


def test_sex_is_weakly_related_to_income(frame: pd.DataFrame) -> None:
    income = frame.groupby("sex")["income"].median()
    assert 1.02 < income["male"] / income["female"] < 1.25
    default = frame.groupby("sex")[TARGET].mean()
    assert default["male"] != default["female"]
