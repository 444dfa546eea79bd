"""The composition root: the CLI and the assembly of processes (all, edge, control, workers,
dev, demo). It is the one package that imports the engine (proxy/), the addons, the control
plane and the simulator together; none of them imports it (tests/unit/test_import_cycles.py)."""
