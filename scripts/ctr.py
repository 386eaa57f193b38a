"""The nightly CTR story's data and model, shared by the demo and the benchmark.

Ad impressions have a viewer age, an hour of day, an ad position (1 is the
top slot), a bid price and a device flag.  Clicks follow one logistic rule,
the same in the SQL that fills the warehouse table and in the numpy that
makes the training set, so the trained model has something real to learn.

    python scripts/ctr.py sql ROWS [TABLE]   the SQL that (re)creates TABLE with ROWS impressions
    python scripts/ctr.py model PATH         train the click model, write it with joblib to PATH
"""

from __future__ import annotations

import sys

import numpy as np

FEATURES = ["age", "hour", "position", "price", "mobile"]


def click_logit(age: np.ndarray, hour: np.ndarray, position: np.ndarray, price: np.ndarray,
                mobile: np.ndarray) -> np.ndarray:
    """The rule clicks follow: young viewers, evenings, top slots, cheap ads, phones."""
    return (-2.0 - 0.03 * (age - 30) + 0.4 * ((hour >= 18) & (hour <= 22))
            - 0.35 * (position - 1) - 0.01 * price + 0.5 * mobile)


def impressions_sql(rows: int, table: str = "impressions") -> str:
    """SQL that creates TABLE and fills it with ROWS impressions, the same every time."""
    return f"""
DROP TABLE IF EXISTS {table};
CREATE TABLE {table} (
    impression_id bigint PRIMARY KEY,
    shown_at timestamptz NOT NULL,
    age integer NOT NULL,
    hour integer NOT NULL,
    position integer NOT NULL,
    price double precision NOT NULL,
    mobile integer NOT NULL
);
SELECT setseed(0.42);
INSERT INTO {table}
SELECT g, timestamptz '2026-11-22' + (g % 86400) * interval '1 second',
       18 + (random() * 60)::int, (g % 86400) / 3600, 1 + (random() * 4)::int,
       round((random() * 200)::numeric, 2)::float8, (random() < 0.6)::int
FROM generate_series(1, {rows}) g;
ANALYZE {table};
"""


def training_set(rows: int = 200_000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Impressions like the table's, with clicks drawn from the rule."""
    rng = np.random.default_rng(seed)
    age = 18 + np.rint(rng.random(rows) * 60)
    hour = rng.integers(0, 24, rows).astype(float)
    position = 1 + np.rint(rng.random(rows) * 4)
    price = np.round(rng.random(rows) * 200, 2)
    mobile = (rng.random(rows) < 0.6).astype(float)
    p = 1 / (1 + np.exp(-click_logit(age, hour, position, price, mobile)))
    clicks = (rng.random(rows) < p).astype(int)
    return np.column_stack([age, hour, position, price, mobile]), clicks


def train(path: str) -> None:
    """Fit a logistic regression on the training set and save it with joblib."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = training_set()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    joblib.dump(model, path)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "sql":
        print(impressions_sql(int(argv[1]), *(argv[2:3] or [])))
        return 0
    if len(argv) == 2 and argv[0] == "model":
        train(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
