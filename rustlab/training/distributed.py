"""N processes computing what one would: torchrun DDP setup and sample sharding.

Under ``torchrun --nproc-per-node N -m rustlab train ...`` (WORLD_SIZE > 1 in the environment)
the trainer joins a process group (NCCL on CUDA, gloo on CPU). Everything that could make the
N-process run differ from a single process is pinned down here:

- which samples: torch's DistributedSampler (a seed + epoch permutation, ``set_epoch``) with a
  per-rank batch of global batch / N. Rank r takes positions r, r+N, ... of the permutation, so
  the ranks' k-th batches together are exactly the single process's k-th batch, and averaging
  the ranks' gradients (DDP) gives the single process's gradient up to float summation order;
- which random numbers: each sample's augmentation is seeded from (seed, epoch, index)
  (rustlab.data.sampling.KeyedAugmentation) and the global RNGs (dropout) from (seed, epoch,
  rank) at the start of every epoch, so the random streams depend neither on the number of
  DataLoader workers nor on a resume, and no two ranks share a stream;
- which metrics: training outputs are gathered from every rank at each step; validation and
  test run on rank 0 over the full split, exactly as in a single process;
- who writes: rank 0 creates the run folder (its name is broadcast) and writes every file.

Without torchrun, ``setup`` returns a one-process ``Dist`` whose collectives are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from rustlab.errors import RustlabError

@dataclass
class Dist:
    """This process's place in the run; collectives are no-ops when ``world_size`` is 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: Any = None  # torch.device
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        import torch.distributed as td

        box = [obj]
        td.broadcast_object_list(box, src=0)
        return box[0]

    def from_main(self, fn: Callable[[], Any]):
        """Run ``fn`` on rank 0 only and hand its result to every rank; an error on rank 0 is
        raised on every rank as the same one-line message (no rank is left waiting)."""
        if not self.enabled:
            return fn()
        result, error = None, None
        if self.is_main:
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - re-raised below, after telling the other ranks
                error = exc
        outcome = self.broadcast(("error", str(error)) if error is not None else ("ok", result))
        if error is not None:
            raise error
        if outcome[0] == "error":
            raise RustlabError(outcome[1])
        return outcome[1]

    def main_first(self, fn: Callable[[], Any]):
        """``fn`` on rank 0, then on the other ranks (e.g. fill the decode cache once, then read it)."""
        if not self.enabled:
            return fn()
        result = self.from_main(fn)
        return result if self.is_main else fn()

    def any(self, *flags: bool) -> list[bool]:
        """For each flag: is it set on any rank? One all-reduce for all of them."""
        if not self.enabled:
            return [bool(f) for f in flags]
        import torch
        import torch.distributed as td

        t = torch.tensor([1.0 if f else 0.0 for f in flags], device=self.device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def gather_cat(self, tensor):
        """Every rank's ``tensor`` (same shape on all ranks), concatenated along dim 0 in rank order."""
        if not self.enabled:
            return tensor
        import torch
        import torch.distributed as td

        tensor = tensor.contiguous().to(self.device)
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        td.all_gather(parts, tensor)
        return torch.cat(parts)

    def per_rank_batch(self, batch_size: int) -> int:
        """``--batch-size`` is the global batch: the math of one process, whatever N is."""
        if batch_size % self.world_size:
            raise RustlabError(f"--batch-size {batch_size} must be a multiple of the {self.world_size} processes "
                               "(it is the global batch, split evenly across processes)")
        return batch_size // self.world_size

    def sampler(self, dataset, seed: int, balance_groups=None):
        """A seed + epoch permutation, strided across ranks (call ``set_epoch`` every epoch).

        ``drop_last`` trims the permutation to a multiple of N instead of padding it with repeated
        samples, so every rank sees floor(len / N) samples and no sample counts twice.
        ``balance_groups`` (one group per item: its class, source, ...): draws that make every group
        equally likely instead, see rustlab.data.sampling.BalancedSampler."""
        from torch.utils.data.distributed import DistributedSampler

        if balance_groups is not None:
            from rustlab.data.sampling import BalancedSampler

            return BalancedSampler(balance_groups, seed, num_replicas=self.world_size, rank=self.rank)

        return DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank, shuffle=True,
                                  seed=seed, drop_last=True)

    def wrap(self, model):
        """(module to save and evaluate, module to train): DDP around the model when distributed."""
        if not self.enabled:
            return model, model
        import torch
        from torch.nn.parallel import DistributedDataParallel

        if self.device.type == "cuda":
            # per-GPU batch statistics would make BatchNorm differ from one process; SyncBatchNorm
            # keeps the same parameter and buffer names, so checkpoints load into the plain model
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            return model, DistributedDataParallel(model, device_ids=[self.device.index])
        return model, DistributedDataParallel(model)

    def close(self) -> None:
        if not self.enabled:
            return
        import gc

        import torch.distributed as td

        # the run's objects (its DDP model among them) can sit in reference cycles until interpreter
        # exit, holding the process group: torn down there, gloo aborted the process ("terminate
        # called without an active exception") in ~1 torchrun run in 10 on 2 CPU processes; collected
        # here first, in 0 of 90
        gc.collect()
        if td.is_initialized():
            td.destroy_process_group()


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def setup(device_name: str = "auto") -> Dist:
    """Join torchrun's process group if there is one; pick this process's device.

    Under torchrun each process uses ``cuda:LOCAL_RANK`` (NCCL) unless ``--device cpu`` is given
    or there is no GPU (gloo)."""
    from rustlab.device import resolve_device

    device = resolve_device(device_name)  # validates the flag (and that CUDA exists if asked for)
    if not under_torchrun():
        return Dist(device=device)
    import torch
    import torch.distributed as td

    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise RustlabError("WORLD_SIZE is set but RANK is not: start distributed runs with torchrun") from None
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise RustlabError(f"process {local_rank} of this node has no GPU ({torch.cuda.device_count()} here): "
                               "use --nproc-per-node <= the number of GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not td.is_initialized():
        td.init_process_group(backend=backend)
    return Dist(rank=rank, world_size=world, local_rank=local_rank, device=device, backend=backend)
