"""Training pipelines: trainer, metrics, checkpoints, data-parallel helpers and reports."""
from pyg_plstm.train.metrics import Task, evaluate, masked_loss
from pyg_plstm.train.trainer import RunResult, TrainConfig, fit, load_model, predict

__all__ = ["Task", "evaluate", "masked_loss", "RunResult", "TrainConfig", "fit", "load_model", "predict"]
