"""Parameter studies on Discord: queueing a `/study`, its result message, and the cell buttons.

Queueing: the base settings go through the same option pipeline as `/disco`
(`bot.queueing.build_options`: the guild's defaults and limits), then
`engine.spec.study.build_study` adds the axes (every value validated as a render setting) with the
bot's `max_study_cells` cap. The axes could push a cell past the guild's limits (e.g.
`steps=100,5000`), so every cell is checked against them again; the job is stored with the
largest cell's size, steps and cuts, so storage's caps see the study's worst case, and with
`frames` = the number of cells (the engine reports cell k as frame k-1).

Buttons: the grid message carries one "Cell k" button per cell (`disco:cell:<job>:<k>`,
≤ 25 a message — 5 rows of 5 — so a larger study's further buttons follow in more messages).
A click answers **ephemerally** with the cell's full-size PNG: any member may look at any cell
without filling the channel; the answer carries "Open as /disco"
(`disco:cellopen:<job>:<k>`), which queues that cell's exact settings (its seed included) as a
still job whose parent is the study, charged to whoever clicked and under the same limits as
`/disco`. All state comes from SQLite, so the buttons keep working after a restart. What a
click raises is answered by `bot.answers.answer_error`, as for a slash command.

Torch-free: only engine.spec.study and engine.media.grid are imported from the engine.
"""
from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import discord
from PIL import Image

from bot.attachments import read_file
from bot.answers import NO_MENTIONS, NOT_DONE, REQUEUE, AnsweringView, Wording, answers_errors, think
from bot.checks import job_of_this_server
from bot.jobtext import kind_words
from bot.queueing import build_options, echo_for, enqueue_options, enqueue_spec, spec_preset
from commands.errors import CommandError
from commands.job_options import DiscoOptions, JobLimits, cuts_per_step
from engine.media.grid import fit_grid
from engine.spec.study import StudySpec, build_study
from storage import Job, JobKind, JobState, NotFound

log = logging.getLogger("disco.bot.study")

BUTTONS_PER_MESSAGE = 25  # Discord: 5 action rows of 5 buttons
# Image settings are attachments-only (never a path typed by a user), so they cannot be axes.
IMAGE_SETTINGS = ("init_image", "image_prompts")


async def enqueue_study(bot: Any, interaction: discord.Interaction, options: DiscoOptions,
                        x: str, y: str | None, *, preset_name: str | None = None) -> tuple[Job, str]:
    """Build, check and enqueue a study; returns the job and its echo. Raises the refusal."""
    for name, text in (("x", x), ("y", y or "")):
        key = text.partition("=")[0].strip().lower().replace("-", "_")
        if key in IMAGE_SETTINGS:
            raise CommandError(f"{name} axis: {key} cannot be varied (study_axes): images come only "
                               f"as attachments to /disco; vary another setting", key, rule="study_axes")
    parsed = (await build_options(bot, interaction, options, preset_name=preset_name)).without_gobig("a study's cells")
    study = build_study(parsed.spec, x, y, max_cells=max(1, bot.config.max_study_cells))
    guild = await bot.db.guilds.get(interaction.guild_id)
    check_cells(study, JobLimits.from_guild(guild.limits))
    job = await enqueue_spec(bot, interaction, study, own_defaults=parsed.own_defaults)
    echo = await echo_for(bot.db, job, parsed, limit=1700)
    head, _, rest = echo.partition("\n")
    return job, "\n".join(part for part in (head, study_line(study), rest) if part)[:2000]


def study_line(study: StudySpec) -> str:
    """'study of 6 cells (3 × 2): x clip_guidance_scale = 1500, 5000, 15000 · y …'"""
    columns, rows = study.shape
    axes = [f"x `{study.x.param}` = {', '.join(study.x.labels)}"]
    if study.y is not None:
        axes.append(f"y `{study.y.param}` = {', '.join(study.y.labels)}")
    cells = f"{study.n_cells} cell" + ("s" if study.n_cells != 1 else "")
    text = (f"**study of {cells}** ({columns} × {rows}, seed `{study.base.seed}`): "
            + " · ".join(axes))
    return text.replace("@", "@\u200b")[:600]


def check_cells(study: StudySpec, limits: JobLimits) -> None:
    """Refuse a study whose axes take a cell past the guild's limits (the base was clamped by
    build_job already; an axis value is the user's explicit choice, so it is refused, not clamped)."""
    for cell in study.cells():
        spec, label = cell.spec, cell_label(study, cell.index + 1)
        if spec.steps > limits.max_steps:
            raise CommandError(f"the cell {label} has {spec.steps} steps; this server allows at most "
                               f"{limits.max_steps} (max_steps) — use smaller axis values", "steps",
                               rule="max_steps")
        if spec.width * spec.height > limits.max_pixels:
            raise CommandError(f"the cell {label} is {spec.width}×{spec.height}; this server allows at most "
                               f"{limits.max_pixels:,} pixels (max_pixels) — use smaller sizes", "width",
                               rule="max_pixels")
        if cuts_per_step(spec) > limits.max_cuts:
            raise CommandError(f"the cell {label} uses {cuts_per_step(spec)} cuts per step; this server "
                               f"allows at most {limits.max_cuts} (max_cuts) — lower the cut settings or "
                               f"cutn_batches", "cutn_batches", rule="max_cuts")


def cell_label(study: StudySpec, k: int) -> str:
    """'clip_guidance_scale=1500, steps=50' for cell k (1-based)."""
    columns, _ = study.shape
    column, row = (k - 1) % columns, (k - 1) // columns
    label = f"{study.x.param}={study.x.labels[column]}"
    if study.y is not None:
        label += f", {study.y.param}={study.y.labels[row]}"
    return label


def result_files(job: Job, upload_limit: int) -> tuple[list[discord.File], list[str]]:
    """The grid sized to the upload limit (the PNG stays on disk) and the study JSON."""
    files, notes = [], []
    grid = Path(job.artifacts[0]) if job.artifacts else None
    try:
        with Image.open(grid) as image:
            data, fmt = fit_grid(image.convert("RGB"), upload_limit)
        files.append(discord.File(io.BytesIO(data), f"{job.id}_grid.{'png' if fmt == 'png' else 'jpg'}"))
        if fmt != "png":
            notes.append("the grid is over this server's upload limit, so it is posted as a JPEG; "
                         "each cell's button gives its full PNG")
    except (OSError, TypeError, ValueError) as exc:
        notes.append(f"the grid could not be attached ({exc})")
    study = json.dumps(json.loads(job.spec_json), indent=2, sort_keys=True).encode()
    files.append(discord.File(io.BytesIO(study), f"{job.id}_study.json"))
    return files, notes


def cell_views(job_id: str, n_cells: int) -> list[discord.ui.View]:
    """One view of ≤ 25 "Cell k" buttons per message, in cell order."""
    views = []
    for start in range(1, n_cells + 1, BUTTONS_PER_MESSAGE):
        view = AnsweringView(timeout=None)
        for k in range(start, min(n_cells, start + BUTTONS_PER_MESSAGE - 1) + 1):
            view.add_item(CellButton("cell", job_id, k))
        views.append(view)
    return views


class CellButton(discord.ui.DynamicItem[discord.ui.Button],
                 template=r"disco:(?P<action>cell|cellopen):(?P<job>[0-9A-Z]{26}):(?P<k>[0-9]{1,2})"):
    """"Cell k" (fetch the cell's PNG) or "Open as /disco" (queue the cell as a still job)."""

    def __init__(self, action: str, job_id: str, k: int) -> None:
        label = f"Cell {k}" if action == "cell" else f"Open cell {k} as /disco"
        style = discord.ButtonStyle.secondary if action == "cell" else discord.ButtonStyle.primary
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=f"disco:{action}:{job_id}:{k}"))
        self.action, self.job_id, self.k = action, job_id, k

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> CellButton:
        return cls(match["action"], match["job"], int(match["k"]))

    @property
    def wording(self) -> Wording:
        """How a refusal or failure of this click begins (bot.answers)."""
        return REQUEUE if self.action == "cellopen" else NOT_DONE

    @answers_errors
    async def callback(self, interaction: discord.Interaction) -> None:
        await think(interaction, private=True)
        text, extra = await self._act(interaction)
        await interaction.followup.send(text[:2000], ephemeral=True, allowed_mentions=NO_MENTIONS, **extra)

    async def _act(self, interaction: discord.Interaction) -> tuple[str, dict[str, Any]]:
        bot = interaction.client
        job = await job_of_this_server(bot.db, interaction, self.job_id, fix="use the buttons there")
        if job.kind != JobKind.STUDY:
            raise CommandError(f"job {job.id} is {kind_words(job.kind)}, not a study", "job", rule="study_only")
        study = StudySpec.from_json(job.spec_json)
        if not 1 <= self.k <= study.n_cells:
            raise CommandError(f"study {job.id} has cells 1 to {study.n_cells}; there is no cell {self.k}",
                               "cell", rule="cell_number")
        label = cell_label(study, self.k)
        if self.action == "cellopen":
            spec = study.cells()[self.k - 1].spec
            new, text = await enqueue_options(bot, interaction, DiscoOptions(seed=spec.seed), parent=job,
                                              preset=spec_preset(spec.to_dict()))
            log.info("cell %d of study %s queued as job %s for user %s", self.k, job.id, new.id, new.user_id)
            return text, {}
        ref = job.artifacts[self.k] if len(job.artifacts) > self.k else None
        try:
            data = await read_file(bot.db, ref) if job.state == JobState.SUCCEEDED and ref else None
        except NotFound:
            data = None
        if data is None:
            raise CommandError(f"cell {self.k} of study {job.id} is not on the server ({job.state}); "
                               f"queue it again with Open as /disco", "cell", rule="cell_kept")
        if len(data) > interaction.filesize_limit:
            raise CommandError(f"cell {self.k}'s PNG is over this server's upload limit; open it as /disco "
                               f"to render it again", "cell", rule="upload_limit")
        view = AnsweringView(timeout=None)
        view.add_item(CellButton("cellopen", job.id, self.k))
        file = discord.File(io.BytesIO(data), f"{job.id}_cell{self.k:02}.png")
        return (f"**Cell {self.k}** of study `{job.id}`: `{label}`"[:2000].replace("@", "@\u200b"),
                {"file": file, "view": view})
