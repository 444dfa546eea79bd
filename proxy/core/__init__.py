"""The shared core: the vocabulary every part shares — key formats, addresses, prices, the
catalog, routes, record fields, signatures. The edge engine, the addons, the control plane, the
simulator and the dev proxy all import it; it imports nothing of the project outside proxy/core."""
