"""Trains the models of driftwood's parity test on data sets scikit-learn ships, exports
each to ONNX, scores held-out rows with onnxruntime (one thread), and writes what
tests/parity.rs compares against: <out>/manifest.json, and per model <name>.onnx,
<name>.rows (float64 little-endian, row-major), <name>.ort (float32 scores, row-major).

Usage: python export_models.py OUT_DIR [--only NAME]
       python export_models.py --score MODEL.onnx ROWS FEATURES OUT
The second form scores ROWS (float64, row-major, FEATURES wide) with onnxruntime and writes
the probabilities (or values) to OUT as float32.
"""

import argparse

import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
from lightgbm import LGBMClassifier
from onnxmltools import convert_lightgbm, convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.model_selection import train_test_split
from xgboost import XGBClassifier

warnings.filterwarnings("ignore")
SEED = 7


def with_missing(x, share, seed):
    """A copy of x with `share` of its entries NaN (for models with missing-value tracks)."""
    x = x.copy()
    rng = np.random.default_rng(seed)
    x[rng.random(x.shape) < share] = np.nan
    return x


def data(loader, missing):
    x, y = loader(return_X_y=True)
    if missing:
        x = with_missing(x, 0.03, SEED)
    return train_test_split(x, y, test_size=0.3, random_state=SEED)


def named_classes(loader):
    """The loader with its classes as names (`malignant`, `benign`): models trained on it
    have string class labels."""
    def load(return_X_y=False):
        if not return_X_y:
            return loader()
        x, y = loader(return_X_y=True)
        return x, loader().target_names[y]
    return load


def as_values(loader):
    """The loader with its targets as floats, for a regressor on a classification set."""
    def load(return_X_y=False):
        if not return_X_y:
            return loader()
        x, y = loader(return_X_y=True)
        return x, y.astype(np.float64)
    return load


def target_text(value):
    """A target as the reference CSV holds it: a class name, an integer label, or a value."""
    if isinstance(value, str):
        return value
    if float(value).is_integer() and np.issubdtype(type(value), np.integer):
        return str(int(value))
    return repr(float(value))


def write_reference(path, loader, x, y):
    """Held-out rows without missing values as `driftwood import --reference` reads them: a
    header of the features' names in snake_case (as the input schema names them) and `target`."""
    names = ["_".join(n.split()) for n in loader().feature_names]
    keep = ~np.isnan(x).any(axis=1)
    with open(path, "w") as f:
        f.write(",".join(names + ["target"]) + "\n")
        for row, label in zip(x[keep], y[keep]):
            f.write(",".join(repr(float(v)) for v in row) + f",{target_text(label)}\n")


def skl(model, x):
    return to_onnx(model, x[:1].astype(np.float32), options={id(model): {"zipmap": False}}
                   if hasattr(model, "predict_proba") else None)


def onnxml(convert, model, x, **kw):
    types = [("input", FloatTensorType([None, x.shape[1]]))]
    return convert(model, initial_types=types, target_opset=15, **kw)


MODELS = [
    # name, model, data loader, missing values, export
    ("random_forest", lambda: RandomForestClassifier(n_estimators=100, random_state=SEED),
     load_breast_cancer, False, skl),
    ("extra_trees_multiclass", lambda: ExtraTreesClassifier(n_estimators=100, random_state=SEED),
     load_wine, False, skl),
    ("random_forest_regressor", lambda: RandomForestRegressor(n_estimators=100, random_state=SEED),
     load_diabetes, False, skl),
    ("gradient_boosting", lambda: GradientBoostingClassifier(n_estimators=100, random_state=SEED),
     load_breast_cancer, False, skl),
    ("hist_gradient_boosting", lambda: HistGradientBoostingClassifier(max_iter=100, random_state=SEED),
     load_breast_cancer, True, skl),
    ("xgboost", lambda: XGBClassifier(n_estimators=100, max_depth=6, random_state=SEED),
     load_breast_cancer, True, lambda m, x: onnxml(convert_xgboost, m, x)),
    ("lightgbm", lambda: LGBMClassifier(n_estimators=100, random_state=SEED, verbose=-1),
     load_breast_cancer, True, lambda m, x: onnxml(convert_lightgbm, m, x, zipmap=False)),
    ("lightgbm_multiclass", lambda: LGBMClassifier(n_estimators=100, random_state=SEED, verbose=-1),
     load_digits, True, lambda m, x: onnxml(convert_lightgbm, m, x, zipmap=False)),
    # Served on Kafka by tests/integration/imported.rs (breast-cancer features, as the
    # bundled input schema has them): string class labels, and a boosted regressor.
    ("named_classes", lambda: RandomForestClassifier(n_estimators=50, random_state=SEED),
     named_classes(load_breast_cancer), False, skl),
    ("boosted_regressor", lambda: GradientBoostingRegressor(n_estimators=100, random_state=SEED),
     as_values(load_breast_cancer), False, skl),
]


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options)


def ort_scores(sess, x):
    """onnxruntime's probabilities (classifiers) or values (regressors) for x, as float32."""
    results = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})
    scores = results[1] if len(results) == 2 else results[0]
    return results, np.asarray(scores, dtype=np.float32).reshape(len(x), -1)


def score(model, rows, features, out):
    x = np.fromfile(rows, dtype="<f8").reshape(-1, features)
    _, scores = ort_scores(session(model), x)
    scores.astype("<f4").tofile(out)


def main(out, only):
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for name, make, loader, missing, export in MODELS:
        if only and name != only:
            continue
        x_train, x_test, y_train, y_test = data(loader, missing)
        model = make().fit(x_train, y_train)
        onnx_model = export(model, x_train)
        (out / f"{name}.onnx").write_bytes(onnx_model.SerializeToString())
        results, scores = ort_scores(session(out / f"{name}.onnx"), x_test)
        classifier = len(results) == 2
        x_test.astype("<f8").tofile(out / f"{name}.rows")
        write_reference(out / f"{name}.reference.csv", loader, x_test, y_test)
        scores.astype("<f4").tofile(out / f"{name}.ort")
        manifest.append({
            "name": name,
            "library": type(model).__module__.split(".")[0],
            "estimator": type(model).__name__,
            "rows": len(x_test),
            "features": x_test.shape[1],
            "columns": scores.shape[1],
            "rows_with_nan": int(np.isnan(x_test).any(axis=1).sum()),
            "labels": [str(v) for v in np.asarray(results[0]).ravel()] if classifier else None,
        })
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--only")
    parser.add_argument("--score", nargs=4, metavar=("MODEL", "ROWS", "FEATURES", "OUT"))
    args = parser.parse_args()
    if args.score:
        model, rows, features, out = args.score
        score(model, rows, int(features), out)
    else:
        main(args.out, args.only)
