"""A conformant fake OctoMesh Communication Controller for tests and local demos.

``protocol`` (SignalR JSON hub protocol), ``state`` (controller semantics, no I/O), ``hub`` (the
``/operatorHub`` endpoint), ``admin`` (the ``/admin`` API), ``server`` (both as one aiohttp app),
``harness`` (in-process and subprocess runners), ``admin_client`` (typed admin API client).
"""

from octo_devtools.controller_sim.admin_client import AdminClient, AdminRequestError
from octo_devtools.controller_sim.harness import RunningSimulator, SimulatorProcess, running_simulator
from octo_devtools.controller_sim.options import SimulatorOptions
from octo_devtools.controller_sim.server import Simulator

__all__ = [
    "AdminClient",
    "AdminRequestError",
    "RunningSimulator",
    "Simulator",
    "SimulatorOptions",
    "SimulatorProcess",
    "running_simulator",
]
