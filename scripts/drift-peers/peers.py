#!/usr/bin/env python3
"""Peer drift detectors on the same windows as driftwood's drift benchmark.

Reads windows from stdin (binary protocol below), runs each selected peer tool with its own
defaults, and writes JSON lines to stdout. Run it with the venv from
`scripts/py-env.sh scripts/drift-peers/requirements.txt`.

stdin:
  line 1: JSON header ending in '\\n':
    {"features": p, "feature_names": [...], "reference_rows": m, "window_rows": n,
     "windows": k, "scenario": "free text"}
  then m*p little-endian float64 (reference, row-major), then k windows of n*p float64 each
  (row-major). NaN means a missing value.

stdout (JSON lines only):
  first line: {"header": {...}}  - tools run, branches taken, subsampling/skips
  then per (tool, window):
    {"tool", "scenario", "window", "alert", "flagged", "score", "seconds"}
  a tool that failed on one window writes "alert": null and "error": "...".
stderr: one-time notes {"tool": ..., "note": ...} (which default branch applied, fit time).

Tools: evidently (-> evidently-dataset, evidently-any), nannyml-univariate, nannyml-pca,
alibi-ks, alibi-mmd, psi (-> psi-warn, psi-alert). Default: all but alibi-mmd (a permutation
test over an (m+n)^2 kernel matrix: seconds to minutes per window, see NOTES.md).

`--self-test` makes a Gaussian reference and null/shifted windows, encodes them in the same
protocol, parses them back with the same code and prints a summary table to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import os
import struct
import sys
import time
import warnings

# Quiet the libraries before they are imported: no usage telemetry (there is no network here
# anyway), no progress bars, no TF/torch chatter.
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.simplefilter("ignore")

import numpy as np  # noqa: E402

ALL_TOOLS = ["evidently", "nannyml-univariate", "nannyml-pca", "alibi-ks", "alibi-mmd", "psi"]
DEFAULT_TOOLS = ["evidently", "nannyml-univariate", "nannyml-pca", "alibi-ks", "psi"]

# alibi-mmd sizing. MMDDrift builds the full (m+n)x(m+n) kernel matrix and permutes it
# n_permutations=100 times per window; measured here (2 cores, float32): m=5000,n=1000 16 s,
# m=2000,n=1000 4 s; m=50000,n=5000 would need a 55000^2 matrix (12 GB in float32, plus the
# m^2 sort for the median bandwidth) and does not fit in 24 GB. So the reference is subsampled.
MMD_REF_MAX = 2000
MMD_MAX_TOTAL = 8000  # skip when subsampled reference + window rows exceed this (> ~30 s/window)


def note(tool: str, text: str, **extra) -> None:
    print(json.dumps({"tool": tool, "note": text, **extra}), file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet():
    """Send anything a library prints to stdout to stderr instead (stdout is JSON only)."""
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def silence_loggers() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR)
    for name in ("nannyml", "evidently", "alibi_detect", "numba", "torch", "matplotlib", "PIL",
                 "transformers", "py.warnings"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ---------------------------------------------------------------------------------------------
# Protocol


def read_exact(stream, nbytes: int) -> bytes:
    chunks = []
    left = nbytes
    while left:
        b = stream.read(left)
        if not b:
            raise EOFError(f"stdin ended with {left} of {nbytes} bytes missing")
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


def read_header(stream) -> dict:
    line = stream.readline()
    if not line:
        raise EOFError("no header line on stdin")
    h = json.loads(line)
    p = int(h["features"])
    names = h.get("feature_names") or [f"f{i}" for i in range(p)]
    if len(names) != p:
        raise ValueError(f"{len(names)} feature_names for {p} features")
    names = [str(x) for x in names]
    if len(set(names)) != p:  # the tools key columns by name
        names = [f"{x}#{i}" for i, x in enumerate(names)]
    h["feature_names"] = names
    for key in ("features", "reference_rows", "window_rows", "windows"):
        h[key] = int(h[key])
    h.setdefault("scenario", "")
    return h


def read_matrix(stream, rows: int, cols: int) -> np.ndarray:
    buf = read_exact(stream, rows * cols * 8)
    return np.frombuffer(buf, dtype="<f8").reshape(rows, cols).astype(np.float64, copy=True)


def encode(header: dict, reference: np.ndarray, windows: list[np.ndarray]) -> bytes:
    out = io.BytesIO()
    out.write((json.dumps(header) + "\n").encode())
    out.write(np.ascontiguousarray(reference, dtype="<f8").tobytes())
    for w in windows:
        out.write(np.ascontiguousarray(w, dtype="<f8").tobytes())
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Tools. Each has fit(reference) and run(list of (index, window)) -> iterable of result dicts.


def result(tool, window, alert, flagged, score, seconds, **extra):
    r = {"tool": tool, "window": int(window), "alert": None if alert is None else bool(alert),
         "flagged": [int(i) for i in flagged], "score": None, "seconds": round(float(seconds), 6)}
    if score is not None and not (isinstance(score, float) and math.isnan(score)):
        r["score"] = float(score)
    r.update(extra)
    return r


class Evidently:
    """DataDriftPreset with default stattests/thresholds; drift_share 0.5."""

    names = ["evidently-dataset", "evidently-any"]

    def fit(self, ref, cols):
        with quiet():
            import evidently
            from evidently import DataDefinition, Dataset, Report
            from evidently.presets import DataDriftPreset
        self.Dataset, self.Report, self.Preset = Dataset, Report, DataDriftPreset
        self.cols = cols
        self.dd = DataDefinition(numerical_columns=list(cols))
        import pandas as pd
        self.pd = pd
        self.ref = Dataset.from_pandas(pd.DataFrame(ref, columns=cols), data_definition=self.dd)
        self.m = ref.shape[0]
        self.seen_methods = set()
        branch = ("reference rows > 1000: Wasserstein distance (normed) >= 0.1 for numeric columns "
                  "with > 5 unique values (Jensen-Shannon >= 0.1 if <= 5)") if self.m > 1000 else \
                 ("reference rows <= 1000: K-S p-value <= 0.05 for numeric columns with > 5 unique "
                  "values (chi-square / z-test if <= 5)")
        note("evidently", f"evidently {evidently.__version__} DataDriftPreset defaults; {branch}; "
             "dataset drift when share of drifted columns >= 0.5")

    def run(self, windows):
        for i, w in windows:
            t0 = time.perf_counter()
            try:
                with quiet():
                    cur = self.Dataset.from_pandas(self.pd.DataFrame(w, columns=self.cols),
                                                   data_definition=self.dd)
                    snap = self.Report([self.Preset()], include_tests=True).run(cur, self.ref)
                    d = snap.dict()
                share = None
                count = None
                for mres in d["metrics"]:
                    if mres["config"]["type"].endswith("DriftedColumnsCount"):
                        share = mres["value"]["share"]
                        count = mres["value"]["count"]
                    elif mres["config"]["type"].endswith("ValueDrift"):
                        self.seen_methods.add(mres["config"].get("method"))
                dataset_alert = None
                flagged = []
                col_index = {c: j for j, c in enumerate(self.cols)}
                for t in d["tests"]:
                    params = t["metric_config"]["params"]
                    if params["type"].endswith("DriftedColumnsCount"):
                        dataset_alert = t["status"] == "FAIL"
                    elif params["type"].endswith("ValueDrift") and t["status"] == "FAIL":
                        flagged.append(col_index[params["column"]])
                secs = time.perf_counter() - t0
                flagged.sort()
                yield result("evidently-dataset", i, dataset_alert, flagged, share, secs)
                yield result("evidently-any", i, len(flagged) > 0, flagged, count, secs)
            except Exception as e:  # e.g. a column with no values in this window
                secs = time.perf_counter() - t0
                for name in self.names:
                    yield result(name, i, None, [], None, secs, error=repr(e)[:300])

    def finish(self):
        note("evidently", "stattests chosen", methods=sorted(m for m in self.seen_methods if m))


def nannyml_fit(calculator: str, ref, cols, n):
    """nannyml.<calculator>(column_names=cols, chunk_size=n) fitted on the reference, quietly;
    returns (nannyml, pandas, the fitted calculator, when the fit started)."""
    with quiet():
        import nannyml as nml
        import pandas as pd
    silence_loggers()
    t0 = time.perf_counter()
    with quiet():
        calc = getattr(nml, calculator)(column_names=list(cols), chunk_size=n)
        calc.fit(pd.DataFrame(ref, columns=cols))
    return nml, pd, calc, t0


def nannyml_run(tool, calc, pd, cols, windows, chunk_result):
    """Runs a fitted NannyML calculator on the windows as one analysis period, a chunk per
    window, and yields each window's result: chunk_result(res, row) gives (alert, flagged,
    score) from the chunk's row of the results. When the calculator fails, every window's result
    carries the error."""
    if not windows:
        return
    t0 = time.perf_counter()
    data = pd.DataFrame(np.vstack([w for _, w in windows]), columns=cols)
    try:
        with quiet():
            res = calc.calculate(data).filter(period="analysis").to_df()
    except Exception as e:
        secs = (time.perf_counter() - t0) / len(windows)
        for i, _ in windows:
            yield result(tool, i, None, [], None, secs, error=repr(e)[:300])
        return
    secs = (time.perf_counter() - t0) / len(windows)
    if len(res) != len(windows):
        raise RuntimeError(f"nannyml made {len(res)} chunks from {len(windows)} windows")
    for row, (i, _) in enumerate(windows):
        alert, flagged, score = chunk_result(res, row)
        yield result(tool, i, alert, flagged, score, secs)


class NannymlUnivariate:
    """UnivariateDriftCalculator, default methods (jensen_shannon) and thresholds, chunk_size=n."""

    names = ["nannyml-univariate"]

    def fit(self, ref, cols, n):
        nml, self.pd, self.calc, t0 = nannyml_fit("UnivariateDriftCalculator", ref, cols, n)
        self.cols, self.n = cols, n
        m = ref.shape[0]
        chunks = math.ceil(m / n)
        note("nannyml-univariate",
             f"nannyml {nml.__version__}: continuous method jensen_shannon (Doane bins of the "
             f"reference); alert when a chunk's distance > mean + 3*std of the distances of the "
             f"{chunks} reference chunk(s) of size {n}"
             + (" (last one incomplete, kept)" if m % n else "")
             + ("; fewer than 6 reference chunks: NannyML warns the thresholds are unreliable"
                if chunks < 6 else "")
             + ("; a single reference chunk has std 0, so the threshold is that chunk's own "
                "distance" if chunks == 1 else ""),
             fit_seconds=round(time.perf_counter() - t0, 3), reference_chunks=chunks)

    def run(self, windows):
        return nannyml_run("nannyml-univariate", self.calc, self.pd, self.cols, windows,
                           self.chunk_result)

    def chunk_result(self, res, row):
        """Alert when any feature's chunk alerts; those features; the largest distance."""
        flagged, best = [], float("nan")
        for j, c in enumerate(self.cols):
            a = res[(c, "jensen_shannon", "alert")].iloc[row]
            v = res[(c, "jensen_shannon", "value")].iloc[row]
            if bool(a):
                flagged.append(j)
            if not math.isnan(v) and not (v <= best):
                best = float(v)
        return bool(flagged), flagged, best

    def finish(self):
        pass


class NannymlPCA:
    """DataReconstructionDriftCalculator defaults (PCA 65% variance, mean imputation, 3 std)."""

    names = ["nannyml-pca"]

    def fit(self, ref, cols, n):
        nml, self.pd, self.calc, t0 = nannyml_fit("DataReconstructionDriftCalculator", ref, cols, n)
        self.cols, self.n = cols, n
        lo, hi = self.calc.lower_threshold_value, self.calc.upper_threshold_value
        m = ref.shape[0]
        note("nannyml-pca",
             f"nannyml {nml.__version__}: StandardScaler + PCA(n_components=0.65) kept "
             f"{self.calc._pca.n_components_} of {len(cols)} components; NaN imputed with the "
             f"reference mean; alert when a chunk's mean reconstruction error is outside "
             f"({lo}, {hi}) = mean -/+ 3*std over {math.ceil(m / n)} reference chunk(s)",
             fit_seconds=round(time.perf_counter() - t0, 3),
             components=int(self.calc._pca.n_components_), lower=lo, upper=hi)

    def run(self, windows):
        return nannyml_run("nannyml-pca", self.calc, self.pd, self.cols, windows,
                           self.chunk_result)

    @staticmethod
    def chunk_result(res, row):
        """Alert when the chunk's reconstruction error is outside the thresholds; that error."""
        a = res[("reconstruction_error", "alert")].iloc[row]
        v = res[("reconstruction_error", "value")].iloc[row]
        return bool(a), [], float(v)

    def finish(self):
        pass


def impute_with(ref_means: np.ndarray, x: np.ndarray) -> np.ndarray:
    if not np.isnan(x).any():
        return x
    x = x.copy()
    r, c = np.nonzero(np.isnan(x))
    x[r, c] = ref_means[c]
    return x


class AlibiKS:
    """KSDrift(x_ref) defaults: p_val=0.05, correction='bonferroni', two-sided, asymptotic."""

    names = ["alibi-ks"]

    def fit(self, ref, cols, nan_policy):
        with quiet():
            import alibi_detect
            from alibi_detect.cd import KSDrift
        silence_loggers()
        self.nan_policy = nan_policy
        self.means = np.nanmean(ref, axis=0)
        if nan_policy == "impute":
            ref = impute_with(self.means, ref)
        with quiet():
            self.cd = KSDrift(ref)
        p = ref.shape[1]
        note("alibi-ks", f"alibi-detect {alibi_detect.__version__} KSDrift defaults: p_val=0.05, "
             f"correction=bonferroni -> a feature drifts when p < {0.05 / p:.6g}; "
             f"NaN policy: {nan_policy}")

    def run(self, windows):
        for i, w in windows:
            t0 = time.perf_counter()
            x = impute_with(self.means, w) if self.nan_policy == "impute" else w
            with quiet():
                r = self.cd.predict(x)["data"]
            secs = time.perf_counter() - t0
            pv = np.asarray(r["p_val"], dtype=float)
            flagged = np.nonzero(pv < r["threshold"])[0].tolist()
            yield result("alibi-ks", i, r["is_drift"], flagged,
                         float(np.nanmin(pv)) if np.isfinite(pv).any() else None, secs)

    def finish(self):
        pass


class AlibiMMD:
    """MMDDrift(x_ref, backend='pytorch') on CPU, defaults otherwise (100 permutations,
    Gaussian RBF with median-heuristic bandwidth from the reference, p_val=0.05)."""

    names = ["alibi-mmd"]

    def fit(self, ref, cols, n, ref_max, max_total, seed, nan_policy):
        self.skip_reason = None
        m = ref.shape[0]
        self.means = np.nanmean(ref, axis=0)
        ref = impute_with(self.means, ref)  # MMD cannot take NaN at all
        self.sub = min(m, ref_max)
        if self.sub + n > max_total:
            self.skip_reason = (f"window_rows {n} + reference subsample {self.sub} > {max_total}: "
                                f"the permutation test would take well over 30 s per window")
            note("alibi-mmd", "skipped: " + self.skip_reason)
            return
        if self.sub < m:
            idx = np.sort(np.random.default_rng(seed).choice(m, size=self.sub, replace=False))
            ref = ref[idx]
        with quiet():
            import alibi_detect
            import torch
            from alibi_detect.cd import MMDDrift
        silence_loggers()
        t0 = time.perf_counter()
        with quiet():
            self.cd = MMDDrift(ref.astype(np.float32), backend="pytorch", device="cpu")
        note("alibi-mmd", f"alibi-detect {alibi_detect.__version__} MMDDrift backend=pytorch "
             f"(torch {torch.__version__}, CPU, {torch.get_num_threads()} threads), float32, "
             + (f"reference subsampled {m} -> {self.sub} rows (seed {seed}), " if self.sub < m
                else f"reference {m} rows (not subsampled), ")
             + f"p_val=0.05, "
             f"n_permutations=100, GaussianRBF sigma by median heuristic on the reference; "
             f"NaN always imputed with the reference mean (MMD cannot take NaN)",
             fit_seconds=round(time.perf_counter() - t0, 3), reference_subsample=self.sub)

    def run(self, windows):
        if self.skip_reason:
            return
        for i, w in windows:
            t0 = time.perf_counter()
            x = impute_with(self.means, w).astype(np.float32)
            with quiet():
                r = self.cd.predict(x)["data"]
            secs = time.perf_counter() - t0
            yield result("alibi-mmd", i, r["is_drift"], [], float(r["p_val"]), secs,
                         distance=float(r["distance"]))

    def finish(self):
        pass


class PSIRule:
    """The old rule: PSI over 10 reference-decile bins per feature, bins closed on the right,
    proportions floored at 1e-4 and renormalised; warn >= 0.1, alert >= 0.25. Edges as in
    src/model/baseline.rs Histogram::quantiles (the ceil(q*len/10)-th smallest value, repeated
    edges merged)."""

    names = ["psi-warn", "psi-alert"]

    def fit(self, ref, cols, nan_policy, warn=0.1, alert=0.25):
        self.nan_policy, self.warn, self.alert = nan_policy, warn, alert
        self.edges, self.base = [], []
        for j in range(ref.shape[1]):
            v = ref[:, j]
            if nan_policy == "drop":
                v = v[~np.isnan(v)]
            s = np.sort(v)  # NaN last, as f64::total_cmp puts a positive NaN
            if len(s) == 0:
                e = np.array([])
            else:
                e = np.array([s[max(-(-(q * len(s)) // 10) - 1, 0)] for q in range(1, 10)])
                e = e[np.concatenate(([True], e[1:] != e[:-1]))]  # dedup consecutive repeats
            self.edges.append(e)
            self.base.append(self._props(e, v))
        note("psi", f"10 reference-decile bins, floor 1e-4, warn >= {warn}, alert >= {alert}; "
             + ("NaN dropped" if nan_policy == "drop" else
                "NaN counted in the first bin (what Rust's partition_point(e < NaN) does)"))

    def _props(self, edges, v):
        if self.nan_policy == "drop":
            v = v[~np.isnan(v)]
        if len(v) == 0:
            return None
        b = np.searchsorted(edges, v, side="left")  # = partition_point(e < v): (e_{i-1}, e_i]
        b[np.isnan(v)] = 0
        c = np.bincount(b, minlength=len(edges) + 1).astype(float)
        return c / c.sum()

    @staticmethod
    def _smooth(p):
        p = np.maximum(p, 1e-4)
        return p / p.sum()

    def psi(self, j, v):
        o = self._props(self.edges[j], v)
        if o is None or self.base[j] is None:
            return 0.0  # Rust: zeros for an empty window
        b, o = self._smooth(self.base[j]), self._smooth(o)
        return float(np.sum((o - b) * np.log(o / b)))

    def run(self, windows):
        for i, w in windows:
            t0 = time.perf_counter()
            psis = np.array([self.psi(j, w[:, j]) for j in range(w.shape[1])])
            secs = time.perf_counter() - t0
            mx = float(psis.max()) if len(psis) else 0.0
            fw = np.nonzero(psis >= self.warn)[0].tolist()
            fa = np.nonzero(psis >= self.alert)[0].tolist()
            yield result("psi-warn", i, bool(fw), fw, mx, secs)
            yield result("psi-alert", i, bool(fa), fa, mx, secs)

    def finish(self):
        pass


# ---------------------------------------------------------------------------------------------


def run(stream, out, args) -> None:
    silence_loggers()
    h = read_header(stream)
    p, m, n, k = h["features"], h["reference_rows"], h["window_rows"], h["windows"]
    cols = h["feature_names"]
    scenario = h["scenario"]
    tools = args.tools
    ref = read_matrix(stream, m, p)

    instances = []
    header = {"scenario": scenario, "features": p, "reference_rows": m, "window_rows": n,
              "windows": k, "tools": [], "skipped": {}, "nan_policy": args.nan_policy,
              "notes": {}}
    for t in tools:
        try:
            if t == "evidently":
                obj = Evidently(); obj.fit(ref, cols)
            elif t == "nannyml-univariate":
                obj = NannymlUnivariate(); obj.fit(ref, cols, n)
            elif t == "nannyml-pca":
                obj = NannymlPCA(); obj.fit(ref, cols, n)
            elif t == "alibi-ks":
                obj = AlibiKS(); obj.fit(ref, cols, args.nan_policy)
            elif t == "alibi-mmd":
                obj = AlibiMMD()
                obj.fit(ref, cols, n, args.mmd_ref_max, args.mmd_max_total, args.seed,
                        args.nan_policy)
                if obj.skip_reason:
                    header["skipped"]["alibi-mmd"] = obj.skip_reason
                    continue
                if obj.sub < m:
                    header["notes"]["alibi-mmd"] = (f"reference subsampled to {obj.sub} of {m} "
                                                    f"rows (seed {args.seed})")
            elif t == "psi":
                obj = PSIRule(); obj.fit(ref, cols, args.psi_nan)
            else:
                raise ValueError(f"unknown tool {t}")
        except Exception as e:
            header["skipped"][t] = f"fit failed: {e!r}"[:400]
            note(t, f"fit failed: {e!r}")
            continue
        instances.append(obj)
        header["tools"].extend(obj.names)
    out.write(json.dumps({"header": header}) + "\n")
    out.flush()

    # Windows are read in batches (about args.batch_rows rows) so that NannyML can chunk many
    # windows in one calculate() call without holding the whole stream in memory.
    per_batch = max(1, args.batch_rows // max(n, 1))
    done = 0
    while done < k:
        batch = []
        for _ in range(min(per_batch, k - done)):
            batch.append((done, read_matrix(stream, n, p)))
            done += 1
        for obj in instances:
            for r in obj.run(batch):
                r["scenario"] = scenario
                out.write(json.dumps(r) + "\n")
            out.flush()
    for obj in instances:
        obj.finish()


def self_test(args) -> int:
    rng = np.random.default_rng(args.seed)
    p, m, n = 8, args.self_test_m, args.self_test_n
    names = [f"x{i}" for i in range(p)]
    ref = rng.normal(size=(m, p))
    windows, labels = [], []
    for _ in range(4):
        windows.append(rng.normal(size=(n, p))); labels.append("null")
    w = rng.normal(size=(n, p)); w[:, 0] += 0.5; windows.append(w); labels.append("mean+0.5 x0")
    w = rng.normal(size=(n, p)); w[:, 1] *= 1.5; windows.append(w); labels.append("sd*1.5 x1")
    w = rng.normal(size=(n, p)) + 0.3; windows.append(w); labels.append("all +0.3")
    w = rng.normal(size=(n, p)); w[rng.random(n) < 0.1, 2] = np.nan
    windows.append(w); labels.append("10% NaN x2")
    header = {"features": p, "feature_names": names, "reference_rows": m, "window_rows": n,
              "windows": len(windows), "scenario": "self-test"}
    payload = encode(header, ref, windows)
    out = io.StringIO()
    run(io.BufferedReader(io.BytesIO(payload)), out, args)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    hdr = lines[0]["header"]
    rows = lines[1:]
    assert all(set(r) >= {"tool", "scenario", "window", "alert", "flagged", "seconds"} for r in rows)
    tools = hdr["tools"]
    errors = [r for r in rows if r.get("error")]
    by = {(r["tool"], r["window"]): r for r in rows}
    w = max(len(t) for t in tools) if tools else 10
    print(f"self-test: m={m} n={n} p={p}; skipped: {hdr['skipped'] or 'none'}", file=sys.stderr)
    print(f"{'window':<14}" + "".join(f"{t:>{w + 2}}" for t in tools), file=sys.stderr)
    for i, lab in enumerate(labels):
        cells = []
        for t in tools:
            r = by.get((t, i))
            if r is None:
                cells.append("-")
            elif r.get("error"):
                cells.append("ERR")
            else:
                cells.append(("ALERT" if r["alert"] else "ok") + (f"{r['flagged']}" if r["flagged"] and len(r["flagged"]) <= 3 else ""))
        print(f"{lab:<14}" + "".join(f"{c:>{w + 2}}" for c in cells), file=sys.stderr)
    secs = {t: np.mean([by[(t, i)]["seconds"] for i in range(len(labels)) if (t, i) in by]) for t in tools}
    print("mean seconds/window: " + ", ".join(f"{t} {s:.3f}" for t, s in secs.items()), file=sys.stderr)
    missing = [(t, i) for t in tools for i in range(len(labels)) if (t, i) not in by]
    outputs = {"evidently": ["evidently-dataset", "evidently-any"], "psi": ["psi-warn", "psi-alert"]}
    absent = [t for t in args.tools if t not in hdr["skipped"]
              and not set(outputs.get(t, [t])) <= set(tools)]
    ok = not errors and not missing and not absent and not any(
        v.startswith("fit failed") for v in hdr["skipped"].values())
    # every tool should flag the strong all-features shift
    strong = labels.index("all +0.3")
    misses = [t for t in tools if t not in ("psi-warn", "psi-alert", "evidently-dataset") and not by[(t, strong)]["alert"]]
    if errors:
        print(f"errors: {errors}", file=sys.stderr)
    if missing:
        print(f"missing results: {missing}", file=sys.stderr)
    if misses:
        print(f"tools that missed the strong shift: {misses}", file=sys.stderr)
    print("self-test " + ("PASSED" if ok and not misses else "FAILED"), file=sys.stderr)
    return 0 if ok and not misses else 1


def gen_gaussian(spec: str, seed: int) -> int:
    """Write a Gaussian reference and windows in the stdin protocol to stdout (for timing runs
    without the Rust side). spec: m=..,n=..,k=..,p=..[,shift=..] (shift added to every
    feature of every window)."""
    kv = dict(x.split("=") for x in spec.split(","))
    m, n, k, p = (int(kv[x]) for x in ("m", "n", "k", "p"))
    shift = float(kv.get("shift", 0))
    rng = np.random.default_rng(seed)
    out = sys.stdout.buffer
    header = {"features": p, "feature_names": [f"f{i}" for i in range(p)], "reference_rows": m,
              "window_rows": n, "windows": k, "scenario": f"gaussian {spec}"}
    out.write((json.dumps(header) + "\n").encode())
    out.write(rng.normal(size=(m, p)).astype("<f8").tobytes())
    for _ in range(k):
        out.write((rng.normal(size=(n, p)) + shift).astype("<f8").tobytes())
    out.flush()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tools", default=",".join(DEFAULT_TOOLS),
                    help=f"comma list of {','.join(ALL_TOOLS)} or 'all' (default: all but alibi-mmd)")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--gen-gaussian", metavar="m=..,n=..,k=..,p=..[,shift=..]",
                    help="write Gaussian test input in the stdin protocol to stdout and exit")
    ap.add_argument("--self-test-m", type=int, default=5000)
    ap.add_argument("--self-test-n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nan-policy", choices=["impute", "propagate"], default="impute",
                    help="alibi-ks: replace NaN by the reference column mean (default), or pass NaN "
                         "through (scipy's ks_2samp then gives p=nan and the feature never flags)")
    ap.add_argument("--psi-nan", choices=["drop", "first-bin"], default="drop",
                    help="psi: drop NaN (default) or count it in the first bin like the Rust code")
    ap.add_argument("--mmd-ref-max", type=int, default=MMD_REF_MAX,
                    help="alibi-mmd: subsample the reference to at most this many rows")
    ap.add_argument("--mmd-max-total", type=int, default=MMD_MAX_TOTAL,
                    help="alibi-mmd: skip when subsampled reference + window rows exceed this")
    ap.add_argument("--batch-rows", type=int, default=2_000_000,
                    help="rows of windows read per batch (NannyML runs one calculate() per batch)")
    args = ap.parse_args(argv)
    args.tools = ALL_TOOLS if args.tools == "all" else [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in args.tools if t not in ALL_TOOLS]
    if unknown:
        ap.error(f"unknown tools {unknown}; choose from {ALL_TOOLS}")
    if args.gen_gaussian:
        return gen_gaussian(args.gen_gaussian, args.seed)
    if args.self_test:
        return self_test(args)
    run(sys.stdin.buffer, sys.stdout, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
