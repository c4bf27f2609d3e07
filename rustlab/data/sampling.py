"""What the trainer draws each epoch: per-item keyed augmentation and class-balanced sampling.

Both depend on (seed, epoch, index) only, so N torchrun processes, any number of DataLoader
workers and a resumed run all draw what one uninterrupted process would."""

from __future__ import annotations

from rustlab.device import mix_seed


class KeyedAugmentation:
    """Items of ``dataset`` built with torch's CPU RNG seeded from (seed, epoch, index).

    torchvision's v2 transforms draw from the global RNG; scoping it per item makes each sample's
    augmentation independent of which process or DataLoader worker builds it, and of how many
    items were built before (a resumed run draws what an uninterrupted one did)."""

    def __init__(self, dataset, seed: int):
        self.dataset = dataset
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(mix_seed(self.seed, self.epoch, index))
            return self.dataset[index]


def group_weights(groups):
    """Float64 tensor of 1 / (size of the item's group) per item: every group (a class, a source,
    a source's class) weighs the same in total. The balanced sampler draws by these weights; a
    model fitted in closed form takes them as ``sample_weight``."""
    import collections

    import torch

    groups = list(groups)
    counts = collections.Counter(groups)
    return torch.tensor([1.0 / counts[g] for g in groups], dtype=torch.float64)


class BalancedSampler:
    """Balanced draws with replacement: every group (a class, a source, a source's class) is
    equally likely at each draw.

    Each epoch draws as many indices as there are items from a generator seeded by (seed, epoch),
    the same on every rank; rank r takes positions r, r+N, ... as DistributedSampler does, so
    N processes see what one would and a resumed run draws what an uninterrupted one did.
    Minority-group images repeat (under different augmentations) and majority-group images are
    sometimes left out of an epoch."""

    def __init__(self, groups, seed: int, num_replicas: int = 1, rank: int = 0):
        self.weights = group_weights(groups)
        self.seed, self.num_replicas, self.rank = int(seed), int(num_replicas), int(rank)
        self.total = len(self.weights) - len(self.weights) % self.num_replicas
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        import torch

        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch, 0xBA1A))
        drawn = torch.multinomial(self.weights, self.total, replacement=True, generator=generator)
        return iter(drawn[self.rank::self.num_replicas].tolist())

    def __len__(self):
        return self.total // self.num_replicas
