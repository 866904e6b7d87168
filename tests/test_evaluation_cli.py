"""`unitrim-eval` answers `--help` and refuses bad arguments before torch, transformers or datasets load."""

from __future__ import annotations

import subprocess
import sys


def test_eval_help_and_argument_errors_do_not_import_torch() -> None:
    script = (
        "import sys\n"
        "from unitrim_hf.evaluation import cli\n"
        "for argv in (['--help'], ['--model', 'm', '--benchmark', 'nope', '--data_dir', 'd']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == (0 if argv == ['--help'] else 2), (argv, stop.code)\n"
        "    else:\n"
        "        raise AssertionError(f'{argv} did not exit')\n"
        "print(sorted(name for name in ('torch', 'transformers', 'datasets') if name in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "[]"
    assert "--benchmark: invalid choice: 'nope'" in completed.stderr


def test_evaluation_names_load_on_first_use() -> None:
    import unitrim_hf.evaluation as evaluation

    assert callable(evaluation.text_to_video_metrics) and "evaluate_retrieval" in dir(evaluation)


def test_eval_reports_and_leaves_out_missing_and_corrupt_videos(tmp_path, capsys) -> None:
    import json

    import torch

    from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
    from unitrim_hf.data import write_synthetic_benchmark
    from unitrim_hf.evaluation import cli

    config = UniTriMConfig.from_preset("unitrim-tiny")
    torch.manual_seed(0)
    UniTriMModel(config).save_pretrained(tmp_path / "model")
    UniTriMProcessor.for_model_config(config, frame_sampler_config={"num_frames": 4}).save_pretrained(tmp_path / "model")
    data = write_synthetic_benchmark(tmp_path / "data", num_train=4, num_test=6, num_frames=8, frame_size=32)
    videos = data / "videos" / "all"
    (videos / "video5.mp4").unlink()
    (videos / "video6.mp4").write_bytes(b"\x1aE\xdf\xa3 a truncated matroska header")
    cli.main(["--model", str(tmp_path / "model"), "--benchmark", "synthetic", "--data_dir", str(data),
              "--output_dir", str(tmp_path / "eval"), "--no_progress", "--device", "cpu"])
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_videos"] == 4 and metrics["skipped_videos"] == ["video6"], metrics.keys()
