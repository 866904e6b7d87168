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
