"""The image-level rust call's defaults, shared by the segmentation task and its torch-side metrics."""

PIXEL_THRESHOLD = 0.5  # a pixel is rust when its probability is at least this
# Before calibration (during training, or when validation holds one class only): rust when
# at least 0.5% of the pixels are rust, i.e. a 11x11 patch at 160 px.
DEFAULT_AREA_THRESHOLD = 0.005
DEFAULT_SLOPE = 2.0  # logistic slope per decade of rust area, for the confidence before calibration
AREA_FLOOR = 1e-4  # log10(area + floor): an empty mask maps to -4 instead of -inf

# A mask pixel of this value: "this photo holds rust, nobody drew where" (a rust photo of an
# --extra-data source without masks). It never reaches the pixel metrics; the loss asks only
# that the photo's top WEAK_TOP_SHARE of pixels be rust, so its area passes the image-level call.
WEAK_RUST = 2
WEAK_TOP_SHARE = 0.02
