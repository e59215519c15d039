"""Resource signals of the training process: memory, GPU load and throughput, as ``sys/*`` metrics.

Long runs die two ways the learning curves do not show: memory that creeps until an out-of-memory
error, and throughput that collapses (thermal throttling, fragmentation, a leaking buffer). A
:class:`ResourceSampler` is read once per iteration by a live driver and its values join the
iteration's :class:`~watchdog.signals.MetricRecord`, so the event log, TensorBoard, replay and
the detectors (``memory``, ``throughput`` in :mod:`watchdog.detectors`) see the same keys.

What is read, and from where (every source is optional; a missing one leaves its keys out):

* host: the process's resident memory from ``/proc/self/statm`` (Linux), else ``psutil`` when
  installed, else nothing; the machine's memory (``os.sysconf``), capped by the smallest memory limit
  of the process's own cgroup and its ancestors (``/proc/self/cgroup``; v2 and v1);
* CUDA, when the training's device is a CUDA device: torch's caching-allocator counters for this
  process (allocated, reserved, peak allocated) and the device's total memory;
* NVML (``nvidia-ml-py``, imported as ``pynvml``), when importable: utilisation and temperature;
* always: env steps per wall-clock second between two samples.

Torch is imported only when a CUDA device is given (STYLE: torch only where tensors are touched).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

from watchdog.signals import (
    SYS_CUDA_ALLOCATED_MB,
    SYS_CUDA_PEAK_MB,
    SYS_CUDA_RESERVED_MB,
    SYS_CUDA_TOTAL_MB,
    SYS_GPU_TEMP_C,
    SYS_GPU_UTIL,
    SYS_MEM_TOTAL_MB,
    SYS_RSS_MB,
    SYS_STEPS_PER_S,
)

log = logging.getLogger(__name__)

MB = 1024 * 1024
_STATM = Path("/proc/self/statm")
# where the cgroup file systems are mounted (a systemd host, a container): v2 alone, v2 beside v1, v1's memory
_CGROUP_V2_MOUNTS = ("sys/fs/cgroup", "sys/fs/cgroup/unified")
_CGROUP_V1_MEMORY = "sys/fs/cgroup/memory"


def rss_mb() -> float | None:
    """Resident memory of this process in MiB (None where neither /proc nor psutil tells)."""
    try:
        resident_pages = int(_STATM.read_text().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / MB


def machine_memory_mb(root: Path = Path("/")) -> float | None:
    """The memory this process can have in MiB: the machine's, or its cgroups' limit when lower.

    ``root``: where ``/proc`` and ``/sys`` are found (a test's fake tree)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    limit = cgroup_limit_bytes(root)  # a job or container is killed at its cgroup's limit, not at the machine's
    return min(total, limit if limit is not None else total) / MB


def cgroup_limit_bytes(root: Path = Path("/")) -> int | None:
    """The smallest memory limit on the path from this process's own cgroup up to the root (None: none set).

    A process in a nested cgroup (a Slurm job step, a systemd unit, a Kubernetes pod seen without a cgroup
    namespace) is limited by every level above it, and the root of the tree has no limit of its own (until
    session 18 only the root was read: such a process was forecast against the whole machine). v2: each
    level's ``memory.max``; v1: the memory controller's ``memory.limit_in_bytes`` on each level and the
    kernel's own sum of them, ``hierarchical_memory_limit`` in the process's ``memory.stat``."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = ["0::/"]  # not Linux, or no /proc: the mount's root is all there is to read
    limits: list[int | None] = []
    for line in lines:  # "hierarchy-ID:controllers:path"
        if line.count(":") < 2:
            continue
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2
            for mount in _CGROUP_V2_MOUNTS:
                limits += [_read_bytes(level / "memory.max") for level in _levels(root / mount, path)]
        elif "memory" in controllers.split(","):  # v1's memory controller
            levels = _levels(root / _CGROUP_V1_MEMORY, path)
            limits += [_read_bytes(level / "memory.limit_in_bytes") for level in levels]
            limits += [_stat_limit(levels[0] / "memory.stat")] if levels else []
    limits = [b for b in limits if b is not None]
    return min(limits) if limits else None


def _levels(mount: Path, path: str) -> list[Path]:
    """The directories of ``path``'s cgroup and its ancestors under ``mount`` that exist, deepest first.
    (Inside a container without a cgroup namespace the path is the host's and may not exist under the
    mount: its ancestors, and at least the mount's root, still do.)"""
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]
    dirs = [mount.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [d for d in dirs if d.is_dir()]


def _read_bytes(path: Path) -> int | None:
    """A limit file's bytes (v2's "max", a missing or unreadable file: no limit)."""
    try:
        raw = path.read_text().strip()
    except OSError:
        return None
    return int(raw) if raw.isdigit() else None  # v2's "max": no limit


def _stat_limit(path: Path) -> int | None:
    """``hierarchical_memory_limit`` from a v1 ``memory.stat`` (None when it is not there)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "hierarchical_memory_limit" and value.strip().isdigit():
            return int(value.strip())
    return None


def held_bytes(tree: Any) -> dict[str, int]:
    """Bytes of the tensors and numpy arrays in a snapshot (nested dicts, lists, tuples, dataclasses), by device
    ("cpu", "cuda:0"), each storage counted once (a view holds its whole storage). Torch is not imported: a tensor
    is whatever has ``untyped_storage()``."""
    found: dict[tuple[str, int], int] = {}
    stack = [tree]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            stack += obj.values()
        elif isinstance(obj, (list, tuple)):
            stack += obj
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            stack += (getattr(obj, f.name) for f in dataclasses.fields(obj))
        elif callable(getattr(obj, "untyped_storage", None)):
            storage = obj.untyped_storage()
            found[(str(obj.device), storage.data_ptr())] = storage.nbytes()
        elif hasattr(obj, "__array_interface__") and hasattr(obj, "nbytes"):  # numpy
            base = obj.base if getattr(obj, "base", None) is not None else obj
            found[("cpu", base.__array_interface__["data"][0])] = int(getattr(base, "nbytes", obj.nbytes))
    out: dict[str, int] = {}
    for (device, _), nbytes in found.items():
        out[device] = out.get(device, 0) + nbytes
    return out


def _by_uuid(pynvml: Any, uuid: str) -> Any:
    """NVML's handle for a UUID: nvidia-ml-py takes a str, older bindings bytes."""
    try:
        return pynvml.nvmlDeviceGetHandleByUUID(uuid)
    except TypeError:
        return pynvml.nvmlDeviceGetHandleByUUID(uuid.encode())


class _Nvml:
    """Utilisation and temperature of one GPU through NVML; inert when ``pynvml`` is missing."""

    def __init__(self, device_index: int, uuid: str | None):
        self.handle: Any = None
        try:
            import pynvml
        except ImportError:
            return
        try:
            pynvml.nvmlInit()
            # NVML counts physical GPUs; torch's index is relative to CUDA_VISIBLE_DEVICES: match by UUID
            self.handle = (_by_uuid(pynvml, uuid) if uuid else pynvml.nvmlDeviceGetHandleByIndex(device_index))
            self.nvml = pynvml
        except Exception as exc:  # pynvml.NVMLError and friends: no driver, no permission
            log.info("NVML unavailable (%s): no GPU utilisation/temperature", exc)
            self.handle = None

    def read(self) -> dict[str, float]:
        if self.handle is None:
            return {}
        try:
            util = self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu
            temp = self.nvml.nvmlDeviceGetTemperature(self.handle, self.nvml.NVML_TEMPERATURE_GPU)
        except Exception as exc:
            log.info("NVML read failed (%s); not reading it again", exc)
            self.handle = None
            return {}
        return {SYS_GPU_UTIL: float(util), SYS_GPU_TEMP_C: float(temp)}


class ResourceSampler:
    """One :meth:`sample` per iteration: ``{sys/...: value}`` for the record.

    ``device``: the training's torch device ("cpu", "cuda:0", a ``torch.device``); the CUDA
    counters are read for it only when it is a CUDA device. Steps per second are measured from
    one sample to the next, so the first sample has none.
    """

    def __init__(self, device: Any = "cpu", *, clock=time.perf_counter):
        self.clock = clock
        self.mem_total_mb = machine_memory_mb()
        self._last: tuple[float, int] | None = None
        self._skip_rate = False  # the iteration being sampled crashed part-way (interrupted)
        self.cuda = None
        self.cuda_total_mb: float | None = None
        self.nvml = None
        if str(device).startswith("cuda"):
            self._init_cuda(device)

    def _init_cuda(self, device: Any) -> None:
        import torch

        if not torch.cuda.is_available():
            return
        self.cuda = torch.device(device)
        if self.cuda.index is None:
            self.cuda = torch.device("cuda", torch.cuda.current_device())
        props = torch.cuda.get_device_properties(self.cuda)
        self.cuda_total_mb = props.total_memory / MB
        uuid = getattr(props, "uuid", None)
        self.nvml = _Nvml(self.cuda.index, f"GPU-{uuid}" if uuid is not None else None)

    def sample(self, env_steps: int) -> dict[str, float]:
        """The resource keys now; ``env_steps``: the run's env steps so far (for steps/s)."""
        out: dict[str, float] = {}
        rss = rss_mb()
        if rss is not None:
            out[SYS_RSS_MB] = rss
        if self.mem_total_mb is not None:
            out[SYS_MEM_TOTAL_MB] = self.mem_total_mb
        if self.cuda is not None:
            out.update(self._cuda())
        if self.nvml is not None:
            out.update(self.nvml.read())
        now = self.clock()
        if self._last is not None and now > self._last[0] and env_steps >= self._last[1] and not self._skip_rate:
            out[SYS_STEPS_PER_S] = (env_steps - self._last[1]) / (now - self._last[0])
        self._last, self._skip_rate = (now, env_steps), False
        return out

    def interrupted(self) -> None:
        """The iteration now ending crashed part-way: its env steps were not all taken, so the next
        sample says no steps/s (it would credit a whole iteration's steps to a fraction of its time)
        and the one after measures from it."""
        self._skip_rate = True

    def _cuda(self) -> dict[str, float]:
        """torch's allocator counters for our process (no device sync, no NVML)."""
        import torch

        dev = self.cuda
        return {
            SYS_CUDA_ALLOCATED_MB: torch.cuda.memory_allocated(dev) / MB,
            SYS_CUDA_RESERVED_MB: torch.cuda.memory_reserved(dev) / MB,
            SYS_CUDA_PEAK_MB: torch.cuda.max_memory_allocated(dev) / MB,
            SYS_CUDA_TOTAL_MB: self.cuda_total_mb,
        }
