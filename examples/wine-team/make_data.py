"""Writes data/wines.csv from scikit-learn's bundled wine data (178 wines, 13 chemical measures, and the
cultivar each came from: three classes). Nothing is downloaded; run it again and the file is byte for
byte the same.

    python make_data.py   # from examples/wine-team/
"""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_wine

OUT = Path(__file__).resolve().parent / "data" / "wines.csv"
CULTIVARS = {0: "barolo", 1: "grignolino", 2: "barbera"}


def main() -> None:
    frame = load_wine(as_frame=True).frame.rename(
        columns={"target": "cultivar", "od280/od315_of_diluted_wines": "od280_od315"}
    )
    frame["cultivar"] = frame["cultivar"].map(CULTIVARS)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT, index=False, float_format="%.6g", lineterminator="\n")


if __name__ == "__main__":
    main()
