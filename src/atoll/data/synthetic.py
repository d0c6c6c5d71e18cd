"""A deterministic, realistic synthetic credit-risk data set.

``atoll demo`` and the benchmarks need a data set that exercises every part of
the platform (ids, PII, dates, missing values, categories, a sensitive
attribute, drift) without ever downloading anything. Everything here is drawn
from one seeded :class:`numpy.random.Generator`, so the same ``(n_rows, seed)``
always gives the same frame, and all of it is vectorised so half a million
rows take well under a couple of seconds.

The generative story, in order:

1. An application date, uniform over 2023-01-01 .. 2024-12-31. Later dates get
   higher incomes and slightly lower credit scores, so a drift monitor that
   compares 2023 with late 2024 has something to find.
2. The applicant: age, sex, income, employment history, housing, credit file.
   Sex shifts income a little, so fairness metrics show a small, honest gap
   even though the model never sees the column.
3. The loan: purpose, amount (scaled to income), term (longer for bigger loans).
4. The target, from a known logistic model over the *complete* values plus
   latent noise, so a good model lands around ROC AUC 0.8 rather than 0.99.
5. Only then are some values blanked out, independently of the target, so
   missingness carries no label information.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from atoll.errors import DataError

__all__ = ["TARGET", "credit_risk"]

TARGET: Final = "defaulted"

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_START: Final = np.datetime64("2023-01-01T00:00:00", "ns")
_SPAN_SECONDS: Final = 731 * 86_400  # 2023 (365 days) + 2024 (366 days)
_SECONDS_PER_YEAR: Final = 365.25 * 86_400

_FIRST_NAMES: Final = (
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda",
    "david", "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica",
    "thomas", "sarah", "carlos", "maria", "wei", "mei", "ahmed", "fatima",
    "arjun", "priya", "kenji", "yuki", "olga", "ivan", "lucas", "sofia",
)  # fmt: skip
_LAST_NAMES: Final = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis",
    "rodriguez", "martinez", "hernandez", "lopez", "wilson", "anderson", "thomas", "taylor",
    "moore", "jackson", "martin", "lee", "chen", "wang", "kim", "nguyen",
    "patel", "singh", "khan", "tanaka", "ivanova", "muller", "rossi", "silva",
)  # fmt: skip

_HOME_OWNERSHIP: Final = ("rent", "mortgage", "own", "other")
_HOME_OWNERSHIP_P: Final = (0.41, 0.37, 0.15, 0.07)

_PURPOSES: Final = (
    "debt_consolidation", "credit_card", "home_improvement", "car",
    "medical", "education", "small_business", "other",
)  # fmt: skip
_PURPOSE_P: Final = (0.38, 0.21, 0.10, 0.09, 0.05, 0.04, 0.05, 0.08)
# Log-odds added to default risk, and a multiplier on the amount borrowed.
_PURPOSE_RISK: Final = (0.0, -0.1, -0.15, -0.2, 0.55, 0.2, 0.8, 0.1)
_PURPOSE_SIZE: Final = (1.0, 0.7, 1.2, 1.1, 0.6, 0.8, 1.6, 0.6)

_MISSING_RATES: Final = {"income": 0.04, "employment_years": 0.06, "debt_to_income": 0.02}

_INCOME_TREND_PER_YEAR: Final = 0.10
_SCORE_TREND_PER_YEAR: Final = -8.0
_DEFAULT_INTERCEPT: Final = -2.0
_LATENT_NOISE_SD: Final = 0.4


def credit_risk(n_rows: int = 50_000, seed: int = 0) -> pd.DataFrame:
    """Generate the synthetic credit-risk frame.

    Args:
        n_rows: number of applications (rows) to generate; zero gives an empty
            frame with the full schema.
        seed: seed of the random generator; the same ``(n_rows, seed)`` always
            gives an identical frame.

    Returns:
        One row per application, columns in a fixed order, rows in random
        (not date) order, target in :data:`TARGET`.

    Raises:
        DataError: if ``n_rows`` is negative or not an integer.
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 0:
        raise DataError(f"n_rows must be a non-negative integer, got {n_rows!r}", n_rows=n_rows)
    rng = np.random.default_rng(seed)
    frame = _complete_frame(rng, n_rows)
    frame[TARGET] = _defaults(rng, frame)
    return _as_strings(_blank_missing(rng, frame))[_COLUMNS]


def _complete_frame(rng: np.random.Generator, n_rows: int) -> pd.DataFrame:
    """Every feature with no value missing yet, in generative order."""
    seconds = rng.integers(0, _SPAN_SECONDS, size=n_rows, dtype=np.int64)
    years = seconds / _SECONDS_PER_YEAR
    identity = pd.DataFrame(
        {
            "application_id": _application_ids(seconds),
            "email": _emails(rng, n_rows),
            "application_date": _START + seconds.astype("timedelta64[s]"),
        }
    )
    people = _applicants(rng, years)
    loans = _loans(rng, people["income"].to_numpy(np.float64))
    credit = _credit_file(rng, people["age"].to_numpy(np.int64), years)
    frame = pd.concat([identity, people, loans, credit], axis=1)
    frame["debt_to_income"] = _debt_to_income(rng, frame)
    return frame


def _application_ids(seconds: IntArray) -> pd.Series[str]:
    """Number applications in date order, as a real system would issue them."""
    order = np.argsort(seconds, kind="stable")
    numbers = np.empty(len(seconds), dtype=np.int64)
    numbers[order] = np.arange(1, len(seconds) + 1)
    return "A" + pd.Series(numbers).astype(str).str.zfill(7)


def _emails(rng: np.random.Generator, n: int) -> pd.Series[str]:
    """Plausible but fake addresses on the reserved example.com domain.

    Built with pandas string operations on whole columns: numpy's ``np.char``
    works element by element and used to dominate generation time.
    """
    first = _labels(rng.integers(0, len(_FIRST_NAMES), size=n), _FIRST_NAMES).astype(str)
    last = _labels(rng.integers(0, len(_LAST_NAMES), size=n), _LAST_NAMES).astype(str)
    digits = pd.Series(rng.integers(1, 1000, size=n)).astype(str)
    return first + "." + last + digits + "@example.com"


def _applicants(rng: np.random.Generator, years: FloatArray) -> pd.DataFrame:
    """Who applies: demographics, income, employment and housing."""
    n = len(years)
    age = np.clip(np.rint(rng.normal(42.0, 13.0, size=n)), 18, 90).astype(np.int64)
    male = rng.random(n) < 0.5
    return pd.DataFrame(
        {
            "age": age,
            "sex": _labels(male.astype(np.int8), ("female", "male")),
            "income": _incomes(rng, age, male, years),
            "employment_years": _employment_years(rng, age),
            "home_ownership": _labels(
                rng.choice(len(_HOME_OWNERSHIP), size=n, p=_HOME_OWNERSHIP_P), _HOME_OWNERSHIP
            ),
        }
    )


def _incomes(
    rng: np.random.Generator, age: IntArray, male: BoolArray, years: FloatArray
) -> FloatArray:
    """Log-normal income peaking in mid-career, trending up ~10% a year.

    The small male premium is deliberate: it propagates to the loan-to-income
    ratio and hence to default risk, giving fairness metrics a real gap.
    """
    centred = age - 45.0
    log_income: FloatArray = (
        np.log(48_000.0)
        + 0.015 * centred
        - 0.0006 * centred**2
        + 0.07 * male
        + np.log1p(_INCOME_TREND_PER_YEAR) * years
        + rng.normal(0.0, 0.5, size=len(age))
    )
    return np.round(np.exp(log_income), 2).astype(np.float64, copy=False)


def _employment_years(rng: np.random.Generator, age: IntArray) -> FloatArray:
    """Tenure at the current job: skewed, and never longer than a working life."""
    tenure: FloatArray = np.minimum(rng.gamma(1.6, 4.0, size=len(age)), age - 18.0)
    return np.round(np.clip(tenure, 0.0, 50.0), 1).astype(np.float64, copy=False)


def _loans(rng: np.random.Generator, income: FloatArray) -> pd.DataFrame:
    """What is asked for: purpose, an amount scaled to income, and a term."""
    n = len(income)
    purpose = rng.choice(len(_PURPOSES), size=n, p=_PURPOSE_P)
    size = np.asarray(_PURPOSE_SIZE)[purpose]
    amount = np.exp(np.log(0.2 * income * size) + rng.normal(0.0, 0.55, size=n))
    amount = np.clip(np.round(amount / 25.0) * 25.0, 500.0, 50_000.0)
    long_term = rng.random(n) < _sigmoid(1.4 * (np.log(amount) - np.log(18_000.0)))
    return pd.DataFrame(
        {
            "purpose": _labels(purpose, _PURPOSES),
            "loan_amount": amount,
            "term_months": np.where(long_term, 60, 36).astype(np.int64),
        }
    )


def _credit_file(rng: np.random.Generator, age: IntArray, years: FloatArray) -> pd.DataFrame:
    """Credit score and open accounts: both grow with age; scores drift down."""
    n = len(age)
    score = rng.normal(690.0, 65.0, size=n) + 1.1 * (age - 42.0) + _SCORE_TREND_PER_YEAR * years
    accounts = rng.poisson(np.clip(3.0 + 0.12 * (age - 18.0), 1.0, None))
    return pd.DataFrame(
        {
            "credit_score": np.clip(np.rint(score), 300, 850).astype(np.int64),
            "num_open_accounts": np.clip(accounts, 0, 40).astype(np.int64),
        }
    )


def _debt_to_income(rng: np.random.Generator, frame: pd.DataFrame) -> FloatArray:
    """Existing debt burden: heavier with more accounts and weaker credit."""
    score = frame["credit_score"].to_numpy(np.float64)
    accounts = frame["num_open_accounts"].to_numpy(np.float64)
    base = rng.gamma(2.2, 0.06, size=len(frame))
    dti = base + 0.006 * accounts + 0.0006 * np.clip(720.0 - score, 0.0, None)
    return np.round(np.clip(dti, 0.0, 1.5), 4).astype(np.float64, copy=False)


def _defaults(rng: np.random.Generator, frame: pd.DataFrame) -> IntArray:
    """Draw the target from a known logistic model plus latent noise.

    Standardisation uses fixed population constants, not sample moments, so
    the relationship is the same whatever ``n_rows`` is.
    """
    score = frame["credit_score"].to_numpy(np.float64)
    dti = frame["debt_to_income"].to_numpy(np.float64)
    income = frame["income"].to_numpy(np.float64)
    ratio = np.minimum(frame["loan_amount"].to_numpy(np.float64) / income, 2.0)
    tenure = frame["employment_years"].to_numpy(np.float64)
    purpose = frame["purpose"].cat.codes.to_numpy()
    logit = (
        _DEFAULT_INTERCEPT
        - 1.1 * (score - 690.0) / 70.0
        + 0.45 * (dti - 0.2) / 0.12
        + 0.35 * (ratio - 0.22) / 0.15
        - 0.25 * (tenure - 6.0) / 5.0
        + np.asarray(_PURPOSE_RISK)[purpose]
        + 0.4 * (frame["term_months"].to_numpy() == 60)
        + rng.normal(0.0, _LATENT_NOISE_SD, size=len(frame))
    )
    return (rng.random(len(frame)) < _sigmoid(logit)).astype(np.int64)


def _blank_missing(rng: np.random.Generator, frame: pd.DataFrame) -> pd.DataFrame:
    """Blank values completely at random, after the target already exists."""
    out = frame.copy()
    for column, rate in _MISSING_RATES.items():
        out.loc[rng.random(len(out)) < rate, column] = np.nan
    return out


def _labels(codes: npt.NDArray[np.integer[Any]], values: tuple[str, ...]) -> pd.Series[str]:
    """Categorical labels from integer codes, cheap to build and to model on.

    The target model reads the codes; :func:`_as_strings` turns these into
    plain strings only at the very end.
    """
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(values)))


def _as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Hand out plain string columns: a categorical dtype is the caller's choice."""
    out = frame.copy()
    for column in out.select_dtypes("category").columns:
        out[column] = out[column].astype(str)
    return out


def _sigmoid(x: FloatArray) -> FloatArray:
    """Logistic function, the link of the default model."""
    return 1.0 / (1.0 + np.exp(-x))


_COLUMNS: Final = [
    "application_id",
    "email",
    "application_date",
    "age",
    "sex",
    "income",
    "employment_years",
    "home_ownership",
    "purpose",
    "loan_amount",
    "term_months",
    "credit_score",
    "num_open_accounts",
    "debt_to_income",
    TARGET,
]
