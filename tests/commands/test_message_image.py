"""The message menus' Discord-free part: which attachment they use, what they refuse, the paint
form's fields and what the painting takes from the image."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from commands.errors import CommandError
from commands.message_image import (
    FORM_MAX_BYTES,
    PRESET_FIELD_MAX,
    ENLARGE_MENU,
    PAINT_MENU,
    SETTINGS_FIELD_MAX,
    AttachedFile,
    MenuForm,
    Picked,
    chosen_settings,
    image_not_downloaded,
    is_still_image,
    paint_form_values,
    paint_note,
    image_field,
    image_number,
    image_shape,
    pick_still_image,
    with_notes,
)
from commands.remix import PROMPT_FIELD_MAX
from engine.media.still_formats import FORMAT_LIST


@pytest.mark.parametrize("name, kind, still", [
    ("a.png", "image/png", True), ("a.jpg", "image/jpeg; charset=binary", True), ("a.gif", "image/gif", True),
    ("photo.heic", "", True), ("photo.HEIC", "application/octet-stream", True), ("a.webp", None, True),
    ("clip.mp4", "video/mp4", False), ("a.png", "text/plain", False), ("notes", None, False),
    ("scan.pdf", "application/pdf", False),
])
def test_a_still_image_is_known_by_its_type_or_else_its_extension(name, kind, still):
    assert is_still_image(AttachedFile(name, kind)) is still


def test_the_first_still_image_is_used_and_said_when_there_are_several():
    files = [AttachedFile("clip.mp4", "video/mp4"), AttachedFile("a.png", "image/png"),
             AttachedFile("b.png", "image/png")]
    picked = pick_still_image(files, PAINT_MENU, "/disco init_image:")
    assert (picked.index, picked.count, picked.filename) == (1, 3, "a.png")
    assert (picked.number, picked.images) == (1, 2)
    assert picked.note("pick another") == "Used attachment 2 of 3, a.png (the message's first still image; pick another)."
    assert pick_still_image(files[:2], PAINT_MENU, "/disco init_image:").note("pick another") == \
        "Used attachment 2 of 2, a.png (the message's first still image)."  # no other image to pick
    assert pick_still_image(files[1:2], PAINT_MENU, "/disco init_image:").note("pick another") == ""


def test_on_a_result_of_the_bots_the_grid_of_its_images_is_passed_over():
    grid = AttachedFile("01M99MB6CK11RVTRXKZNR28AJ6_grid.png", "image/png")
    files = [grid, AttachedFile("out_0.png", "image/png"), AttachedFile("out_1.png", "image/png"),
             AttachedFile("01M99MB6CK11RVTRXKZNR28AJ6_settings.json", "application/json")]
    picked = pick_still_image(files, PAINT_MENU, "/disco init_image:", by_bot=True)
    assert (picked.index, picked.past_grid) == (1, True)
    assert picked.note("pick another") == ("Used attachment 2 of 4, out_0.png (the result's first image, not the "
                                           "grid of them; pick another).")
    assert pick_still_image(files, PAINT_MENU, "/disco init_image:").index == 0  # a member's file of that name
    assert pick_still_image(files[:1], PAINT_MENU, "/disco init_image:", by_bot=True).index == 0  # the grid alone
    second = {"id": 15, "filename": "out_1.png", "url": "https://cdn.discordapp.com/a/out_1.png", "size": 100}
    kept = replace(FORM, picked=replace(picked, filename="pic.png"), more=((2, second),))  # the name is the attachment's
    assert MenuForm.from_json(kept.to_json(), PAINT_MENU) == kept
    attachment, chosen = kept.choose(2)
    assert attachment == second and (chosen.index, chosen.filename, chosen.number, chosen.images) == (2, "out_1.png", 2, 2)
    assert chosen.note("pick another") == ("Used attachment 3 of 4, out_1.png (the result's image number 2, not the "
                                           "grid of them; pick another).")


def test_the_image_field_takes_one_of_the_messages_images():
    assert image_field(4).label == "Image: 1 to 4 (empty: 1)" and len(image_field(10).label) <= 45
    assert [image_number(text, 4, PAINT_MENU) for text in ("", " ", "1", " 4 ")] == [1, 1, 1, 4]
    for text in ("0", "5", "-1", "two", "1.5", "²"):
        with pytest.raises(CommandError) as caught:
            image_number(text, 4, PAINT_MENU)
        assert caught.value.rule == "paint_image_number"
        assert "is not one of this message's 4 images (rule: paint_image_number) — type 1 to 4" in str(caught.value)


def test_a_message_without_attachments_is_refused_with_what_to_do_instead():
    with pytest.raises(CommandError) as caught:
        pick_still_image([], PAINT_MENU, "/disco init_image:")
    assert caught.value.rule == "menu_attachments_only"
    assert "only images attached to a message are read, not links or embeds" in str(caught.value)
    assert str(caught.value).endswith("attach the image to /disco init_image: instead")


def test_attachments_that_are_no_still_image_are_refused_naming_the_formats():
    files = [AttachedFile("clip.mp4", "video/mp4"), AttachedFile("notes.txt", "text/plain; charset=utf-8"),
             AttachedFile("x", None), AttachedFile("fourth.zip", "application/zip")]
    with pytest.raises(CommandError) as caught:
        pick_still_image(files, "Describe image", "/describe image:")
    text = str(caught.value)
    assert caught.value.rule == "menu_still_image" and f"it reads a {FORMAT_LIST} image" in text
    assert "clip.mp4 (video/mp4), notes.txt (text/plain), x (no type);" in text and "fourth.zip" not in text


def test_the_paint_form_needs_a_prompt_and_bounds_both_fields():
    assert paint_form_values({"prompt": " a barn ", "settings": "  "}) == ("a barn", None, None)
    assert paint_form_values({"prompt": "a barn", "settings": "steps=50", "preset": " quick "}) == \
        ("a barn", "steps=50", "quick")
    for values, rule in (({"prompt": "   "}, "paint_field_required"),
                         ({"prompt": "x" * (PROMPT_FIELD_MAX + 1)}, "paint_field_length"),
                         ({"prompt": "a", "settings": "x" * (SETTINGS_FIELD_MAX + 1)}, "paint_field_length"),
                         ({"prompt": "a", "preset": "x" * (PRESET_FIELD_MAX + 1)}, "paint_field_length")):
        with pytest.raises(CommandError) as caught:
            paint_form_values(values)
        assert caught.value.rule == rule and f"rule: {rule}" in str(caught.value)


def test_the_settings_the_member_chose_come_from_the_prompt_flags_and_the_settings():
    assert {"skip_steps", "aspect_ratio"} <= chosen_settings("a barn --skip 20 --ar 3:4", None)
    assert {"steps", "width"} <= chosen_settings("a barn", "steps=50; width=512")
    assert chosen_settings("a barn", None) == set()
    assert chosen_settings("a barn", "not a setting") == set()  # the build refuses it in its own words
    assert chosen_settings("a barn", "steps=50", ("skip_steps", "width")) == {"steps", "skip_steps", "width"}


def test_the_painting_is_shaped_like_the_image_unless_a_size_was_chosen():
    assert image_shape(set(), 768, 1024) == (768, 1024)
    for chosen in ({"width"}, {"height"}, {"size"}, {"aspect_ratio"}):
        assert image_shape(chosen, 768, 1024) is None
    assert image_shape(set(), 0, 10) is None


def test_the_echo_says_what_the_painting_started_from_and_keeps_its_notes_within_the_limit():
    note = paint_note("pic.png", 125, 250, skip_chosen=False)
    assert note.startswith("Started from pic.png: skip_steps 125 of 250 steps (half of them")
    assert paint_note("pic.png", 8, 40, skip_chosen=True) == \
        "Started from pic.png: skip_steps 8 of 40 steps (as you set it)."
    assert with_notes("**Queued**", "", "one") == "**Queued**\none"
    long = with_notes("e" * 1995, "a note", limit=2000)
    assert len(long) <= 2000 and long.endswith("…\na note")


FORM = MenuForm(guild_id=10, channel_id=11, message_id=12, user_id=13,
                attachment={"id": 14, "filename": "pic.png", "url": "https://cdn.discordapp.com/a/pic.png",
                            "size": 100, "content_type": "image/png", "width": 64, "height": 48},
                picked=Picked(1, 2, "pic.png"))


def test_the_paint_form_is_kept_as_json_and_read_back_whole():
    data = FORM.to_json()
    assert len(data) < FORM_MAX_BYTES and MenuForm.from_json(data, PAINT_MENU) == FORM
    assert MenuForm.from_json(data, PAINT_MENU).picked.note("/disco init_image:") == \
        "Used attachment 2 of 2, pic.png (the message's first still image)."


@pytest.mark.parametrize("data", [
    b"", b"\x89PNG\r\n", b"[1, 2]", b"x" * (FORM_MAX_BYTES + 1),
    json.dumps({**json.loads(FORM.to_json()), "kind": "remix_form"}).encode(),
    json.dumps({**json.loads(FORM.to_json()), "user": True}).encode(),
    json.dumps({**json.loads(FORM.to_json()), "guild": "10"}).encode(),
    json.dumps({**json.loads(FORM.to_json()), "attachment": ["pic.png"]}).encode(),
    json.dumps({**json.loads(FORM.to_json()), "attachment": {"url": "https://cdn.discordapp.com/a"}}).encode(),
    json.dumps({key: value for key, value in json.loads(FORM.to_json()).items() if key != "message"}).encode(),
    json.dumps({**json.loads(FORM.to_json()), "more": [[2]]}).encode(),
    json.dumps({**json.loads(FORM.to_json()), "more": [["2", {"filename": "b.png"}]]}).encode(),
    json.dumps({**json.loads(FORM.to_json()), "more": 3}).encode(),
], ids=["empty", "an image", "a list", "too large", "another kind", "a bool id", "a text id", "a list attachment",
        "no filename", "no message", "an image without its attachment", "a text index", "no list of images"])
def test_anything_but_a_kept_paint_form_is_an_unknown_form(data):
    with pytest.raises(CommandError) as caught:
        MenuForm.from_json(data, PAINT_MENU)
    assert caught.value.rule == "menu_form_unknown"


ENLARGE_FORM = replace(FORM, kind="enlarge_form", job_id="01M99MB6CK11RVTRXKZNR28AJ6", shown="a lighthouse:2")


def test_the_enlarge_form_keeps_its_kind_and_the_results_job_and_no_menu_reads_anothers_form():
    assert MenuForm.from_json(ENLARGE_FORM.to_json(), ENLARGE_MENU, "enlarge_form") == ENLARGE_FORM
    for data, kind in ((ENLARGE_FORM.to_json(), "paint_form"), (FORM.to_json(), "enlarge_form")):
        with pytest.raises(CommandError) as caught:
            MenuForm.from_json(data, ENLARGE_MENU, kind)
        assert caught.value.rule == "menu_form_unknown"


@pytest.mark.parametrize("job", ["01m99mb6ck11rvtrxkznr28aj6", "../etc", 12, ["01M99MB6CK11RVTRXKZNR28AJ6"]])
def test_a_kept_enlarge_form_naming_no_job_id_is_an_unknown_form(job):
    data = json.dumps({**json.loads(ENLARGE_FORM.to_json()), "job": job}).encode()
    with pytest.raises(CommandError) as caught:
        MenuForm.from_json(data, ENLARGE_MENU, "enlarge_form")
    assert caught.value.rule == "menu_form_unknown"
    assert str(caught.value).endswith("right-click the message again to open a new one")


def test_a_download_refused_when_the_form_is_sent_says_why_and_what_to_do():
    gone = image_not_downloaded(PAINT_MENU, "pic.png", 404, "HTTP 404")
    assert gone.rule == "menu_message_gone" and "right-click the image where it is posted now" in str(gone)
    assert str(gone).startswith(f"{PAINT_MENU}: pic.png is no longer on Discord: its message was deleted")
    for status, why in ((503, "HTTP 503"), (None, "TimeoutError")):
        failed = image_not_downloaded(PAINT_MENU, "pic.png", status, why)
        assert failed.rule == "attachment_download"
        assert f"could not be downloaded from Discord ({why}; rule: attachment_download); right-click the " \
               f"message again in a moment" in str(failed)
