"""DSL, QB-Norm and SK-norm against numbers of their official code (tests/fixtures/postprocessing), and their
formulas and refusals on small hand-checkable cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from unitrim_hf.evaluation import (
    inverted_softmax,
    parse_postprocessing,
    text_to_video_metrics,
    video_to_text_metrics,
)
from unitrim_hf.evaluation.postprocessing import (
    dual_softmax_text_to_video,
    dual_softmax_video_to_text,
    querybank_activated_queries,
    querybank_normalize,
    sinkhorn_normalize,
)
from unitrim_hf.evaluation.postprocessing_options import DualSoftmax, QueryBankNorm, SinkhornNorm, postprocessing_settings
from unitrim_hf.evaluation.query_bank import bank_captions, refuse_leaking_query_bank
from unitrim_hf.modeling.sinkhorn import DEFAULT_SINKHORN_ITERATIONS, sinkhorn_biases, sinkhorn_log_plan, sinkhorn_log_scalings

FIXTURES = Path(__file__).parent / "fixtures" / "postprocessing"


def _fixture(name: str) -> dict[str, torch.Tensor]:
    return load_file(FIXTURES / f"{name}.safetensors")


# ------------------------------------------------------------------ official code


def test_dsl_reproduces_ts2net_metrics():
    values = _fixture("dual_softmax")
    ours = text_to_video_metrics(dual_softmax_text_to_video(values["sim"]))
    r1, r5, r10, mdr, mnr = values["ts2net_dsl_R1_R5_R10_MdR_MnR"].tolist()
    assert (ours["R@1"], ours["R@5"], ours["R@10"], ours["MdR"], ours["MnR"]) == pytest.approx((r1, r5, r10, mdr, mnr))
    assert ours["R@1"] != pytest.approx(float(values["ts2net_raw_R1"]))  # the fixture is one DSL changes


@pytest.mark.parametrize("temperature, key", [(1.0, "camoe_loss_temp1"), (1000.0, "camoe_loss_temp1000")])
def test_dsl_reproduces_camoe_matrix_through_its_loss(temperature, key):
    """CAMoE's dual softmax loss is -diag(log_softmax(N * DSL matrix)): equal losses mean equal matrices."""
    values = _fixture("dual_softmax")
    scores = dual_softmax_text_to_video(values["sim"], temperature) * values["sim"].shape[0]
    loss = -torch.diagonal(torch.log_softmax(scores, dim=-1))
    torch.testing.assert_close(loss.float(), values[key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k, beta", [(1, 20), (2, 20), (1, 5)])
def test_querybank_norm_reproduces_dynamic_inverted_softmax(k, beta):
    values = _fixture("querybank_norm")
    official = values[f"normalized_k{k}_beta{beta}"]
    normalized_rows = values[f"normalized_rows_k{k}_beta{beta}"]
    activated = querybank_activated_queries(values["test_sim"], values["bank_sim"], k)
    assert activated.nonzero().flatten().tolist() == normalized_rows.tolist()
    assert 0 < len(normalized_rows) < len(activated)  # both kinds of rows are exercised
    ours = querybank_normalize(values["test_sim"], values["bank_sim"], beta=beta, k=k)
    # Normalized rows are the log of the official exp(beta s) / sum; the others are the scores as they were.
    torch.testing.assert_close(ours[activated], official[activated].log(), rtol=0, atol=1e-5)
    torch.testing.assert_close(ours[~activated], official[~activated], rtol=0, atol=0)
    assert text_to_video_metrics(ours, torch.arange(16) % 10) == text_to_video_metrics(official, torch.arange(16) % 10)


def test_sinkhorn_reproduces_ucofia_biases_and_text_to_video_scores():
    values = _fixture("sinkhorn_knopp")
    for iterations, suffix in ((4, ""), (8, "_8")):
        row_bias, column_bias = sinkhorn_biases(values["bank_logits"], iterations)
        torch.testing.assert_close(row_bias, values[f"row_log_scaling{suffix}"], rtol=0, atol=1e-5)
        torch.testing.assert_close(column_bias, values[f"column_log_scaling{suffix}"], rtol=0, atol=1e-5)
    ours = sinkhorn_normalize(values["test_logits"], values["bank_logits"])
    torch.testing.assert_close(ours.float(), values["text_to_video"], rtol=0, atol=1e-5)


def test_sinkhorn_reproduces_ucofia_video_to_text_bias():
    """UCoFiA's video->text side: the bank is training videos, the bias goes on each test caption's row."""
    values = _fixture("sinkhorn_knopp")
    _, text_bias = sinkhorn_biases(values["video_bank_logits"].T)
    torch.testing.assert_close(text_bias, values["text_log_scaling_v2t"], rtol=0, atol=1e-5)
    torch.testing.assert_close(values["test_logits"] + text_bias[:, None], values["video_to_text"], rtol=0, atol=1e-5)


# ------------------------------------------------------------------ DSL


def test_dsl_formula_on_a_hand_case_with_several_captions_per_video():
    sim = torch.tensor([[2.0, 0.0], [1.0, 0.5], [0.0, 3.0]], dtype=torch.float64)  # captions 0, 1 -> video 0
    ours = dual_softmax_text_to_video(sim, caption_to_video=[0, 0, 1])
    e = sim.exp()
    # Each video's group counts once, as the mean over its captions.
    denominator = torch.stack([(e[0] + e[1]) / 2, e[2]]).sum(dim=0)
    torch.testing.assert_close(ours, sim * e / denominator)


def test_dsl_equals_the_plain_softmax_with_one_caption_per_video():
    sim = torch.randn(7, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 5
    plain = inverted_softmax(sim, temperature=2.0)
    torch.testing.assert_close(dual_softmax_text_to_video(sim, 2.0), plain)
    torch.testing.assert_close(dual_softmax_text_to_video(sim, 2.0, caption_to_video=torch.arange(7)), plain)


def test_dsl_does_not_penalise_videos_with_more_captions():
    """Video 0 has 5 captions, video 1 one. The plain softmax over all captions divides video 0's prior by about its
    caption count, so the last query (slightly preferring its video 0) moves to video 1; balanced groups do not."""
    sim = torch.tensor([[5.0, 4.0]] * 4 + [[1.0, 5.0], [4.6, 4.4]], dtype=torch.float64)
    targets = torch.tensor([0, 0, 0, 0, 1, 0])
    plain = dual_softmax_text_to_video(sim)
    balanced = dual_softmax_text_to_video(sim, caption_to_video=targets)
    assert plain[5, 0] < plain[5, 1]  # the plain one moves the last query off its video (with 5 captions)
    assert balanced[5, 0] > balanced[5, 1]
    assert text_to_video_metrics(balanced, targets)["R@1"] > text_to_video_metrics(plain, targets)["R@1"]


def test_dsl_counts_a_repeated_query_text_once():
    generator = torch.Generator().manual_seed(2)
    sim = torch.randn(5, 5, generator=generator, dtype=torch.float64) * 3
    repeated = torch.cat([sim, sim[[0]].repeat(20, 1)])  # query 0 sent 21 times, all for video 0
    targets = torch.cat([torch.arange(5), torch.zeros(20, dtype=torch.int64)])
    ids = torch.cat([torch.arange(5), torch.zeros(20, dtype=torch.int64)])
    once = dual_softmax_text_to_video(repeated, caption_to_video=targets, query_ids=ids)
    torch.testing.assert_close(once[:5], dual_softmax_text_to_video(sim))
    spammed = dual_softmax_text_to_video(repeated)
    assert not torch.allclose(spammed[1:5], dual_softmax_text_to_video(sim)[1:5])
    with pytest.raises(ValueError, match="equal ids must mark the same query text"):
        dual_softmax_text_to_video(sim, query_ids=[0, 0, 1, 2, 3])


def test_dsl_keeps_a_permutation_like_matrix_perfect_in_both_directions():
    permutation = torch.tensor([3, 0, 4, 1, 2])
    sim = torch.full((5, 5), 1.0, dtype=torch.float64)
    sim[torch.arange(5), permutation] = 10.0
    assert text_to_video_metrics(dual_softmax_text_to_video(sim), permutation)["R@1"] == 100.0
    assert video_to_text_metrics(dual_softmax_video_to_text(sim), permutation)["R@1"] == 100.0


def test_dsl_video_to_text_uses_the_softmax_over_videos():
    sim = torch.tensor([[3.0, 1.0, 0.0], [2.5, 0.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(dual_softmax_video_to_text(sim), sim * torch.softmax(sim, dim=1))
    with pytest.raises(ValueError, match="temperature must be positive"):
        dual_softmax_video_to_text(sim, temperature=0.0)


# ------------------------------------------------------------------ QB-Norm


def test_querybank_norm_plain_inverted_softmax_and_refusals():
    generator = torch.Generator().manual_seed(3)
    sim = torch.rand(4, 3, generator=generator, dtype=torch.float64)
    bank = torch.rand(6, 3, generator=generator, dtype=torch.float64)
    expected = 20 * sim - torch.logsumexp(20 * bank, dim=0)
    torch.testing.assert_close(querybank_normalize(sim, bank, dynamic=False), expected)
    with pytest.raises(ValueError, match="query bank is empty"):
        querybank_normalize(sim, torch.empty(0, 3))
    with pytest.raises(ValueError, match="3 video columns.*same gallery"):
        querybank_normalize(torch.rand(4, 5), bank)
    with pytest.raises(ValueError, match="looks like the test split"):
        querybank_normalize(sim, torch.cat([bank, sim]))
    with pytest.raises(ValueError, match="k must be between 1 and the 3 videos"):
        querybank_normalize(sim, bank, k=4)
    with pytest.raises(ValueError, match="bank_sim.*NaN"):
        querybank_normalize(sim, bank.clone().fill_(float("nan")))


def test_querybank_norm_sinks_a_hub_video():
    """Video 1 is every bank caption's favourite; a test query that slightly prefers it returns to its own."""
    sim = torch.tensor([[0.50, 0.55], [0.2, 0.6]], dtype=torch.float64)
    bank = torch.tensor([[0.1, 0.6], [0.2, 0.7], [0.6, 0.5]], dtype=torch.float64)
    assert text_to_video_metrics(sim, [0, 1])["R@1"] == 50.0
    assert text_to_video_metrics(querybank_normalize(sim, bank), [0, 1])["R@1"] == 100.0


# ------------------------------------------------------------------ Sinkhorn-Knopp


def test_sinkhorn_plan_becomes_doubly_stochastic():
    log_kernel = torch.randn(6, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 2
    after_one = sinkhorn_log_plan(log_kernel, num_iterations=1).exp()
    torch.testing.assert_close(after_one.sum(dim=0), torch.ones(6, dtype=torch.float64))  # columns after each update
    plan = sinkhorn_log_plan(log_kernel, num_iterations=200).exp()
    torch.testing.assert_close(plan.sum(dim=0), torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(plan.sum(dim=1), torch.ones(6, dtype=torch.float64))


def test_sinkhorn_is_finite_on_large_logits_and_differentiable():
    log_kernel = (torch.randn(5, 4, generator=torch.Generator().manual_seed(5)) * 1000).requires_grad_()
    log_a, log_b = sinkhorn_log_scalings(log_kernel)
    assert torch.isfinite(log_a).all() and torch.isfinite(log_b).all()
    row_bias, column_bias = sinkhorn_biases(log_kernel)
    column_bias.sum().backward()
    assert torch.isfinite(log_kernel.grad).all()
    torch.testing.assert_close(torch.logsumexp(row_bias.detach(), 0), torch.tensor(0.0), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="num_iterations must be >= 1"):
        sinkhorn_log_scalings(log_kernel, 0)
    with pytest.raises(ValueError, match="non-empty"):
        sinkhorn_log_scalings(torch.empty(0, 3))


# ------------------------------------------------------------------ options and the bank


def test_postprocessing_spellings_parse_to_the_same_methods():
    expected = (DualSoftmax(), QueryBankNorm(beta=10.0, bank_size=50), SinkhornNorm())
    assert parse_postprocessing(["dsl", {"qb_norm": {"beta": 10.0, "bank_size": 50}}, "sk_norm"]) == expected
    assert parse_postprocessing({"dsl": None, "qb_norm": {"beta": 10.0, "bank_size": 50}, "sk_norm": {}}) == expected
    assert parse_postprocessing(postprocessing_settings(expected)) == expected
    assert parse_postprocessing("dsl, sk_norm") == (DualSoftmax(), SinkhornNorm())
    assert parse_postprocessing(None) == ()
    assert SinkhornNorm().iterations == DEFAULT_SINKHORN_ITERATIONS == 4  # UCoFiA's, in both modules


@pytest.mark.parametrize("value, message", [
    (["dsl", "dls"], "unknown method 'dls'"),
    ({"qb_norm": {"betta": 3}}, r"unknown settings \['betta'\]"),
    (["dsl", "dsl"], "more than once"),
    ({"sk_norm": {"iterations": 0}}, "iterations must be a positive integer"),
    ({"dsl": {"temperature": -1}}, "temperature must be a positive number"),
    ({"qb_norm": {"dynamic": "yes"}}, "dynamic must be true or false"),
    (3, "must be a method name, a list or a mapping"),
])
def test_postprocessing_errors_name_the_method_and_setting(value, message):
    with pytest.raises(ValueError, match=message):
        parse_postprocessing(value)


def test_query_bank_refuses_the_evaluated_split_and_an_empty_bank():
    train = [{"video_id": "v1", "video_path": "/d/v1.mp4"}, {"video_id": "v2", "video_path": "/d/v2.mp4"}]
    test = [{"video_id": "v3", "video_path": "/d/v3.mp4"}]
    refuse_leaking_query_bank(train, test)
    with pytest.raises(ValueError, match=r"shares 1 videos \(video_id \['v3'\]\).*leaks the answers"):
        refuse_leaking_query_bank(train + test, test)
    with pytest.raises(ValueError, match="query bank is empty"):
        bank_captions(["", "  "])


def test_bank_captions_are_distinct_and_a_smaller_bank_is_part_of_a_larger():
    captions = [f"caption {index % 30}" for index in range(90)]
    everything = bank_captions(captions)
    assert sorted(everything) == sorted(set(captions))
    assert bank_captions(captions, 10) == everything[:10]
    assert bank_captions(captions, 1000) == everything


def test_reading_postprocessing_options_loads_no_torch():
    """`unitrim-compare` checks a recipe's postprocessing before torch loads (and `unitrim-compare --help` stays fast)."""
    import subprocess
    import sys

    code = ("import sys; from unitrim_hf.comparison.recipes import recipe_from_dict; "
            "recipe_from_dict({'variants': {'a': 'unitrim'}, 'postprocessing': ['dsl', 'qb_norm', 'sk_norm']}); "
            "print('torch' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"


def test_report_puts_postprocessed_numbers_beside_the_raw_ones_also_for_older_reports():
    from unitrim_hf.evaluation.report import render_markdown

    raw = {"text_to_video": {"R@1": 20.0, "Rsum": 100.0}, "video_to_text": {"R@1": 21.0, "Rsum": 101.0}}
    evaluation = {"num_captions": 4, "num_videos": 4, "metrics": raw, "settings": {}}
    newer = {**evaluation, "postprocessed_metrics": {"dsl": {"text_to_video": {"R@1": 30.0, "Rsum": 110.0}},
                                                     "sk_norm": {"text_to_video": {"R@1": 25.0, "Rsum": 105.0}}}}
    lines = render_markdown(newer).splitlines()
    assert "| | R@1 raw | R@1 DSL | R@1 SK-norm | Rsum raw | Rsum DSL | Rsum SK-norm |" in lines
    assert "| text → video | 20.0 | 30.0 | 25.0 | 100.0 | 110.0 | 105.0 |" in lines
    assert "| video → text | 21.0 | - | - | 101.0 | - | - |" in lines
    older = {**evaluation, "dsl_metrics": {"text_to_video": {"R@1": 30.0, "Rsum": 110.0}}}  # metrics.json before
    assert "| text → video | 20.0 | 30.0 | 100.0 | 110.0 |" in render_markdown(older).splitlines()
    assert "R@1 DSL" not in render_markdown(evaluation)
