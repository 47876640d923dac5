#!/usr/bin/env python3
"""NannyML's CBPE on a data set of the nannyml wheel, chunk by chunk, for `driftwood
bench-drift --parts estimate`, which runs driftwood's estimate on the same chunks.

    PY=$(scripts/py-env.sh scripts/estimate-peers/requirements.txt)
    $PY scripts/estimate-peers/cbpe.py --manifest target/nannyml-data/manifest.json \
        --dataset synthetic_car_loan --chunk 5000

Reads the reference and analysis CSVs (and the analysis targets) that
scripts/drift-peers/extract_datasets.py wrote, fits CBPE on the reference with its defaults
(isotonic calibration; classification_binary for one probability column, else
classification_multiclass with a column per class, named y_pred_proba_CLASS) and estimates
accuracy, F1 and ROC AUC on consecutive chunks of CHUNK analysis rows (full chunks only, in
the file's order).
Writes one JSON line per chunk to stdout: {"chunk", "accuracy", "f1", "roc_auc"}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
warnings.simplefilter("ignore")

import nannyml as nml  # noqa: E402
import pandas as pd  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--chunk", type=int, required=True)
    args = parser.parse_args()
    with open(args.manifest) as f:
        entry = json.load(f)["datasets"][args.dataset]
    files = entry["files"]
    reference = pd.read_csv(files["reference"]["csv"])
    analysis = pd.read_csv(files["analysis"]["csv"])
    target, prediction = entry["target"], entry["prediction"]
    probas = entry["prediction_proba"]
    if len(probas) == 1:
        problem, proba = "classification_binary", probas[0]
    else:
        prefix = os.path.commonprefix(probas)
        problem, proba = "classification_multiclass", {p[len(prefix):]: p for p in probas}
    if target not in analysis.columns:
        targets = pd.read_csv(files["analysis_target"]["csv"])
        analysis = analysis.merge(targets, on=entry["id"], how="left", sort=False)
    full = len(analysis) // args.chunk * args.chunk
    analysis = analysis.iloc[:full].reset_index(drop=True)
    estimator = nml.CBPE(
        problem_type=problem,
        y_pred_proba=proba,
        y_pred=prediction,
        y_true=target,
        metrics=["accuracy", "f1", "roc_auc"],
        chunk_size=args.chunk,
    )
    estimator.fit(reference)
    results = estimator.estimate(analysis).filter(period="analysis").to_df()
    for i in range(len(results)):
        row = {"chunk": i}
        for metric in ("accuracy", "f1", "roc_auc"):
            row[metric] = float(results[(metric, "value")].iloc[i])
        print(json.dumps(row))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
