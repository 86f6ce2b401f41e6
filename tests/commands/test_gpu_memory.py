"""The gpu_memory rule at enqueue: refused with what it needs and what would fit; off when the
server's GPU memory is unknown."""
from __future__ import annotations

import pytest

from commands.errors import CommandError
from commands.gpu_memory import check_gpu_memory
from commands.job_options import DiscoOptions, JobLimits, build_job
from engine.spec.render import RenderSpec


def test_unknown_gpu_memory_refuses_nothing():
    check_gpu_memory(RenderSpec.from_dict({"text_prompts": "x", "clip_models": ["RN50x64::openai"]}), 0.0)


def test_too_big_a_job_is_refused_with_the_rule_and_a_fix():
    options = DiscoOptions(prompt="a lighthouse", width=1280, height=768,
                           settings="clip_models=ViT-B-32::openai,RN50x64::openai")
    with pytest.raises(CommandError) as caught:
        build_job(options, limits=JobLimits(max_pixels=2_000_000, gpu_memory_gb=6.0))
    assert caught.value.rule == "gpu_memory"
    message = str(caught.value)
    assert "needs ~" in message and "this server's GPU has 6 GB" in message and "gpu_memory" in message
    assert "use " in message or "drop " in message


def test_a_job_that_fits_is_queued():
    parsed = build_job(DiscoOptions(prompt="a lighthouse", width=512, height=512),
                       limits=JobLimits(gpu_memory_gb=80.0))
    assert parsed.spec.width == 512


def test_every_study_cell_and_the_command_line_are_checked(tmp_path, capsys):
    """A study whose axes make one cell too big is refused on the way into the queue, from
    Discord (`bot.queueing.enqueue_spec`) and from `disco jobs submit` alike."""
    from disco.cli import main
    from engine.spec.study import build_study

    study = build_study(RenderSpec(width=256, height=256, seed=1), "width=256,1280", "height=256,768")
    check_gpu_memory(study.cells()[0].spec, 8.5)
    with pytest.raises(CommandError) as err:
        check_gpu_memory(study, 8.5)
    assert err.value.rule == "gpu_memory"
    (tmp_path / "study.json").write_text(study.to_json())
    (tmp_path / "config.toml").write_text("[engine]\ngpu_memory_gb = 8.5\n")
    code = main(["jobs", "submit", "--spec", str(tmp_path / "study.json"), "--guild", "1", "--channel", "2",
                 "--user", "3", "--config", str(tmp_path / "config.toml"), "--data-dir", str(tmp_path / "d")])
    assert code == 2 and "gpu_memory" in capsys.readouterr().err
