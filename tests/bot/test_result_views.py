"""The result's buttons (bot/views.py): one row of job actions, one row per image (its own
image index in the custom_id), a select menu past 4 images, within Discord's 5 rows of 5; and the
custom_ids of messages posted before images had rows still route."""
from __future__ import annotations

import re

import pytest

from bot.views import IMAGE_ACTIONS, ROW_WIDTH, ROWS, ImageSelect, JobButton, image_row, result_view
from storage import JobKind

JOB = "01HZX5V3K8Q9M2N4P6R7S8T9VW"


def rows(view):
    return [row["components"] for row in view.to_components()]


@pytest.mark.parametrize("images", [1, 2, 3, 4, 5, 9, 40])
def test_rows_fit_discords_limits_and_each_image_row_acts_on_its_own_image(images):
    layout = rows(result_view(JOB, JobKind.STILL, images))
    assert len(layout) <= ROWS and all(len(row) <= ROW_WIDTH for row in layout)
    assert [c["custom_id"] for c in layout[0]] == [f"disco:{a}:{JOB}" for a in ("new", "same", "remix", "recipe",
                                                                                 "delete")]
    rowed = images if images <= 4 else 3
    for index in range(rowed):
        assert [c["custom_id"] for c in layout[1 + index]] == [f"disco:vary:{JOB}:{index}",
                                                               f"disco:animate:{JOB}:{index}",
                                                               f"disco:gobig:{JOB}:{index}"]
        assert layout[1 + index][0]["label"] == f"Vary {index + 1}"
    if images > 4:
        (select,) = layout[4]
        assert select["custom_id"] == f"disco:image:{JOB}"
        assert [o["value"] for o in select["options"]] == [str(i) for i in range(3, min(images, 28))]


def test_animations_keep_their_four_buttons():
    layout = rows(result_view(JOB, JobKind.ANIMATION))
    assert [c["custom_id"] for row in layout for c in row] == [f"disco:{a}:{JOB}" for a in
                                                                ("new", "same", "recipe", "delete")]


def test_one_more_image_action_is_one_more_entry():
    extra = [*IMAGE_ACTIONS, lambda job_id, image: JobButton("recipe", job_id, image=image)]
    view = result_view(JOB, JobKind.STILL, 2, actions=extra)
    assert [c["custom_id"] for c in rows(view)[2]][-1] == f"disco:recipe:{JOB}:1"


@pytest.mark.parametrize("custom_id, image", [(f"disco:vary:{JOB}", None), (f"disco:vary:{JOB}:2", "2"),
                                              (f"disco:animate:{JOB}", None), (f"disco:remix:{JOB}", None)])
def test_old_and_new_custom_ids_route_to_the_job_button(custom_id, image):
    match = re.fullmatch(JobButton.__discord_ui_compiled_template__, custom_id)
    assert match is not None and match["job"] == JOB and match["image"] == image


@pytest.mark.parametrize("custom_id", [f"disco:vary:{JOB}:1234", f"disco:vary:{JOB}:-1", f"disco:vary:{JOB}:"])
def test_image_indexes_are_bounded(custom_id):
    assert re.fullmatch(JobButton.__discord_ui_compiled_template__, custom_id) is None


def test_the_select_alone_answers_with_one_image_row():
    view = result_view(JOB, JobKind.STILL, 1)
    image_row(view, JOB, 7, 2)
    assert [c["custom_id"] for c in rows(view)[2]] == [f"disco:vary:{JOB}:7", f"disco:animate:{JOB}:7",
                                                       f"disco:gobig:{JOB}:7"]
    assert re.fullmatch(ImageSelect.__discord_ui_compiled_template__, f"disco:image:{JOB}")


@pytest.mark.parametrize("custom_id, routed", [("disco:history:5", True), ("disco:history:99995", True),
                                               ("disco:history:123456", False), ("disco:history:-5", False),
                                               (f"disco:show:{JOB}", True), (f"disco:show:{JOB}x", False)])
def test_history_buttons_carry_bounded_state(custom_id, routed):
    from bot.history import HistoryPage, ShowButton

    templates = (HistoryPage.__discord_ui_compiled_template__, ShowButton.__discord_ui_compiled_template__)
    assert any(re.fullmatch(t, custom_id) for t in templates) is routed
