"""Training pipelines: data preparation, trainer, metrics, checkpoints, data-parallel helpers and reports."""
from pyg_plstm.train.compare import compare_models, model_config
from pyg_plstm.train.data import PreparedData, prepare_data
from pyg_plstm.train.metrics import Task, evaluate, masked_loss
from pyg_plstm.train.report import write_report
from pyg_plstm.train.trainer import RunResult, TrainConfig, fit, load_model, predict

__all__ = [
    "PreparedData",
    "RunResult",
    "Task",
    "TrainConfig",
    "compare_models",
    "evaluate",
    "fit",
    "load_model",
    "masked_loss",
    "model_config",
    "predict",
    "prepare_data",
    "write_report",
]
