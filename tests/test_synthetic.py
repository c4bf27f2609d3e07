"""Tests for the embedded synthetic corrosion data set (rustlab.data.synthetic)."""

import numpy as np
import pytest

from rustlab.data.synthetic import MAX_RUST_FRAC, MIN_RUST_FRAC, generate, render_sample

SIZE = 64  # small keeps the suite fast; the generator is size-agnostic


@pytest.fixture(scope="module")
def samples():
    return generate(40, size=SIZE, seed=3)


def test_shapes_and_dtypes(samples):
    assert len(samples) == 40
    for img, mask, label in samples:
        assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
        assert mask.shape == (SIZE, SIZE) and mask.dtype == np.bool_
        assert label in (0, 1) and isinstance(label, int)


def test_labels_balanced_and_shuffled(samples):
    labels = [label for _, _, label in samples]
    assert sum(labels) == len(labels) // 2
    # Not a fixed alternating pattern: which member of each pair is rusty depends on the seed.
    assert labels != [i % 2 for i in range(40)] and labels != [1 - i % 2 for i in range(40)]


def test_masks_match_labels_and_area_bounds(samples):
    for _, mask, label in samples:
        if label:
            assert MIN_RUST_FRAC <= mask.mean() <= MAX_RUST_FRAC
        else:
            assert not mask.any()


def test_render_sample_no_rust_mask_empty():
    img, mask = render_sample(np.random.default_rng(0), 48, has_rust=False)
    assert img.shape == (48, 48, 3) and not mask.any()
    img, mask = render_sample(np.random.default_rng(0), 48, has_rust=True)
    assert mask.any()


def test_deterministic(samples):
    again = generate(40, size=SIZE, seed=3)
    for (a_img, a_mask, a_lab), (b_img, b_mask, b_lab) in zip(samples, again):
        assert a_lab == b_lab
        np.testing.assert_array_equal(a_img, b_img)
        np.testing.assert_array_equal(a_mask, b_mask)


def test_sample_independent_of_n(samples):
    # Sample i depends only on (seed, i), so a shorter run is a prefix of a longer one.
    short = generate(7, size=SIZE, seed=3)
    for (a_img, a_mask, a_lab), (b_img, b_mask, b_lab) in zip(short, samples[:7]):
        assert a_lab == b_lab
        np.testing.assert_array_equal(a_img, b_img)
        np.testing.assert_array_equal(a_mask, b_mask)


def test_different_seeds_differ(samples):
    other = generate(40, size=SIZE, seed=4)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(samples, other))
    assert sum(np.array_equal(a[0], b[0]) for a, b in zip(samples, other)) == 0


def test_rust_is_more_orange_than_background(samples):
    rb_rust, rb_bg = [], []
    for img, mask, label in samples:
        if label:
            rb = img[..., 0].astype(np.float32) - img[..., 2]
            rb_rust.append(rb[mask].mean())
            rb_bg.append(rb[~mask].mean())
    assert np.mean(rb_rust) > np.mean(rb_bg) + 20


def _orange_fraction(img):
    """Fraction of pixels a naive colour rule would call rust (orange-brown and saturated)."""
    x = img.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return ((r > g) & (g > b) & (r - b > 0.45 * r) & (r > 40)).mean()


def test_colour_alone_is_not_enough(samples):
    # Some clean images must contain sizeable rust-coloured (painted) regions, otherwise
    # "any orange pixels?" would solve the task and models would never learn texture.
    clean = [_orange_fraction(img) for img, _, label in samples if label == 0]
    assert np.mean(np.array(clean) > MIN_RUST_FRAC) >= 0.1
