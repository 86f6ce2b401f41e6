"""The "Enlarge (GoBig)" menu's Discord-free part: its form's fields and bounds, the size GoBig
starts from, what it refuses, how a result of the bot's is known, and what the echo adds."""
from __future__ import annotations

import pytest

from commands.enlarge import (
    ENLARGE_FIELDS,
    IMAGE_USE,
    check_no_size,
    enlarge_form_values,
    enlarge_note,
    gobig_base,
    result_job_id,
)
from commands.errors import CommandError
from commands.message_image import ENLARGE_MENU, MENU_NAMES, SETTINGS_FIELD_MAX, AttachedFile, image_field
from commands.remix import PROMPT_FIELD_MAX
from engine.spec.fields import MAX_SIDE
from engine.spec.gobig import gobig_tiles
from engine.spec.render import RenderSpec

JOB = "01M99MB6CK11RVTRXKZNR28AJ6"


def test_the_menu_and_its_form_fit_discords_caps():
    assert ENLARGE_MENU in MENU_NAMES and len(ENLARGE_MENU) <= 32 and len(MENU_NAMES) <= 5
    assert all(len(field.label) <= 45 and len(field.placeholder) <= 100 for field in ENLARGE_FIELDS)
    assert [field.required for field in ENLARGE_FIELDS] == [True, False]
    assert image_field(3, IMAGE_USE).placeholder == "which of the message's images to enlarge, counted in their order"


def test_the_form_needs_a_prompt_and_bounds_both_fields():
    assert enlarge_form_values({"prompt": " a barn ", "settings": "  "}) == ("a barn", None)
    assert enlarge_form_values({"prompt": "a barn", "settings": " gobig_scale=3 "}) == ("a barn", "gobig_scale=3")
    for values, rule in (({"prompt": ""}, "enlarge_field_required"),
                         ({"prompt": "x" * (PROMPT_FIELD_MAX + 1)}, "enlarge_field_length"),
                         ({"prompt": "a barn", "settings": "x" * (SETTINGS_FIELD_MAX + 1)}, "enlarge_field_length")):
        with pytest.raises(CommandError) as caught:
            enlarge_form_values(values)
        assert caught.value.rule == rule, values
    assert enlarge_form_values({"prompt": "x" * PROMPT_FIELD_MAX})[0] == "x" * PROMPT_FIELD_MAX


@pytest.mark.parametrize("prompt, settings, key", [
    ("a barn", "width=512", "width"), ("a barn", "steps=50; height=512", "height"), ("a barn --ar 3:2", None,
                                                                                     "aspect_ratio"),
    ("a barn --size square", None, "size"),
])
def test_a_size_chosen_in_the_form_is_refused(prompt, settings, key):
    with pytest.raises(CommandError) as caught:
        check_no_size(prompt, settings)
    assert caught.value.rule == "enlarge_size"
    assert str(caught.value).startswith(f"{ENLARGE_MENU}: {key} is the image's own here (rule: enlarge_size)")


def test_other_settings_are_no_size():
    check_no_size("a barn --steps 50", "gobig_scale=3; gobig_skip_ratio=0.5")


@pytest.mark.parametrize("size, base", [
    ((1000, 750), (960, 704)), ((64, 64), (64, 64)), ((40, 24), (64, 64)), ((1, 1), (64, 64)),
    ((1280, 768), (1280, 768)), ((4096, 200), (4096, 192)),
])
def test_gobig_starts_from_the_images_own_size_in_ddss_multiples_of_64(size, base):
    assert gobig_base(*size, max_pixels=1280 * 768, what="pic.png") == base


def test_an_image_over_max_pixels_or_past_dds_longest_side_is_refused():
    assert gobig_base(1280, 768, 1280 * 768, "pic.png") == (1280, 768)  # at the limit: allowed
    with pytest.raises(CommandError) as caught:
        gobig_base(1281, 768, 1280 * 768, "pic.png")
    assert caught.value.rule == "max_pixels"
    assert str(caught.value).startswith(f"{ENLARGE_MENU}: pic.png is 1281×768 = 983,808 pixels, over this server's "
                                        f"983,040 pixels per image (rule: max_pixels)")
    assert str(caught.value).endswith("enlarge a smaller image, or ask an admin to raise max_pixels")
    with pytest.raises(CommandError) as caught:
        gobig_base(MAX_SIDE + 1, 100, 10**7, "strip.png")
    assert caught.value.rule == "enlarge_side" and f"at most {MAX_SIDE} pixels a side" in str(caught.value)


def test_a_result_of_the_bots_is_known_by_its_settings_file_or_its_grid():
    def files(*names):
        return [AttachedFile(name, None) for name in names]
    assert result_job_id(files("out_0.png", f"{JOB}_settings.json")) == JOB
    assert result_job_id(files(f"{JOB}_grid.jpg", "out_0.png", "out_1.png")) == JOB
    assert result_job_id(files("out_0.png", "settings.json", f"{JOB.lower()}_settings.json")) is None
    assert result_job_id(files(f"x{JOB}_settings.json", f"{JOB}_settings.json.png")) is None
    assert result_job_id([]) is None


def test_the_note_says_the_sizes_the_tiles_their_steps_and_their_cost():
    spec = RenderSpec(width=960, height=704, steps=100, gobig=True, gobig_scale=3, gobig_skip_ratio=0.5)
    tiles = len(gobig_tiles(spec))
    assert tiles > 1 and enlarge_note(spec, "photo.png", (1000, 750)) == (
        f"Enlarging photo.png (1000×750, taken as 960×704: DD's sizes are multiples of 64) 3× to 2880×2112: {tiles} "
        f"tiles of 512×512, each re-rendered with the prompt over the last 50 of 100 steps (gobig_skip_ratio 0.5). "
        f"More tiles cost more GPU time; gobig_scale=2 or a smaller image makes fewer.")
    exact = RenderSpec(width=512, height=512, steps=50, gobig=True)
    assert enlarge_note(exact, f"image 1 of job {JOB}", (512, 512)).startswith(
        f"Enlarging image 1 of job {JOB} (512×512) 2× to 1024×1024: ")
    assert enlarge_note(exact, "x.png", (512, 512)).endswith("; a smaller image makes fewer.")
