"""Augmentation on decoded uint8 tensors (torchvision.transforms.v2) and normalisation.

Geometric transforms move an image and its mask together (tv_tensors.Mask); photometric ones
touch only the image. Normalisation runs on whole batches on the training device.

Masks are resized like their image (bilinear, antialiased) and thresholded at 0.5: torchvision
resizes masks with floor-nearest, which shifts them by up to half a source pixel against the
bilinear image (measured: ~3% of mask pixels off after a 2x zoom), so they stay 0/1 and aligned.
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
    crop = _mask_aligned_crop_class()
    ops = [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()]
    if level == "light":
        ops.insert(0, crop(size, scale=(0.8, 1.0), antialias=True))
    elif level == "standard":
        ops.insert(0, crop(size, scale=(0.5, 1.0), antialias=True))
        ops.append(v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2, hue=0.02))
    else:  # strong: fights context shortcuts (scale, blur, greyish lighting)
        ops.insert(0, crop(size, scale=(0.25, 1.0), ratio=(0.6, 1.66), antialias=True))
        ops += [
            v2.RandomApply([v2.RandomRotation(20)], p=0.3),
            v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.3, hue=0.03),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.5))], p=0.3),
        ]
    return v2.Compose(ops)


def resized_crop_mask(mask: torch.Tensor, top: int, left: int, height: int, width: int, size) -> torch.Tensor:
    """Crop and resize a 0/1 mask exactly as the image is (bilinear + antialias), then threshold."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    soft = F.resized_crop(mask.as_subclass(torch.Tensor).float(), top, left, height, width, list(size),
                          interpolation=InterpolationMode.BILINEAR, antialias=True)
    return (soft >= 0.5).to(mask.dtype)


_CROP_CLASS = None


def _mask_aligned_crop_class():
    """v2.RandomResizedCrop whose masks follow the image's geometry (see the module docstring)."""
    global _CROP_CLASS
    if _CROP_CLASS is None:
        from torchvision import tv_tensors
        from torchvision.transforms import v2

        # torchvision < 0.21 names the per-input hook `_transform`, later ones `transform`
        hook = "transform" if hasattr(v2.Transform, "transform") else "_transform"

        def per_input(self, inpt, params):
            if isinstance(inpt, tv_tensors.Mask):
                out = resized_crop_mask(inpt, params["top"], params["left"], params["height"], params["width"],
                                        self.size)
                return tv_tensors.wrap(out, like=inpt)
            return getattr(super(_CROP_CLASS, self), hook)(inpt, params)

        _CROP_CLASS = type("MaskAlignedRandomResizedCrop", (v2.RandomResizedCrop,), {hook: per_input})
    return _CROP_CLASS


class DecodedDataset(Dataset):
    """Items of a DecodedSet: (uint8 image, label or mask), augmented per item."""

    def __init__(self, decoded, target: str = "label", transform=None):
        if target == "mask" and decoded.masks is None:
            raise ValueError("this data has no masks")
        self.decoded = decoded
        self.target = target
        self.transform = transform
        # rust photos without a drawn mask (DecodedSet.weak); other decoded-like sets have none
        self.weak = getattr(decoded, "weak", None) if target == "mask" else None

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
        if self.weak is not None and bool(self.weak[i]):
            from rustlab.tasks.segmentation_defaults import WEAK_RUST

            target = torch.full_like(target, WEAK_RUST)  # after the crop: a weak mask has no geometry
        return image, target, self.decoded.labels[i]


def normalize(batch: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """uint8 N x 3 x H x W (any device) to normalised float32."""
    mean_t = torch.tensor(mean, device=batch.device, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, device=batch.device, dtype=torch.float32).view(1, 3, 1, 1)
    return (batch.float() / 255.0 - mean_t) / std_t
