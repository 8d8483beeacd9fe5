"""Score prepared heart-disease rows with the registered model.

``--score_mode append`` writes every prepared column plus the prediction and its probability;
``prediction_only`` writes the file, the row and the prediction. All rows go to one
``predictions.csv`` in the ``scores`` output.
"""

import argparse
import csv
import json
import math
import pathlib


def load_model(model_path):
    folder = pathlib.Path(model_path)
    found = sorted(folder.rglob("model.json")) if folder.is_dir() else [folder]
    if not found:
        raise SystemExit(f"no model.json in the model folder {model_path}")
    return json.loads(found[0].read_text())


def probability(model, row):
    z = model["intercept"]
    for column, weight in model["coefficients"].items():
        z += weight * float(row[column])
    z += model["thal"].get(row["thal"], 0.0)
    return 1.0 / (1.0 + math.exp(-z))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data_path", required=True)
    parser.add_argument("--model_path", required=True)
    parser.add_argument("--score_mode", required=True, choices=("append", "prediction_only"))
    parser.add_argument("--scores", required=True)
    args = parser.parse_args()

    model = load_model(args.model_path)
    results = []
    columns = None
    for source in sorted(pathlib.Path(args.data_path).glob("*.csv")):
        with open(source, newline="") as fh:
            reader = csv.DictReader(fh)
            columns = columns or reader.fieldnames
            for index, row in enumerate(reader):
                p = probability(model, row)
                prediction = int(p >= model["threshold"])
                if args.score_mode == "append":
                    results.append({**row, "prediction": prediction, "probability": round(p, 4)})
                else:
                    results.append({"file": source.name, "row": index, "prediction": prediction})
    if args.score_mode == "append":
        fields = [*(columns or []), "prediction", "probability"]
    else:
        fields = ["file", "row", "prediction"]
    with open(pathlib.Path(args.scores) / "predictions.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(results)
    print(f"scored {len(results)} rows in {args.score_mode} mode")


if __name__ == "__main__":
    main()
