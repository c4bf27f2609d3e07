"""Built-in tasks. A task is an object that tells the one trainer what differs between
kinds of models: the targets it needs, its loss, its metrics and its post-processing
(the contract is ``rustlab.tasks.base.Task``), with the metrics and calibration they score by.
Part of the core: it may import the core only (tests/test_import_graph.py)."""

from rustlab.hookspecs import hookimpl
from rustlab.tasks.base import Meter, Task
from rustlab.tasks.classification import ClassificationTask
from rustlab.tasks.segmentation import SegmentationTask

__all__ = ["Meter", "Task", "ClassificationTask", "SegmentationTask", "BUILTIN_TASKS"]

# Found without loading any plugin (plugins may import torch; the ONNX predictor must not).
BUILTIN_TASKS = {task.name: task for task in (ClassificationTask(), SegmentationTask())}


@hookimpl
def rustlab_register_tasks(register):
    for task in BUILTIN_TASKS.values():
        register(task)
