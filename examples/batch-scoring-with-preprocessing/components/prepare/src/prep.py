"""Clean a folder of heart-disease CSV files for scoring.

Rows with a missing or non-numeric value are dropped, ``thal`` is normalised (trimmed, lower
case) and must be one of normal, fixed, reversible, and the numeric columns are standardised
with the means and spread of the UCI data set. One cleaned CSV is written per input file.
"""

import argparse
import csv
import pathlib

NUMERIC = {
    # column: (mean, standard deviation) over the UCI Cleveland data
    "age": (54.4, 9.0),
    "sex": (0.68, 0.47),
    "cp": (1.0, 1.0),
    "trestbps": (131.7, 17.6),
    "chol": (246.7, 51.8),
    "fbs": (0.15, 0.36),
    "restecg": (0.5, 0.5),
    "thalach": (149.6, 22.9),
    "exang": (0.33, 0.47),
    "oldpeak": (1.0, 1.2),
    "slope": (1.4, 0.6),
    "ca": (0.7, 0.9),
}
THAL = ("normal", "fixed", "reversible")


def clean(row):
    out = {}
    for column, (mean, spread) in NUMERIC.items():
        try:
            value = float(row[column])
        except (KeyError, ValueError):
            return None
        out[column] = round((value - mean) / spread, 4)
    thal = (row.get("thal") or "").strip().lower()
    if thal not in THAL:
        return None
    out["thal"] = thal
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data_path", required=True)
    parser.add_argument("--prepared_data", required=True)
    args = parser.parse_args()

    output = pathlib.Path(args.prepared_data)
    kept = dropped = 0
    for source in sorted(pathlib.Path(args.data_path).rglob("*.csv")):
        with open(source, newline="") as fh:
            rows = list(csv.DictReader(fh))
        cleaned = [c for c in (clean(r) for r in rows) if c is not None]
        kept += len(cleaned)
        dropped += len(rows) - len(cleaned)
        with open(output / source.name, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=[*NUMERIC, "thal"])
            writer.writeheader()
            writer.writerows(cleaned)
    print(f"prepared {kept} rows, dropped {dropped} incomplete rows")


if __name__ == "__main__":
    main()
