"""pg_ray's node starter: ``ray start`` that keeps a local node on loopback.

The worker starts every Ray node of a local group as
``python3 pg_ray_node.py start --node-ip-address=127.0.0.1 ...`` (the
python3 beside ``pg_ray.ray_executable``).  Ray turns a node address of
127.0.0.1 into the host's own address (``resolve_ip_for_localhost``), and
then binds the GCS, raylet, object manager, agents, workers and metrics
servers on every interface.  Here the address stays as given, so each of
them binds 127.0.0.1 and no port of a local group is reachable from another
host (docs/security.md, "Local clusters").  The processes the node starts
(agents, job supervisors, drivers) resolve 127.0.0.1 again when they call
``ray.init``; they are told what Ray tells a cluster that cannot span hosts
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), so that they keep it too.  This
process itself may not be told so: Ray would then refuse to start a worker
node.  Nothing else of Ray is changed.
"""

from __future__ import annotations

import os
import sys

from ray._private import services
from ray.scripts.scripts import main


def keep_address(host: str) -> str:
    """The node address as ``--node-ip-address`` gave it."""
    return host


if __name__ == "__main__":
    services.resolve_ip_for_localhost = keep_address
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    sys.argv[0] = "ray"
    main()
