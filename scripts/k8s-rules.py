#!/usr/bin/env python3
"""Writes k8s/base/prometheusrule.yaml: monitoring/prometheus/alerts.yml as a Prometheus
Operator PrometheusRule, so Kubernetes and compose load the same rules. tests/deploy.rs fails
when the two differ; run this after editing the rules."""
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
rules = (root / "monitoring/prometheus/alerts.yml").read_text()
body = "".join(line for line in rules.splitlines(keepends=True) if not line.startswith("#"))
header = """# Generated from monitoring/prometheus/alerts.yml by scripts/k8s-rules.py: edit the rules
# there, then run the script. tests/deploy.rs checks the two agree.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: driftwood
spec:
"""
indented = "".join("  " + line if line.strip() else line for line in body.splitlines(keepends=True))
(root / "k8s/base/prometheusrule.yaml").write_text(header + indented)
