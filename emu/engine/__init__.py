"""The engine: resolves a vendor and its options, builds the state, generates and caches the
jitted driver loop, and feeds it the workload in batches."""
