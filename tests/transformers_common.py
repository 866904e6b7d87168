"""transformers' own common test mixins of the installed release, importable from the project's tests.

`.ci/bootstrap` takes `tests/test_modeling_common.py`, `test_configuration_common.py` and
`test_processing_common.py` out of the source distribution of the installed transformers version into
`.venv/transformers-common-tests/<version>/` (nothing of them is kept in this repository). The source distribution
lacks four small modules those files import; `load_common_tests` provides stand-ins that keep their tests' meaning:
no export or generation mixins (a retrieval model neither exports through `torch.export` tests here nor generates),
no common config keyword arguments (composite configs skip that check), and the Hub media fixtures mapped to local
files made here (no network in tests).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import transformers

REPOSITORY = Path(__file__).resolve().parents[1]
COMMON_TESTS = REPOSITORY / ".venv" / "transformers-common-tests" / transformers.__version__
PACKAGE = "transformers_common_tests"

_STAND_INS = {
    "exporters/__init__.py": "",
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    "generation/__init__.py": "",
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    "utils/__init__.py": "",
    "utils/test_configuration_utils.py": "config_common_kwargs = {}\n",
}

_LOCAL_MEDIA = '''
import os

MEDIA = os.path.join(os.path.dirname(__file__), "media")


def url_to_local_path(url, return_url_if_not_found=True):
    """The Hub fixture named by `url`, replaced by a local file of the same kind made by the project's tests."""
    name = url.rsplit("/", 1)[-1]
    path = os.path.join(MEDIA, name)
    return path if os.path.exists(path) else url
'''


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _make_local_media(folder: Path) -> None:
    """Two images and two short videos under the fixture names `test_processing_common` asks for."""
    from PIL import Image

    from unitrim_hf.media.video_writer import write_video

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    image = folder / "coco_sample.png"
    if not image.exists():
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(image)
    for name in ("big_buck_bunny_320x240_10s.mp4", "sample_demo_1_320x240.mp4"):
        if not (folder / name).exists():
            write_video(folder / name, rng.integers(0, 255, (16, 48, 64, 3), dtype=np.uint8))


def load_common_tests() -> ModuleType:
    """
    The package holding the release's common test modules (`test_modeling_common`, `test_configuration_common`,
    `test_processing_common`), imported once.

    Raises:
        FileNotFoundError: the modules were not fetched; `bash .ci/bootstrap` fetches them.
    """
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    sources = [COMMON_TESTS / f"test_{kind}_common.py" for kind in ("modeling", "configuration", "processing")]
    missing = [str(path) for path in sources if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"transformers {transformers.__version__}'s common tests are missing ({', '.join(missing)}); "
            "run `bash .ci/bootstrap`, which takes them from that release's source distribution."
        )
    root = COMMON_TESTS / "harness"
    package = root / PACKAGE
    _write_if_changed(package / "__init__.py", "")
    for source in sources:
        _write_if_changed(package / source.name, source.read_text())
    for relative, text in _STAND_INS.items():
        _write_if_changed(package / relative, text)
    # test_processing_common appends `<its folder>/../utils` to sys.path for this module.
    _write_if_changed(root / "utils" / "fetch_hub_objects_for_ci.py", _LOCAL_MEDIA)
    _make_local_media(root / "utils" / "media")
    sys.path.insert(0, os.fspath(root))
    package_module = importlib.import_module(PACKAGE)
    for source in sources:
        importlib.import_module(f"{PACKAGE}.{source.stem}")
    return package_module
