"""The memory model: monotone in what costs memory, batching chosen to fit, refusals that say
what would fit."""
from __future__ import annotations

import pytest

from engine.spec.memory import (
    batches_per_pass,
    clip_arch,
    fits,
    memory_data,
    memory_refusal,
    predict_peak,
)
from engine.spec.render import RenderSpec

DD_DEFAULT = RenderSpec.from_dict({"text_prompts": "a lighthouse"})  # 1280×768, 3 CLIPs, secondary


def test_dd_clip_architectures_all_have_figures():
    dd_clips = ["ViT-B-32", "ViT-B-16", "RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-L-14", "ViT-L-14-336"]
    assert set(dd_clips) <= set(memory_data()["clip"])
    assert clip_arch("ViT-B-32-quickgelu::laion400m_e32") == "ViT-B-32"


@pytest.mark.parametrize("change", [dict(width=1920, height=1088), dict(use_secondary_model=False),
                                    dict(clip_models=["ViT-B-32::openai", "ViT-L-14-336::openai"]),
                                    dict(cut_innercut="[20]*1000")])
def test_more_of_anything_needs_more(change):
    assert predict_peak(DD_DEFAULT.replace(**change)).total_gb > predict_peak(DD_DEFAULT).total_gb


def test_checkpointing_and_the_loop_need_less():
    no_secondary = DD_DEFAULT.replace(use_secondary_model=False)
    assert predict_peak(no_secondary).total_gb < predict_peak(no_secondary.replace(use_checkpoint=False)).total_gb
    assert (predict_peak(DD_DEFAULT, cut_batches_per_pass=1).total_gb
            < predict_peak(DD_DEFAULT, cut_batches_per_pass=4).total_gb)


def test_dd_default_fits_an_h100_with_all_batches_in_one_pass():
    assert predict_peak(DD_DEFAULT).total_gb < 40
    assert batches_per_pass(DD_DEFAULT, 0.9 * 80) == DD_DEFAULT.cutn_batches


def test_batches_per_pass_falls_back_to_dd_loop():
    loop = predict_peak(DD_DEFAULT, cut_batches_per_pass=1).total_gb
    two = predict_peak(DD_DEFAULT, cut_batches_per_pass=2).total_gb
    assert batches_per_pass(DD_DEFAULT, (loop + two) / 2) == 1
    assert batches_per_pass(DD_DEFAULT, two + 0.01) == 2


def test_refusal_names_need_memory_and_what_would_fit():
    big = DD_DEFAULT.replace(clip_models=["ViT-B-32::openai", "ViT-B-16::openai", "RN50::openai",
                                          "ViT-L-14-336::openai"], use_secondary_model=False)
    need = predict_peak(big, cut_batches_per_pass=1).total_gb
    memory = round(predict_peak(big.replace(width=1024, height=640), cut_batches_per_pass=1).total_gb + 0.1, 1)
    message = memory_refusal(big, memory)
    assert message and f"needs ~{int(need) + 1} GB" in message and f"has {memory:g} GB" in message
    assert "1280×768 with ViT-B-32 + ViT-B-16 + RN50 + ViT-L-14-336" in message
    width, height = (int(v) for v in message.split(": use ")[1].split(" ")[0].split("×"))
    assert width % 64 == 0 and height % 64 == 0 and abs(width / height - 1280 / 768) < 0.1
    assert width * height >= 1024 * 640 and fits(big.replace(width=width, height=height), memory)
    assert memory_refusal(big, need + 1) is None


def test_refusal_offers_dropping_the_hungriest_clip():
    big = DD_DEFAULT.replace(clip_models=["ViT-B-32::openai", "RN50x64::openai"])
    without = predict_peak(DD_DEFAULT.replace(clip_models=["ViT-B-32::openai"]), cut_batches_per_pass=1).total_gb
    message = memory_refusal(big, without + 0.5)
    assert message and "drop RN50x64" in message
