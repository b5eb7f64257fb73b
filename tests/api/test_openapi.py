"""The OpenAPI document describes the whole API, with the bearer scheme."""

from __future__ import annotations

import httpx

from csms.app import CentralSystem


async def test_openapi_lists_every_endpoint_with_security(
    api_central: CentralSystem, client: httpx.AsyncClient
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    paths = doc["paths"]
    for path in [
        "/api/v1/fleet", "/api/v1/stations", "/api/v1/stations/{station_id}",
        "/api/v1/stations/{station_id}/status-history", "/api/v1/stations/{station_id}/events",
        "/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/tickets",
        "/api/v1/tickets/{ticket_id}", "/api/v1/tickets/{ticket_id}/acknowledge",
        "/api/v1/tickets/{ticket_id}/dispatch", "/api/v1/tickets/{ticket_id}/resolve",
        "/api/v1/tickets/{ticket_id}/close", "/api/v1/logs", "/api/v1/logs/{log_id}/download",
        "/api/v1/stations/{station_id}/commands/soft-reset",
        "/api/v1/stations/{station_id}/commands/hard-reset",
        "/api/v1/stations/{station_id}/commands/unlock",
        "/api/v1/stations/{station_id}/commands/availability",
        "/api/v1/stations/{station_id}/commands/trigger",
        "/api/v1/stations/{station_id}/commands/get-log",
        "/api/v1/stations/{station_id}/commands/diagnose",
    ]:
        assert path in paths, path
        for operation in paths[path].values():
            assert operation.get("security") == [{"token": []}], path
            assert operation.get("summary"), path
    assert doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
