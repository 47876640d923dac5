"""Registers a model version in MLflow's Model Registry as a team would: a run logs the ONNX
model and its reference rows as artifacts under `model/`, a version of NAME is made from
them, and ALIAS is moved to it. Prints the version's number.

    register.py TRACKING_URI NAME MODEL.onnx REFERENCE.csv ALIAS
"""

import os
import shutil
import sys
import tempfile

# MLflow's telemetry (on by default since 3.x) sets and removes an environment variable from a
# thread of its own, and a request made meanwhile once failed with KeyError
# '_MLFLOW_TELEMETRY_SESSION_ID'. Nothing here should report anywhere anyway.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import mlflow  # noqa: E402 (after the telemetry is turned off)
from mlflow import MlflowClient  # noqa: E402

tracking_uri, name, model, reference, alias = sys.argv[1:6]
mlflow.set_tracking_uri(tracking_uri)
client = MlflowClient()
with mlflow.start_run() as run, tempfile.TemporaryDirectory() as files:
    # The names driftwood reads, whatever the files are called here.
    shutil.copy(model, os.path.join(files, "model.onnx"))
    shutil.copy(reference, os.path.join(files, "reference.csv"))
    mlflow.log_artifacts(files, artifact_path="model")
if not client.search_registered_models(filter_string=f"name = '{name}'"):
    client.create_registered_model(name)
version = client.create_model_version(
    name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
)
client.set_registered_model_alias(name, alias, version.version)
print(version.version)
