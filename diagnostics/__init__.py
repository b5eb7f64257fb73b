"""Fault detection and remediation engine: pure, events in, commands out."""
