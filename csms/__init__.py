"""OCPP central system (CSMS): server, protocol adapters, persistence, API."""
