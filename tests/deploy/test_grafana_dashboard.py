"""The Grafana dashboard in deploy/ reads only metrics `/metrics` exports, with the labels they carry."""

from __future__ import annotations

import json
import re
from pathlib import Path

from aftercare.analytics.prometheus import METRIC_NAMES

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "aftercare-analytics.json"
LABELS = {"facility", "channel", "outcome", "journey_key", "status", "decision", "rule", "step"}


def test_every_panel_queries_exported_metrics_by_their_labels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]

    assert expressions
    for expression in expressions:
        metrics = set(re.findall(r"aftercare_[a-z_]+", expression))
        assert metrics, expression
        assert metrics <= set(METRIC_NAMES), expression
        used = set(re.findall(r"(\w+)\s*=~?\s*\"", expression)) | {
            label.strip() for group in re.findall(r"by \(([^)]*)\)", expression) for label in group.split(",")
        }
        assert used <= LABELS, expression
    assert {panel["id"] for panel in dashboard["panels"]} == set(range(1, len(dashboard["panels"]) + 1))
