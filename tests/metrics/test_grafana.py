"""The Grafana dashboard queries only metrics the server exports (and shows every one of them);
the provisioning files point at the dashboards folder and a Prometheus datasource."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from csms.app import CentralSystem
from simulators import Station16, Station201
from tests.metrics.helpers import metrics_of, scrape

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "config" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "csms.json"
CONTAINER_MOUNTS = {
    "/etc/grafana/provisioning": GRAFANA / "provisioning",
    "/var/lib/grafana/dashboards/csms": GRAFANA / "dashboards",
}
"""Where the documented ``docker run`` mounts the repository folders in the container."""

# ------------------------------------------------------------------ PromQL metric names

_KEYWORDS = frozenset({
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "limitk", "limit_ratio", "by", "without", "on", "ignoring",
    "group_left", "group_right", "bool", "and", "or", "unless", "offset", "atan2", "inf",
    "nan",
})
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]")
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_DURATION = re.compile(r"(?<![\w.])(?:\d+(?:ms|[smhdwy]))+(?!\w)")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords or labels)."""
    text = _STRINGS.sub(" ", expr)
    text = _VARIABLES.sub(" ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = _GROUPING.sub(" ", text)
    text = _DURATION.sub(" ", text)  # offset 5m
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_queries() -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every target of every panel."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [(panel["title"], target["expr"]) for panel in panels(dashboard["panels"])
            for target in panel.get("targets", [])]


def unexported(names: set[str], families: dict[str, str]) -> set[str]:
    """The ``names`` the exporter does not provide; ``families``: family name -> type
    (``x_total`` is a counter ``x``, ``x_bucket``/``x_sum``/``x_count`` a histogram ``x``)."""
    missing = set()
    for name in names:
        if name in families:
            continue
        if name.endswith("_total") and families.get(name.removesuffix("_total")) == "counter":
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base != name and families.get(base) == "histogram":
            continue
        missing.add(name)
    return missing


def test_metric_names_are_extracted_from_promql() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, action) '
        '(rate(csms_ocpp_call_duration_seconds_bucket{version="1.6"}[$__rate_interval])))'
    ) == {"csms_ocpp_call_duration_seconds_bucket"}
    assert metric_names(
        'max by (state) (csms_stations{state!="offline"}) / on (job) group_left '
        "sum(up offset 5m) + 1e3 * time() - max(a_b:c_d[${range}])"
    ) == {"csms_stations", "up", "a_b:c_d"}
    assert metric_names('sum without (instance) (x{le="+Inf"}) > bool 2') == {"x"}


def test_unexported_names_are_reported() -> None:
    families = {"a": "counter", "h": "histogram", "g": "gauge"}
    assert unexported({"a_total", "h_bucket", "h_count", "g"}, families) == set()
    assert unexported({"a", "g_total", "h_total", "nope", "a_bucket"}, families) == {
        "g_total", "h_total", "nope", "a_bucket"}


def test_every_panel_has_a_query_on_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    nested = [p for row in dashboard["panels"] for p in row.get("panels", [])]
    assert nested, "the collapsed row keeps its panels nested"
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    for panel in panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for item in (panel, *panel["targets"]):
            assert item["datasource"] == {"type": "prometheus",
                                          "uid": f"${{{variable['name']}}}"}, panel["title"]
        for target in panel["targets"]:
            assert metric_names(target["expr"]), (panel["title"], target["expr"])


async def test_dashboard_queries_only_exported_metrics(central: CentralSystem) -> None:
    async with Station16("GRAFANA-16", central.ocpp_url) as station16, \
            Station201("GRAFANA-201", central.ocpp_url):
        await station16.heartbeat()
        await metrics_of(central).refresh()
        result = await scrape(central)
    families = dict(result.types)
    for family in metrics_of(central).registry.collect():  # families without samples too
        families.setdefault(family.name, family.type)
    queried = {name: title for title, expr in dashboard_queries()
               for name in metric_names(expr)}
    missing = unexported(set(queried), families)
    assert not missing, {name: queried[name] for name in missing}
    # And the other way round: every family the server exports is on the dashboard.
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in queried}
    assert set(families) - shown == set()
    assert families["csms_ocpp_messages"] == "counter"
    assert families["csms_ocpp_call_duration_seconds"] == "histogram"


# ------------------------------------------------------------------ provisioning

_LINE = re.compile(r"^( *)(.*?)\s*$")


def load_yaml(text: str) -> Any:
    """The YAML subset provisioning files use: block mappings, block sequences of mappings,
    plain or quoted scalars, comments (no PyYAML in the environment)."""
    lines: list[tuple[int, str]] = []
    for raw in text.splitlines():
        indent, content = _LINE.match(raw).groups()  # type: ignore[union-attr]
        if content and not content.startswith("#"):
            lines.append((len(indent), content))
    value, end = _block(lines, 0, lines[0][0])
    assert end == len(lines), f"unparsed line: {lines[end]}"
    return value


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            lines[i] = (indent + 2, lines[i][1][2:])
            item, i = _block(lines, i, indent + 2)
            items.append(item)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        key, colon, rest = lines[i][1].partition(":")
        assert colon, f"not a mapping entry: {lines[i][1]}"
        i += 1
        if rest.strip():
            mapping[key] = _scalar(rest.strip())
        elif i < len(lines) and lines[i][0] > indent:
            mapping[key], i = _block(lines, i, lines[i][0])
        else:
            mapping[key] = None
    return mapping, i


def _scalar(text: str) -> Any:
    if text[0] in "\"'":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.isdigit() else text


def test_yaml_subset_reader() -> None:
    assert load_yaml("a: 1\nb:\n  - name: x  \n    flag: true\n  - name: 'y'\n# c\nd: s\n") == {
        "a": 1, "b": [{"name": "x", "flag": True}, {"name": "y"}], "d": "s"}


def test_dashboards_provider_points_at_the_dashboards_folder() -> None:
    config = load_yaml((GRAFANA / "provisioning/dashboards/csms.yaml").read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    folder = CONTAINER_MOUNTS.get(path)
    assert folder is not None, f"{path} is not a documented mount"
    assert folder.is_dir()
    assert DASHBOARD.parent == folder
    uids = {json.loads(f.read_text())["uid"] for f in folder.glob("*.json")}
    assert "csms-overview" in uids
    # The provisioning folder the datasource lives in is the other documented mount.
    datasources = GRAFANA / "provisioning" / "datasources"
    assert CONTAINER_MOUNTS["/etc/grafana/provisioning"] == datasources.parent


def test_datasource_is_a_default_prometheus() -> None:
    config = load_yaml((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["isDefault"] is True
    assert source["url"].startswith("http")
    assert source["uid"]
