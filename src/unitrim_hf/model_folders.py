"""One check, shared by every tool, for model arguments that name a local folder which does not exist.

`from_pretrained` takes a folder or a Hub id, and a mistyped folder (`runs/tiny/bset`) reaches the Hub as an id,
which reports a Hub problem ("Repo id must be in the form ...", "couldn't connect to huggingface.co") in a long
traceback. Every tool (`unitrim-eval --model`, `unitrim index/search --model`, `train.py --model_name_or_path`,
`--clip_model_name_or_path`, `--keyframe_features`, `unitrim-compare --clip_model_name_or_path`) calls
`check_model_folder` (or `exit_if_missing_model_folder`) before it loads torch, so such an argument is one line:
`no such model folder: PATH`. Light: imports nothing but the standard library and the package's errors.

The same tools load the model with `load_model_strictly`: a checkpoint with missing, mis-shaped or unexpected
tensors is refused, naming them, where `from_pretrained` would initialize them and carry on.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from .errors import CheckpointMismatchError, MissingModelFolderError

Model = TypeVar("Model")
# Tensor names listed in one message before "and N more".
MAX_NAMED_TENSORS = 5

# What the Hub accepts as a repository id: `name` or `namespace/name`, letters, digits, `-`, `_`, `.` (at most 96 each).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
# The exit status of a command-line tool for a usage error (argparse's).
USAGE_ERROR_STATUS = 2


def looks_like_local_path(name: str | os.PathLike) -> bool:
    """Whether a model argument can only mean a local folder.

    True when it starts with `.`, `~` or a path separator, holds a backslash or more than one `/`, ends with a
    separator, cannot be a Hub id at all, or when its first part exists here (`outputs/best_modl` where
    `outputs/` exists). A Hub-shaped id (`openai/clip-vit-base-patch32`, `gpt2`) whose first part does not exist
    here is not.
    """
    text = os.fspath(name)
    if not text:
        return False
    if text[0] in ".~/" or text[0] == os.sep or "\\" in text or text.count("/") > 1 or text.endswith(("/", os.sep)):
        return True
    if not _HUB_ID.match(text):
        return True
    first = text.split("/", 1)[0]
    return "/" in text and Path(first).exists()


def missing_model_folder(name: str | os.PathLike | None) -> str | None:
    """`name` when it looks like a local folder (`looks_like_local_path`) and no such folder exists, else None."""
    if name is None:
        return None
    text = os.fspath(name)
    if Path(text).expanduser().is_dir() or not looks_like_local_path(text):
        return None
    return text


def check_model_folder(name: str | os.PathLike | None) -> None:
    """Raise [`MissingModelFolderError`] ("no such model folder: PATH") when `name` looks like a local folder that
    does not exist; Hub ids, existing folders and None pass."""
    missing = missing_model_folder(name)
    if missing is not None:
        raise MissingModelFolderError(missing)


def exit_if_missing_model_folder(program: str, names: Iterable[str | os.PathLike | None]) -> None:
    """For a command-line tool: print `PROGRAM: error: no such model folder: PATH` (one line on stderr) and exit with
    status 2 for the first of `names` that looks like a local folder that does not exist."""
    for name in names:
        try:
            check_model_folder(name)
        except MissingModelFolderError as error:
            print(f"{program}: error: {error}", file=sys.stderr)
            raise SystemExit(USAGE_ERROR_STATUS) from None


def load_model_strictly(model_class: type[Model], name: str | os.PathLike, **kwargs: Any) -> Model:
    """
    `model_class.from_pretrained(name, **kwargs)` for the library's tools: the checkpoint must hold every tensor
    of the model its configuration describes, each of the model's shape, and nothing else.

    transformers initializes missing tensors (and, with `ignore_mismatched_sizes=True`, mis-shaped ones) and only
    logs a load report; an index, a search or an evaluation would then run with random weights. Here the load
    report is not logged and such a checkpoint raises [`CheckpointMismatchError`] naming the tensors, as does a
    folder whose `config.json` contradicts its weights (`UniTriMModel.from_pretrained` checks that first).
    """
    report_logger = logging.getLogger("transformers.modeling_utils")
    # A filter, not a higher level: transformers runs (and prints) its tensor-parallel plan check when that
    # logger's level is WARNING or more.
    errors_only = _ErrorsOnly()
    report_logger.addFilter(errors_only)
    try:
        model, info = model_class.from_pretrained(name, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs)
    except pickle.UnpicklingError:
        raise CheckpointMismatchError(
            name, "its weights are a pickle (.bin) that torch.load refuses to load safely (weights_only=True): "
            "only load it if you trust it, and save it again as safetensors"
        ) from None
    except (ValueError, OSError) as error:  # a damaged header or config, unreadable files
        field, detail = getattr(error, "field", None), getattr(error, "detail", None)
        if field is None or detail is None:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise CheckpointMismatchError(name, first_line) from None
        raise CheckpointMismatchError(name, f"its config.json `{field}` {detail}") from None
    finally:
        report_logger.removeFilter(errors_only)
    problems = loading_problems(info) or non_finite_tensors(model)
    if problems:
        raise CheckpointMismatchError(name, problems)
    return model


def non_finite_tensors(model: Any) -> str | None:
    """One line naming the floating-point tensors of `model` that hold NaN or infinity, or None. Such weights give
    NaN scores: an index would store NaN vectors (which LanceDB refuses after the rows were replaced) and a
    search would rank nothing."""
    import torch

    names = [name for name, tensor in model.state_dict().items()
             if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    return f"its weights hold NaN or infinite values in {_named(names)}" if names else None


class _ErrorsOnly(logging.Filter):
    """Lets only errors through (hides transformers' load report, which this loader turns into its own error)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def loading_problems(info: dict[str, Any]) -> str | None:
    """One line naming the missing, mis-shaped and unexpected tensors of transformers' loading info
    (`output_loading_info=True`), or None when the checkpoint held exactly the model's tensors."""
    problems = []
    if info.get("missing_keys"):
        problems.append(f"its weights lack {_named(info['missing_keys'])}")
    for tensor, checkpoint_shape, model_shape in sorted(info.get("mismatched_keys") or (), key=str)[:MAX_NAMED_TENSORS]:
        problems.append(
            f"its weights hold `{tensor}` of shape {list(checkpoint_shape)} where the model has {list(model_shape)}"
        )
    extra = len(info.get("mismatched_keys") or ()) - MAX_NAMED_TENSORS
    if extra > 0:
        problems.append(f"{extra} more tensors of another shape")
    if info.get("unexpected_keys"):
        problems.append(f"its weights hold {_named(info['unexpected_keys'])}, which the model does not have")
    problems += [" ".join(str(message).split()) for message in info.get("error_msgs") or ()]
    return "; ".join(problems) or None


def _named(names: Iterable[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(f"`{name}`" for name in ordered[:MAX_NAMED_TENSORS])
    return shown + (f" and {len(ordered) - MAX_NAMED_TENSORS} more" if len(ordered) > MAX_NAMED_TENSORS else "")


__all__ = [
    "check_model_folder",
    "exit_if_missing_model_folder",
    "load_model_strictly",
    "loading_problems",
    "looks_like_local_path",
    "missing_model_folder",
]
