"""Training pieces: arguments and config files, parameter groups, data items, NaN detection, Hub push."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
from unitrim_hf.evaluation.runner import RetrievalEvaluation
from unitrim_hf.modeling.losses import UniTriMLoss
from unitrim_hf.training import NonFiniteLossError, cli, parse_arguments
from unitrim_hf.training.checkpointing import CheckpointError, resolve_checkpoint
from unitrim_hf.training.batches import EpochShuffleSampler, RetrievalCollator, VideoCaptionDataset
from unitrim_hf.training.hub import push_model_folder
from unitrim_hf.training.optimization import create_optimizer, create_scheduler

REPOSITORY = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


# ---------------------------------------------------------------- arguments


def test_dataset_defaults_follow_the_paper() -> None:
    _, data, training = parse_arguments(["--dataset", "msrvtt", "--data_dir", "/data/msrvtt"])
    assert (data.num_frames, data.max_length, training.per_device_train_batch_size, training.num_train_epochs) == (12, 32, 64, 5)
    assert (training.learning_rate, training.clip_learning_rate) == (1e-4, 1e-7)
    assert data.expand_captions is False
    assert parse_arguments(["--dataset", "msvd", "--data_dir", "/data/msvd"])[1].expand_captions is True
    model, data, training = parse_arguments(["--dataset", "didemo", "--data_dir", "/data/didemo"])
    assert (data.num_frames, data.max_length, training.per_device_train_batch_size, training.num_train_epochs) == (64, 64, 16, 10)
    assert model.preset == "unitrim"


def test_no_arguments_is_the_synthetic_job(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    model, data, training = parse_arguments([])
    assert data.dataset_name == "synthetic" and model.preset == "unitrim-tiny"
    assert Path(data.data_dir) == Path("outputs/synthetic_data")
    assert training.clip_learning_rate == training.learning_rate  # random init: the towers must learn too


def test_config_file_gives_defaults_that_the_command_line_overrides(tmp_path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("dataset: msvd\ndata_dir: /data/msvd\nnum_frames: 8\nconfig_overrides: {patch_top_k: 4}\n")
    model, data, training = parse_arguments(["--config", str(config), "--num_frames", "16"])
    assert data.dataset_name == "msvd" and data.num_frames == 16 and training.per_device_train_batch_size == 64
    assert model.overrides() == {"patch_top_k": 4}
    json_config = tmp_path / "run.json"
    json_config.write_text(json.dumps({"dataset": "synthetic", "learning_rate": 0.5}))
    assert parse_arguments(["--config", str(json_config)])[2].learning_rate == 0.5
    json_config.write_text(json.dumps({"not_an_argument": 1}))
    with pytest.raises(ValueError, match="not_an_argument"):
        parse_arguments(["--config", str(json_config)])


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="--data_dir is required"):
        parse_arguments(["--dataset", "msrvtt"])
    with pytest.raises(ValueError, match="--dataset"):
        parse_arguments(["--dataset", "kinetics"])
    with pytest.raises(ValueError, match="hub_model_id"):
        parse_arguments(["--push_to_hub"])
    with pytest.raises(ValueError, match="config_overrides"):
        parse_arguments(["--config_overrides", "{not json"])[0].overrides()


# ---------------------------------------------------------------- optimization


def test_clip_parameters_and_new_modules_get_their_own_learning_rates() -> None:
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny"))
    optimizer = create_optimizer(model, learning_rate=1e-4, clip_learning_rate=1e-7, weight_decay=0.2)
    clip_names = model.clip_parameter_names()
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    seen = set()
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            name = names[id(parameter)]
            seen.add(name)
            assert group["lr"] == (1e-7 if name in clip_names else 1e-4), name
            if parameter.ndim < 2 or "logit_scale" in name:
                assert group["weight_decay"] == 0.0, name
    assert seen == set(names.values())
    assert any(name.startswith("temporal_encoder.") for name in seen) and "logit_scale" in clip_names

    scheduler = create_scheduler(optimizer, total_steps=10, warmup_steps=2)
    rates = []
    for _ in range(10):
        optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr())
    assert rates[0][0] == pytest.approx(0.5e-7) and rates[1][-1] == pytest.approx(1e-4)
    assert rates[-1][-1] == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- data


@pytest.fixture(scope="module")
def synthetic_splits(tmp_path_factory):
    from unitrim_hf.data import load_benchmark, prepare_frames
    from unitrim_hf.media.frame_sampling import FrameSampler

    root = tmp_path_factory.mktemp("synthetic")
    options = {"num_train": 6, "num_test": 3, "seed": 1, "cache_dir": str(root / "hf")}
    train = load_benchmark("synthetic", root / "data", "train", **options)
    cache = prepare_frames(train, FrameSampler(4), root / "cache", image_size=32)
    return train, cache


def test_dataset_items_from_cache_and_from_decoding(synthetic_splits) -> None:
    train, cache = synthetic_splits
    cached = VideoCaptionDataset(train, image_size=32, num_frames=4, seed=0, frame_cache=cache)
    decoded = VideoCaptionDataset(train, image_size=32, num_frames=4, seed=0)
    assert len(cached) == len(decoded) == 6
    for dataset in (cached, decoded):
        item = dataset[2]
        assert item["frames"].shape == (4, 32, 32, 3) and item["frames"].dtype == np.uint8
        assert item["keyframe"].shape == (32, 32, 3) and item["video_mask"].tolist() == [1, 1, 1, 1]
        assert item["caption"] in dataset.captions[2] and item["video_id"] == "video2"
    # The caption draw depends only on (seed, epoch, video): replayable, and it changes across epochs.
    assert cached[3]["caption"] == VideoCaptionDataset(train, 32, 4, seed=0, frame_cache=cache)[3]["caption"]
    draws = set()
    for epoch in range(8):
        cached.set_epoch(epoch)
        draws.add(cached[0]["caption"])
    assert len(draws) > 1

    expanded = VideoCaptionDataset(train, image_size=32, num_frames=4, seed=0, frame_cache=cache, expand_captions=True)
    assert len(expanded) == len(train) == sum(len(captions) for captions in cached.captions) > len(cached)
    assert [expanded[item]["caption"] for item in range(len(expanded))] == train["caption"]

    processor = UniTriMProcessor.for_model_config(UniTriMConfig.from_preset("unitrim-tiny"), max_length=16)
    batch = RetrievalCollator(processor, max_length=16)([cached[0], cached[1]])
    assert batch["pixel_values_videos"].shape == (2, 4, 3, 32, 32)
    assert batch["pixel_values"].shape == (2, 3, 32, 32) and batch["input_ids"].shape == (2, 16)
    assert batch["video_ids"] == ["video0", "video1"]


def test_epoch_shuffle_depends_only_on_seed_and_epoch() -> None:
    first, second = EpochShuffleSampler(20, seed=3), EpochShuffleSampler(20, seed=3)
    assert list(first) == list(second) and sorted(first) == list(range(20))
    second.set_epoch(1)
    assert list(first) != list(second)


# ---------------------------------------------------------------- failures


def test_non_finite_loss_names_step_and_video_ids(tmp_path, monkeypatch) -> None:
    original = UniTriMLoss.forward

    def nan_loss(self, *args, **kwargs):
        total, losses = original(self, *args, **kwargs)
        return total * float("nan"), losses

    monkeypatch.setattr(UniTriMLoss, "forward", nan_loss)
    argv = ["--output_dir", str(tmp_path / "run"), "--data_dir", str(tmp_path / "data"), "--synthetic_num_train", "8",
            "--synthetic_num_test", "4", "--num_frames", "2", "--per_device_train_batch_size", "4", "--max_steps", "1",
            "--report_to", "none"]
    with pytest.raises(NonFiniteLossError, match=r"optimizer step 0 \(epoch 0, batch 0\).*video ids=\['video\d+'"):
        cli.run(argv)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        resolve_checkpoint(tmp_path, "latest")
    (tmp_path / "checkpoints" / "checkpoint-000004").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="trainer_state.json"):
        resolve_checkpoint(tmp_path, str(tmp_path / "checkpoints" / "checkpoint-000004"))


# ---------------------------------------------------------------- Hub


class LocalHubStandIn:
    """Stands in for `huggingface_hub.HfApi`: each upload becomes a snapshot in a Hub cache layout."""

    token = "hf_stand_in"

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.repos: dict[str, dict] = {}
        self.commits = 0

    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False, exist_ok: bool = False):
        assert repo_type == "model"
        if repo_id in self.repos and not exist_ok:
            raise FileExistsError(repo_id)
        self.repos.setdefault(repo_id, {"private": private})
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, repo_id: str, folder_path: str, repo_type: str = "model", commit_message: str = "", ignore_patterns=None):
        assert repo_id in self.repos, "create_repo first"
        self.commits += 1
        revision = f"{self.commits:040x}"
        repo = self.cache / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / revision
        shutil.copytree(folder_path, snapshot, ignore=shutil.ignore_patterns(*(ignore_patterns or [])))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
        return {"oid": revision, "commit_message": commit_message}


@pytest.fixture()
def hub_stand_in(tmp_path, monkeypatch) -> LocalHubStandIn:
    """`huggingface_hub.HfApi()` returns a `LocalHubStandIn`, the "online" Hub (HF_HUB_OFFLINE unset)."""
    import huggingface_hub

    api = LocalHubStandIn(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda *args, **kwargs: api)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return api


def test_push_to_hub_writes_a_repo_that_loads_offline(tmp_path) -> None:
    config = UniTriMConfig.from_preset("unitrim-tiny")
    folder = tmp_path / "best_model"
    model = UniTriMModel(config)
    model.save_pretrained(folder)
    UniTriMProcessor.for_model_config(config).save_pretrained(folder)
    scores = {"R@1": 42.0, "R@5": 80.0, "R@10": 90.0, "MdR": 2.0, "MnR": 3.0, "Rsum": 212.0, "num_queries": 10}
    evaluation = RetrievalEvaluation({"text_to_video": scores, "video_to_text": scores}, None, None, 10, 10, [])
    (folder / "metrics.json").write_text(json.dumps(evaluation.to_dict()))

    api = LocalHubStandIn(tmp_path / "hub")
    commit = push_model_folder(folder, "org/unitrim-test", dataset_name="synthetic", api=api, training_args={"learning_rate": 1e-4})
    snapshot = tmp_path / "hub" / "models--org--unitrim-test" / "snapshots" / commit["oid"]
    for name in ("config.json", "model.safetensors", "processor_config.json", "metrics.json", "README.md"):
        assert (snapshot / name).is_file(), name
    card = (snapshot / "README.md").read_text()
    assert "model-index" in card and "42.0" in card

    environment = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"))
    script = (
        "import torch, unitrim_hf\n"
        "model = unitrim_hf.UniTriMModel.from_pretrained('org/unitrim-test')\n"
        "processor = unitrim_hf.UniTriMProcessor.from_pretrained('org/unitrim-test')\n"
        "print(float(sum(p.detach().double().sum() for p in model.parameters())), processor.image_transform.size)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    total, size = completed.stdout.split()
    assert float(total) == pytest.approx(float(sum(p.detach().double().sum() for p in model.parameters())), rel=1e-9)
    assert int(size) == 32


def test_gradient_checkpointing_and_accumulation_run(tmp_path) -> None:
    from unitrim_hf.training.loop import Trainer

    model_args, data_args, training_args = parse_arguments([
        "--output_dir", str(tmp_path / "run"), "--data_dir", str(tmp_path / "data"), "--synthetic_num_train", "8",
        "--synthetic_num_test", "4", "--num_frames", "2", "--per_device_train_batch_size", "2", "--max_steps", "3",
        "--gradient_accumulation_steps", "2", "--gradient_checkpointing", "--do_eval", "false", "--report_to", "jsonl",
        "--logging_steps", "1", "--ddp_timeout", "5400",
    ])
    trainer = Trainer(model_args, data_args, training_args)
    assert trainer.accelerator.init_handler.timeout.total_seconds() == 5400
    for tower in (trainer.model.text_model, trainer.model.vision_model):
        assert getattr(tower, "is_activation_checkpointing", None) or tower.is_gradient_checkpointing
    before = {name: parameter.detach().clone() for name, parameter in trainer.model.named_parameters()}
    result = trainer.train()
    # 8 videos / batch 2 = 4 batches per epoch = 2 optimizer steps per epoch: 3 steps cross into epoch 2.
    assert result.global_step == 3 and result.evaluation is None
    log = [json.loads(line) for line in (tmp_path / "run" / "logs" / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3]
    after = dict(trainer.accelerator.unwrap_model(trainer.model).named_parameters())
    assert not torch.equal(before["text_model.embeddings.position_embedding.weight"], after["text_model.embeddings.position_embedding.weight"])
    assert UniTriMModel.from_pretrained(result.final_model_dir).config.num_temporal_layers == 4


def test_train_with_push_to_hub_uploads_the_best_model(tmp_path, hub_stand_in) -> None:
    # Through the console-script entry point, which must return None (a returned object becomes the exit status).
    assert cli.main([
        "--output_dir", str(tmp_path / "run"), "--data_dir", str(tmp_path / "data"), "--synthetic_num_train", "8",
        "--synthetic_num_test", "4", "--num_frames", "2", "--per_device_train_batch_size", "4", "--max_steps", "2",
        "--report_to", "none", "--push_to_hub", "--hub_model_id", "org/pushed",
    ]) is None
    snapshot = next((tmp_path / "hub" / "models--org--pushed" / "snapshots").iterdir())
    assert json.loads((snapshot / "metrics.json").read_text())["num_videos"] == 4
    card = (snapshot / "README.md").read_text()
    assert "org/pushed" in card and "model-index" in card
    assert (snapshot / "model.safetensors").is_file() and (snapshot / "processor_config.json").is_file()


def test_training_without_frame_cache_decodes_videos(tmp_path) -> None:
    result = cli.run([
        "--output_dir", str(tmp_path / "run"), "--data_dir", str(tmp_path / "data"), "--synthetic_num_train", "8",
        "--synthetic_num_test", "4", "--num_frames", "3", "--per_device_train_batch_size", "4", "--max_steps", "2",
        "--report_to", "none", "--use_frame_cache", "false",
    ])
    assert result.global_step == 2
    assert result.evaluation.settings["frames_from"] == "decoded" and result.evaluation.num_videos == 4
    assert not (tmp_path / "data" / "frame_cache").exists()


@pytest.mark.parametrize("use_frame_cache", ["true", "false"])
def test_an_undecodable_training_video_is_skipped_and_reported(tmp_path, use_frame_cache) -> None:
    from unitrim_hf.training.builders import load_split

    arguments = [
        "--output_dir", str(tmp_path / "run"), "--data_dir", str(tmp_path / "data"), "--preset", "clip4clip-meanp-tiny",
        "--synthetic_num_train", "9", "--synthetic_num_test", "4", "--num_frames", "2", "--max_length", "16",
        "--per_device_train_batch_size", "4", "--num_train_epochs", "2", "--report_to", "none", "--do_eval", "false",
        "--use_frame_cache", use_frame_cache,
    ]
    _, data_args, _ = parse_arguments(arguments)
    train = load_split(data_args, "train")  # prepared while every file is fine
    bad_id, bad_path = train["video_id"][1], train["video_path"][1]
    Path(bad_path).write_bytes(b"this is not an mp4 file" * 64)

    result = cli.run(arguments)
    # 9 videos (8 with the cache, which leaves the bad one out), batch 4: 2 steps per epoch in both cases.
    assert result.global_step == 4
    report = json.loads((tmp_path / "run" / "skipped_training_videos.json").read_text())
    assert report == {"count": 1, "video_ids": [bad_id]}

    if use_frame_cache == "false":
        # The substitute is the next video's item, the same on every call (exact resumes).
        dataset = VideoCaptionDataset(train, image_size=32, num_frames=2, seed=0)
        bad_index = dataset.video_ids.index(bad_id)
        first, again = dataset[bad_index], dataset[bad_index]
        assert first["video_id"] == dataset.video_ids[bad_index + 1] and first["caption"] == again["caption"]
        assert np.array_equal(first["frames"], again["frames"]) and dataset.skipped_video_ids == [bad_id]


def test_fsdp_and_deepspeed_are_refused_with_a_clear_message() -> None:
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from unitrim_hf.training.loop import UnsupportedDistributionError, check_supported_distribution

    def stand_in(kind, zero_stage=None):
        return SimpleNamespace(distributed_type=kind, state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(zero_stage=zero_stage)))

    with pytest.raises(UnsupportedDistributionError, match="FSDP is not supported"):
        check_supported_distribution(stand_in(DistributedType.FSDP))
    # DeepSpeed keeps its optimizer state in its own pickles: refused at every stage.
    for stage in (2, 3):
        with pytest.raises(UnsupportedDistributionError, match=f"ZeRO stage {stage}"):
            check_supported_distribution(stand_in(DistributedType.DEEPSPEED, stage))
    for kind, stage in ((DistributedType.MULTI_GPU, None), (DistributedType.MULTI_CPU, None), (DistributedType.NO, None)):
        check_supported_distribution(stand_in(kind, stage))
    assert parse_arguments([])[2].ddp_timeout == 7200


def test_default_frame_sampling_per_dataset_is_the_documented_one() -> None:
    from unitrim_hf.training.builders import build_frame_sampler, frame_cache_folder

    expected = {
        # CLIP4Clip: 1 frame per second, then num_frames of them by np.linspace; DiDeMo read from 0 to 31 s.
        "msrvtt": {"num_frames": 12, "strategy": "fps", "frames_per_second": 1.0, "slice_position": "uniform"},
        "msvd": {"num_frames": 12, "strategy": "fps", "frames_per_second": 1.0, "slice_position": "uniform"},
        "didemo": {"num_frames": 64, "strategy": "fps", "frames_per_second": 1.0, "slice_position": "uniform",
                   "default_end_time": 31.0},
        "synthetic": {"num_frames": 8, "strategy": "uniform", "frames_per_second": 1.0, "slice_position": "uniform"},
    }
    for dataset, settings in expected.items():
        _, data, _ = parse_arguments(["--dataset", dataset, "--data_dir", "/data/x"])
        sampler = build_frame_sampler(data).to_dict()
        assert {key: sampler[key] for key in settings} == settings, dataset
        assert ("default_end_time" in sampler) == (dataset == "didemo")
        assert build_frame_sampler(data, strategy="random").strategy == "random"
    _, data, _ = parse_arguments(["--dataset", "didemo", "--data_dir", "/d"])
    assert frame_cache_folder(data, "train", 224).name == "train-64f-224px-fps-to31s"
    _, data, _ = parse_arguments(["--dataset", "msrvtt", "--data_dir", "/d", "--frame_sampling", "uniform"])
    assert build_frame_sampler(data).strategy == "uniform" and frame_cache_folder(data, "test", 224).name == "test-12f-224px"
    with pytest.raises(ValueError, match="--frame_sampling"):
        parse_arguments(["--dataset", "msrvtt", "--data_dir", "/d", "--frame_sampling", "random"])
    # The processor saved with a DiDeMo model carries the same sampler.
    from unitrim_hf.training.builders import build_processor

    model, data, _ = parse_arguments(["--dataset", "didemo", "--data_dir", "/d", "--preset", "unitrim-tiny"])
    # As build_model makes it: the AOSM sizes follow the run's caption length and frames (DiDeMo: 64 and 64).
    config = UniTriMConfig.from_preset("unitrim-tiny", max_words=data.max_length, max_frames=data.num_frames)
    processor = build_processor(model, config, data)
    assert processor.max_length == 64
    assert processor.frame_sampler.to_dict() == build_frame_sampler(data).to_dict()


def test_a_frame_cache_of_other_videos_is_rebuilt_not_trusted(tmp_path) -> None:
    from unitrim_hf.data import load_benchmark
    from unitrim_hf.training.builders import build_frame_cache

    _, data_args, _ = parse_arguments(["--data_dir", str(tmp_path / "data"), "--num_frames", "2",
                                       "--frame_cache_dir", str(tmp_path / "cache")])
    small = load_benchmark("synthetic", tmp_path / "small", "train", num_train=4, num_test=2, seed=0, cache_dir=str(tmp_path / "hf1"))
    grown = load_benchmark("synthetic", tmp_path / "grown", "train", num_train=6, num_test=2, seed=0, cache_dir=str(tmp_path / "hf2"))
    assert len(build_frame_cache(data_args, "train", small, 32)) == 4
    assert len(build_frame_cache(data_args, "train", small, 32)) == 4  # reused
    cache = build_frame_cache(data_args, "train", grown, 32)  # two videos added: encoded, not ignored
    assert len(cache) == 6 and sorted(cache["video_id"]) == sorted(set(grown["video_id"]))


def test_real_dataset_without_clip_weights_warns(caplog) -> None:
    import logging

    with caplog.at_level(logging.WARNING, logger="unitrim_hf.training.arguments"):
        parse_arguments(["--dataset", "msrvtt", "--data_dir", "/data/msrvtt"])
    assert "--clip_model_name_or_path" in caplog.text and "random" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="unitrim_hf.training.arguments"):
        parse_arguments(["--dataset", "msrvtt", "--data_dir", "/d", "--clip_model_name_or_path", "openai/clip-vit-base-patch32"])
        parse_arguments([])
    assert "--clip_model_name_or_path" not in caplog.text


def test_no_stale_best_model_and_no_local_paths_in_the_model_card(tmp_path, hub_stand_in) -> None:
    output_dir = tmp_path / "run"
    stale = output_dir / "best_model"
    shutil.copytree(_saved_tiny_model(tmp_path / "stale"), stale)  # an earlier run's best model, no checkpoints
    result = cli.run([
        "--output_dir", str(output_dir), "--data_dir", str(tmp_path / "data"), "--preset", "clip4clip-meanp-tiny",
        "--synthetic_num_train", "8", "--synthetic_num_test", "4", "--num_frames", "2", "--per_device_train_batch_size", "4",
        "--max_steps", "2", "--report_to", "none", "--do_eval", "false", "--push_to_hub", "--hub_model_id", "org/fresh",
    ])
    assert result.best_model_dir is None
    snapshot = next((tmp_path / "hub" / "models--org--fresh" / "snapshots").iterdir())
    pushed = UniTriMModel.from_pretrained(snapshot)
    assert pushed.config.num_temporal_layers == 0  # this run's clip4clip-meanp model, not the stale one
    card = (snapshot / "README.md").read_text()
    assert str(tmp_path) not in card and "`output_dir`" not in card and "`data_dir`" not in card
    assert "clip4clip-meanp-tiny" in card


def _saved_tiny_model(folder: Path) -> Path:
    model = UniTriMModel(UniTriMConfig.from_preset("unitrim-tiny"))
    model.save_pretrained(folder)
    UniTriMProcessor.for_model_config(model.config, max_length=16).save_pretrained(folder)
    return folder


def test_keyframe_features_name_their_own_frame_cache() -> None:
    """Caches whose keyframes were chosen with different checkpoints' features never share (and rebuild) a folder."""
    from unitrim_hf.training import parse_arguments
    from unitrim_hf.training.builders import frame_cache_folder

    def folder(*extra: str) -> str:
        _, data, _ = parse_arguments(["--output_dir", "out", "--data_dir", "data", *extra])
        return frame_cache_folder(data, "train", 32).name

    plain, first, second = folder(), folder("--keyframe_features", "clip-a"), folder("--keyframe_features", "clip-b")
    assert "-kf" not in plain and first.startswith(plain + "-kf") and second.startswith(plain + "-kf")
    assert first != second and folder("--clip_model_name_or_path", "clip-a") == first
