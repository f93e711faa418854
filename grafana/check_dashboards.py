#!/usr/bin/env python3
"""Static checks of the Grafana dashboards (stdlib only, needs `promtool` on PATH).

Run from the repository root:  python3 grafana/check_dashboards.py

- every grafana/dashboards/*.json parses, has schemaVersion 39, and every panel, target and
  template variable uses the datasource uid `prometheus`;
- every PromQL expression of the dashboards parses: they are wrapped as recording rules in a
  temporary rules file (in $TMPDIR, /tmp by default) checked with `promtool check rules`,
  template variables replaced by values of the right shape first;
- every `ingrid_*` metric name in the dashboards and in deploy/prometheus/alerts.yml is
  declared in hub/src/metrics.rs (histograms with their _bucket, _sum and _count series).

Exit status 0 when everything passes.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
METRICS_RS = ROOT / "hub" / "src" / "metrics.rs"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DATASOURCE_UID = "prometheus"
SCHEMA_VERSION = 39

# Template variables, replaced before parsing, by values of the same shape.
SUBSTITUTIONS = [
    (re.compile(r"\$\{asset(:[a-z]+)?\}|\$asset\b"), ".*"),
    (re.compile(r"\$__rate_interval\b|\$__interval\b|\$__range\b"), "5m"),
]
METRIC_NAME = re.compile(r"\bingrid_[a-z0-9_]+\b")


def declared_metrics():
    """The metric names of hub/src/metrics.rs, histograms with their series suffixes."""
    text = METRICS_RS.read_text(encoding="utf-8")
    names = set(re.findall(r'"(ingrid_[a-z0-9_]+)"', text))
    for h in re.findall(r'HistogramOpts::new\(\s*"(ingrid_[a-z0-9_]+)"', text):
        names |= {h + "_bucket", h + "_sum", h + "_count"}
    return names


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def main():
    errors = []
    exprs = []  # (file, panel title, expr)
    names_used = []  # (where, name)
    if not DASHBOARDS:
        errors.append("no dashboards under grafana/dashboards")
    for path in DASHBOARDS:
        rel = path.relative_to(ROOT)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            errors.append(f"{rel}: invalid JSON: {e}")
            continue
        if d.get("schemaVersion") != SCHEMA_VERSION:
            errors.append(f"{rel}: schemaVersion {d.get('schemaVersion')}, expected {SCHEMA_VERSION}")
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                if v.get("datasource", {}).get("uid") != DATASOURCE_UID:
                    errors.append(f"{rel}: variable {v.get('name')}: datasource is not uid {DATASOURCE_UID}")
                q = v.get("query")
                q = q.get("query", "") if isinstance(q, dict) else (q or "")
                names_used += [(f"{rel} variable {v.get('name')}", n) for n in METRIC_NAME.findall(q)]
        for p in walk_panels(d.get("panels", [])):
            if p.get("type") == "row":
                continue
            title = p.get("title", "?")
            if p.get("datasource", {}).get("uid") != DATASOURCE_UID:
                errors.append(f"{rel}: panel {title!r}: datasource is not uid {DATASOURCE_UID}")
            if not p.get("targets"):
                errors.append(f"{rel}: panel {title!r} has no query")
            for t in p.get("targets", []):
                if t.get("datasource", {}).get("uid") != DATASOURCE_UID:
                    errors.append(f"{rel}: panel {title!r} target {t.get('refId')}: datasource is not uid "
                                  f"{DATASOURCE_UID}")
                expr = t.get("expr", "")
                if not expr.strip():
                    errors.append(f"{rel}: panel {title!r} target {t.get('refId')}: empty expression")
                    continue
                exprs.append((str(rel), title, expr))
                names_used += [(f"{rel} panel {title!r}", n) for n in METRIC_NAME.findall(expr)]

    # Alert rules: metric names only (promtool check rules parses them itself).
    if ALERTS.exists():
        for n in METRIC_NAME.findall(ALERTS.read_text(encoding="utf-8")):
            names_used.append((str(ALERTS.relative_to(ROOT)), n))

    declared = declared_metrics()
    for where, n in names_used:
        if n not in declared:
            errors.append(f"{where}: metric {n} is not declared in hub/src/metrics.rs")

    # Every expression as a recording rule, parsed by promtool.
    lines = ["groups:", "  - name: dashboard-expressions", "    rules:"]
    for i, (_, _, expr) in enumerate(exprs):
        for pattern, value in SUBSTITUTIONS:
            expr = pattern.sub(value, expr)
        if "$" in expr:
            errors.append(f"unreplaced template variable in: {expr}")
        lines.append(f"      - record: dashboard_expr_{i}")
        lines.append(f"        expr: {json.dumps(expr)}")  # a JSON string is a valid YAML scalar
    with tempfile.NamedTemporaryFile("w", suffix=".rules.yml", prefix="ingrid-dashboards-", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        rules = f.name
    try:
        run = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True)
    except FileNotFoundError:
        errors.append("promtool not found (Debian: apt-get install prometheus)")
        run = None
    finally:
        os.unlink(rules)
    if run is not None:
        out = (run.stdout + run.stderr).strip()
        if run.returncode != 0:
            errors.append("promtool check rules failed on the dashboard expressions:\n" + out)
            for i, (rel, title, expr) in enumerate(exprs):
                if f"dashboard_expr_{i}\"" in out or f"dashboard_expr_{i}:" in out:
                    errors.append(f"  dashboard_expr_{i} = {rel} panel {title!r}: {expr}")

    for path in DASHBOARDS:
        n = sum(1 for rel, _, _ in exprs if rel == str(path.relative_to(ROOT)))
        print(f"{path.relative_to(ROOT)}: {n} expressions")
    print(f"metric names checked against hub/src/metrics.rs: {len(set(n for _, n in names_used))} distinct, "
          f"{len(declared)} declared")
    if run is not None and run.returncode == 0:
        print(f"promtool check rules: {len(exprs)} dashboard expressions parse")
    if errors:
        print("\n".join(["FAILED:"] + errors), file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
