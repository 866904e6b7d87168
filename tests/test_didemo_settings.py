"""DiDeMo's two frame protocols and room for a paragraph's triplets, from the command line to the model config."""

from __future__ import annotations

import pytest

from unitrim_hf import UniTriMConfig
from unitrim_hf.training import parse_arguments
from unitrim_hf.training.builders import build_frame_sampler, frame_cache_folder

DIDEMO = ["--dataset", "didemo", "--data_dir", "/data/didemo"]


def test_didemo_default_is_clip4clip_frames_and_room_for_a_paragraph():
    model, data, _ = parse_arguments(DIDEMO)
    assert (data.frame_protocol, data.frame_sampling, data.video_end_time, data.num_frames) == ("clip4clip", "fps", 31.0, 64)
    assert model.max_triplets == 8 and model.overrides() == {"max_triplets": 8}
    assert UniTriMConfig.from_preset(model.preset, **model.overrides()).max_triplets == 8
    assert parse_arguments(["--dataset", "msrvtt", "--data_dir", "/data/msrvtt"])[0].overrides() == {}


def test_paper_protocol_samples_64_frames_over_the_whole_video():
    _, data, _ = parse_arguments([*DIDEMO, "--frame_protocol", "paper"])
    assert (data.frame_sampling, data.video_end_time, data.num_frames) == ("uniform", None, 64)
    sampler = build_frame_sampler(data)
    assert sampler.num_frames == 64 and sampler.to_dict()["strategy"] == "uniform"
    assert frame_cache_folder(data, "test", 224).name == "test-64f-224px"
    # Explicit flags still win over the protocol.
    _, data, _ = parse_arguments([*DIDEMO, "--frame_protocol", "paper", "--video_end_time", "20"])
    assert data.video_end_time == 20.0


def test_explicit_max_triplets_and_overrides_win():
    model, _, _ = parse_arguments([*DIDEMO, "--max_triplets", "6"])
    assert model.overrides() == {"max_triplets": 6}
    model, _, _ = parse_arguments([*DIDEMO, "--config_overrides", '{"max_triplets": 5}'])
    assert model.overrides() == {"max_triplets": 5}


def test_unknown_frame_protocol_is_named():
    with pytest.raises(ValueError, match="--frame_protocol must be one of"):
        parse_arguments([*DIDEMO, "--frame_protocol", "xclip"])
