"""Training pipelines: data preparation, trainer, metrics, checkpoints, data-parallel helpers and reports."""
from pyg_plstm.train.classical import fit_classical
from pyg_plstm.train.compare import compare_models, model_config
from pyg_plstm.train.data import PreparedData, prepare_data
from pyg_plstm.train.inference import Predictor
from pyg_plstm.train.metrics import Task, check_labels, evaluate, masked_loss
from pyg_plstm.train.report import write_report
from pyg_plstm.train.run_folder import load_runs
from pyg_plstm.train.trainer import RunResult, TrainConfig, evaluate_split, fit, load_model, predict, train_epoch

__all__ = [
    "PreparedData",
    "Predictor",
    "RunResult",
    "Task",
    "TrainConfig",
    "check_labels",
    "compare_models",
    "evaluate",
    "evaluate_split",
    "fit",
    "fit_classical",
    "load_model",
    "load_runs",
    "masked_loss",
    "model_config",
    "predict",
    "prepare_data",
    "train_epoch",
    "write_report",
]
