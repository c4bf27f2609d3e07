"""The one timing loop of `rustlab bench`, and the meter that says whether a timing can be trusted.

Every benchmark (speed, kernels, benchmarks/) times through ``time_loop`` (or ``StepClock``,
which reads the same timestamps out of the trainer's own epoch loop) and records, with
``CpuMeter``, how many cores *other* processes kept busy meanwhile. On a shared machine another
job can slow a measurement tenfold (experiments/speed/README.md saw 4 ms become 132 ms), so a
figure taken while others used more than ``CONTENDED_CORES`` is marked contended, and a
contended figure never replaces a quiet one in a committed results file (``speed_results``).
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import time
from dataclasses import dataclass, field

# Other processes using more than this many cores during a measurement make it "contended".
# A quarter of a core: on the 2-core machines here torch runs 2 threads that wait for each
# other, and even a part-time neighbour stretches those waits (quiet runs read 0.00-0.04).
CONTENDED_CORES = 0.25
# /proc/stat counts in 10 ms ticks: a shorter measurement cannot tell whether another process
# ran during it, so it is not judged (others_cores None).
MIN_JUDGED_SECONDS = 0.2


@dataclass
class Timing:
    items: int
    seconds: float
    durations: list = field(default_factory=list, repr=False)  # seconds per step

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")

    @property
    def median_ms(self) -> float:
        return 1000 * statistics.median(self.durations)

    @property
    def p90_ms(self) -> float:
        ordered = sorted(self.durations)
        return 1000 * ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def time_loop(step, source, steps: int, warmup: int = 0, sync=None) -> Timing:
    """Run ``step(next(source))`` ``warmup`` times untimed, then ``steps`` times timed.

    Fetching the next item is inside the timed region: that is where a data pipeline's cost
    shows. ``step`` returns how many items it handled; ``sync`` waits for queued GPU work.
    """
    for _ in range(warmup):
        step(next(source))
    if sync is not None:
        sync()
    items, durations = 0, []
    start = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        items += step(next(source))
        if sync is not None:
            sync()
        durations.append(time.perf_counter() - t0)
    return Timing(items, time.perf_counter() - start, durations)


class StepClock:
    """A stand-in for the progress bar of ``rustlab.training.train_one_epoch``: it timestamps every
    step, so the trainer's own loop is timed instead of a copy of it.

    Wrap the loader with ``counted(batches)`` (it records each batch's size), pass the clock as
    ``progress``, then ``timing(warmup)`` is the same ``Timing`` that ``time_loop`` returns:
    fetching each batch is inside its step's time, the first ``warmup`` steps are left out."""

    def __init__(self, sync=None):
        self.sync = sync
        self.sizes: list[int] = []
        self.stamps = [time.perf_counter()]

    def counted(self, batches):
        for batch in batches:
            self.sizes.append(len(batch[0]))
            yield batch

    def update(self, n: int = 1) -> None:
        if self.sync is not None:
            self.sync()
        self.stamps.append(time.perf_counter())

    def set_postfix(self, **_values) -> None:
        pass

    def timing(self, warmup: int) -> Timing:
        stamps = self.stamps[warmup:]
        durations = [b - a for a, b in itertools.pairwise(stamps)]
        return Timing(sum(self.sizes[warmup:warmup + len(durations)]), stamps[-1] - stamps[0], durations)


# --- other processes' CPU use -------------------------------------------------------------------


def _cpu_snapshot():
    """(machine busy seconds, this process's and its reaped children's CPU seconds, wall clock)."""
    try:
        import resource

        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:9]]
    except (ImportError, OSError, ValueError):
        return None
    if len(values) < 8:
        return None
    # user, nice, system, irq, softirq and steal (a hypervisor's other guests); not idle, iowait
    busy = (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    return busy, own, time.perf_counter()


class CpuMeter:
    """How many cores other processes kept busy since it was made (Linux; None elsewhere).

    The machine's busy CPU time (/proc/stat) less this process's and its reaped children's (the
    DataLoader workers: close them before reading), over the wall time."""

    def __init__(self):
        self.start = _cpu_snapshot()

    def others_cores(self) -> float | None:
        end = _cpu_snapshot()
        if self.start is None or end is None or end[2] - self.start[2] < MIN_JUDGED_SECONDS:
            return None
        busy, own, wall = (b - a for a, b in zip(self.start, end))
        # clamped to the machine: 10 ms tick rounding can overshoot a little
        return round(min(float(os.cpu_count() or 1), max(0.0, (busy - own) / wall)), 2)


def is_contended(others_cores: float | None) -> bool:
    """Whether a figure measured while others used ``others_cores`` cores must be marked."""
    return others_cores is not None and others_cores > CONTENDED_CORES


def timed_round(step, source, steps: int, warmup: int = 0, sync=None) -> tuple[Timing, float | None]:
    """``time_loop`` and the cores other processes used during its timed part."""
    for _ in range(warmup):
        step(next(source))
    meter = CpuMeter()
    timing = time_loop(step, source, steps, 0, sync)
    return timing, meter.others_cores()


def sync_for(device):
    """What waits for a device's queued work before a clock is read (None on the CPU)."""
    if device.type != "cuda":
        return None
    import torch

    return lambda: torch.cuda.synchronize(device)


def load_average():
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info(device: str = "cpu") -> dict:
    import PIL
    import torch
    import torchvision

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": str(device),
        "load_average": load_average(),
        "contended_above_cores": CONTENDED_CORES,
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info
