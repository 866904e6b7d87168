"""transformers' own common tests (`ModelTesterMixin`, `ConfigTester` of the installed release, see
`transformers_common.py`) against `UniTriMConfig` and `UniTriMModel`, with a CLIP-style composite tester: a text
tester (captions with their triplet phrases), a vision tester (images) and videos built from the same towers.

Skips name why a test does not apply to a retrieval model, as CLIP's and X-CLIP's own test files do.
"""

from __future__ import annotations

import unittest

import torch
from parameterized import parameterized

from transformers_common import load_common_tests
from unitrim_hf import UniTriMConfig, UniTriMModel

common = load_common_tests()
modeling_common = common.test_modeling_common
configuration_common = common.test_configuration_common

VOCAB_SIZE, START_OF_TEXT, END_OF_TEXT = 99, 97, 98


def caption_batch(batch_size: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP-like ids (SOT ... EOT, zero-padded after it) and their attention mask, real lengths from 3 up."""
    real = torch.randint(3, length + 1, (batch_size,), generator=generator)
    positions = torch.arange(length)[None, :]
    input_ids = torch.randint(1, START_OF_TEXT, (batch_size, length), generator=generator)
    input_ids[:, 0] = START_OF_TEXT
    input_ids = torch.where(positions == real[:, None] - 1, END_OF_TEXT, input_ids)
    attention_mask = (positions < real[:, None]).long()
    return input_ids * attention_mask, attention_mask


class TextTester:
    """Captions of `batch_size` rows with `max_triplets` triplet phrases each (one caption without any)."""

    def __init__(self, parent, batch_size: int = 4, seq_length: int = 7, max_triplets: int = 2) -> None:
        self.parent, self.batch_size, self.seq_length, self.max_triplets = parent, batch_size, seq_length, max_triplets
        self.hidden_size, self.num_hidden_layers, self.num_attention_heads = 32, 2, 4
        self.triplet_length = 5

    def get_config(self) -> dict:
        return {
            "vocab_size": VOCAB_SIZE, "hidden_size": self.hidden_size, "intermediate_size": 37,
            "num_hidden_layers": self.num_hidden_layers, "num_attention_heads": self.num_attention_heads,
            "max_position_embeddings": 32, "bos_token_id": START_OF_TEXT, "eos_token_id": END_OF_TEXT,
            "pad_token_id": 0, "projection_dim": 32,
        }

    def prepare_inputs(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        input_ids, attention_mask = caption_batch(self.batch_size, self.seq_length, generator)
        flat_ids, flat_mask = caption_batch(self.batch_size * self.max_triplets, self.triplet_length, generator)
        shape = (self.batch_size, self.max_triplets, self.triplet_length)
        triplet_counts = torch.arange(self.batch_size) % (self.max_triplets + 1)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "triplet_input_ids": flat_ids.view(shape),
            "triplet_attention_mask": flat_mask.view(shape),
            "triplet_mask": (torch.arange(self.max_triplets)[None, :] < triplet_counts[:, None]).long(),
        }

    def prepare_config_and_inputs_for_common(self):
        return self.parent.model_tester.get_config(), self.prepare_inputs(torch.Generator().manual_seed(0))


class VisionTester:
    """Images of `batch_size` rows for the vision tower (16 patches of 8 x 8 pixels)."""

    def __init__(self, parent, batch_size: int = 4) -> None:
        self.parent, self.batch_size = parent, batch_size
        self.image_size, self.patch_size = 32, 8
        self.hidden_size, self.num_hidden_layers, self.num_attention_heads = 32, 2, 4
        self.seq_length = (self.image_size // self.patch_size) ** 2 + 1

    def get_config(self) -> dict:
        return {
            "hidden_size": self.hidden_size, "intermediate_size": 37, "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads, "image_size": self.image_size,
            "patch_size": self.patch_size, "projection_dim": 32,
        }

    def prepare_inputs(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        size = self.image_size
        return {"pixel_values": torch.randn(self.batch_size, 3, size, size, generator=generator)}

    def prepare_config_and_inputs_for_common(self):
        return self.parent.model_tester.get_config(), self.prepare_inputs(torch.Generator().manual_seed(1))


class UniTriMModelTester:
    """Every UniTriM module on (temporal encoder, top-K patches, triplets, disentangler, the five alignments);
    videos of 3 frames, the second video padded after its second frame."""

    def __init__(self, parent, batch_size: int = 4, num_frames: int = 3) -> None:
        self.parent = parent
        self.batch_size, self.num_frames = batch_size, num_frames
        self.text_model_tester = TextTester(parent, batch_size)
        self.vision_model_tester = VisionTester(parent, batch_size)
        self.is_training = True

    def get_config(self) -> UniTriMConfig:
        return UniTriMConfig(
            text_config=self.text_model_tester.get_config(),
            vision_config=self.vision_model_tester.get_config(),
            projection_dim=32, temporal_num_attention_heads=4, num_temporal_layers=2, max_frame_positions=8,
            patch_top_k=3, patch_scorer_hidden_dim=16, max_triplets=self.text_model_tester.max_triplets,
            disentangler_hidden_dim=32,
        )

    def video_inputs(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        size = self.vision_model_tester.image_size
        video_mask = torch.ones(self.batch_size, self.num_frames, dtype=torch.long)
        video_mask[1, 2:] = 0
        pixel_values_videos = torch.randn(self.batch_size, self.num_frames, 3, size, size, generator=generator)
        return {"pixel_values_videos": pixel_values_videos * video_mask[:, :, None, None, None], "video_mask": video_mask}

    def prepare_config_and_inputs_for_common(self):
        generator = torch.Generator().manual_seed(0)
        inputs = {
            **self.text_model_tester.prepare_inputs(generator),
            **self.video_inputs(generator),
            **self.vision_model_tester.prepare_inputs(generator),
            "return_loss": True,
        }
        return self.get_config(), inputs


class UniTriMModelTest(modeling_common.ModelTesterMixin, unittest.TestCase):
    all_model_classes = (UniTriMModel,)
    test_resize_embeddings = False
    test_attention_outputs = False  # tested per tower, as CLIP's composite test does
    test_can_init_all_missing_weights_before_2023 = True  # UniTriM is new: its initialization is checked
    _is_composite = True

    def setUp(self) -> None:
        self.model_tester = UniTriMModelTester(self)
        self.config_tester = configuration_common.ConfigTester(
            self, config_class=UniTriMConfig, has_text_modality=False,
            common_properties=["projection_dim", "logit_scale_init_value"],
        )

    def _video_features_prepare_config_and_inputs(self):
        return self.model_tester.get_config(), self.model_tester.video_inputs(torch.Generator().manual_seed(2))

    def _video_features_get_expected_num_attentions(self, model_tester=None):
        return self.model_tester.vision_model_tester.num_hidden_layers

    def test_config(self) -> None:
        self.config_tester.run_common_tests()

    @unittest.skip(reason="Hidden states are tested per tower (get_text/video/image_features), as CLIP's composite test")
    def test_hidden_states_output(self) -> None:
        pass

    @unittest.skip(reason="UniTriM takes token ids and pixels; it has no inputs_embeds, as CLIP")
    def test_inputs_embeds(self) -> None:
        pass

    @unittest.skip(reason="UniTriM takes token ids and pixels; it has no inputs_embeds, as CLIP")
    def test_inputs_embeds_matches_input_ids(self) -> None:
        pass

    @unittest.skip(reason="Retain-grad of hidden states is tested in CLIP's own tower tests, as CLIP's composite test")
    def test_retain_grad_hidden_states_attentions(self) -> None:
        pass

    @unittest.skip(reason="A retrieval model has no input/output embeddings to tie or resize, as CLIPModel")
    def test_model_get_set_embeddings(self) -> None:
        pass

    @unittest.skip(reason="CLIP text tower has two attention masks (causal and padding), as CLIP's test says")
    def test_sdpa_can_dispatch_on_flash(self) -> None:
        pass

    @unittest.skip(
        reason="UniTriM's outputs carry boolean validity masks (words, triplets, frames), which this test compares "
        "with torch.allclose (no subtraction of bools); tests/test_modeling.py::test_tuple_and_dict_outputs_are_equal "
        "checks the same equivalence with exact comparison of masks"
    )
    def test_model_outputs_equivalence(self) -> None:
        pass

    @parameterized.expand(modeling_common.TEST_EAGER_MATCHES_SDPA_INFERENCE_PARAMETERIZATION)
    @unittest.skip(
        reason="The test reads a top-level `logits_per_text` or `hidden_states` (UniTriM's logits are "
        "`logits_per_text_video` / `logits_per_text_image`) and pads every input to batch 7 with random masks and "
        "ids; tests/test_modeling.py::test_eager_matches_sdpa checks both on padded captions and videos"
    )
    def test_eager_matches_sdpa_inference(self, *args) -> None:
        pass

    @unittest.skip(reason="The retrieval loss gathers across processes and is not traced with dynamic shapes, as CLIP")
    def test_sdpa_can_compile_dynamic(self) -> None:
        pass


if __name__ == "__main__":
    unittest.main()
