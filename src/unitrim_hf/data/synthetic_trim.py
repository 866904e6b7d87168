"""The SyntheticTriM builder: writes the benchmark into `data_dir` if absent, then reads it as MSR-VTT."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets

from ..benchmark_names import SYNTHETIC_DEFAULTS, resolve_synthetic_settings
from .base import VideoBenchmarkConfig
from .msrvtt import MSRVTT
from .synthetic_writer import write_synthetic_benchmark


@dataclass
class SyntheticTriMConfig(VideoBenchmarkConfig):
    """Size and look of the generated benchmark (see `write_synthetic_benchmark`).

    None (the default) is the folder's own setting when `data_dir` holds a generated benchmark, else the one of
    `SYNTHETIC_DEFAULTS`; a value given must agree with the folder's.
    """

    num_train: int | None = None
    num_test: int | None = None
    seed: int | None = None
    num_frames: int | None = None
    frame_size: int | None = None
    fps: float | None = None
    scenes: str | None = None

    def generation_settings(self) -> dict[str, int | float | str | None]:
        """The settings as given (None: not given), keyed as `SYNTHETIC_DEFAULTS`."""
        return {name: getattr(self, name) for name in SYNTHETIC_DEFAULTS}


class SyntheticTriM(MSRVTT):
    """Procedurally generated clips of coloured shapes; `train` has every caption, `test` one per clip.

    Rows are MSR-VTT rows plus `kind` (`"spatial"`, `"temporal"` or `"combined"`).

    Example::

        builder = SyntheticTriM(data_dir="/tmp/synthetic", cache_dir="/tmp/cache")  # the default 400 + 100 clips
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
        root = Path(self.config.data_dir).expanduser()
        settings = resolve_synthetic_settings(root, **self.config.generation_settings())
        root.mkdir(parents=True, exist_ok=True)
        write_synthetic_benchmark(root, **settings)
        return super()._split_generators(dl_manager)
