"""Evaluating a model on videos it was trained on warns, whatever their names or folders."""

from __future__ import annotations

import logging
import shutil

import pytest

from unitrim_hf.data import write_synthetic_benchmark
from unitrim_hf.evaluation.training_overlap import (
    fingerprints,
    training_data_json,
    warn_if_model_trained_on,
)


def test_training_videos_under_other_names_are_recognized(tmp_path, caplog) -> None:
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


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_training_from_a_saved_model_fingerprints_each_evaluation_video_once(tmp_path, monkeypatch, caplog) -> None:
    """A run continued from a model with a training record checks the evaluation split against this run's and the
    model's training videos, reading each evaluation video's fingerprint once."""
    from collections import Counter

    from unitrim_hf.evaluation import training_overlap
    from unitrim_hf.training import cli

    run = ["--data_dir", str(tmp_path / "data"), "--preset", "clip4clip-meanp-tiny", "--synthetic_num_train", "8",
           "--synthetic_num_test", "4", "--num_frames", "2", "--max_length", "16", "--per_device_train_batch_size",
           "4", "--report_to", "none", "--do_eval", "false", "--max_steps", "1"]
    first = cli.run(["--output_dir", str(tmp_path / "first"), *run])
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    reads: Counter[str] = Counter()
    original = training_overlap.video_fingerprint

    def counting_fingerprint(path):
        reads[str(path)] += 1
        return original(path)

    monkeypatch.setattr(training_overlap, "video_fingerprint", counting_fingerprint)
    with caplog.at_level(logging.WARNING):
        cli.run(["--output_dir", str(tmp_path / "second"), *run, "--model_name_or_path", str(first.final_model_dir),
                 "--eval_split", "train"])
    # The evaluation split is the training split here: both checks warn. Each file is read twice, once as a
    # training video (the run's record) and once as an evaluation video (for both checks).
    assert "8 of the 8 evaluation videos are training videos of this run" in caplog.text
    assert f"8 of the 8 evaluation videos are training videos of the model in {first.final_model_dir}" in caplog.text
    assert len(reads) == 8 and set(reads.values()) == {2}, reads
