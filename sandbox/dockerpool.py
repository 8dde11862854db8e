"""The `docker` backend: a warm pool of long-lived, locked-down containers, one run at a time each.

Each container runs `runner.py` as PID 1 and takes requests over its attached stdin (see `pool`),
so a run costs one JSON round trip and a fork inside the container: no container start, no
`docker exec`, and for Python scripts no interpreter start either.
Containers have no network, a read-only root, tmpfs /work, /tmp and /dev/shm, memory/pids/CPU
limits, no capabilities, no-new-privileges, and a private non-root uid each (so RLIMIT_NPROC is per
container). They are labelled with our pid; they remove themselves when we go away (stdin closes,
the runner exits, auto-remove), `close()`/atexit removes them, and a later start removes any whose
owner process is dead.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import tempfile
import uuid
from typing import Any

from rewardkit.sandbox import uidpool
from rewardkit.sandbox.etc_view import HOSTNAME, etc_files
from rewardkit.sandbox.local import RUNNER_SRC, pid_alive
from rewardkit.sandbox.pool import PooledSandbox, Worker

LABEL = "rewardkit.sandbox"
DEFAULT_IMAGE = os.environ.get("REWARDKIT_SANDBOX_IMAGE", "rewardkit-sandbox:latest")


def docker_client(timeout: int = 30) -> Any:
    import docker

    return docker.from_env(timeout=timeout)


def docker_unavailable_reason(image: str | None = None) -> str | None:
    """None when the engine answers and the image is present, else why not."""
    try:
        import docker
    except ImportError:
        return "the docker SDK is not installed (pip install 'rewardkit[docker]')"
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine
        return f"no docker engine: {exc}"
    image = image or DEFAULT_IMAGE
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return f"image {image!r} is not present (build it: sandbox/build_image.sh, or docker pull it)"
    except Exception as exc:  # noqa: BLE001
        return f"cannot inspect image {image!r}: {exc}"
    finally:
        client.close()
    return None


def reap_stale_containers(client: Any) -> int:
    """Remove our containers whose owner process on this host is gone (it crashed)."""
    removed = 0
    host = socket.gethostname()
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        labels = c.labels or {}
        if labels.get(f"{LABEL}.host") != host:
            continue
        try:
            pid = int(labels.get(f"{LABEL}.owner", "0"))
        except ValueError:
            pid = 0
        if pid and pid_alive(pid):
            continue
        try:
            c.remove(force=True)
            removed += 1
        except Exception:  # noqa: BLE001 - already going (auto-remove)
            pass
    return removed


class DockerWorker(Worker):
    """A container, and the attached socket we talk to its runner through."""

    def __init__(self, container: Any, sock: Any, slot: uidpool.UidSlot | None, uid: int) -> None:
        super().__init__()
        self.uid_ = uid
        self.runner_pid: int | None = None
        self.container = container
        self.sock = getattr(sock, "_sock", sock)
        self.slot = slot
        self.err = bytearray()
        self._raw = bytearray()

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self) -> bytes | None:
        """Docker's attach stream without a tty: frames of [stream, 0, 0, 0, size(be32)] + payload."""
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            return b""
        self._raw += chunk
        out = bytearray()
        while len(self._raw) >= 8:
            stream, size = self._raw[0], struct.unpack(">I", self._raw[4:8])[0]
            if len(self._raw) < 8 + size:
                break
            payload = bytes(self._raw[8 : 8 + size])
            del self._raw[: 8 + size]
            (self.err if stream == 2 else out).extend(payload)
        return bytes(out) or None  # data arrived, but no stdout payload yet

    def diagnostics(self) -> str:
        return self.err.decode(errors="replace")

    def uid(self) -> int | None:
        return self.uid_

    def own_pids(self) -> set[int]:
        if self.runner_pid is None:
            self.container.reload()
            self.runner_pid = int(self.container.attrs["State"]["Pid"])
        return {self.runner_pid}

    def destroy(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.container.remove(force=True)
        except Exception:  # noqa: BLE001 - auto-remove may have won the race
            pass
        if self.slot is not None:
            uidpool.sweep_uid(self.slot.uid)
            uidpool.release(self.slot)
            self.slot = None


class DockerSandbox(PooledSandbox):
    name = "docker"

    def __init__(self, image: str | None = None, pool_size: int | None = None, workers: int | None = None,
                 memory_mb: int = 512, pids: int = 64, cpus: float = 1.0, scratch_mb: int = 64,
                 python: str = "python3", env: dict[str, str] | None = None, fork_server: bool = True) -> None:
        super().__init__(pool_size or workers or 2 * max(1, os.cpu_count() or 1), env)
        self.client = docker_client()
        self.image = image or DEFAULT_IMAGE
        self.memory_mb, self.pids, self.cpus, self.scratch_mb = memory_mb, pids, cpus, scratch_mb
        self.python = python
        self.fork_server = fork_server
        self.instance = uuid.uuid4().hex[:12]
        self.client.images.get(self.image)  # fail early and clearly
        self.etc_dir = tempfile.mkdtemp(prefix=f"rewardkit-docker-etc-{os.getpid()}-")
        os.chmod(self.etc_dir, 0o755)
        reap_stale_containers(self.client)
        uidpool.reap_stale()
        self._fill()

    def isolation(self) -> str:
        return (f"docker ({self.image}): warm containers with no network, read-only root, tmpfs work dir, "
                f"memory {self.memory_mb} MiB / {self.pids} pids / {self.cpus} CPU per container, no "
                f"capabilities, non-root private uid, rlimits per run. Does not stop: kernel exploits "
                f"(shared kernel), CPU/memory-bandwidth contention.")

    def _start_worker(self) -> Worker:
        slot = uidpool.acquire() if uidpool.can_switch_uid() else None
        uid = slot.uid if slot else uidpool.UID_BASE + uidpool.UID_SLOTS + random.randrange(1 << 16)
        scratch = f"size={self.scratch_mb}m,mode=1777"
        container = None
        try:
            api = self.client.api
            mem = f"{self.memory_mb + 3 * self.scratch_mb + 64}m"
            host_config = api.create_host_config(
                binds=self._etc_binds(uid),
                network_mode="none",
                read_only=True,
                tmpfs={"/work": scratch + ",exec", "/tmp": scratch},
                shm_size=f"{self.scratch_mb}m",
                mem_limit=mem,
                memswap_limit=mem,
                pids_limit=self.pids + 4,
                nano_cpus=int(self.cpus * 1e9),
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                auto_remove=True,
                log_config={"Type": "none"},  # the runner's stdout is our protocol, not a log
            )
            config = api.create_container_config(
                self.image,
                command=[self.python, "-u", "-c", RUNNER_SRC],
                user=f"{uid}:{uid}",
                hostname=HOSTNAME,
                stdin_open=True,
                tty=False,
                working_dir="/work",
                labels={LABEL: "1", f"{LABEL}.owner": str(os.getpid()), f"{LABEL}.host": socket.gethostname(),
                        f"{LABEL}.instance": self.instance},
                host_config=host_config,
            )
            config["StdinOnce"] = True  # our socket closing (we died) ends the runner; auto-remove follows
            created = api.create_container_from_config(config, None)
            container = self.client.containers.get(created["Id"])
            sock = api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            container.start()
            return DockerWorker(container, sock, slot, uid)
        except BaseException:
            if container is not None:
                try:
                    container.remove(force=True)
                except Exception:  # noqa: BLE001
                    pass
            if slot is not None:
                uidpool.release(slot)
            raise

    def _etc_binds(self, uid: int) -> dict[str, dict[str, str]]:
        """Read-only binds of the generated /etc files for a container running as `uid` (the same
        files bwrap shows; see `etc_view`)."""
        binds = {}
        for path, text in etc_files(uid, uid).items():
            host = os.path.join(self.etc_dir, f"{uid}-{os.path.basename(path)}")
            with open(host, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(host, 0o644)
            binds[host] = {"bind": path, "mode": "ro"}
        return binds

    def close(self) -> None:
        super().close()
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass
        shutil.rmtree(self.etc_dir, ignore_errors=True)

    def containers(self) -> list[Any]:
        """This instance's containers still known to the engine (for tests and diagnostics)."""
        client = docker_client()
        try:
            return list(client.containers.list(all=True, filters={"label": f"{LABEL}.instance={self.instance}"}))
        finally:
            client.close()
