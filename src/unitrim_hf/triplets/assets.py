"""The one place the triplet parser reads its data files (the tagger lexicon and contextual rules).

The files live in the package's `assets/` folder. When the `triplets` package is copied somewhere else
(e.g. bundled beside a saved model), the files may sit in an `assets/` folder next to it or inside it;
all three places are tried, in order.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
ASSET_FOLDERS = (_HERE.parent / "assets", _HERE / "assets", _HERE)


def read_asset_text(name: str) -> str:
    """Text of the data file `name` (e.g. `"en-lexicon.txt"`), read as UTF-8.

    Raises:
        FileNotFoundError: naming every folder that was searched.
    """
    for folder in ASSET_FOLDERS:
        path = folder / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    searched = ", ".join(str(folder) for folder in ASSET_FOLDERS)
    raise FileNotFoundError(f"triplet parser data file {name!r} not found; looked in {searched}")
