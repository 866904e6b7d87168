"""Fixtures shared by the search tests: a saved tiny model and a folder of real media files (no tests here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
from unitrim_hf.media.video_writer import write_video

NUM_FRAMES = 4
GOOD_VIDEOS = ("clip_a.mp4", "clip_b.avi", "clip_c.webm", "nested/deeper/clip_d.mp4")
GOOD_IMAGES = ("photo_a.png", "nested/photo_b.jpg", "no_extension_jpeg")
BAD_FILES = ("broken.mp4", "truncated.webm", "notes.txt", "text_renamed.mp4")


def make_model(seed: int = 0, **overrides) -> tuple[UniTriMModel, UniTriMProcessor]:
    torch.manual_seed(seed)
    # The AOSM matrices are sized for the frames the index samples (as train.py sizes them for its run).
    config = UniTriMConfig.from_preset("unitrim-tiny", **{"max_frames": NUM_FRAMES, **overrides})
    model = UniTriMModel(config).eval()
    processor = UniTriMProcessor.for_model_config(config, frame_sampler_config={"num_frames": NUM_FRAMES})
    return model, processor


def save_model(folder: Path, seed: int = 0, **overrides) -> Path:
    model, processor = make_model(seed, **overrides)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def gradient_frames(seed: int, num_frames: int = 12, size: int = 32) -> np.ndarray:
    """(num_frames, size, size, 3) uint8 frames: a moving colour gradient, different per seed."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, 3)
    ramp = np.linspace(0, 1, size)[None, :, None]
    frames = []
    for index in range(num_frames):
        shift = (index * 17) % 255
        frame = (base[None, None, :] + shift + 120 * ramp + 60 * ramp.transpose(1, 0, 2)) % 255
        frames.append(np.broadcast_to(frame, (size, size, 3)))
    return np.ascontiguousarray(np.stack(frames)).astype(np.uint8)


def write_image(path: Path, seed: int, image_format: str | None = None) -> Path:
    rng = np.random.default_rng(100 + seed)
    array = rng.integers(0, 255, (24, 36, 3), dtype=np.uint8)
    Image.fromarray(array).save(path, format=image_format)
    return path


def write_media(folder: Path, names: tuple[str, ...] = GOOD_VIDEOS + GOOD_IMAGES + BAD_FILES) -> Path:
    """Write the named fixtures (any subset of GOOD_VIDEOS, GOOD_IMAGES, BAD_FILES) under `folder`."""
    for seed, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name in GOOD_VIDEOS:
            write_video(path, gradient_frames(seed), fps=6)
        elif name == "no_extension_jpeg":
            write_image(path, seed, "JPEG")
        elif name in GOOD_IMAGES:
            write_image(path, seed)
        elif name in ("broken.mp4", "truncated.webm"):
            # Cut in half: the mp4 loses its index (fails the probe), the webm opens but cannot be decoded.
            whole = folder / ("_whole" + Path(name).suffix)
            write_video(whole, gradient_frames(seed, num_frames=60), fps=6)
            data = whole.read_bytes()
            path.write_bytes(data[: len(data) // 2])
            whole.unlink()
        elif name == "notes.txt":
            path.write_text("shopping list: milk, eggs\n")
        elif name == "text_renamed.mp4":
            path.write_text("this is plain text pretending to be a video\n")
    return folder


def test_fifos_sockets_and_dangling_links_are_listed_as_skipped(tmp_path) -> None:
    """They were left out of the scan without a word; a FIFO opened for reading would block forever."""
    import os
    import socket

    from unitrim_hf.media.media_files import classify_file, scan_folder

    Image.new("RGB", (8, 8), "red").save(tmp_path / "photo.png")
    os.mkfifo(tmp_path / "pipe.png")
    os.symlink(tmp_path / "gone.mp4", tmp_path / "link.mp4")
    server = socket.socket(socket.AF_UNIX)
    short = Path("/tmp") / f"unitrim-socket-{os.getpid()}"  # AF_UNIX paths are limited to about 100 bytes
    server.bind(str(short))
    (tmp_path / "sock").symlink_to(short)
    try:
        scan = scan_folder(tmp_path)
    finally:
        server.close()
        short.unlink()
    reasons = {entry.path.name: entry.reason for entry in scan.skipped}
    assert [entry.path.name for entry in scan.media] == ["photo.png"]
    assert reasons["pipe.png"] == "not a regular file (a FIFO)"
    assert reasons["link.mp4"] == "a symbolic link to a missing file"
    assert reasons["sock"] == "not a regular file (a socket)"
    assert classify_file(tmp_path / "pipe.png").reason == "not a regular file (a FIFO)"  # no blocking open
