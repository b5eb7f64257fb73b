"""Baseline servers of the scaling benchmark (``benchmarks/scale.py``): a plain ``ocpp``
library central system and a bare websockets echo server."""
