"""The SyntheticTriM builder: writes the benchmark into `data_dir` if absent, then reads it as MSR-VTT."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets

from .base import VideoBenchmarkConfig
from .msrvtt import MSRVTT
from .synthetic_writer import write_synthetic_benchmark


@dataclass
class SyntheticTriMConfig(VideoBenchmarkConfig):
    """Size and look of the generated benchmark (see `write_synthetic_benchmark`)."""

    num_train: int = 200
    num_test: int = 50
    seed: int = 0
    num_frames: int = 16
    frame_size: int = 64
    fps: float = 8.0


class SyntheticTriM(MSRVTT):
    """Procedurally generated clips of coloured shapes; `train` has every caption, `test` one per clip.

    Rows are MSR-VTT rows plus `kind` (`"spatial"`, `"temporal"` or `"combined"`).

    Example::

        builder = SyntheticTriM(data_dir="/tmp/synthetic", cache_dir="/tmp/cache", num_train=200, num_test=50, seed=0)
        builder.download_and_prepare()   # writes /tmp/synthetic (mp4 + JSON + CSVs) the first time
        train = builder.as_dataset("train")
    """

    VERSION = datasets.Version("1.0.0")
    BUILDER_CONFIG_CLASS = SyntheticTriMConfig
    BUILDER_CONFIGS = [SyntheticTriMConfig(name="default", version=VERSION)]
    DEFAULT_CONFIG_NAME = "default"
    SENTENCE_STRING_FIELDS = ("kind",)

    # `SyntheticTriM.write(root, ...)` writes the files without building a dataset.
    write = staticmethod(write_synthetic_benchmark)

    def _train_csv_name(self) -> str:
        return "MSRVTT_train.9k.csv"

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError("SyntheticTriM needs data_dir=<folder to write the generated videos into>")
        Path(self.config.data_dir).expanduser().mkdir(parents=True, exist_ok=True)
        write_synthetic_benchmark(
            Path(self.config.data_dir).expanduser(),
            num_train=self.config.num_train,
            num_test=self.config.num_test,
            seed=self.config.seed,
            num_frames=self.config.num_frames,
            frame_size=self.config.frame_size,
            fps=self.config.fps,
        )
        return super()._split_generators(dl_manager)
