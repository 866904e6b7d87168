"""Writers of tiny benchmark fixtures in the real file formats (used by the test_data_* modules; no tests here)."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np

from unitrim_hf.media.video_writer import write_video


def write_tiny_video(path: Path, num_frames: int = 6, size: int = 32, shade: int = 0) -> Path:
    """A short clip whose frame i is a flat colour depending on (shade, i)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.zeros((num_frames, size, size, 3), dtype=np.uint8)
    for index in range(num_frames):
        frames[index] = ((shade * 37) % 200 + 20, (index * 30) % 250, 128)
    return write_video(path, frames, fps=6.0)


def msrvtt_caption(video_number: int, caption_number: int) -> str:
    return f"clip {video_number} shows thing {caption_number}"


def write_msrvtt(
    root: Path,
    num_videos: int = 12,
    test_numbers: tuple[int, ...] = (9, 10, 11),
    captions_per_video: int = 3,
    video_folder: str = "videos/all",
    webm_numbers: tuple[int, ...] = (),
    missing_numbers: tuple[int, ...] = (),
) -> Path:
    """MSR-VTT layout: JSON + 9k CSV (first 9 non-test) + 7k CSV (first 7) + JSFUSION test CSV + videos."""
    root.mkdir(parents=True, exist_ok=True)
    videos = [
        {"category": 1, "url": "https://example.invalid", "video_id": f"video{n}", "start time": 1.0, "end time": 2.0,
         "split": "test" if n in test_numbers else "train", "id": n}
        for n in range(num_videos)
    ]
    sentences = []
    for caption_number in range(captions_per_video):  # interleaved like the real file
        for n in range(num_videos):
            sentences.append({"caption": msrvtt_caption(n, caption_number), "video_id": f"video{n}", "sen_id": len(sentences)})
    (root / "MSRVTT_data.json").write_text(json.dumps({"info": {}, "videos": videos, "sentences": sentences}))
    train_numbers = [n for n in range(num_videos) if n not in test_numbers]
    for name, count in (("9k", 9), ("7k", 7)):
        with open(root / f"MSRVTT_train.{name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video_id"])
            writer.writerows([[f"video{n}"] for n in train_numbers[:count]])
    with open(root / "MSRVTT_JSFUSION_test.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "vid_key", "video_id", "sentence"])
        for key, n in enumerate(test_numbers):
            writer.writerow([f"ret{key}", f"msr{n}", f"video{n}", msrvtt_caption(n, 1)])
    for n in range(num_videos):
        if n in missing_numbers:
            continue
        extension = ".webm" if n in webm_numbers else ".mp4"
        write_tiny_video(root / video_folder / f"video{n}{extension}", shade=n)
    return root


def write_msvd(root: Path, captions: dict[str, list[list[str]]], splits: dict[str, list[str]], extensions: dict[str, str]) -> Path:
    """MSVD layout: raw-captions.pkl (token lists), *_list.txt, YouTubeClips/<id><ext> (``extensions[id]``; absent = missing)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "raw-captions.pkl", "wb") as handle:
        pickle.dump(captions, handle)
    for split, file_name in (("train", "train_list.txt"), ("validation", "val_list.txt"), ("test", "test_list.txt")):
        (root / file_name).write_text("\n".join(splits[split]) + "\n")
    for shade, (video_id, extension) in enumerate(extensions.items()):
        # One clip in a sub-folder: the folder is walked recursively.
        folder = root / "YouTubeClips" / ("nested" if shade % 2 else "")
        write_tiny_video(folder / f"{video_id}{extension}", shade=shade)
    return root


def didemo_record(annotation_id: int, description: str, video: str, times: list[list[int]]) -> dict:
    return {
        "annotation_id": annotation_id,
        "description": description,
        "video": video,
        "times": times,
        "dl_link": "https://example.invalid/" + video,
        "num_segments": 6,
    }
