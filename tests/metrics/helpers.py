"""Scraping ``GET /metrics`` of an in-process central system, and reading samples."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from csms.app import CentralSystem
from csms.metrics import MetricsComponent


@dataclass(frozen=True)
class Scrape:
    """One parsed exposition: families by name, and the raw text."""

    families: dict[str, list[Sample]]
    types: dict[str, str]
    text: str

    def value(self, name: str, **labels: str) -> float:
        """The value of the one sample ``name`` with exactly ``labels``; 0 when absent."""
        family = _family_of(name)
        matches = [s.value for s in self.families.get(family, [])
                   if s.name == name and s.labels == labels]
        assert len(matches) <= 1, (name, labels, matches)
        return matches[0] if matches else 0.0

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples ``name`` whose labels include ``labels``."""
        family = _family_of(name)
        return sum(s.value for s in self.families.get(family, [])
                   if s.name == name and labels.items() <= s.labels.items())

    def samples(self, name: str) -> list[Sample]:
        """Every sample named ``name``."""
        return [s for s in self.families.get(_family_of(name), []) if s.name == name]

    @property
    def names(self) -> set[str]:
        """Family names and sample names (``x_total``, ``x_bucket``...)."""
        return set(self.families) | {s.name for samples in self.families.values()
                                     for s in samples}


def _family_of(name: str) -> str:
    for suffix in ("_total", "_bucket", "_count", "_sum", "_created"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


async def scrape(central: CentralSystem) -> Scrape:
    """``GET /metrics`` over HTTP, parsed with ``prometheus_client``'s text parser."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(f"http://127.0.0.1:{central.http.port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families: dict[str, list[Sample]] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = list(family.samples)
        types[family.name] = family.type
    return Scrape(families, types, response.text)


def metrics_of(central: CentralSystem) -> MetricsComponent:
    """The metrics component of ``central``."""
    (component,) = [c for c in central.components if isinstance(c, MetricsComponent)]
    return component
