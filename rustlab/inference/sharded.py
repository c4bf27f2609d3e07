"""`rustlab predict` under torchrun: every process predicts its share of the photos, and rank 0
merges the results in input order.

    torchrun --nproc-per-node 4 -m rustlab predict FOLDER --results out.csv [--resume]

Photo i goes to rank ``i % world`` (round robin: every rank gets a similar mix of the folder).
Each rank writes ``out.part<rank>-of-<world>.csv`` as it goes (the results file's own flushing,
so a killed run keeps its rows) and ``--resume`` continues each part where it stopped. When all
ranks are done (a gloo barrier), rank 0 writes ``out.csv``: every part's rows in the input order.
The parts stay beside it: a ``--resume`` after a finished run has nothing left to predict.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rustlab.errors import RustlabError


@dataclass
class Shard:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Shard":
        """This process's place under torchrun (RANK, WORLD_SIZE, LOCAL_RANK); one process otherwise."""
        try:
            return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                       int(os.environ.get("LOCAL_RANK", 0)))
        except ValueError:
            raise RustlabError("RANK / WORLD_SIZE / LOCAL_RANK are not integers (torchrun sets them)") from None

    @property
    def sharded(self) -> bool:
        return self.world > 1

    def take(self, files: list) -> list:
        return files[self.rank::self.world]

    def part(self, results_path) -> Path:
        path = Path(results_path)
        return path.with_name(f"{path.stem}.part{self.rank}-of-{self.world}{path.suffix}")

    def device(self, device: str) -> str:
        """``auto`` on a machine with GPUs: this process's own (cuda:LOCAL_RANK)."""
        if device != "auto":
            return device
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"

    def wait_for_all(self) -> None:
        """A barrier over every rank (gloo: CPU and GPU processes alike)."""
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()

    def merge(self, results_path, files: list, class_names) -> dict:
        """Rank 0: every part's rows in the order of ``files``, written to ``results_path``
        (atomically). Returns counts: rows, errors, missing (photos no part holds)."""
        from rustlab.checkpoint import atomic_write
        from rustlab.inference.results_file import ResultsFile, read_rows, source_key

        rows = {}
        for rank in range(self.world):
            part = Shard(rank, self.world).part(results_path)
            for row in read_rows(part):
                rows[source_key(row["source"])] = row
        ordered = [rows[key] for key in map(source_key, files) if key in rows]

        def write(tmp):
            out = ResultsFile(tmp, class_names, resume=False, suffix=Path(results_path).suffix)
            for row in ordered:
                out.write(row)
            out.close()

        atomic_write(Path(results_path), write)
        return {"rows": len(ordered), "errors": sum(1 for r in ordered if r.get("error")),
                "missing": len(files) - len(ordered)}
