"""A real Ray cluster for the tests: two fake nodes on this machine, one per test session.

Skipped outside CI when Ray is not installed; under CI=true its absence fails.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    """Ray's multi-node test cluster: a head and one more node, one CPU each, this process connected to it."""
    try:
        import ray
        from ray.cluster_utils import Cluster
    except ImportError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Ray is needed in CI and is not installed: {error}")
        pytest.skip(f"Ray is not installed: {error}")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()
