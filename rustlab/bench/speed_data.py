"""The records of `rustlab bench speed`: plain dataclasses that the measuring modules fill and the
report modules (``speed_report``, ``speed_results``) read. This module imports no other part of
rustlab.bench, so neither side imports the other."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rustlab.bench.timing import is_contended


@dataclass
class PipelineResult:
    kind: str  # naive | rustlab | bound
    images_per_s: float
    images: int
    seconds: float
    workers: int = 0
    channels_last: bool = False
    data_images_per_s: float | None = None  # the loader alone, no model: the pipeline's own ceiling
    runs: list = field(default_factory=list)  # images/s of every repeat; the row is the fastest one
    others_cores: float | None = None  # cores other processes kept busy meanwhile (0 on a quiet machine)
    vs_naive: float | None = None
    vs_bound: float | None = None  # against the bound in the same memory format
    compiled: bool = False  # the model went through torch.compile (--compile on)
    gpu_memory_mib: float | None = None  # peak CUDA memory of the training steps (CUDA only)

    @property
    def name(self) -> str:
        parts = [self.kind]
        if self.channels_last:
            parts.append("channels_last")
        if self.compiled:
            parts.append("compiled")
        if self.kind == "rustlab":
            parts.append(f"workers={self.workers}")
        return " ".join(parts)

    @property
    def contended(self) -> bool:
        return is_contended(self.others_cores)


@dataclass
class CacheStats:
    """The trainer's data preparation (``rustlab.training.prepare_data``): every split decoded."""

    images: int
    image_size: int
    decode_seconds: float  # the first run: decode every file, write the cache
    load_seconds: float  # every later run with the same files and preprocessing: read it back
    reused: bool  # the second run found the first run's cache (same key)
    memory_bytes: int
    disk_bytes: int
    splits: dict = field(default_factory=dict)  # split -> images
    others_cores: float | None = None

    @property
    def contended(self) -> bool:
        return is_contended(self.others_cores)


@dataclass
class DecodeStats:
    images: int
    image_size: int
    full_ms: float  # PIL decodes the whole JPEG, then resizes (the seed)
    draft_ms: float  # rustlab.data.images.load_square: JPEG draft mode decodes at a reduced scale
    camera_full_ms: float | None = None  # the same two on one 12-megapixel (4000x3000) JPEG
    camera_draft_ms: float | None = None
    others_cores: float | None = None

    @property
    def contended(self) -> bool:
        return is_contended(self.others_cores)


@dataclass
class PredictResult:
    model: str
    image_size: int
    parameters: int
    pil_ms: float  # median warm latency from a decoded PIL image (what the GUI holds)
    pil_p90_ms: float
    path_ms: float  # median warm latency from a JPEG path (decode included)
    path_p90_ms: float
    folder_images: int
    folder_images_per_s: float
    batch_size: int
    channels_last: bool = False  # the Predictor's model moved to NHWC (not what rustlab predict does today)
    engine: str = "pytorch"  # what ran the forward pass (rustlab.inference.engine): onnxruntime | pytorch
    default_path: bool = True  # what `rustlab predict` runs (--engine auto, no layout forced)
    others_cores: float | None = None  # cores other processes kept busy meanwhile
    batch_ms: dict = field(default_factory=dict)  # batch size -> median ms of one forward on a uint8 batch
    gpu_memory_mib: float | None = None  # peak CUDA memory of the predictions (CUDA only)

    @property
    def contended(self) -> bool:
        return is_contended(self.others_cores)


@dataclass
class FolderBoundResult:
    """Folder prediction against the most a pipeline could do on these cores (issue 33): per
    photo, the model's core time (its rate alone on all its threads, times the cores) plus one
    thread's decode time, spread over every core. No pipeline can beat it."""
    model: str
    engine: str  # onnxruntime | pytorch
    photos: str  # what was predicted (web photos, 12 MP JPEGs)
    images: int
    batch_size: int
    cores: int
    decode_per_s: float  # preprocess (decode + resize) on one thread
    model_per_s: float  # the forward and interpretation alone, photos decoded beforehand
    bound_per_s: float
    pipeline_per_s: float  # Predictor.predict_many, as `rustlab predict FOLDER` runs it
    runs: list = field(default_factory=list)  # pipeline img/s of every round; the row keeps the fastest
    others_cores: float | None = None

    @property
    def of_bound(self) -> float:
        return self.pipeline_per_s / self.bound_per_s

    @property
    def contended(self) -> bool:
        return is_contended(self.others_cores)


@dataclass
class StartupResult:
    python_s: float  # a bare `python -c pass`, for reference
    import_torch_s: float | None  # wall time of `python -c "import torch"`: the floor of any command that predicts
    import_rustlab_ms: float  # in-process time of `import rustlab`
    help_s: float  # wall time of `rustlab --help`, process start included
    help_imports_torch: bool
    predict_s: float | None = None  # wall time of `rustlab predict --checkpoint C one.jpg`
    others_cores: float | None = None

    @property
    def contended(self) -> bool:
        return is_contended(self.others_cores)


@dataclass
class SpeedReport:
    machine: dict
    settings: dict = field(default_factory=dict)
    cache: CacheStats | None = None
    decode: DecodeStats | None = None
    training: list = field(default_factory=list)  # PipelineResult
    predict: list = field(default_factory=list)  # PredictResult
    folder: list = field(default_factory=list)  # FolderBoundResult
    startup: StartupResult | None = None
    skipped: list = field(default_factory=list)  # one line per measurement left out, with why
    command: str = ""
    seconds: float = 0.0
    gpu: dict = field(default_factory=dict)  # CUDA only: peak memory of training, what was enabled

    def to_dict(self) -> dict:
        """Every number, with each figure's ``contended`` mark (targets: ``speed_report.report_dict``)."""
        d = dataclasses.asdict(self)
        d["training"] = [{**dataclasses.asdict(r), "name": r.name, "contended": r.contended} for r in self.training]
        d["predict"] = [{**dataclasses.asdict(p), "contended": p.contended} for p in self.predict]
        d["folder"] = [{**dataclasses.asdict(f), "of_bound": round(f.of_bound, 3), "contended": f.contended}
                       for f in self.folder]
        for key in ("cache", "decode", "startup"):
            item = getattr(self, key)
            if item is not None:
                d[key]["contended"] = item.contended
        return d


def fastest_run(runs: list[PipelineResult]) -> PipelineResult:
    """The repeat with the most images/s, keeping every repeat's rate in ``runs``.

    Its ``others_cores`` is that repeat's: a fast repeat beside a busy neighbour stays marked."""
    row = dataclasses.replace(max(runs, key=lambda r: r.images_per_s))
    row.runs = [round(r.images_per_s, 1) for r in runs]
    return row


def add_ratios(rows: list[PipelineResult]) -> list[PipelineResult]:
    """Fill vs_naive and vs_bound (the bound in the same memory format) on every row."""
    naive = next((r for r in rows if r.kind == "naive"), None)
    bounds = {(r.channels_last, r.compiled): r for r in rows if r.kind == "bound"}
    for r in rows:
        if naive is not None and r is not naive:
            r.vs_naive = r.images_per_s / naive.images_per_s
        bound = bounds.get((r.channels_last, r.compiled))
        if bound is not None and r is not bound:
            r.vs_bound = r.images_per_s / bound.images_per_s
    return rows
