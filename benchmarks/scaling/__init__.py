"""The scaling benchmark behind ``benchmarks/scale.py``: servers as processes (procs,
servers, postgres), load generator runs (loadrun), the phases and modes (phases, plan), the
report (report) and py-spy summaries (profile)."""
