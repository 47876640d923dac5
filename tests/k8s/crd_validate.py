"""Validates custom resources against the CRDs in k8s/crds/, strictly: an object schema that
names its properties accepts no others (the API server would prune them silently), unless it
says x-kubernetes-preserve-unknown-fields.

usage: python crd_validate.py CRD_DIR RENDERED.yaml…   (prints one line per resource checked)
"""
import pathlib
import sys

import jsonschema
import yaml


def strict(schema):
    """The schema with additionalProperties: false wherever properties are named."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    return schema


def schemas(crd_dir):
    """(apiVersion, kind) -> the strict schema of that version."""
    found = {}
    for path in sorted(pathlib.Path(crd_dir).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            found[(f"{group}/{version['name']}", kind)] = strict(schema)
    return found


def main():
    known = schemas(sys.argv[1])
    failed = False
    for rendered in sys.argv[2:]:
        for doc in yaml.safe_load_all(pathlib.Path(rendered).read_text()):
            if not doc or "." not in doc["apiVersion"].split("/")[0]:
                continue  # core and built-in kinds: kubernetes-validate checks those
            if doc["apiVersion"].split("/")[0].endswith(".k8s.io"):
                continue
            key = (doc["apiVersion"], doc["kind"])
            name = f"{rendered}: {doc['kind']}/{doc['metadata']['name']}"
            if key not in known:
                print(f"FAIL {name}: no CRD in {sys.argv[1]} for {key}")
                failed = True
                continue
            errors = list(jsonschema.Draft7Validator(known[key]).iter_errors(doc))
            for error in errors:
                path = "/".join(str(p) for p in error.absolute_path)
                print(f"FAIL {name}: /{path}: {error.message}")
            failed |= bool(errors)
            if not errors:
                print(f"ok   {name} against its CRD ({key[0]})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
