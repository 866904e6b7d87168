"""Push a trained model folder (model, processor, metrics, model card) to the Hugging Face Hub."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import TrainingArgumentError

MODEL_CARD_FILE_NAME = "README.md"


def prepare_hub_repository(repo_id: str, private: bool = False, api: Any = None) -> None:
    """Before training (as transformers' Trainer does): check that a token is at hand and create `repo_id` (on the
    main process only; `RANK` unset or 0), so that a push that cannot succeed stops the run before any work.

    Raises `TrainingArgumentError` naming `--push_to_hub` / `--hub_model_id` when there is no token or the Hub
    refuses or cannot be reached.
    """
    import huggingface_hub

    if api is None:
        api = huggingface_hub.HfApi()
    token = getattr(api, "token", None) or huggingface_hub.get_token()
    if not token:
        raise TrainingArgumentError(
            "--push_to_hub needs a Hugging Face token: run `hf auth login` or set HF_TOKEN (or drop --push_to_hub)."
        )
    if os.environ.get("RANK", "0") != "0":
        return
    try:
        api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    except Exception as error:  # network, authentication or naming: all mean the push would fail after training
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrainingArgumentError(f"--hub_model_id {repo_id}: cannot create the repository on the Hub ({first_line}).") from None


def write_model_card(
    folder: str | Path,
    repo_id: str,
    *,
    dataset_name: str,
    base_model: str | None,
    evaluation: Any = None,
    training_args: Mapping[str, Any] | None = None,
) -> Path:
    """Render the model card of the model saved in `folder` (its config.json) into `folder/README.md`."""
    from ..modeling.configuration_unitrim import UniTriMConfig
    from .model_card import render_model_card

    folder = Path(folder)
    config = UniTriMConfig.from_pretrained(folder)
    card = render_model_card(
        config, model_id=repo_id, base_model=base_model, dataset_name=dataset_name,
        evaluation=evaluation, training_args=training_args,
    )
    path = folder / MODEL_CARD_FILE_NAME
    path.write_text(card)
    return path


def push_model_folder(
    folder: str | Path,
    repo_id: str,
    *,
    dataset_name: str,
    base_model: str | None = None,
    evaluation: Any = None,
    training_args: Mapping[str, Any] | None = None,
    private: bool = False,
    api: Any = None,
    commit_message: str = "Upload UniTriM model, processor, metrics and model card",
) -> Any:
    """
    Create `repo_id` (if needed) and upload `folder` as one commit: the `save_pretrained` files of model and
    processor, `metrics.json` and a rendered `README.md` model card.

    Args:
        folder: a folder written by `save_pretrained` (the training's `best_model/` or `final_model/`).
        repo_id: "org/name".
        dataset_name: the benchmark the model was trained and evaluated on (for the card).
        base_model: the CLIP checkpoint it started from, or None for random initialization.
        evaluation: a `RetrievalEvaluation` (or its dict) for the card's model-index; read from
            `folder/metrics.json` when None and present.
        training_args: settings listed in the card.
        api: an object with `create_repo` and `upload_folder` (default `huggingface_hub.HfApi()`).

    Returns:
        whatever `api.upload_folder` returns (a `CommitInfo` for the real Hub).
    """
    from .output_layout import METRICS_FILE

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no saved model (config.json missing); nothing to push.")
    if evaluation is None and (folder / METRICS_FILE).is_file():
        evaluation = json.loads((folder / METRICS_FILE).read_text())
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    write_model_card(
        folder, repo_id, dataset_name=dataset_name, base_model=base_model,
        evaluation=evaluation, training_args=training_args,
    )
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id, repo_type="model", folder_path=str(folder), commit_message=commit_message,
        ignore_patterns=[".tmp-*"],
    )
