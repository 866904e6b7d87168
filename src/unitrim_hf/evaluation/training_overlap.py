"""Which evaluation videos a model was trained on: content fingerprints saved with the model, checked on evaluation.

Training writes `training_data.json` (the benchmark's name and one fingerprint per training video) into the
model folders it saves. Evaluating such a model on a split that shares videos with it (the same files under any
name or folder) logs a warning with the count: its retrieval numbers would be inflated.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Iterable

logger = logging.getLogger(__name__)

TRAINING_DATA_FILE = "training_data.json"
# Size plus the first bytes: cheap for tens of thousands of videos, and distinct for distinct encoded files.
FINGERPRINT_HEAD_BYTES = 1 << 16


def video_fingerprint(path: str | Path) -> str | None:
    """A short content fingerprint of a video file (size and SHA-256 of its first 64 KiB); None when unreadable."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(FINGERPRINT_HEAD_BYTES)
        size = Path(path).stat().st_size
    except OSError:
        return None
    return hashlib.sha256(size.to_bytes(8, "little") + head).hexdigest()[:32]


def fingerprints(video_paths: Iterable[str]) -> set[str]:
    """Fingerprints of the readable files among `video_paths` (each once)."""
    found = {video_fingerprint(path) for path in dict.fromkeys(video_paths)}
    found.discard(None)
    return found  # type: ignore[return-value]


def training_data_json(dataset_name: str, training_fingerprints: set[str]) -> str:
    """The text of `training_data.json`: the benchmark's name and the training videos' fingerprints."""
    return json.dumps({"dataset": dataset_name, "num_videos": len(training_fingerprints),
                       "video_fingerprints": sorted(training_fingerprints)})


class EvaluationVideos:
    """The video files of an evaluation split; their fingerprints are computed once, when first needed, however
    many training records they are checked against."""

    def __init__(self, video_paths: Iterable[str]) -> None:
        self.video_paths = list(video_paths)
        self._fingerprints: set[str] | None = None

    @property
    def fingerprints(self) -> set[str]:
        if self._fingerprints is None:
            self._fingerprints = fingerprints(self.video_paths)
        return self._fingerprints


def _evaluation_videos(videos: EvaluationVideos | Iterable[str]) -> EvaluationVideos:
    return videos if isinstance(videos, EvaluationVideos) else EvaluationVideos(videos)


def count_shared_videos(training_fingerprints: set[str], videos: EvaluationVideos | Iterable[str]) -> tuple[int, int]:
    """(evaluation videos among the training videos, evaluation videos); `videos`: paths or `EvaluationVideos`."""
    evaluated = _evaluation_videos(videos).fingerprints
    return len(evaluated & training_fingerprints), len(evaluated)


def warn_if_trained_on(training_fingerprints: set[str], videos: EvaluationVideos | Iterable[str], what: str) -> int:
    """Log a warning when some of `videos` (paths or `EvaluationVideos`) are training videos of `what` (a model);
    returns how many."""
    shared, total = count_shared_videos(training_fingerprints, videos)
    if shared:
        logger.warning(
            "%d of the %d evaluation videos are training videos of %s: the retrieval numbers below measure "
            "memorisation, not generalisation.", shared, total, what,
        )
    return shared


def warn_if_model_trained_on(model_folder: str | Path, videos: EvaluationVideos | Iterable[str]) -> int:
    """`warn_if_trained_on` with the `training_data.json` saved beside a model (nothing to check, and nothing
    fingerprinted, without it)."""
    path = Path(model_folder) / TRAINING_DATA_FILE
    if not path.is_file():
        return 0
    recorded = json.loads(path.read_text())
    return warn_if_trained_on(set(recorded.get("video_fingerprints", [])), videos, f"the model in {model_folder}")
