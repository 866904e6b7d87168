"""Evaluating a model on videos it was trained on warns, whatever their names or folders."""

from __future__ import annotations

import logging
import shutil

from unitrim_hf.data import write_synthetic_benchmark
from unitrim_hf.evaluation.training_overlap import (
    fingerprints,
    training_data_json,
    warn_if_model_trained_on,
)


def test_training_videos_under_other_names_are_recognised(tmp_path, caplog) -> None:
    root = write_synthetic_benchmark(tmp_path / "synthetic", num_train=6, num_test=3, seed=0)
    videos = sorted((root / "videos" / "all").glob("*.mp4"), key=lambda path: int(path.stem.removeprefix("video")))
    train, test = [str(path) for path in videos[:6]], [str(path) for path in videos[6:]]
    model = tmp_path / "model"
    model.mkdir()
    (model / "training_data.json").write_text(training_data_json("synthetic", fingerprints(train)))

    with caplog.at_level(logging.WARNING):
        assert warn_if_model_trained_on(model, test) == 0
    assert caplog.text == ""

    copies = tmp_path / "elsewhere"
    copies.mkdir()
    renamed = [shutil.copy(path, copies / f"clip_{number}.mp4") for number, path in enumerate(train[:2])]
    with caplog.at_level(logging.WARNING):
        assert warn_if_model_trained_on(model, [*test, *map(str, renamed)]) == 2
    assert "2 of the 5 evaluation videos are training videos" in caplog.text
    # A model saved without the record (e.g. from another library) is not checked.
    assert warn_if_model_trained_on(tmp_path, train) == 0
