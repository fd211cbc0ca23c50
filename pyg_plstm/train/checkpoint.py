r"""Checkpoints that load with ``torch.load(weights_only=True)`` and exact RNG state capture.

Everything but tensors is stored as plain dicts, lists, strings and numbers,
so checkpoints load safely without unpickling arbitrary objects.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from pyg_plstm.checks import check_input_file
from pyg_plstm.models import CONFIGS
from pyg_plstm.nn.conv import PREVIOUS_NORM_EPS
from pyg_plstm.train.files import atomic_open

__all__ = ["FORMAT_VERSION", "save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state", "check_config"]

#: Format 4: pLSTM's block default changed (``block``, ``"PD"`` -> ``"P"``); a format-3 checkpoint that does not
#: name it was written with ``"PD"`` and loads with it. Format 3: the norm offset default changed (``norm_eps``,
#: 1e-2 -> 1); a format-2 checkpoint that does not name it was written with 1e-2. Format 2: ``norm`` and
#: ``local`` changed; a format-1 checkpoint was written when the ``"previous"`` config's values were the
#: defaults, and loads with them.
FORMAT_VERSION = 4
#: The pLSTM settings that were defaults when a checkpoint of each older format was written.
_FORMER_PLSTM_DEFAULTS: dict[int, dict[str, Any]] = {
    1: CONFIGS["previous"], 2: {**CONFIGS["hybrid-pd"], "norm_eps": PREVIOUS_NORM_EPS}, 3: CONFIGS["hybrid-pd"]}


def rng_state() -> dict[str, Any]:
    """The state of the python, numpy and torch (CPU and CUDA) random generators."""
    version, mt, gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(mt), gauss],
        "numpy": [np_kind, torch.from_numpy(np_keys.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore a state returned by :func:`rng_state`."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_kind, np_keys.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> None:
    """Write atomically, so an interrupted save never leaves a truncated checkpoint behind."""
    with atomic_open(path) as handle:
        torch.save({"format": FORMAT_VERSION, **payload}, handle)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (safe ``weights_only`` loading)."""
    path = check_input_file(path, "checkpoint")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt / foreign files
        raise ValueError(f"{path} is not a readable pyg-plstm checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") not in (*_FORMER_PLSTM_DEFAULTS, FORMAT_VERSION):
        raise ValueError(f"{path} is not a pyg-plstm checkpoint (format {FORMAT_VERSION})")
    model_config = ckpt.get("model_config")
    if ckpt["format"] in _FORMER_PLSTM_DEFAULTS and isinstance(model_config, dict) \
            and model_config.get("name") == "plstm":
        ckpt["model_config"] = {**_FORMER_PLSTM_DEFAULTS[ckpt["format"]], **model_config}
    return ckpt


def check_config(saved: Mapping[str, Any], current: Mapping[str, Any], source: str,
                 ignore: Iterable[str] = ()) -> None:
    """Raise if ``current`` differs from the ``saved`` config, naming every mismatching setting."""
    def show(config: Mapping[str, Any], key: str) -> str:
        return repr(config[key]) if key in config else "<unset>"

    keys = sorted((set(saved) | set(current)) - set(ignore))
    diffs = [f"{k}: checkpoint has {show(saved, k)}, this run has {show(current, k)}"
             for k in keys if show(saved, k) != show(current, k)]
    if diffs:
        raise ValueError(f"{source} was made with different settings:\n  " + "\n  ".join(diffs))
