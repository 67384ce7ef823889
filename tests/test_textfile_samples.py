"""sample/prometheus: the alert rules and the Grafana dashboard fit the metrics written."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from whitegoodsd.errors import Reading
from whitegoodsd.outputs.textfile import render
from whitegoodsd.status import ApplianceStatus, CycleRecord

from conftest import ROOT, need_program

SAMPLE = ROOT / "sample" / "prometheus"
RULES = SAMPLE / "alerts.yml"
DASHBOARD = SAMPLE / "grafana-dashboard.json"
METRIC = re.compile(r"\b(?:whitegoodsd|node_textfile)_[a-z_]+\b")


def written() -> set[str]:
    """Every series name the daemon writes, with everything a plug can report."""
    full = ApplianceStatus(
        name="WASHER",
        driver="kasa",
        plug="127.0.0.1:9999",
        up=True,
        reading=Reading(2_150_000, 230_000, 9_350, 16_323.0),
        error=None,
        running=True,
        cycles=1,
        last_poll=1_700_000_000.0,
        last_cycle=CycleRecord(1_699_990_000.0, 5400.0, 850.0, 2_150_000),
    )
    families = text_string_to_metric_families(render([full]).decode())
    return {sample.name for family in families for sample in family.samples}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = need_program("promtool", "apt-get install prometheus")
    return subprocess.run(
        [binary, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alert_rules_pass_promtool() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 4 rules found" in checked.stdout


def test_the_alerts_fire_when_their_unit_tests_say() -> None:
    tested = promtool("test", "rules", SAMPLE / "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def dashboard_queries() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses PromQL only inside rule files: one recording rule per query,
    # with Grafana's variables given values.  JSON is YAML.
    rules = [
        {
            "record": f"dashboard:query{n}",
            "expr": expr.replace("$appliance", ".+").replace("$__range", "1d"),
        }
        for n, expr in enumerate(dashboard_queries())
    ]
    assert rules
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_the_samples_use_the_names_the_daemon_writes() -> None:
    names = written()
    in_dashboard = set(METRIC.findall(DASHBOARD.read_text()))
    in_rules = set(METRIC.findall(RULES.read_text()))
    textfile_collector = {"node_textfile_mtime_seconds"}
    assert in_dashboard - names == set()
    assert in_rules - names - textfile_collector == set()
    # Every appliance series is on the dashboard.
    assert {n for n in names if n.startswith("whitegoodsd_appliance_")} <= in_dashboard
