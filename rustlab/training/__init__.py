"""The trainer's pieces, public so that `rustlab train`, the benchmarks and the experiments
compose the same code: data (``prepare_data``, ``build_train_loader``), the model
(``build_model``, ``make_optimizer``, ``make_weight_average``), one step (``TrainStep``) and one epoch
(``train_one_epoch``), and the run folder (``RunFolder``). ``rustlab.training.trainer.train`` composes
them; evaluation passes live in ``rustlab.inference.evaluate``. Also owned here: the resumable
state (``state``), torchrun (``distributed``) and the curves' plot (``plots``). May import the core
and rustlab.inference; never the CLI, the GUI, the audit or the benchmarks."""

from rustlab.training.data import PreparedData, TrainLoader, build_train_loader, prepare_data
from rustlab.training.ema import WeightAverage, make_weight_average
from rustlab.training.model import build_model, input_preprocessing, make_grad_scaler, make_optimizer
from rustlab.training.run_folder import RunFolder
from rustlab.training.step import TrainStep, fit_closed_form, is_closed_form, train_one_epoch

__all__ = ["PreparedData", "TrainLoader", "build_train_loader", "prepare_data", "build_model",
           "input_preprocessing", "make_grad_scaler", "make_optimizer", "RunFolder", "TrainStep",
           "train_one_epoch", "fit_closed_form", "is_closed_form", "WeightAverage", "make_weight_average"]
