"""The server's connection to a Ray cluster (a registered compute of type ``ray``).

An address is ``auto`` (the cluster this machine's ``ray start`` began), ``host:port`` (the
cluster's GCS; the server must run on a node of the cluster) or ``ray://host:port`` (Ray Client:
the head's client server, started by ``ray start --head --ray-client-server-port``, 10001 by
default; the server may run anywhere that reaches that port). Before Ray is asked to connect,
the address is probed with a plain TCP connection and a short timeout, so an unreachable cluster
fails in seconds, naming the address, instead of leaving ``ray.init`` retrying.

With a GCS address the server joins the cluster as a Ray *driver*: the actors it starts are
owned by the server process, so Ray kills them when the server dies (a server killed with
SIGKILL leaks none). Through Ray Client, the driver is a process Ray's client server starts on
the head for this server's connection: the actors are owned by it, and when the server dies Ray
stops them once Ray Client's reconnect grace period has passed (30 s,
``RAY_CLIENT_RECONNECT_GRACE_PERIOD`` in the server's environment). Ray's API works the same
through both (``ray.nodes()``, ``put``, ``get``, ``wait``, ``kill``, actors' options); object
references travel through the client server, and the job-level ``py_modules`` are uploaded
from the server through it. Token authentication (``RAY_AUTH_MODE=token`` with the cluster's
token in ``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``, in the server's environment) works
through both.

A process holds one Ray connection, driver or Ray Client (Ray's state is global to the
process): a server connected to one address refuses a job or a check on another with a clear
error, rather than moving, even when both name the same cluster.

The ``ray`` extra must be installed (``pip install 'sluiceway[ray]'``; it brings Ray Client's
``grpcio``). The nodes run the Sluiceway installed there, unless the server ships its own
(:meth:`RayConnection.ship_code`, the ``ray_ship_code`` setting): its ``sluiceway`` package then
goes to every actor it starts through Ray's job-level ``py_modules``, and the nodes need only Ray
and Sluiceway's dependencies.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import socket
import threading
from dataclasses import dataclass
from typing import Any

from sluiceway.errors import ValidationError

logger = logging.getLogger("sluiceway.executors.ray")

PROBE_SECONDS = 3.0
NAMESPACE = "sluiceway"
RAY_CLIENT_PORT = 10001
_ADDRESS = re.compile(
    r"(?:ray://)?(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+)(?::(?P<port>\d{1,5}))?"
)


class RayUnavailable(Exception):
    """The cluster cannot be used: not installed, unreachable, or another cluster is in use. The
    message names the address and says why."""


class RayConnectionTaken(RayUnavailable):
    """This process already holds a Ray connection, to another address."""


def check_address(address: str) -> str:
    """``address`` stripped, if it has an accepted form.

    Raises:
        ValidationError: not ``auto``, ``host:port`` or ``ray://host:port``.
    """
    text = address.strip()
    if text == "auto":
        return text
    match = _ADDRESS.fullmatch(text)
    port = match.group("port") if match else None
    if match is None or (port is None and not text.startswith("ray://")) or int(port or 1) > 65535:
        raise ValidationError(
            f"address {address!r} is not a Ray address; accepted: auto, host:port (the "
            "cluster's GCS, e.g. 10.0.0.5:6379) or ray://host:port (Ray Client, port 10001 by "
            "default)",
            target="address",
        )
    return text


def probe(address: str, timeout: float = PROBE_SECONDS) -> None:
    """Check that something answers at ``address`` (a TCP connection); ``auto`` is not probed.

    Raises:
        RayUnavailable: nothing accepts a connection there within ``timeout`` seconds.
    """
    if address == "auto":
        return
    match = _ADDRESS.fullmatch(address)
    assert match is not None, address
    host = match.group("host").strip("[]")
    port = int(match.group("port") or RAY_CLIENT_PORT)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {timeout:g} s"
        raise RayUnavailable(f"the Ray cluster at {address} cannot be reached: {reason}") from None


@dataclass(frozen=True)
class ClusterInfo:
    """What a cluster has, as Ray reports it: its live nodes and their resources in total."""

    address: str
    ray_version: str
    nodes: int
    cpus: float
    gpus: float
    memory_bytes: int
    node_details: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "reachable": True,
            "address": self.address,
            "ray_version": self.ray_version,
            "nodes": self.nodes,
            "cpus": self.cpus,
            "gpus": self.gpus,
            "memory_bytes": self.memory_bytes,
            "node_details": list(self.node_details),
        }


class RayConnection:
    """This process's connection to one Ray cluster, made on first use; thread-safe."""

    _lock = threading.Lock()
    _address: str | None = None
    _ship_code = False

    @classmethod
    def ship_code(cls, ship: bool) -> None:
        """Send this process's ``sluiceway`` package to the actors of the clusters it connects
        to from now on, rather than use the one installed on the nodes."""
        cls._ship_code = ship

    @classmethod
    def _runtime_env(cls) -> dict[str, Any] | None:
        if not cls._ship_code:
            return None
        from pathlib import Path

        import sluiceway

        package = str(Path(sluiceway.__file__).parent)
        return {"py_modules": [package], "excludes": ["__pycache__", "*.pyc"]}

    @classmethod
    def ensure(cls, address: str) -> Any:
        """The ``ray`` module, connected to the cluster at ``address``.

        Raises:
            RayUnavailable: Ray is not installed, the cluster cannot be reached, or this
                process is already the driver of another cluster.
        """
        try:
            import ray
        except ImportError:
            raise RayUnavailable(
                "Ray is not installed on the server: install the ray extra "
                "(pip install 'sluiceway[ray]')"
            ) from None
        with cls._lock:
            if ray.is_initialized():
                if cls._address == address:
                    try:
                        probe(address)  # Ray's own calls wait long for a cluster that is gone
                    except RayUnavailable:
                        ray.shutdown()
                        cls._address = None
                        raise
                    return ray
                if cls._address is not None and cls._alive(ray):
                    raise RayConnectionTaken(
                        f"this server is connected to the Ray cluster at {cls._address}; a "
                        "server holds one Ray connection (a GCS address or a ray:// address) "
                        f"at a time, so {address} needs another server, even for the same "
                        "cluster under another address"
                    )
                ray.shutdown()
                cls._address = None
            probe(address)
            if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
                raise RayUnavailable(
                    f"{address} is a Ray Client address, and Ray Client (grpcio) is not "
                    "installed on the server: install the ray extra (pip install "
                    "'sluiceway[ray]', which brings 'ray[client]')"
                )
            try:
                ray.init(
                    address=address,
                    namespace=NAMESPACE,
                    log_to_driver=False,  # actors' output goes to the jobs' logs, not here
                    logging_level=logging.WARNING,
                    configure_logging=False,
                    runtime_env=cls._runtime_env(),
                )
            except Exception as exc:
                hint = ""
                if address.startswith("ray://"):
                    # Ray Client retries a refused token until it times out, as if unreachable.
                    hint = (
                        " (Ray Client reports a missing or wrong token as a timeout: check "
                        "RAY_AUTH_MODE and RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH in the "
                        "server's environment, and that the head runs Ray's client server)"
                    )
                raise RayUnavailable(
                    f"the Ray cluster at {address} refused the connection: "
                    f"{type(exc).__name__}: {exc}{hint}"
                ) from None
            cls._address = address
            logger.info("connected to the Ray cluster at %s", address)
            return ray

    @classmethod
    def _alive(cls, ray: Any) -> bool:
        try:
            ray.cluster_resources()
        except Exception:
            return False
        return True

    @classmethod
    def forget(cls) -> None:
        """Disconnect after the cluster stopped answering; the next :meth:`ensure` reconnects."""
        with cls._lock:
            try:
                import ray

                ray.shutdown()
            except Exception:
                logger.debug("ray.shutdown failed", exc_info=True)
            cls._address = None


def cluster_info(address: str) -> ClusterInfo:
    """Ask the cluster at ``address`` what it has.

    Raises:
        RayUnavailable: see :meth:`RayConnection.ensure`.
    """
    ray = RayConnection.ensure(address)
    try:
        nodes = [node for node in ray.nodes() if node.get("Alive")]
    except Exception as exc:
        RayConnection.forget()
        raise RayUnavailable(
            f"the Ray cluster at {address} did not answer: {type(exc).__name__}: {exc}"
        ) from None
    details = []
    cpus = gpus = 0.0
    memory = 0
    for node in nodes:
        resources = node.get("Resources") or {}
        cpus += float(resources.get("CPU", 0))
        gpus += float(resources.get("GPU", 0))
        memory += int(resources.get("memory", 0))
        details.append(
            {
                "node_id": node.get("NodeID"),
                "address": node.get("NodeManagerAddress"),
                "cpus": float(resources.get("CPU", 0)),
                "gpus": float(resources.get("GPU", 0)),
                "memory_bytes": int(resources.get("memory", 0)),
            }
        )
    return ClusterInfo(
        address=address,
        ray_version=str(ray.__version__),
        nodes=len(nodes),
        cpus=cpus,
        gpus=gpus,
        memory_bytes=memory,
        node_details=tuple(details),
    )
