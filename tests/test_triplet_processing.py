"""The processor's text path: captions cleaned before tokenizing and parsing, a paragraph's triplets all kept."""

from __future__ import annotations

import torch

from unitrim_hf import UniTriMConfig, UniTriMProcessor
from unitrim_hf.training.arguments import DATASET_DEFAULTS


def test_ansi_escapes_are_stripped_before_tokenizing_and_parsing():
    processor = UniTriMProcessor()
    coloured = processor(text=["a \x1b[31mred\x1b[0m square moves left"])
    plain = processor(text=["a red square moves left"])
    assert processor.parse_triplets("a \x1b[31mred\x1b[0m square moves left") == [("red square", "move", "left")]
    for name in ("input_ids", "triplet_input_ids", "triplet_mask"):
        assert torch.equal(coloured[name], plain[name]), name


def test_a_five_sentence_paragraph_keeps_its_fifth_triplet():
    paragraph = (
        "a circle moves left. a square stays on the right. a triangle grows. a dog barks. a cat sleeps on a bed."
    )
    config = UniTriMConfig.from_preset(
        "unitrim-tiny", max_triplets=DATASET_DEFAULTS["didemo"]["max_triplets"], max_words=64
    )
    processor = UniTriMProcessor.for_model_config(config, max_length=64)
    inputs = processor(text=[paragraph])
    assert inputs["triplet_mask"].sum().item() == 5
    assert processor.parse_triplets(paragraph)[4] == ("cat", "sleep on", "bed")
