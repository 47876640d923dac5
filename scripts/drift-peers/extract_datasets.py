#!/usr/bin/env python3
"""Extract the drift datasets that ship inside the nannyml wheel as CSV, with a manifest.

    PY=$(scripts/py-env.sh scripts/drift-peers/requirements.txt)
    $PY scripts/drift-peers/extract_datasets.py [--out target/nannyml-data] [--drift-summary]

Reads nannyml/datasets/data/{employment_MA_*, synthetic_car_loan_*, mc_*} from the installed
package (importlib.resources, so it works from the wheel as installed), writes each as
<out>/<stem>.csv (parquet converted, CSV re-written unchanged in content) and
<out>/manifest.json: per file the path inside the wheel, sha256, rows, columns with dtype and
kind (numeric/categorical/timestamp/id/target/prediction), and per dataset the roles and the
reference/analysis boundary. --drift-summary also runs NannyML's UnivariateDriftCalculator
(its defaults, Jensen-Shannon) and DataReconstructionDriftCalculator with the chunk size the
NannyML docs use for that dataset and records which analysis chunks alert, per feature.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings
from importlib import resources
from pathlib import Path

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
warnings.simplefilter("ignore")

import pandas as pd  # noqa: E402

PACKAGE = "nannyml.datasets.data"
WHEEL_DIR = "nannyml/datasets/data"


def car_loan(loader: str, prefix: str) -> dict:
    """The synthetic car loan dataset's roles, of the files PREFIX_reference.csv and
    PREFIX_analysis.csv; both variants share the analysis target file."""
    return {
        "loader": loader,
        "files": {"reference": f"{prefix}_reference.csv",
                  "analysis": f"{prefix}_analysis.csv",
                  "analysis_target": "synthetic_car_loan_analysis_target.csv"},
        "features": ["car_value", "salary_range", "debt_to_income_ratio", "loan_length",
                     "repaid_loan_on_prev_car", "size_of_downpayment", "driver_tenure"],
        "timestamp": "timestamp", "target": "repaid", "prediction": "y_pred",
        "prediction_proba": ["y_pred_proba"], "id": "id", "docs_chunk_size": 5000,
    }


# Roles from the NannyML docs (docs/datasets/*.rst, docs/quick.rst, the tutorial notebooks).
DATASETS = {
    "employment_MA": {
        "loader": "nannyml.load_us_census_ma_employment_data",
        "files": {"reference": "employment_MA_reference.pq", "analysis": "employment_MA_analysis.pq",
                  "analysis_target": "employment_MA_analysis_target.pq"},
        "features": ["AGEP", "SCHL", "MAR", "RELP", "DIS", "ESP", "CIT", "MIG", "MIL", "ANC",
                     "NATIVITY", "DEAR", "DEYE", "DREM", "SEX", "RAC1P"],
        "timestamp": None, "period_column": "year", "target": "employed",
        "prediction": "prediction", "prediction_proba": ["predicted_probability"],
        "id": "id", "docs_chunk_size": 5000,
    },
    "synthetic_car_loan": car_loan("nannyml.load_synthetic_car_loan_dataset",
                                   "synthetic_car_loan"),
    "synthetic_car_loan_dq": car_loan("nannyml.load_synthetic_car_loan_data_quality_dataset",
                                      "synthetic_car_loan_dq"),
    "mc": {
        "loader": "nannyml.load_synthetic_multiclass_classification_dataset",
        "files": {"reference": "mc_reference.csv", "analysis": "mc_analysis.csv",
                  "analysis_target": "mc_analysis_gt.csv"},
        "features": ["acq_channel", "app_behavioral_score", "requested_credit_limit",
                     "app_channel", "credit_bureau_score", "stated_income", "is_customer"],
        "timestamp": "timestamp", "target": "y_true", "prediction": "y_pred",
        "prediction_proba": ["y_pred_proba_prepaid_card", "y_pred_proba_highstreet_card",
                             "y_pred_proba_upmarket_card"],
        "id": "id", "docs_chunk_size": 6000,
    },
}


def read(name: str) -> tuple[pd.DataFrame, str]:
    ref = resources.files(PACKAGE).joinpath(name)
    raw = ref.read_bytes()
    with resources.as_file(ref) as path:
        df = pd.read_parquet(path) if name.endswith(".pq") else pd.read_csv(path)
    return df, hashlib.sha256(raw).hexdigest()


def kind(col: str, s: pd.Series, spec: dict) -> str:
    if col == spec.get("timestamp"):
        return "timestamp"
    if col == spec.get("id"):
        return "id"
    if col == spec.get("target"):
        return "target"
    if col == spec.get("prediction") or col in spec.get("prediction_proba", []):
        return "prediction"
    if col == spec.get("period_column"):
        return "period"
    if pd.api.types.is_bool_dtype(s) or isinstance(s.dtype, pd.CategoricalDtype) \
            or s.dtype == object or pd.api.types.is_string_dtype(s):
        return "categorical"
    return "numeric"


def drift_summary(spec: dict, ref: pd.DataFrame, ana: pd.DataFrame) -> dict:
    import nannyml as nml
    import logging
    logging.getLogger("nannyml").setLevel(logging.ERROR)
    cs = spec["docs_chunk_size"]
    feats = spec["features"]
    out = {"chunk_size": cs, "method": "UnivariateDriftCalculator defaults (jensen_shannon, "
           "mean+3std of reference chunks)", "alert_chunks": {}}
    ts = spec.get("timestamp")
    calc = nml.UnivariateDriftCalculator(column_names=feats, chunk_size=cs,
                                         timestamp_column_name=ts).fit(ref)
    res = calc.calculate(ana).filter(period="analysis").to_df()
    for f in feats:
        alerts = res[(f, "jensen_shannon", "alert")].to_numpy()
        out["alert_chunks"][f] = [int(i) for i in range(len(alerts)) if alerts[i]]
    keys = res[("chunk", "chunk", "key")].tolist()
    out["chunks"] = keys
    if ts:
        out["chunk_start"] = [str(x) for x in res[("chunk", "chunk", "start_date")]]
    if spec.get("period_column"):
        col = ana[spec["period_column"]].to_numpy()
        out["chunk_periods"] = [sorted({int(v) for v in col[i:i + cs]}) for i in range(0, len(ana), cs)]
    dre = nml.DataReconstructionDriftCalculator(column_names=feats, chunk_size=cs,
                                                timestamp_column_name=ts).fit(ref)
    r2 = dre.calculate(ana).filter(period="analysis").to_df()
    a2 = r2[("reconstruction_error", "alert")].to_numpy()
    out["pca_alert_chunks"] = [int(i) for i in range(len(a2)) if a2[i]]
    out["pca_values"] = [round(float(v), 4) for v in r2[("reconstruction_error", "value")]]
    out["pca_thresholds"] = [dre.lower_threshold_value, dre.upper_threshold_value]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = Path(__file__).resolve().parents[2]
    ap.add_argument("--out", default=str(root / "target" / "nannyml-data"))
    ap.add_argument("--drift-summary", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import nannyml
    manifest = {"nannyml_version": nannyml.__version__, "wheel_dir": WHEEL_DIR, "datasets": {}}
    for ds, spec in DATASETS.items():
        entry = {k: v for k, v in spec.items() if k != "files"}
        entry["files"] = {}
        frames = {}
        for role, fname in spec["files"].items():
            df, sha = read(fname)
            frames[role] = df
            stem = fname.rsplit(".", 1)[0]
            csv = out / f"{stem}.csv"
            df.to_csv(csv, index=False)  # the dq variant shares the car-loan target file
            cols = [{"name": c, "dtype": str(df[c].dtype), "kind": kind(c, df[c], spec),
                     "unique": int(df[c].nunique()), "missing": int(df[c].isna().sum())}
                    for c in df.columns]
            f = {"wheel_path": f"{WHEEL_DIR}/{fname}", "sha256": sha, "csv": str(csv),
                 "rows": int(len(df)), "columns": cols}
            if spec.get("timestamp") and spec["timestamp"] in df:
                f["timestamp_range"] = [str(df[spec["timestamp"]].min()), str(df[spec["timestamp"]].max())]
            if spec.get("period_column") and spec["period_column"] in df:
                f["period_values"] = sorted(int(x) for x in df[spec["period_column"]].unique())
            entry["files"][role] = f
        ref, ana = frames["reference"], frames["analysis"]
        if spec.get("timestamp"):
            entry["reference_ends"] = str(ref[spec["timestamp"]].max())
            entry["analysis_begins"] = str(ana[spec["timestamp"]].min())
        else:
            entry["reference_ends"] = f"year {int(ref['year'].max())}"
            entry["analysis_begins"] = f"year {int(ana['year'].min())}"
        entry["numeric_features"] = [c for c in spec["features"] if kind(c, ref[c], spec) == "numeric"]
        entry["categorical_features"] = [c for c in spec["features"] if kind(c, ref[c], spec) == "categorical"]
        if args.drift_summary:
            entry["drift_summary"] = drift_summary(spec, ref, ana)
        manifest["datasets"][ds] = entry
        print(f"{ds}: reference {len(ref)} rows, analysis {len(ana)} rows -> {out}", file=sys.stderr)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"wrote {out / 'manifest.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
