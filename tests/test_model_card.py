"""Model cards: packaged template, Hub-parsable front matter, model-index round trip, sections filled."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import ModelCard, ModelCardData, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from unitrim_hf import UniTriMConfig
from unitrim_hf.evaluation import RetrievalEvaluation
from unitrim_hf.training.model_card import evaluation_results, load_template, matching_preset, parameter_counts, render_model_card

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]


def _metrics(r1: float) -> dict[str, float]:
    return {"R@1": r1, "R@5": r1 + 10.0, "R@10": r1 + 20.0, "MdR": 3.0, "MnR": 7.25, "Rsum": 3 * r1 + 30.0, "num_queries": 50}


@pytest.fixture
def evaluation() -> RetrievalEvaluation:
    return RetrievalEvaluation(
        metrics={
            "text_to_video": _metrics(41.3),
            "video_to_text": _metrics(39.7),
            "text_to_image": _metrics(23.9),
            "image_to_text": _metrics(21.1),
        },
        dsl_metrics={"text_to_video": _metrics(57.7)},
        alignment_metrics={"sentence_video": {"text_to_video": _metrics(33.3), "video_to_text": _metrics(31.1)}},
        num_captions=50,
        num_videos=50,
        skipped_videos=[],
        settings={"num_frames": 12},
    )


def test_repository_template_is_the_packaged_template():
    assert (REPOSITORY_ROOT / "model_cards" / "unitrim_template.md").read_text(encoding="utf-8") == load_template()


def test_rendered_card_parses_and_holds_the_metrics(evaluation, tmp_path):
    config = UniTriMConfig.from_preset("unitrim-tiny")
    text = render_model_card(
        config, model_id="someone/unitrim-msrvtt", base_model="openai/clip-vit-base-patch32", dataset_name="msrvtt",
        evaluation=evaluation, training_args={"learning_rate": 1e-4, "num_train_epochs": 5},
    )
    assert "{{" not in text
    data = ModelCard(text).data.to_dict()
    assert data["library_name"] == "unitrim_hf"
    assert data["pipeline_tag"] and "text-to-video-retrieval" in data["tags"]
    assert data["base_model"] == "openai/clip-vit-base-patch32"
    assert data["datasets"] == ["msr-vtt"] and data["license"]
    (tmp_path / "README.md").write_text(text, encoding="utf-8")
    assert metadata_load(tmp_path / "README.md")["library_name"] == "unitrim_hf"

    model_name, results = model_index_to_eval_results(data["model-index"])
    assert model_name == "someone/unitrim-msrvtt"
    assert results == evaluation_results(evaluation, "msrvtt", "msr-vtt")
    by_name = {result.metric_name: result for result in results}
    assert by_name["R@1 (text to video)"].metric_value == 41.3
    assert by_name["R@1 (text to video)"].task_type == "text-to-video-retrieval"
    assert by_name["MnR (image to text)"].metric_type == "mean_rank"
    assert {result.dataset_split for result in results} == {"test"}
    # The front matter is valid for the Hub's own ModelCardData (re-serializes to the same model-index).
    assert ModelCardData(**data).to_dict()["model-index"] == data["model-index"]

    # DSL is in the card body, never in the model-index.
    assert all(result.metric_value != 57.7 for result in results)
    assert "57.7" in text and "transductive" in text
    for value in ("41.3", "39.7", "23.9", "21.1", "33.3"):
        assert value in text
    for section in ("## Model description", "## Intended use and limitations", "## Training data", "## Evaluation",
                    "### Protocol", "## How to use"):
        assert section in text
    assert "`learning_rate`: `0.0001`" in text
    assert 'UniTriMModel.from_pretrained("someone/unitrim-msrvtt")' in text


def test_card_describes_the_configuration():
    config = UniTriMConfig.from_preset("xclip-tiny")
    text = render_model_card(config, model_id="local/xclip", base_model=None, dataset_name="synthetic", evaluation=None, training_args=None)
    assert "`xclip-tiny`" in text
    assert "top-K patch selection: **off**" in text and "temporal encoder over frame features: **on**" in text
    assert "`word_video`" in text and "No evaluation results" in text
    assert "model-index" not in ModelCard(text).data.to_dict()
    counts = parameter_counts(config)
    assert counts["total"] == counts["clip"] + counts["new_modules"] > 0
    assert f"{counts['new_modules']:,}" in text


def test_custom_configuration_is_named_custom():
    config = UniTriMConfig.from_preset("unitrim-tiny", patch_top_k=4)
    assert matching_preset(config) is None
    assert "custom configuration" in render_model_card(
        config, model_id="x/y", base_model=None, dataset_name="synthetic", evaluation=None, training_args=None
    )


def test_evaluation_dict_is_accepted_and_unfilled_placeholders_fail(evaluation):
    config = UniTriMConfig.from_preset("unitrim-tiny")
    from_dict = render_model_card(config, model_id="x/y", base_model=None, dataset_name="msvd",
                                  evaluation=evaluation.to_dict(), training_args=None)
    assert from_dict == render_model_card(config, model_id="x/y", base_model=None, dataset_name="msvd",
                                          evaluation=evaluation, training_args=None)
    with pytest.raises(ValueError, match="unknown_field"):
        render_model_card(config, model_id="x/y", base_model=None, dataset_name="msvd", evaluation=None,
                          training_args=None, template=load_template() + "{{unknown_field}}")
    with pytest.raises(ValueError, match="metrics"):
        render_model_card(config, model_id="x/y", base_model=None, dataset_name="msvd", evaluation={"R@1": 1.0}, training_args=None)
