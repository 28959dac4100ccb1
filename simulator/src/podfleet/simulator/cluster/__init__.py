"""The simulated cluster: nodes, a scheduler and a kubelet that drive pods through their phases.

``install_cluster`` attaches them to the API server's store; the API server itself lives in
``podfleet.simulator`` and knows nothing of how pods progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from podfleet.simulator.cluster.simulated import SimulatedCluster
    from podfleet.simulator.runtime import SimulatorRuntime


async def install_cluster(runtime: SimulatorRuntime) -> SimulatedCluster:
    """Create and start the simulated cluster (see INTERFACE.md, startup step 4)."""
    # Imported here: podfleet.simulator.config imports cluster.config, which loads this package.
    from podfleet.simulator.cluster.simulated import install_cluster as install

    return await install(runtime)
