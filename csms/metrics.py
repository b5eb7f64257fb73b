"""Placeholder: filled in by the metrics work."""

from __future__ import annotations

from typing import TYPE_CHECKING

from csms.components import Component

if TYPE_CHECKING:
    from csms.app import CentralSystem


def install(central: CentralSystem) -> Component | None:
    """Wire metrics into the central system; the component to start and stop, if any."""
    return None
