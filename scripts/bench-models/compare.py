"""Scores the same trees on the same rows, one thread, in ns/row at batch 1, 64 and 1024:
driftwood (`driftwood bench-model`), onnxruntime, tl2cgen-compiled C (gcc) and the
library's own predict. Run by scripts/bench-models.sh; prints a table and writes JSON.

Models: driftwood's bundled forest (exported with `driftwood export`; its library is
smartcore, timed by `driftwood bench-model --smartcore`); a 500-tree scikit-learn random
forest of default depth and a 1,000-tree XGBoost model of depth 8, both trained on 60,000
synthetic rows (make_classification: 30 features, 12 informative, class_sep 2).
Every runtime but the libraries reads the ONNX file; treelite's model is built from it
node by node, so all of them walk identical trees.
"""

import argparse
import hashlib
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import tl2cgen
import treelite
from onnx import helper
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.ensemble import RandomForestClassifier
from skl2onnx import to_onnx
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType
from xgboost import XGBClassifier

ort.set_default_logger_severity(3)
BATCHES = (1, 64, 1024)
SEED = 11


def attributes(path):
    model = onnx.load(str(path))
    node = next(n for n in model.graph.node if n.op_type.startswith("TreeEnsemble"))
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def to_treelite(path, n_features, double):
    """A treelite model of the ONNX file's trees (binary classifiers that score one column)."""
    a = attributes(path)
    values = a.get("nodes_values")
    if values is None:
        values = onnx.numpy_helper.to_array(a["nodes_values_as_tensor"])
    weights = {(t, n): w for t, n, w in zip(a["class_treeids"], a["class_nodeids"], a["class_weights"])}
    trees = {}
    for i, t in enumerate(a["nodes_treeids"]):
        trees.setdefault(t, []).append(i)
    ops = {b"BRANCH_LEQ": "<=", b"BRANCH_LT": "<", b"BRANCH_GTE": ">=", b"BRANCH_GT": ">"}
    post = a.get("post_transform", b"NONE")
    kind = "float64" if double else "float32"
    builder = treelite.model_builder.ModelBuilder(
        threshold_type=kind, leaf_output_type=kind,
        metadata=treelite.model_builder.Metadata(
            num_feature=n_features, task_type="kBinaryClf", average_tree_output=False,
            num_target=1, num_class=[1], leaf_vector_shape=(1, 1)),
        tree_annotation=treelite.model_builder.TreeAnnotation(
            num_tree=len(trees), target_id=[0] * len(trees), class_id=[0] * len(trees)),
        postprocessor=treelite.model_builder.PostProcessorFunc(
            name="sigmoid" if post == b"LOGISTIC" else "identity"),
        base_scores=[float(a.get("base_values", [0.0])[0])])
    missing = a.get("nodes_missing_value_tracks_true") or [0] * len(values)
    for t, members in trees.items():
        builder.start_tree()
        for i in members:
            node = a["nodes_nodeids"][i]
            builder.start_node(node)
            if a["nodes_modes"][i] == b"LEAF":
                builder.leaf(float(weights.get((t, node), 0.0)))
            else:
                builder.numerical_test(
                    a["nodes_featureids"][i], float(values[i]), default_left=bool(missing[i]),
                    opname=ops[a["nodes_modes"][i]],
                    left_child_key=a["nodes_truenodeids"][i],
                    right_child_key=a["nodes_falsenodeids"][i])
            builder.end_node()
        builder.end_tree()
    return builder.commit()


def timed(call, batches_of, budget):
    """Median ns/row of rounds of about 20 ms over `budget` seconds, per batch size."""
    out = {}
    for b in BATCHES:
        chunks = batches_of(b)
        call(chunks[0])
        start = time.perf_counter()
        calls = 0
        while time.perf_counter() - start < 0.02:
            call(chunks[calls % len(chunks)])
            calls += 1
        rounds = []
        end = time.perf_counter() + budget
        k = 0
        while time.perf_counter() < end or len(rounds) < 5:
            t = time.perf_counter()
            for _ in range(calls):
                call(chunks[k % len(chunks)])
                k += 1
            rounds.append((time.perf_counter() - t) / (calls * b) * 1e9)
        out[b] = float(np.median(rounds))
    return out


def splitter(x):
    def batches_of(b):
        data = np.resize(x, (max(b, len(x)), x.shape[1])).astype(x.dtype)
        return [np.ascontiguousarray(data[i:i + b]) for i in range(0, len(data) - b + 1, b)]
    return batches_of


def bench_onnxruntime(path, x, budget):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options)
    name = session.get_inputs()[0].name
    return timed(lambda c: session.run(None, {name: c}), splitter(x), budget)


def bench_tl2cgen(model, x, out, name, onnx_path, budget):
    # Compiling a big forest takes gcc many minutes: the library is kept, named by the ONNX
    # file it was built from (the models are seeded, so a rerun builds the same file).
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:12]
    lib = out / f"{name}-{digest}.so"
    started = time.perf_counter()
    if not lib.exists():
        tl2cgen.export_lib(model(), toolchain="gcc", libpath=str(lib),
                           params={"parallel_comp": 8}, nthread=2)
    compiled = time.perf_counter() - started
    predictor = tl2cgen.Predictor(str(lib), nthread=1)
    batches = splitter(x)
    mats = {b: [tl2cgen.DMatrix(c) for c in batches(b)] for b in BATCHES}
    result = timed(lambda m: predictor.predict(m), lambda b: mats[b], budget)
    return result, compiled


def bench_driftwood(driftwood, model, rows, budget, extra=()):
    args = [driftwood, "bench-model", "--duration", f"{budget}s", *extra]
    if model:
        args += ["--model", str(model), "--rows", str(rows)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    results = json.loads(done.stderr.strip().splitlines()[-1])
    return {r["batch"]: r["ns_per_row"] for r in results}, done.stdout.splitlines()[0]


def synthetic():
    x, y = make_classification(n_samples=70_000, n_features=30, n_informative=12, class_sep=2.0,
                               random_state=SEED)
    return x[:60_000], y[:60_000], x[60_000:]


def main(out, driftwood, budget):
    out.mkdir(parents=True, exist_ok=True)
    table = []

    # The bundled forest (smartcore), exported by driftwood.
    bundled = out / "bundled.onnx"
    subprocess.run([driftwood, "export", "--output", str(bundled)], check=True, capture_output=True)
    x = load_breast_cancer().data
    rows = {
        "driftwood": bench_driftwood(driftwood, None, None, budget)[0],
        "onnxruntime": bench_onnxruntime(bundled, x, budget),
        "tl2cgen": bench_tl2cgen(lambda: to_treelite(bundled, 30, True), x, out, "bundled", bundled, budget)[0],
        "library": bench_driftwood(driftwood, None, None, budget, ["--smartcore"])[0],
    }
    table.append(("bundled forest (100 trees, depth 10)", "smartcore", rows))

    x_train, y_train, x_test = synthetic()
    x_test.astype("<f8").tofile(out / "synthetic.rows")
    x32 = x_test.astype(np.float32)

    forest = RandomForestClassifier(n_estimators=500, n_jobs=-1, random_state=SEED).fit(x_train, y_train)
    forest.n_jobs = 1
    path = out / "forest.onnx"
    path.write_bytes(to_onnx(forest, x32[:1], options={id(forest): {"zipmap": False}}).SerializeToString())
    nodes = sum(e.tree_.node_count for e in forest.estimators_)
    rows = {
        "driftwood": bench_driftwood(driftwood, path, out / "synthetic.rows", budget)[0],
        "onnxruntime": bench_onnxruntime(path, x32, budget),
        "tl2cgen": bench_tl2cgen(lambda: to_treelite(path, 30, False), x32, out, "forest", path, budget)[0],
        "library": timed(forest.predict_proba, splitter(x32), budget),
    }
    table.append((f"scikit-learn forest (500 trees, default depth, {nodes:,} nodes)", "scikit-learn", rows))

    boosted = XGBClassifier(n_estimators=1000, max_depth=8, nthread=2, random_state=SEED).fit(x_train, y_train)
    boosted.set_params(nthread=1)
    path = out / "xgboost.onnx"
    onnx_model = convert_xgboost(boosted, initial_types=[("input", FloatTensorType([None, 30]))], target_opset=15)
    path.write_bytes(onnx_model.SerializeToString())
    booster = boosted.get_booster()
    rows = {
        "driftwood": bench_driftwood(driftwood, path, out / "synthetic.rows", budget)[0],
        "onnxruntime": bench_onnxruntime(path, x32, budget),
        "tl2cgen": bench_tl2cgen(lambda: to_treelite(path, 30, False), x32, out, "xgboost", path, budget)[0],
        "library": timed(lambda c: booster.inplace_predict(c), splitter(x32), budget),
    }
    table.append(("XGBoost (1,000 trees, depth 8)", "xgboost", rows))

    print(f"{'model':58} {'runtime':12} " + " ".join(f"{'batch ' + str(b):>12}" for b in BATCHES)
          + "   driftwood faster, batch 64")
    for name, library, rows in table:
        for runtime, result in rows.items():
            label = library if runtime == "library" else runtime
            ratio = "" if runtime == "driftwood" else f"{result[64] / rows['driftwood'][64]:.1f}x"
            print(f"{name:58} {label:12} " + " ".join(f"{result[b]:10.0f} ns" for b in BATCHES)
                  + f"   {ratio}")
            name = ""
    (out / "results.json").write_text(json.dumps(
        [{"model": n, "library": l, "ns_per_row": r} for n, l, r in table], indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--driftwood", default="target/release/driftwood")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    main(args.out, args.driftwood, args.seconds)
