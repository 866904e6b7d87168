"""The README and the docs as a newcomer uses them: every Python snippet of the README runs as written (with a local
tiny CLIP checkpoint, a tiny saved UniTriM checkpoint and generated media), every shell command of the README and
docs that names one of the tools parses against that tool's own parser, and the virtualenv is activated before the
first bare command of each page."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPModel

from unitrim_hf import UniTriMConfig, UniTriMModel, UniTriMProcessor
from unitrim_hf.media.video_writer import write_video

REPOSITORY = Path(__file__).resolve().parents[1]
README = REPOSITORY / "README.md"
# The pages whose shell commands are checked: the README, docs/, and the READMEs of configs/ and benchmarks/.
PAGES = [README, *sorted((REPOSITORY / "docs").glob("*.md")), REPOSITORY / "configs" / "README.md",
         REPOSITORY / "benchmarks" / "README.md"]
CLIP_ID = '"openai/clip-vit-base-patch32"'
CHECKPOINT = Path("outputs/unitrim-synthetic/best_model")
ACTIVATE = "source .venv/bin/activate"


def python_snippets(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)


@pytest.fixture
def readme_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding what the README's snippets name: a tiny CLIP checkpoint (for the CLIP id), the main job's
    checkpoint folder (a tiny UniTriM model with its processor), `clip.mp4` and `photo.jpg`; the current folder."""
    tiny = UniTriMConfig.from_preset("unitrim-tiny")
    clip = CLIPModel(CLIPConfig(text_config=tiny.text_config.to_dict(), vision_config=tiny.vision_config.to_dict(), projection_dim=32))
    clip.save_pretrained(tmp_path / "clip")
    UniTriMModel(tiny).save_pretrained(tmp_path / CHECKPOINT)
    UniTriMProcessor.for_model_config(tiny).save_pretrained(tmp_path / CHECKPOINT)
    write_video(tmp_path / "clip.mp4", np.random.default_rng(0).integers(0, 255, (20, 48, 64, 3), dtype=np.uint8))
    Image.new("RGB", (40, 30), "red").save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_snippet(snippet: str, workspace: Path) -> dict:
    namespace: dict = {}
    exec(snippet.replace(CLIP_ID, repr(str(workspace / "clip"))), namespace)
    return namespace


def test_usage_example_runs(readme_workspace: Path) -> None:
    example = re.search(r"## Use it\n\n```python\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    output = run_snippet(example, readme_workspace)["output"]
    assert output.logits_per_text_video.shape == (1, 1) and torch.isfinite(output.logits_per_text_video).all()
    assert set(output.alignment_scores) == set(UniTriMConfig.from_preset("unitrim-tiny").alignments)


def test_the_usage_example_loads_the_processor_saved_with_the_checkpoint() -> None:
    example = re.search(r"## Use it\n\n```python\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    assert "UniTriMProcessor.from_pretrained(folder)" in example and "UniTriMModel.from_pretrained(folder)" in example
    # A processor built from the config belongs to a new model only, never to a loaded checkpoint.
    for snippet in python_snippets(README):
        if "for_model_config" in snippet:
            assert "from_clip(" in snippet and ".from_pretrained(" not in snippet.split("for_model_config")[0]


@pytest.mark.parametrize("index", range(len(python_snippets(README))))
def test_every_python_snippet_of_the_readme_runs_as_written(readme_workspace: Path, index: int) -> None:
    run_snippet(python_snippets(README)[index], readme_workspace)


# ---------------------------------------------------------------- shell commands


def shell_lines(page: Path) -> list[tuple[int, str]]:
    """(line number, command line) of the page's shell code: ```bash blocks and indented code blocks, continuation
    lines joined."""
    lines = page.read_text().splitlines()
    found, in_fence, pending, start = [], False, "", 0
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            in_fence = line.strip() in ("```bash", "```sh", "```shell") if not in_fence else False
            continue
        indented = not in_fence and line.startswith("    ") and line.strip() and not line.lstrip().startswith(("-", "|", "*"))
        if not (in_fence or indented or pending):
            continue
        text = line[4:] if indented and not pending else line
        if not pending:
            start = number
        if text.rstrip().endswith("\\"):
            pending += text.rstrip()[:-1] + " "
            continue
        found.append((start, pending + text))
        pending = ""
    return found


def split_commands(line: str) -> list[str]:
    """The commands of a shell line: split at `&&`, `||`, `;` and pipes (` | `; `a|b` is synopsis notation)."""
    return re.split(r"&&|\|\||;|\s\|\s", line)


def _placeholders_resolved(tokens: list[str]) -> list[str]:
    """Synopsis notation as a user fills it in: `...` dropped, `[--flag value]` kept without its brackets, the first of
    the alternatives `a|b|c`."""
    resolved = []
    for original in tokens:
        token = original.strip("[]")
        if (original and not token) or token.startswith("..."):  # a lone bracket, or an ellipsis; "" is a value
            continue
        if "|" in token and not token.startswith(("{", "'")):
            token = token.split("|")[0]
        resolved.append(token)
    return resolved


def _parse_train(arguments: list[str]) -> None:
    from unitrim_hf.training.command_line import argument_parser

    argument_parser().parse_args(arguments)


def _parse_eval(arguments: list[str]) -> None:
    from unitrim_hf.evaluation.cli import build_parser

    build_parser().parse_args(arguments)


def _parse_search(arguments: list[str]) -> None:
    from unitrim_hf.search.cli import _build_parser

    _build_parser().parse_args(arguments)


def _parse_compare(arguments: list[str]) -> None:
    from unitrim_hf.comparison.cli import build_parser

    own, train = (arguments[: arguments.index("--")], arguments[arguments.index("--") + 1:]) if "--" in arguments else (arguments, [])
    build_parser().parse_args(own)
    _parse_train(train)


def _parse_pretrain_clip(arguments: list[str]) -> None:
    from transformers import HfArgumentParser

    from unitrim_hf.training.clip_pretraining import ClipPretrainingArguments

    HfArgumentParser(ClipPretrainingArguments).parse_args_into_dataclasses(arguments)


# How a command names each tool: console script, `python script.py`, `python -m module`.
TOOLS: dict[str, Callable[[list[str]], None]] = {
    "unitrim-train": _parse_train, "train.py": _parse_train, "-m unitrim_hf.training.cli": _parse_train,
    "unitrim-eval": _parse_eval, "-m unitrim_hf.evaluation.cli": _parse_eval,
    "unitrim": _parse_search, "-m unitrim_hf.search.cli": _parse_search,
    "unitrim-compare": _parse_compare, "benchmarks/compare.py": _parse_compare,
    "-m unitrim_hf.comparison.cli": _parse_compare,
    "unitrim-pretrain-clip": _parse_pretrain_clip, "-m unitrim_hf.training.clip_pretraining": _parse_pretrain_clip,
}


def _tool_and_arguments(command: list[str]) -> tuple[str, list[str]] | None:
    """The tool a command runs (a key of `TOOLS`) and its arguments, or None for any other command."""
    while command and re.match(r"^[A-Z_][A-Z0-9_]*=", command[0]):  # VARIABLE=value prefixes
        command = command[1:]
    if not command:
        return None
    program = command[0].removeprefix(".venv/bin/")
    if program in TOOLS:
        return program, command[1:]
    if program == "python" and len(command) > 1:
        if command[1] == "-m" and len(command) > 2:
            return (f"-m {command[2]}", command[3:]) if f"-m {command[2]}" in TOOLS else None
        return (command[1], command[2:]) if command[1] in TOOLS else None
    if program == "accelerate" and command[1:2] == ["launch"]:
        return "accelerate launch", command[2:]
    return None


def _parse_accelerate_launch(arguments: list[str]) -> None:
    from accelerate.commands.launch import launch_command_parser

    launched = launch_command_parser().parse_args(arguments)
    script = f"-m {launched.training_script}" if launched.module else launched.training_script
    assert script in TOOLS, f"accelerate launch runs {script}, which is not one of the tools"
    TOOLS[script](launched.training_script_args)


def tool_commands() -> list[tuple[str, int, str, list[str]]]:
    """(page, line, tool, arguments) of every command of the pages that runs a tool."""
    commands = []
    for page in PAGES:
        for number, line in shell_lines(page):
            for part in split_commands(line):
                try:
                    tokens = shlex.split(part, comments=True)
                except ValueError:
                    continue
                found = _tool_and_arguments(tokens)
                if found is not None:
                    commands.append((page.relative_to(REPOSITORY).as_posix(), number, found[0], _placeholders_resolved(found[1])))
    return commands


COMMANDS = tool_commands()


def test_the_pages_name_every_tool() -> None:
    assert len(COMMANDS) >= 30
    assert {tool for _, _, tool, _ in COMMANDS} >= {"unitrim", "unitrim-eval", "unitrim-compare", "unitrim-pretrain-clip",
                                                     "train.py", "accelerate launch"}


@pytest.mark.parametrize("page, line, tool, arguments", COMMANDS, ids=[f"{page}:{line}" for page, line, _, _ in COMMANDS])
def test_every_shell_command_of_the_docs_parses_against_its_tools_parser(page, line, tool, arguments, capsys) -> None:
    parse = _parse_accelerate_launch if tool == "accelerate launch" else TOOLS[tool]
    try:
        parse(arguments)
    except SystemExit as exit:
        pytest.fail(f"{page}:{line}: `{tool} {shlex.join(arguments)}` does not parse: {capsys.readouterr().err.strip()}"
                    f" (exit {exit.code})")


def test_the_parser_check_catches_a_flag_the_tool_does_not_have(capsys) -> None:
    with pytest.raises(SystemExit):
        _parse_eval(["--model", "m", "--benchmark", "synthetic", "--data_dir", "d", "--no_such_flag"])
    with pytest.raises(SystemExit):
        _parse_accelerate_launch(["train.py", "--learning_rat", "1e-3"])
    assert _tool_and_arguments(shlex.split("ACCELERATE_USE_CPU=true .venv/bin/accelerate launch train.py")) == ("accelerate launch", ["train.py"])
    assert _placeholders_resolved(["...", "[--kind", "video|image|all]", "--preset_suffix", ""]) == ["--kind", "video", "--preset_suffix", ""]


# ---------------------------------------------------------------- the virtualenv


BARE_TOOLS = ("python", "unitrim", "unitrim-eval", "unitrim-train", "unitrim-compare", "unitrim-pretrain-clip", "accelerate")


def _first_bare_command(page: Path) -> int | None:
    """The line of the page's first shell command that runs a tool without `.venv/bin/`, or None."""
    for number, line in shell_lines(page):
        for part in split_commands(line):
            tokens = [token for token in shlex.split(part, comments=True) if not re.match(r"^[A-Z_][A-Z0-9_]*=", token)]
            if tokens and tokens[0] in BARE_TOOLS:
                return number
    return None


@pytest.mark.parametrize("page", PAGES, ids=[page.relative_to(REPOSITORY).as_posix() for page in PAGES])
def test_each_page_says_to_activate_the_virtualenv_before_its_first_bare_command(page: Path) -> None:
    first = _first_bare_command(page)
    if first is None:
        return
    before = "\n".join(page.read_text().splitlines()[: first - 1])
    assert ACTIVATE in before, f"{page.name}:{first} runs a bare command before saying `{ACTIVATE}`"


def test_the_readme_says_it_once_and_early() -> None:
    text = README.read_text()
    assert text.count(ACTIVATE) == 1
    assert text.index(ACTIVATE) < text.index("## Use it")
