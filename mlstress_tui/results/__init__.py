"""The ground floor: latency histograms, interval snapshots and the run's cumulative view (imports nothing of ours)."""
