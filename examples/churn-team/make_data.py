"""Writes data/churn.csv: a synthetic, deterministic churn data set (seeded; run it again and the file
is byte for byte the same). Mixed numeric and categorical columns, some missing values, and a
customer id that `mlci init` leaves out (an identifier, not a feature).

    python make_data.py   # from examples/churn-team/
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

ROWS = 3000
SEED = 20261127
OUT = Path(__file__).resolve().parent / "data" / "churn.csv"
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENTS = ("card", "bank-transfer", "check", "wallet")
INTERNET = ("dsl", "fiber", "none")


def rows(rng: np.random.Generator):
    for index in range(ROWS):
        contract = rng.choice(CONTRACTS, p=(0.55, 0.25, 0.20))
        payment = rng.choice(PAYMENTS)
        internet = rng.choice(INTERNET, p=(0.4, 0.45, 0.15))
        tenure = int(rng.integers(0, 73))
        charges = round(float(rng.normal(70 if internet == "fiber" else 45, 15)), 2)
        charges = min(max(charges, 18.0), 125.0)
        calls = int(rng.poisson(1.5))
        age = int(rng.integers(18, 86))
        # Churn grows with short tenure, month-to-month contracts, high charges and support calls.
        score = (
            -1.2
            - 0.04 * tenure
            + (1.4 if contract == "month-to-month" else -0.6 if contract == "two-year" else 0.0)
            + 0.02 * (charges - 60)
            + 0.35 * calls
            + (0.4 if payment == "check" else 0.0)
        )
        churned = "yes" if rng.random() < 1 / (1 + math.exp(-score)) else "no"
        # Missing values: some ages and internet types were never recorded (an empty field).
        age_field = "" if rng.random() < 0.04 else str(age)
        internet_field = "" if rng.random() < 0.03 else str(internet)
        yield [f"C{index:05d}", tenure, f"{charges:.2f}", contract, payment, internet_field, calls, age_field, churned]


def main() -> None:
    rng = np.random.default_rng(SEED)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            [
                "customer_id",
                "tenure_months",
                "monthly_charges",
                "contract",
                "payment_method",
                "internet",
                "support_calls",
                "age",
                "churned",
            ]
        )
        writer.writerows(rows(rng))
    print(f"wrote {OUT} ({ROWS} rows)")


if __name__ == "__main__":
    main()
