"""Shared by the `unitrim serve` tests: a small index with its saved model, and the app as a real subprocess
(no tests here)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from test_search_helpers import save_model, write_media
from unitrim_hf import UniTriMModel, UniTriMProcessor
from unitrim_hf.search import Searcher, index_folder

# Two videos (H.264 mp4, VP8 webm) and two images: small, and every kind a browser plays or shows.
SERVED_FILES = ("clip_a.mp4", "clip_c.webm", "photo_a.png", "nested/photo_b.jpg")
START_TIMEOUT_SECONDS = 180


@dataclass
class SmallIndex:
    """A saved tiny model, a folder of media, its index, and an in-process `Searcher` of it (the reference)."""

    model_dir: Path
    media_dir: Path
    index_dir: Path
    searcher: Searcher


def build_small_index(root: Path) -> SmallIndex:
    model_dir = save_model(root / "model")
    media_dir = write_media(root / "media", SERVED_FILES)
    model = UniTriMModel.from_pretrained(model_dir)
    processor = UniTriMProcessor.from_pretrained(model_dir)
    index_dir = root / "index"
    index_folder(media_dir, index_dir, model, processor, batch_size=4, progress=False)
    return SmallIndex(model_dir, media_dir, index_dir, Searcher(index_dir, model, processor))


def unitrim_command() -> list[str]:
    """The installed `unitrim` console script next to this interpreter, or the same entry point through it."""
    script = Path(sys.executable).with_name("unitrim")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "unitrim_hf.search.cli"]


class ServedApp:
    """`unitrim serve --port 0` in a subprocess; `url` is read from its first line of output."""

    def __init__(self, index: SmallIndex, log_path: Path) -> None:
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            unitrim_command() + ["serve", "--index", str(index.index_dir), "--model", str(index.model_dir),
                                 "--port", "0"],
            stdout=subprocess.PIPE, stderr=self._log, env=env,
        )
        self.url = self._wait_for_url(log_path)

    def _wait_for_url(self, log_path: Path) -> str:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        line = b""
        while time.monotonic() < deadline and not line.endswith(b"\n"):
            ready, _, _ = select.select([self.process.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    break
                line += chunk
        text = line.decode()
        if "http://" not in text:
            self.stop()
            raise RuntimeError(f"unitrim serve did not start: {text!r}; stderr: {log_path.read_text()[-2000:]}")
        return "http://" + text.split("http://", 1)[1].split()[0].rstrip("/") + "/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
