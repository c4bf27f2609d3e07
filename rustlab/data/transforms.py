"""Augmentation on decoded uint8 tensors (torchvision.transforms.v2) and normalisation.

Geometric transforms move an image and its mask together (tv_tensors.Mask); photometric ones
touch only the image. Normalisation runs on whole batches on the training device.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
AUGMENTATIONS = ("none", "light", "standard", "strong")


def build_augmentation(level: str, size: int):
    from torchvision.transforms import v2

    if level not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}")
    if level == "none":
        return None
    ops = [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]
    if level == "light":
        ops.insert(0, v2.RandomResizedCrop(size, scale=(0.8, 1.0), antialias=True))
    elif level == "standard":
        ops.insert(0, v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True))
        ops.append(v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2, hue=0.02))
    else:  # strong: fights context shortcuts (scale, blur, greyish lighting)
        ops.insert(0, v2.RandomResizedCrop(size, scale=(0.25, 1.0), ratio=(0.6, 1.66), antialias=True))
        ops += [
            v2.RandomApply([v2.RandomRotation(20)], p=0.3),
            v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.3, hue=0.03),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5))], p=0.3),
        ]
    return v2.Compose(ops)


class DecodedDataset(Dataset):
    """Items of a DecodedSet: (uint8 image, label or mask), augmented per item."""

    def __init__(self, decoded, target: str = "label", transform=None):
        if target == "mask" and decoded.masks is None:
            raise ValueError("this data has no masks")
        self.decoded = decoded
        self.target = target
        self.transform = transform

    def __len__(self):
        return len(self.decoded)

    def __getitem__(self, i):
        image = self.decoded.images[i]
        if self.target == "mask":
            target = self.decoded.masks[i]
        else:
            target = self.decoded.labels[i]
        if self.transform is not None:
            from torchvision import tv_tensors

            if self.target == "mask":
                image, target = self.transform(tv_tensors.Image(image), tv_tensors.Mask(target))
            else:
                image = self.transform(tv_tensors.Image(image))
            image = image.as_subclass(torch.Tensor)
            target = target.as_subclass(torch.Tensor)
        return image, target, self.decoded.labels[i]


def normalize(batch: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """uint8 N x 3 x H x W (any device) to normalised float32."""
    mean_t = torch.tensor(mean, device=batch.device, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=batch.device, dtype=torch.float32).view(1, 3, 1, 1)
    return (batch.float() / 255.0 - mean_t) / std_t
