"""Writes data/progression.csv from scikit-learn's bundled diabetes data (442 patients, ten baseline
measures, and the disease progression one year later: a number to predict). Nothing is downloaded; run
it again and the file is byte for byte the same.

    python make_data.py   # from examples/progression-team/
"""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_diabetes

OUT = Path(__file__).resolve().parent / "data" / "progression.csv"


def main() -> None:
    frame = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT, index=False, float_format="%.6g", lineterminator="\n")


if __name__ == "__main__":
    main()
