"""Deterministic, offline synthetic photos of (rusty) steel with pixel masks.

This is the embedded default data set for demos and tests, so it has to:
  * need no downloads and be bit-for-bit reproducible from a seed;
  * be learnable by a small CNN at 64-96 px;
  * NOT be solvable by a colour threshold alone: clean images often contain smooth orange/brown
    paint (red-oxide primer, ochre, orange patches), so the model has to use texture too
    (rust is rough, pitted and ragged-edged; paint is flat with clean edges).

Everything is numpy plus PIL (bicubic resize for smooth noise, ImageDraw for simple shapes).
Images are built in float32 RGB in [0, 1] and converted to uint8 at the very end.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["render_sample", "generate", "MIN_RUST_FRAC", "MAX_RUST_FRAC"]

# Bounds on the fraction of the image covered by rust in a rusty sample (tests rely on them).
MIN_RUST_FRAC = 0.02
MAX_RUST_FRAC = 0.40

# Flat paint colours (RGB in [0, 1]). The warm ones deliberately overlap rust hues.
_COOL_PAINTS = [
    (0.55, 0.56, 0.58),  # mid grey
    (0.30, 0.31, 0.33),  # dark grey
    (0.15, 0.30, 0.55),  # blue
    (0.45, 0.60, 0.75),  # light blue
    (0.20, 0.40, 0.25),  # green
    (0.60, 0.68, 0.55),  # pale green
    (0.88, 0.88, 0.86),  # white
    (0.13, 0.13, 0.14),  # black
]
_WARM_PAINTS = [
    (0.45, 0.10, 0.10),  # dark red
    (0.78, 0.60, 0.20),  # yellow ochre
    (0.90, 0.75, 0.10),  # safety yellow
    (0.85, 0.45, 0.12),  # orange
    (0.45, 0.25, 0.12),  # brown
    (0.55, 0.22, 0.12),  # red-oxide primer: literally rust-coloured, but smooth
    (0.70, 0.35, 0.20),  # terracotta / copper
    (0.65, 0.45, 0.28),  # tan
    (0.75, 0.35, 0.10),  # burnt orange
]


# --------------------------------------------------------------------------- noise helpers


@lru_cache(maxsize=8)
def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1] (cached: every layer needs them)."""
    t = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    yy, xx = np.meshgrid(t, t, indexing="ij")
    yy.flags.writeable = xx.flags.writeable = False
    return yy, xx


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bicubic upsampling of a small random grid = cheap smooth value noise."""
    img = Image.fromarray(np.ascontiguousarray(grid, dtype=np.float32))
    return np.asarray(img.resize((w, h), Image.BICUBIC), dtype=np.float32)


def _fbm(rng: np.random.Generator, size: int, base: int = 4, octaves: int = 4, gain: float = 0.5) -> np.ndarray:
    """Multi-scale (fractal) noise, roughly zero-mean with std ~0.5-1."""
    out = np.zeros((size, size), np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        cells = min(base * 2**k, size)
        out += amp * _upsample(rng.standard_normal((cells, cells)), size, size)
        norm += amp * amp
        amp *= gain
    return out / np.sqrt(norm)


def _hsv(h_deg: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h_deg / 360.0, s, v), np.float32)


# --------------------------------------------------------------------------- backgrounds


def _brushed_steel(rng: np.random.Generator, size: int) -> np.ndarray:
    # Streaks: noise that varies fast across rows but slowly along them, then rotated to a
    # random brushing direction. Built on a larger canvas so the rotated crop has no corners.
    big = int(size * 1.5)
    streak = 0.7 * _upsample(rng.standard_normal((big, 4)), big, big)
    streak += 0.5 * _upsample(rng.standard_normal((big // 2, 10)), big, big)
    angle = float(rng.uniform(0, 180))
    streak = np.asarray(Image.fromarray(streak).rotate(angle, resample=Image.BILINEAR))
    o = (big - size) // 2
    streak = streak[o : o + size, o : o + size]
    grey = rng.uniform(0.45, 0.78) + 0.045 * streak + 0.04 * _fbm(rng, size, base=2, octaves=2)
    tint = np.array([1.0, 1.0 + rng.uniform(0, 0.03), 1.0 + rng.uniform(0, 0.06)], np.float32)  # steel is slightly cool
    return grey[..., None] * tint


def _flat_paint(rng: np.random.Generator, warm_p: float = 0.5) -> np.ndarray:
    palette = _WARM_PAINTS if rng.random() < warm_p else _COOL_PAINTS
    colour = np.array(palette[rng.integers(len(palette))], np.float32)
    return np.clip(colour + rng.normal(0, 0.035, 3), 0.02, 0.98).astype(np.float32)


def _painted(rng: np.random.Generator, size: int) -> np.ndarray:
    # Flat colour, only gentle mottling and fine grain: paint is smooth compared to rust.
    colour = _flat_paint(rng)
    shade = 1 + 0.03 * _fbm(rng, size, base=3, octaves=2) + rng.normal(0, 0.008, (size, size)).astype(np.float32)
    return shade[..., None] * colour


def _galvanised(rng: np.random.Generator, size: int) -> np.ndarray:
    # Spangle: Voronoi cells of slightly different grey, each with its own faint sheen direction.
    k = int(rng.integers(25, 90))
    pts = rng.uniform(-1, 1, (k, 2)).astype(np.float32)
    yy, xx = _coords(size)
    d2 = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    cell = d2.argmin(-1)
    tone = (rng.uniform(0.5, 0.72) + rng.normal(0, 0.035, k)).astype(np.float32)
    sheen = rng.normal(0, 0.1, (k, 2)).astype(np.float32)
    grey = tone[cell] + sheen[cell, 0] * (yy - pts[cell, 0]) + sheen[cell, 1] * (xx - pts[cell, 1])
    grey += 0.015 * _upsample(rng.standard_normal((size // 2, size // 2)), size, size)
    return np.repeat(grey[..., None], 3, axis=-1)


_BACKGROUNDS = (_brushed_steel, _painted, _galvanised)


# --------------------------------------------------------------------------- distractors


def _paint_patch(rng: np.random.Generator, img: np.ndarray) -> None:
    """A smooth, clean-edged patch of (usually warm) paint: orange that is NOT rust."""
    size = img.shape[0]
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    kind = rng.integers(3)
    if kind == 0:  # stripe across the plate
        w = rng.uniform(0.1, 0.35) * size
        c = rng.uniform(0.2, 0.8) * size
        if rng.random() < 0.5:
            draw.rectangle([0, c - w / 2, size, c + w / 2], fill=255)
        else:
            draw.rectangle([c - w / 2, 0, c + w / 2, size], fill=255)
    elif kind == 1:  # ellipse (touch-up spot)
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        rx, ry = rng.uniform(0.08, 0.3, 2) * size
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    else:  # polygon (label / painted marking)
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        n = int(rng.integers(4, 8))
        # Evenly spread angles with jitter: a convex-ish marking, not a sliver.
        ang = rng.uniform(0, 2 * np.pi) + (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n
        rad = rng.uniform(0.1, 0.3, n) * size
        draw.polygon([(float(cx + r * np.cos(a)), float(cy + r * np.sin(a))) for a, r in zip(ang, rad)], fill=255)
    alpha = np.asarray(layer, np.float32)[..., None] / 255
    colour = _flat_paint(rng, warm_p=0.8)
    paint = colour * (1 + 0.02 * _fbm(rng, size, base=3, octaves=2))[..., None]
    img *= 1 - alpha
    img += alpha * paint


def _rivets(rng: np.random.Generator, img: np.ndarray) -> None:
    """Shaded domes (bolts/rivets), often in a row, in the colour of the plate under them."""
    size = img.shape[0]
    n = int(rng.integers(1, 7))
    r = rng.uniform(0.03, 0.07) * size
    if rng.random() < 0.6:  # a row of rivets along a seam
        p0, p1 = rng.uniform(0.1, 0.9, (2, 2)) * size
        centres = p0 + np.linspace(0, 1, n)[:, None] * (p1 - p0)
    else:
        centres = rng.uniform(0.1, 0.9, (n, 2)) * size
    light = np.array([-0.5, -0.6, 0.62], np.float32)
    light /= np.linalg.norm(light)
    for cy, cx in centres:
        y0, y1 = int(max(cy - 1.4 * r, 0)), int(min(cy + 1.4 * r + 1, size))
        x0, x1 = int(max(cx - 1.4 * r, 0)), int(min(cx + 1.4 * r + 1, size))
        if y0 >= y1 or x0 >= x1:
            continue
        dy = (np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy) / r
        dx = (np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx) / r
        d2 = dx * dx + dy * dy
        # Normal of a low dome (flattened sphere), so rivets look like rivets, not marbles.
        h = 1.8 * np.sqrt(np.clip(1 - d2, 0, 1))
        shade = np.clip((dx * light[1] + dy * light[0] + h * light[2]) / np.sqrt(d2 + h * h + 1e-6), 0, 1)
        base = img[int(np.clip(cy, 0, size - 1)), int(np.clip(cx, 0, size - 1))].copy()
        dome = base * (0.5 + 0.6 * shade)[..., None] + (0.12 * shade**12)[..., None]
        # Contact shadow ring on the side away from the light.
        ring = (d2 >= 1) & (d2 < 1.6)
        away = np.clip(dx * -light[1] + dy * -light[0], 0, 1)
        patch = img[y0:y1, x0:x1]
        patch *= np.where(ring, 1 - 0.35 * away, 1)[..., None]
        inside = (d2 < 1)[..., None]
        patch[:] = np.where(inside, dome, patch)


def _scratches(rng: np.random.Generator, img: np.ndarray) -> None:
    """Thin bright (bare metal) or dark lines, usually roughly parallel."""
    size = img.shape[0]
    layer = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(layer)
    main = rng.uniform(0, np.pi)
    for _ in range(int(rng.integers(1, 8))):
        a = main + rng.normal(0, 0.25)
        length = rng.uniform(0.15, 0.7) * size
        x, y = rng.uniform(0, size, 2)
        draw.line([(x, y), (x + length * np.cos(a), y + length * np.sin(a))], fill=int(rng.integers(90, 256)), width=int(rng.integers(1, 3)))
    alpha = np.asarray(layer, np.float32)[..., None] / 255 * rng.uniform(0.4, 0.8)
    tone = rng.uniform(0.8, 0.95) if rng.random() < 0.7 else rng.uniform(0.1, 0.25)
    img *= 1 - alpha
    img += alpha * tone


def _grime(rng: np.random.Generator, img: np.ndarray) -> None:
    """Soft dark, low-saturation smudges (dirt, oil): dark but not rusty."""
    size = img.shape[0]
    g = _fbm(rng, size, base=3, octaves=3)
    alpha = np.clip((g - rng.uniform(0.0, 0.5)) * 1.2, 0, 1)[..., None] * rng.uniform(0.2, 0.5)
    colour = np.array([0.20, 0.19, 0.17], np.float32) * rng.uniform(0.6, 1.3)
    img *= 1 - alpha
    img += alpha * colour


# --------------------------------------------------------------------------- rust


def _rust(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Paint rust blobs onto img in place; return the boolean mask of rust pixels."""
    size = img.shape[0]
    yy, xx = _coords(size)
    n = int(rng.integers(1, 5))
    centres = rng.uniform(-0.8, 0.8, (n, 2)).astype(np.float32)
    radii = rng.uniform(0.15, 0.6, n).astype(np.float32)
    # Union of cones around the centres plus fractal noise -> irregular blobs with ragged edges.
    cone = np.max([1 - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / r for (cy, cx), r in zip(centres, radii)], axis=0)
    field = cone + 0.45 * _fbm(rng, size, base=4, octaves=5, gain=0.6)
    # Threshold at a quantile so the covered area hits a target exactly (log-uniform: many small spots).
    target = float(np.exp(rng.uniform(np.log(0.03), np.log(0.32))))
    thr = np.quantile(field, 1 - target)
    mask = field > thr
    depth = np.clip((field - thr) / 0.3, 0, 1)  # 0 at the blob edge, 1 in its core

    # Colour: blend between a dark brown and a bright orange (hues ~10-35 deg) driven by
    # multi-scale texture, so rust is rough where paint is flat.
    dark = _hsv(rng.uniform(8, 22), rng.uniform(0.5, 0.9), rng.uniform(0.15, 0.32))
    light = _hsv(rng.uniform(18, 35), rng.uniform(0.5, 0.95), rng.uniform(0.5, 0.85))
    tex = _fbm(rng, size, base=8, octaves=4, gain=0.7)
    core_dark = rng.uniform(-0.4, 0.4)  # some rust is darker in the middle, some lighter
    t = np.clip(0.5 + 0.45 * tex + core_dark * (depth - 0.5), 0, 1)[..., None]
    rust = dark + t * (light - dark)
    # Pits: small dark spots; grain: per-pixel roughness.
    pits = _upsample(rng.standard_normal((size // 3, size // 3)), size, size)
    rust *= np.where(pits > rng.uniform(0.9, 1.4), rng.uniform(0.35, 0.6), 1.0).astype(np.float32)[..., None]
    rust *= (1 + rng.uniform(0.05, 0.12) * rng.standard_normal((size, size)).astype(np.float32))[..., None]

    # Optional run-off: thin rust streaks dripping down from the blobs (marked as rust too).
    if rng.random() < 0.3:
        rows = np.arange(size)[:, None]
        last = np.maximum.accumulate(np.where(mask, rows, -(10**6)), axis=0)  # last rust row above
        dist = rows - last
        cols = _upsample(rng.standard_normal((1, max(size // 3, 1))), 1, size)[0] > rng.uniform(0.5, 0.9)
        length = rng.uniform(0.08, 0.3) * size * (0.4 + rng.random(size))
        run = ~mask & (dist > 0) & (dist < length) & cols
        if (mask | run).mean() <= MAX_RUST_FRAC:
            fade = np.clip(1 - dist / length, 0, 1)
            depth = np.where(run, 0.3 * fade, depth)
            mask = mask | run
            # Run-off is thin, so a lighter, more orange version of the same rough texture.
            rust = np.where(run[..., None], np.minimum(rust * 1.25, 1), rust)

    # Thin rust at the ragged edge lets a little of the plate show through (still rust pixels).
    alpha = np.where(mask, 0.6 + 0.4 * np.clip(depth * 4, 0, 1), 0)[..., None]
    img *= 1 - alpha
    img += alpha * rust
    return mask


# --------------------------------------------------------------------------- lighting


def _lighting(rng: np.random.Generator, img: np.ndarray) -> None:
    """Photo-like illumination: gradient, vignette, optional shadow/highlight, white balance."""
    size = img.shape[0]
    yy, xx = _coords(size)
    a = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, 0.35) * (np.cos(a) * xx + np.sin(a) * yy)
    cy, cx = rng.uniform(-0.5, 0.5, 2)
    light *= 1 - rng.uniform(0, 0.3) * ((yy - cy) ** 2 + (xx - cx) ** 2) / 2
    if rng.random() < 0.25:  # soft cast shadow (a half-plane with a blurry edge)
        b = rng.uniform(0, 2 * np.pi)
        edge = (np.cos(b) * xx + np.sin(b) * yy - rng.uniform(-0.5, 0.5)) / rng.uniform(0.03, 0.2)
        light *= 1 - rng.uniform(0.3, 0.6) / (1 + np.exp(-np.clip(edge, -30, 30)))
    img *= (light * rng.uniform(0.75, 1.2))[..., None]
    if rng.random() < 0.3:  # broad specular highlight (metal is shiny; additive, so it desaturates)
        hy, hx = rng.uniform(-0.7, 0.7, 2)
        img += (rng.uniform(0.05, 0.2) * np.exp(-((yy - hy) ** 2 + (xx - hx) ** 2) / rng.uniform(0.05, 0.3)))[..., None]
    img *= (1 + rng.normal(0, 0.02, 3)).astype(np.float32)  # white balance


# --------------------------------------------------------------------------- public API


def render_sample(rng: np.random.Generator, size: int, has_rust: bool) -> tuple[np.ndarray, np.ndarray]:
    """Returns (image uint8 HxWx3 RGB, mask bool HxW). mask is all False when has_rust is False."""
    bg = _BACKGROUNDS[int(rng.integers(len(_BACKGROUNDS)))]
    img = np.ascontiguousarray(bg(rng, size), dtype=np.float32)
    # Distractors are drawn with the same odds whatever the label, so they carry no label signal.
    # They go under the rust, so the mask stays exactly the rust pixels.
    if rng.random() < 0.45:
        _paint_patch(rng, img)
    if rng.random() < 0.3:
        _grime(rng, img)
    if rng.random() < 0.35:
        _scratches(rng, img)
    if rng.random() < 0.3:
        _rivets(rng, img)
    mask = _rust(rng, img) if has_rust else np.zeros((size, size), bool)
    _lighting(rng, img)  # multiplicative/global, so rust stays rust
    img += rng.normal(0, rng.uniform(0.003, 0.015), img.shape).astype(np.float32)  # sensor noise
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), mask


def _label(seed: int, i: int) -> int:
    # Samples come in pairs (2k, 2k+1), one rusty and one clean; a coin from (seed, k) picks which
    # comes first. Balanced, shuffled, and still a function of (seed, i) only.
    k = i // 2
    first = int(np.random.default_rng([seed, k, 0x7A11]).integers(2))
    return first if i % 2 == 0 else 1 - first


def generate(n: int, size: int = 128, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """n samples, half with rust (label 1) half without (label 0), shuffled deterministically from seed.

    Sample i depends only on (seed, i): generate(10)[:4] == generate(4).
    """
    out = []
    for i in range(n):
        label = _label(seed, i)
        img, mask = render_sample(np.random.default_rng([seed, i]), size, bool(label))
        out.append((img, mask, label))
    return out
