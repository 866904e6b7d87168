"""The comparison harness: recipes, statistics, diagnostics and a tiny end-to-end comparison."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from unitrim_hf.comparison import RunResult, load_recipe, paired_differences, summarize_runs
from unitrim_hf.comparison.cli import run as run_compare
from unitrim_hf.comparison.diagnostics import mean_pairwise_cosine, plateau_statistics
from unitrim_hf.comparison.recipes import RecipeError, recipe_from_dict
from unitrim_hf.comparison.report import comparison_report, render_markdown
from unitrim_hf.comparison.runs import build_run_specs, finished_run
from unitrim_hf.training import parse_arguments

REPOSITORY = Path(__file__).resolve().parents[1]
CONFIGS = REPOSITORY / "configs"


def _result(variant: str, seed: int, text_video: float, text_image: float) -> RunResult:
    metrics = {
        "text_to_video": {"R@1": text_video, "R@5": 2 * text_video, "Rsum": 4 * text_video},
        "text_to_image": {"R@1": text_image, "R@5": 2 * text_image, "Rsum": 4 * text_image},
    }
    return RunResult(variant, seed, [], metrics)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda path: path.name)
def test_every_shipped_config_parses(path: Path) -> None:
    if path.name in ("msrvtt.yaml",) or path.name.startswith("clip_"):
        parse_arguments(["--config", str(path), "--data_dir", str(path.parent)])  # a train.py config file
        return
    recipe = load_recipe(path)
    assert len(recipe.variants) >= 2 and recipe.seeds
    for spec in build_run_specs(recipe, "/tmp/unused", ["--data_dir", "/tmp/unused-data"])[: len(recipe.variants)]:
        model_args, _, _ = parse_arguments(spec.argv)
        from unitrim_hf import UniTriMConfig

        UniTriMConfig.from_preset(model_args.preset, **model_args.overrides())  # every variant is a valid config


def test_table8_grid_expands_and_ranks_by_text_to_image_rsum() -> None:
    recipe = load_recipe(CONFIGS / "table8_loss_weights.yaml")
    assert len(recipe.variants) == 9
    assert recipe.rank_by == "text_to_image/Rsum"
    names = [variant.name for variant in recipe.variants]
    assert recipe.reference in names and "rec=0 orth=0" in names
    zero = next(variant for variant in recipe.variants if variant.name == "rec=0 orth=1")
    assert zero.config_overrides == {"reconstruction_loss_weight": 0.0, "orthogonality_loss_weight": 1.0}
    default = next(variant for variant in recipe.variants if variant.name == recipe.reference)
    # The grid's default cell is the plain preset: the same train.py arguments, so its runs are shared.
    assert default.train_arguments("-tiny") == ["--preset", "unitrim-tiny"]
    assert zero.train_arguments("-tiny")[-1] == '{"orthogonality_loss_weight": 1.0, "reconstruction_loss_weight": 0.0}'


def test_variants_share_the_budget_and_differ_only_in_the_model() -> None:
    with pytest.raises(RecipeError, match="may only set"):
        recipe_from_dict({"variants": {"a": {"preset": "unitrim", "learning_rate": 1e-3}}})
    with pytest.raises(RecipeError, match="may not set"):
        recipe_from_dict({"variants": {"a": "unitrim"}, "training": {"seed": 3}})
    with pytest.raises(RecipeError, match="unknown train.py arguments"):
        recipe_from_dict({"variants": {"a": "unitrim"}, "training": {"epochs": 3}})
    with pytest.raises(RecipeError, match="reference"):
        recipe_from_dict({"variants": {"a": "unitrim"}, "reference": "b"})
    recipe = recipe_from_dict({"variants": {"a": "unitrim", "b": "xclip"}, "training": {"num_train_epochs": 2},
                               "preset_suffix": "-tiny", "seeds": [4]})
    first, second = build_run_specs(recipe, "/tmp/out")
    strip = lambda argv: [item for item in argv if item not in ("unitrim-tiny", "xclip-tiny") and "/tmp/out" not in item]
    assert strip(first.argv) == strip(second.argv)
    assert first.argv[first.argv.index("--preset") + 1] == "unitrim-tiny"
    assert first.argv[first.argv.index("--seed") + 1] == "4"


def test_summary_and_paired_differences() -> None:
    results = [
        _result("ref", 1, 10, 20), _result("ref", 2, 30, 20),
        _result("other", 1, 12, 18), _result("other", 2, 29, 20),
    ]
    summary = summarize_runs(results, ["text_to_video/R@1"])
    assert summary["ref"]["text_to_video/R@1"]["mean"] == 20
    assert summary["ref"]["text_to_video/R@1"]["std"] == pytest.approx(math.sqrt(200))
    assert summary["other"]["text_to_video/R@1"]["per_seed"] == {1: 12, 2: 29}
    paired = paired_differences(results, "ref", ["text_to_video/R@1", "text_to_image/R@1"])
    assert list(paired) == ["other"]
    assert paired["other"]["text_to_video/R@1"]["per_seed"] == {1: 2, 2: -1}
    assert (paired["other"]["text_to_video/R@1"]["wins"], paired["other"]["text_to_video/R@1"]["losses"]) == (1, 1)
    assert paired["other"]["text_to_image/R@1"]["mean"] == -1
    assert paired["other"]["text_to_image/R@1"]["ties"] == 1


def test_plateau_and_spread_diagnostics() -> None:
    chance = math.log(8)
    log = [{"step": 1, "train/loss_text_video": chance}, {"step": 2, "train/loss_text_video": chance + 0.01},
           {"step": 3, "train/loss_text_video": chance / 2}, {"step": 4, "train/loss_text_video": 0.5}]
    statistics = plateau_statistics(log, batch_size=8)
    assert statistics == {"plateau_fraction": 0.5, "steps_to_leave_plateau": 3.0}
    collapsed = torch.ones(5, 4) * torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert mean_pairwise_cosine(collapsed) == pytest.approx(1.0)
    assert mean_pairwise_cosine(torch.eye(4)) == pytest.approx(0.0)


def test_compare_runs_presets_over_seeds_end_to_end(tmp_path, capsys) -> None:
    """What users run: the console script on a tiny synthetic benchmark, two presets x two seeds, JSON written;
    a second call reuses the finished runs. Every run trains in a process of its own: none here."""
    argv = [
        "--presets", "unitrim-tiny", "xclip-tiny", "--seeds", "1", "2", "--data_dir", str(tmp_path / "data"),
        "--output_dir", str(tmp_path / "runs"), "--json", str(tmp_path / "report.json"), "--",
        "--synthetic_num_train", "16", "--synthetic_num_test", "8", "--num_frames", "2", "--max_length", "16",
        "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8", "--max_steps", "2",
    ]
    report = run_compare(["--postprocessing", "dsl", "qb_norm", "sk_norm", *argv])
    printed = capsys.readouterr().out
    from accelerate.state import PartialState

    assert not PartialState._shared_state, "a comparison run left accelerate state in the calling process"
    assert [(run["variant"], run["seed"]) for run in report["runs"]] == [
        ("unitrim-tiny", 1), ("xclip-tiny", 1), ("unitrim-tiny", 2), ("xclip-tiny", 2)
    ]
    for run in report["runs"]:
        for direction in ("text_to_video", "video_to_text", "text_to_image"):
            assert 0 <= run["metrics"][direction]["R@1"] <= 100
        assert run["global_step"] == 2
        assert 0 <= run["diagnostics"]["plateau_fraction"] <= 1
    assert math.isfinite(report["runs"][0]["diagnostics"]["combined_cosine_last"])  # unitrim has a combined t
    for run in report["runs"]:  # each run's final evaluation reported the post-processing beside the raw numbers
        assert set(run["postprocessed_metrics"]) == {"dsl", "qb_norm", "sk_norm"}
        assert set(run["postprocessed_metrics"]["qb_norm"]) == {"text_to_video", "text_to_image"}
        assert 0 <= run["postprocessed_metrics"]["sk_norm"]["text_to_video"]["R@1"] <= 100
    assert "T→V R@1 DSL" in printed and "T→I R@1 SK-norm" in printed
    assert set(report["paired"]) == {"xclip-tiny"}
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["summary"]["unitrim-tiny"]["text_to_video/R@1"]["per_seed"].keys() == {"1", "2"}
    (run_file,) = (tmp_path / "runs").glob("unitrim-tiny-seed1-*/comparison_run.json")
    seed_one = run_file.stat().st_mtime
    again = run_compare(argv)  # without post-processing: the runs that reported it are reused
    assert run_file.stat().st_mtime == seed_one
    assert again["runs"][0]["metrics"] == report["runs"][0]["metrics"]


def test_postprocessed_columns_stand_beside_the_raw_ones() -> None:
    recipe = recipe_from_dict({"variants": {"a": "unitrim", "b": "xclip"},
                               "postprocessing": ["dsl", {"qb_norm": {"bank_size": 100}}]})
    assert recipe.postprocessing == {"dsl": {"temperature": 1.0},
                                     "qb_norm": {"beta": 20.0, "k": 1, "dynamic": True, "bank_size": 100}}
    results = []
    for variant, seed, raw in (("a", 1, 10.0), ("a", 2, 20.0), ("b", 1, 30.0), ("b", 2, 30.0)):
        result = _result(variant, seed, raw, raw / 2)
        result.metrics["video_to_text"] = {"R@1": raw + 1}
        result.postprocessed_metrics = {
            "dsl": {"text_to_video": {"R@1": raw + 5}, "video_to_text": {"R@1": raw + 6}, "text_to_image": {"R@1": raw}},
            "qb_norm": {"text_to_video": {"R@1": raw + 2}, "text_to_image": {"R@1": raw + 3}},
        }
        results.append(result)
    assert results[0].value("dsl/video_to_text/R@1") == 16.0 and math.isnan(results[0].value("qb_norm/video_to_text/R@1"))
    markdown = render_markdown(recipe, results)
    header = next(line for line in markdown.splitlines() if "T→V R@1 DSL" in line)
    assert header == ("| variant | T→V R@1 | T→V R@1 DSL | T→V R@1 QB-Norm | V→T R@1 | V→T R@1 DSL | T→I R@1 | "
                      "T→I R@1 DSL | T→I R@1 QB-Norm |")  # no V→T QB-Norm column: a caption bank ranks no videos
    row = markdown.splitlines()[markdown.splitlines().index(header) + 2]
    assert row == "| a | 15.0 ± 7.1 | 20.0 ± 7.1 | 17.0 ± 7.1 | 16.0 ± 7.1 | 21.0 ± 7.1 | 7.5 ± 3.5 | 15.0 ± 7.1 | 18.0 ± 7.1 |"
    assert "bank_size=100" in markdown
    assert "T→V R@1 DSL" not in render_markdown(recipe_from_dict({"variants": {"a": "unitrim"}}), results[:2])
    summary = comparison_report(recipe, results, 1.0)["summary"]
    assert summary["b"]["qb_norm/text_to_image/R@1"]["mean"] == 33.0


def test_a_recipe_with_unknown_postprocessing_is_refused_before_any_run() -> None:
    with pytest.raises(RecipeError, match=r"unknown method 'qbnorm'"):
        recipe_from_dict({"variants": {"a": "unitrim"}, "postprocessing": ["qbnorm"]})
    with pytest.raises(RecipeError, match=r"qb_norm: unknown settings \['bank'\]"):
        recipe_from_dict({"variants": {"a": "unitrim"}, "postprocessing": {"qb_norm": {"bank": 3}}})


def test_a_finished_run_without_the_asked_postprocessing_is_not_reused(tmp_path) -> None:
    recipe = recipe_from_dict({"variants": {"a": "unitrim"}, "seeds": [1], "postprocessing": ["dsl"]})
    (spec,) = build_run_specs(recipe, tmp_path)
    assert spec.postprocessing == {"dsl": {"temperature": 1.0}}
    saved = {"variant": "a", "seed": 1, "argv": spec.argv, "metrics": {}}
    Path(spec.output_dir).mkdir(parents=True)
    (Path(spec.output_dir) / "comparison_run.json").write_text(json.dumps(saved))
    assert finished_run(spec) is None
    saved["postprocessing"] = {"dsl": {"temperature": 2.0}}
    (Path(spec.output_dir) / "comparison_run.json").write_text(json.dumps(saved))
    assert finished_run(spec) is None  # other settings
    saved["postprocessing"] = {"dsl": {"temperature": 1.0}, "sk_norm": {"iterations": 4}}
    (Path(spec.output_dir) / "comparison_run.json").write_text(json.dumps(saved))
    assert finished_run(spec).postprocessing == saved["postprocessing"]


@pytest.mark.parametrize("text", ["variants:\n  on: {preset: unitrim}\n  off: {preset: xclip}\n",
                                  "variants:\n  'on': {preset: unitrim}\nreference: yes\n"])
def test_a_variant_name_yaml_reads_as_a_boolean_is_refused_with_the_fix(tmp_path: Path, text: str) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(RecipeError, match="not text; quote it"):
        load_recipe(path)
    path.write_text(text.replace("on:", "'on':").replace("off:", "'off':").replace("yes", "'on'"))
    assert [variant.name for variant in load_recipe(path).variants][0] == "on"


def test_compare_on_a_benchmark_with_missing_and_corrupt_videos_reports_them(tmp_path) -> None:
    """Every tool on faulty data: one run on a folder with a missing and a corrupt video trains, evaluates the
    readable test videos and records the skipped one."""
    from unitrim_hf.data import write_synthetic_benchmark

    data = write_synthetic_benchmark(tmp_path / "data", num_train=16, num_test=8, num_frames=8, frame_size=32)
    videos = data / "videos" / "all"
    (videos / "video2.mp4").unlink()
    (videos / "video19.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    report = run_compare([
        "--presets", "unitrim-tiny", "--seeds", "1", "--data_dir", str(data), "--output_dir", str(tmp_path / "runs"),
        "--", "--num_frames", "2", "--max_length", "16", "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "8", "--max_steps", "2",
    ])
    (run,) = report["runs"]
    assert run["global_step"] == 2 and 0 <= run["metrics"]["text_to_video"]["R@1"] <= 100
    assert run["metrics"]["text_to_video"]["num_queries"] == 7  # video19's caption is left out
    metrics_file = next((tmp_path / "runs").glob("unitrim-tiny-seed1-*/metrics.json"))
    assert json.loads(metrics_file.read_text())["skipped_videos"] == ["video19"]
