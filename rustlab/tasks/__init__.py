"""Built-in tasks. A task is an object that tells the one trainer what differs between
kinds of models: the targets it needs, its loss, its metrics and its post-processing."""

from rustlab.hookspecs import hookimpl
from rustlab.tasks.base import Task
from rustlab.tasks.classification import ClassificationTask
from rustlab.tasks.segmentation import SegmentationTask

__all__ = ["Task", "ClassificationTask", "SegmentationTask"]


@hookimpl
def rustlab_register_tasks(register):
    register(ClassificationTask())
    register(SegmentationTask())
