"""The `docker` backend: a warm pool of long-lived, locked-down containers, one run at a time each.

Each container runs `runner.py` as PID 1 and takes requests over its attached stdin, so a run costs
one JSON round trip and a fork inside the container: no container start, no `docker exec`.
Containers have no network, a read-only root, tmpfs /work, /tmp and /dev/shm, memory/pids/CPU
limits, no capabilities, no-new-privileges, and a private non-root uid each (so RLIMIT_NPROC is per
container). They are labelled with our pid; they remove themselves when we go away (stdin closes,
the runner exits, auto-remove), `close()`/atexit removes them, and a later start removes any whose
owner process is dead.
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import queue
import random
import select
import socket
import struct
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from rewardkit.sandbox import uidpool
from rewardkit.sandbox.base import Program, RunResult, Sandbox
from rewardkit.sandbox.local import Watched, resolve_command, sandbox_error, verdict
from rewardkit.sandbox.process import base_env

LABEL = "rewardkit.sandbox"
DEFAULT_IMAGE = os.environ.get("REWARDKIT_SANDBOX_IMAGE", "rewardkit-sandbox:latest")
RUNNER_SRC = open(os.path.join(os.path.dirname(__file__), "runner.py"), encoding="utf-8").read()


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
        if pid and _alive(pid):
            continue
        try:
            c.remove(force=True)
            removed += 1
        except Exception:  # noqa: BLE001 - already going (auto-remove)
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunnerGone(RuntimeError):
    """The container's runner stopped answering or died."""


class _Worker:
    """One warm container and the attached socket we talk to its runner through."""

    def __init__(self, container: Any, sock: Any, slot: uidpool.UidSlot | None) -> None:
        self.container = container
        self.sock = getattr(sock, "_sock", sock)
        self.slot = slot
        self.out = bytearray()
        self.err = bytearray()
        self._raw = bytearray()

    def send(self, msg: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(msg).encode() + b"\n")

    def read_line(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self.out:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("runner did not answer in time")
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                continue
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise RunnerGone("runner exited" + (f": {self.err.decode(errors='replace')[-500:]}" if self.err else ""))
            self._raw += chunk
            self._demux()
        line, _, rest = bytes(self.out).partition(b"\n")
        self.out = bytearray(rest)
        return json.loads(line)

    def _demux(self) -> None:
        """Docker's attach stream without a tty: frames of [stream, 0, 0, 0, size(be32)] + payload."""
        while len(self._raw) >= 8:
            stream, size = self._raw[0], struct.unpack(">I", self._raw[4:8])[0]
            if len(self._raw) < 8 + size:
                return
            payload = bytes(self._raw[8 : 8 + size])
            del self._raw[: 8 + size]
            (self.err if stream == 2 else self.out).extend(payload)

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


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(self, image: str | None = None, pool_size: int | None = None, workers: int | None = None,
                 memory_mb: int = 512, pids: int = 64, cpus: float = 1.0, scratch_mb: int = 64,
                 python: str = "python3", env: dict[str, str] | None = None) -> None:
        self.client = docker_client()
        self.image = image or DEFAULT_IMAGE
        self.pool_size = pool_size or workers or 2 * max(1, os.cpu_count() or 1)
        self.memory_mb, self.pids, self.cpus, self.scratch_mb = memory_mb, pids, cpus, scratch_mb
        self.python = python
        self.extra_env = dict(env or {})
        self.instance = uuid.uuid4().hex[:12]
        self._pool: queue.Queue[_Worker] = queue.Queue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.client.images.get(self.image)  # fail early and clearly
        reap_stale_containers(self.client)
        uidpool.reap_stale()
        atexit.register(self.close)
        with ThreadPoolExecutor(max_workers=min(8, self.pool_size)) as ex:
            for w in ex.map(lambda _: self._start_worker(), range(self.pool_size)):
                self._pool.put(w)

    def default_workers(self) -> int:
        return self.pool_size

    def isolation(self) -> str:
        return (f"docker ({self.image}): warm containers with no network, read-only root, tmpfs work dir, "
                f"memory {self.memory_mb} MiB / {self.pids} pids / {self.cpus} CPU per container, no "
                f"capabilities, non-root private uid, rlimits per run. Does not stop: kernel exploits "
                f"(shared kernel), CPU/memory-bandwidth contention.")

    # -- pool ---------------------------------------------------------------------------------
    def _start_worker(self) -> _Worker:
        slot = uidpool.acquire() if uidpool.can_switch_uid() else None
        uid = slot.uid if slot else uidpool.UID_BASE + uidpool.UID_SLOTS + random.randrange(1 << 16)
        scratch = f"size={self.scratch_mb}m,mode=1777"
        container = None
        try:
            api = self.client.api
            mem = f"{self.memory_mb + 3 * self.scratch_mb + 64}m"
            host_config = api.create_host_config(
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
            )
            config = api.create_container_config(
                self.image,
                command=[self.python, "-u", "-c", RUNNER_SRC],
                user=f"{uid}:{uid}",
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
            sock = self.client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1,
                                                                       "stream": 1})
            container.start()
            worker = _Worker(container, sock, slot)
            hello = worker.read_line(time.monotonic() + 60)
            if not hello.get("ready"):
                raise RunnerGone(f"unexpected runner greeting {hello!r}")
        except BaseException:
            if container is not None:
                try:
                    container.remove(force=True)
                except Exception:  # noqa: BLE001
                    pass
            if slot is not None:
                uidpool.release(slot)
            raise
        with self._lock:
            self._all.add(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.destroy()

    # -- runs ---------------------------------------------------------------------------------
    def run(self, program: Program) -> RunResult:
        t0 = time.monotonic()
        if self._closed:
            return sandbox_error("sandbox is closed", t0)
        lim = program.limits
        eff = {**asdict(lim), "memory_mb": min(lim.memory_mb, self.memory_mb), "pids": min(lim.pids, self.pids)}
        req = {
            "files": program.files,
            "command": resolve_command(program.command, self.python),
            "stdin": program.stdin,
            "env": base_env("/work", {**self.extra_env, "TMPDIR": "/tmp"}),
            "limits": eff,
        }
        try:
            worker = self._pool.get(timeout=lim.wall_s + 120)
        except queue.Empty:
            return sandbox_error("no warm container became free (pool broken?)", t0)
        healthy = False
        try:
            worker.send(req)
            resp = worker.read_line(time.monotonic() + lim.wall_s + 15)
            healthy = True
        except (RunnerGone, OSError) as exc:
            return RunResult("killed", None, "", f"[sandbox] the container's runner died ({exc}); "
                             "container replaced", time.monotonic() - t0)
        except TimeoutError:
            return RunResult("timeout", None, "", "[sandbox] runner unresponsive past the wall limit; "
                             "container replaced", time.monotonic() - t0, limit="wall")
        except Exception as exc:  # noqa: BLE001 - one bad run must never sink the batch
            return sandbox_error(f"{type(exc).__name__}: {exc}", t0)
        finally:
            if healthy:
                self._pool.put(worker)
            else:
                self._replace(worker)
        if "error" in resp:
            return sandbox_error(str(resp["error"]), t0)
        w = Watched(base64.b64decode(resp["stdout"]), base64.b64decode(resp["stderr"]), int(resp["wait_status"]),
                    float(resp["cpu_s"]), float(resp["wall_s"]), resp["stopped_by"])
        return verdict(w, lim)

    def _replace(self, worker: _Worker) -> None:
        self._retire(worker)
        if self._closed:
            return
        try:
            self._pool.put(self._start_worker())
        except Exception:  # noqa: BLE001 - pool shrinks by one; the others keep serving
            if not self._all:
                self._closed = True

    def close(self) -> None:
        if self._closed and not self._all:
            return
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        if workers:
            with ThreadPoolExecutor(max_workers=8) as ex:
                list(ex.map(lambda w: w.destroy(), workers))
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass

    def containers(self) -> list[Any]:
        """This instance's containers still known to the engine (for tests and diagnostics)."""
        client = docker_client()
        try:
            return list(client.containers.list(all=True, filters={"label": f"{LABEL}.instance={self.instance}"}))
        finally:
            client.close()
