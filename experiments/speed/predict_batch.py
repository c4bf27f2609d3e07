"""Predictor.predict_many throughput by batch size (CNN at 96 px, UNet at 256 px), through the same
function as `rustlab bench speed` (rustlab.bench.speed_predict.measure_predictor).

Usage: python experiments/speed/predict_batch.py [DATA] > experiments/speed/predict_batch.txt
"""

import sys
import tempfile

from rustlab.bench.speed_predict import measure_predictor, sample_jpegs
from rustlab.bench.timing import CpuMeter

data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/corrosion-cls"
with tempfile.TemporaryDirectory() as tmp:
    images = sample_jpegs(data, tmp, count=32)
    for model in ("cnn", "unet"):
        for batch in (1, 4, 16):
            meter = CpuMeter()
            result = measure_predictor(model, images, tmp, n=1, warmup=1, batch_size=batch)
            print(f"{model} ({result.image_size} px) batch {batch:>2}: {result.folder_images_per_s:6.1f} images/s "
                  f"over {result.folder_images} JPEGs (other processes: {meter.others_cores()} cores)", flush=True)
