"""The validated settings of one still-image render: `RenderSpec`.

Every Disco Diffusion 5.7 still-image parameter, with DD's default and explicit bounds. Every
invalid input becomes one `SpecError` listing each problem as
``param: what is wrong; allowed: range; fix``. Harmless adjustments (a width rounded down to
a multiple of 64, an unsafe batch_name made safe) are applied and recorded in `spec.notes`,
which stays out of the canonical JSON so equal specs serialise byte-identically.

Torch-free on purpose: the CLI and the bot validate settings without loading the engine.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, PrivateAttr, ValidationError, model_validator

from engine.errors import SpecError
from engine.models.registry import get_model
from engine.spec import fields
from engine.spec.defaults import default_skip_steps, follow_steps, model_defaults
from engine.spec.gobig import gobig_problems
from engine.spec.fields import SCHEMA_VERSION, SPEC_FIELDS, CanonicalJSON, Invalid
from engine.spec.jsontext import read_json
from engine.spec.prompts import WeightedPrompt, format_prompts, normalized_weights
from engine.spec.schedules import SCHEDULE_LENGTH, format_number, parse_schedule, schedule_index

__all__ = [
    "SCHEMA_VERSION", "SPEC_FIELDS", "RenderSpec", "CutSchedules", "CutStep", "default_skip_steps",
    "follow_steps",
]


def _v(check, *args) -> BeforeValidator:
    """A pydantic before-validator calling `check(value, field_name, *args)`."""
    return BeforeValidator(lambda value, info: check(value, info.field_name, *args))


Prompts = Annotated[list[WeightedPrompt], _v(fields.check_prompts)]
Flag = Annotated[bool, _v(fields.check_flag)]
Side = Annotated[int, _v(fields.check_side)]


def _int(low: int, high: int):
    return Annotated[int, _v(fields.check_int, low, high)]


def _float(low: float, high: float, *, low_open: bool = False):
    return Annotated[float, _v(fields.check_float, low, high, low_open)]


def _schedule(**bounds):
    return Annotated[str, _v(fields.check_schedule, bounds)]


SCALE = 1e7  # upper bound of every loss scale; DD users rarely go past 1e5
DESCRIBE_ANSWER = "describe.json"  # a `describe` job's one result file, read back by the bot
# Said of a name nothing is close to: where the settings are named, on Discord and on the CLI.
SETTING_NAMES_HINT = ("settings are Disco Diffusion 5.x's names, e.g. steps, clip_guidance_scale, "
                      "tv_scale, cutn_batches, cut_overview, skip_steps, eta")


def batch_image_seed(seed: int, index: int) -> int:
    """The seed image `index` (0-based) of a batch is drawn with, as DD: the spec's seed + index."""
    return (seed + index) % 2**32


class CutSchedules(NamedTuple):
    """The four cut schedules expanded to 1000 entries each (index 0 = the noisiest step)."""

    overview: tuple[int, ...]
    innercut: tuple[int, ...]
    ic_pow: tuple[float, ...]
    icgray_p: tuple[float, ...]


class CutStep(NamedTuple):
    """The cut settings DD uses at one timestep: what the guidance cuts at that step."""

    overview: int
    innercut: int
    ic_pow: float
    icgray_p: float

    @property
    def total(self) -> int:
        return self.overview + self.innercut


class RenderSpec(CanonicalJSON, BaseModel):
    """Every setting of one still-image render, validated. Immutable: use `replace`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text_prompts: Prompts = list(fields.DEFAULT_TEXT_PROMPTS)
    image_prompts: Annotated[list[WeightedPrompt], _v(fields.check_image_prompts)] = []
    width: Side = 1280
    height: Side = 768
    steps: _int(2, 1000) = 250  # guided-diffusion's ddimN respacing needs N ≥ 2
    skip_steps: _int(0, 999) = 10
    clip_guidance_scale: _float(0, SCALE) = 5000.0
    tv_scale: _float(0, SCALE) = 0.0
    range_scale: _float(0, SCALE) = 150.0
    sat_scale: _float(0, SCALE) = 0.0
    cutn_batches: _int(1, 64) = 4
    skip_augs: Flag = False
    init_image: Annotated[str | None, _v(fields.check_init_image)] = None
    init_scale: _float(0, SCALE) = 1000.0
    diffusion_model: Annotated[str, _v(fields.check_choice)] = (
        "512x512_diffusion_uncond_finetune_008100"
    )
    use_secondary_model: Flag = True
    sampling_mode: Annotated[Literal["ddim", "plms"], _v(fields.check_choice)] = "ddim"
    clip_models: Annotated[list[str], _v(fields.check_clip_models)] = [
        "ViT-B-32::openai", "ViT-B-16::openai", "RN50::openai",
    ]
    cut_overview: _schedule(**fields.cut_schedule_bounds("cut_overview")) = "[12]*400+[4]*600"
    cut_innercut: _schedule(**fields.cut_schedule_bounds("cut_innercut")) = "[4]*400+[12]*600"
    cut_ic_pow: _schedule(**fields.cut_schedule_bounds("cut_ic_pow")) = "[1]*1000"
    cut_icgray_p: _schedule(**fields.cut_schedule_bounds("cut_icgray_p")) = "[0.2]*400+[0]*600"
    perlin_init: Flag = False
    perlin_mode: Annotated[Literal["mixed", "color", "gray"], _v(fields.check_choice)] = "mixed"
    seed: Annotated[int | None, _v(fields.check_seed)] = None
    eta: _float(0, 1) = 0.8
    clip_denoised: Flag = False
    clamp_grad: Flag = True
    clamp_max: _float(0, 10, low_open=True) = 0.05
    fuzzy_prompt: Flag = False
    rand_mag: _float(0, 10) = 0.05
    use_vertical_symmetry: Flag = False
    use_horizontal_symmetry: Flag = False
    transformation_percent: Annotated[list[float], _v(fields.check_transformation_percent)] = [0.09]
    intermediate_saves: Annotated[int | list[int], _v(fields.check_intermediate_saves)] = 0
    display_rate: _int(1, 1000) = 20
    n_batches: _int(1, 100) = 50
    use_checkpoint: Flag = True
    batch_name: Annotated[str, _v(fields.check_batch_name)] = "TimeToDisco"
    gobig: Flag = False
    gobig_scale: _int(2, 3) = 2
    gobig_overlap: _int(8, 256) = 64
    gobig_skip_ratio: _float(0.1, 0.95) = 0.6
    gobig_init: Annotated[str | None, _v(fields.check_init_image)] = None
    describe: Flag = False

    _notes: tuple[str, ...] = PrivateAttr(default=())
    _schedules: CutSchedules | None = PrivateAttr(default=None)

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise fields.spec_error(exc, examples=fields.FIELD_EXAMPLES, allowed=fields.SPEC_ALLOWED) from None

    @model_validator(mode="wrap")
    @classmethod
    def _collect_notes(cls, data: Any, handler):
        """Field validators append notes to a context-local list; attach them to the result."""
        notes: list[str] = []
        token = fields.set_notes_sink(notes)
        try:
            spec = handler(data)
        finally:
            fields.reset_notes_sink(token)
        if notes:
            spec._notes = tuple(dict.fromkeys(spec._notes + tuple(notes)))
        return spec

    @model_validator(mode="after")
    def _check_together(self) -> RenderSpec:
        """Rules that involve several fields; all problems are reported at once."""
        problems: list[Invalid] = []
        self._apply_model_defaults()
        if self.skip_steps >= self.steps and "skip_steps" not in self.model_fields_set:
            # DD's default (10 of 250) cannot apply to a short run: keep its proportion instead.
            scaled = default_skip_steps(self.steps)
            self.__dict__["skip_steps"] = scaled
            self._notes = self._notes + (f"skip_steps 10 (DD's default) does not fit steps="
                                         f"{self.steps}: using {scaled}",)
        if self.skip_steps >= self.steps:
            problems.append(Invalid(
                f"{self.skip_steps} skipped steps leave nothing to do with steps={self.steps}",
                param="skip_steps", fix=f"e.g. skip_steps={min(10, self.steps - 1)} "
                f"(about half of steps when you use init_image)",
            ))
        saves = self.intermediate_saves
        too_far = [s for s in saves if s > self.steps] if isinstance(saves, list) else (
            [saves] if saves > self.steps else [])
        if too_far:
            problems.append(Invalid(
                f"{too_far[0]} is beyond the last step ({self.steps})",
                param="intermediate_saves", fix=f"e.g. intermediate_saves=[{self.steps // 2}]",
            ))
        if self.clip_guidance_scale > 0:
            problems.extend(self._guidance_problems())
        problems.extend(Invalid(what, param=param, fix=fix) for param, what, fix in gobig_problems(self))
        if self.describe and not self.init_image:
            problems.append(Invalid("there is no image to describe", param="describe",
                                    fix="give the image as init_image (on Discord: /describe image:)"))
        if problems:
            raise Invalid.many(problems)
        return self

    def _apply_model_defaults(self) -> None:
        """DD's per-model behaviour where the user did not choose: the model's cut-schedule
        group (pixel-art, pulp and watercolor models) and its size (512x448 for 256 models)."""
        defaults = model_defaults(self.diffusion_model)
        changed = [name for name, value in defaults.items()
                   if name not in self.model_fields_set and getattr(self, name) != value]
        for name in changed:
            self.__dict__[name] = defaults[name]
        cuts = [name for name in changed if name.startswith("cut_")]
        if cuts:
            group = get_model(self.diffusion_model).cut_group
            self._notes += (f"{', '.join(cuts)}: {self.diffusion_model}'s DD schedules "
                            f"({group}), as DD uses with this model",)
        sides = [name for name in changed if name in ("width", "height")]
        if sides:
            what = (f"size {defaults['width']}x{defaults['height']}" if len(sides) == 2
                    else f"{sides[0]} {defaults[sides[0]]}")
            self._notes += (f"{what}: DD's size for {self.diffusion_model} (set width and "
                            f"height to choose another)",)

    def _guidance_problems(self) -> list[Invalid]:
        """With CLIP guidance on, DD needs prompts whose weights do not sum to 0 and cuts."""
        problems: list[Invalid] = []
        prompts = self.text_prompts + self.image_prompts
        if not prompts:
            problems.append(Invalid(
                "there are no text or image prompts", param="text_prompts",
                fix="e.g. text_prompts=a lighthouse in a storm (or set clip_guidance_scale=0)",
            ))
        else:
            try:
                normalized_weights(prompts, param="text_prompts")
            except SpecError as err:
                problems.append(Invalid.from_spec_error(err))
        schedules = self.schedules()
        empty = [i for i in range(SCHEDULE_LENGTH)
                 if schedules.overview[i] + schedules.innercut[i] == 0]
        if empty:
            problems.append(Invalid(
                f"no cuts at positions {_ranges(empty)} of the 1000-step schedule while "
                f"clip_guidance_scale is {format_number(self.clip_guidance_scale)}; CLIP "
                f"needs at least one cut at every position",
                param="cut_innercut",
                fix="give cut_overview or cut_innercut at least 1 there, e.g. "
                "cut_innercut=[4]*400+[12]*600 (or set clip_guidance_scale=0)",
            ))
        return problems

    # ---- reading -------------------------------------------------------------------------

    @property
    def notes(self) -> tuple[str, ...]:
        """Adjustments made while validating (e.g. rounding); not part of the JSON."""
        return self._notes

    def schedules(self) -> CutSchedules:
        """The four cut schedules as 1000-entry tuples (parsed once, then cached)."""
        if self._schedules is None:
            parsed = {
                name: parse_schedule(getattr(self, f"cut_{name}"), param=f"cut_{name}",
                                     **fields.cut_schedule_bounds(f"cut_{name}"))
                for name in CutSchedules._fields
            }
            self._schedules = CutSchedules(**parsed)
        return self._schedules

    def cut_schedule(self, t_int: int) -> CutStep:
        """Cut settings at model timestep t_int = int(t) + 1 (1..1000), as DD indexes them."""
        index = schedule_index(t_int)
        overview, innercut, ic_pow, icgray_p = (values[index] for values in self.schedules())
        return CutStep(int(overview), int(innercut), float(ic_pow), float(icgray_p))

    # ---- canonical form -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: prompts as {"text", "weight"} lists, floats normalised."""
        data: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in ("text_prompts", "image_prompts"):
                value = [{"text": p.text, "weight": p.weight + 0.0} for p in value]
            elif isinstance(value, float):
                value = value + 0.0
            elif isinstance(value, list):
                value = list(value)
            data[name] = value
        return data

    def prompt_summary(self) -> str:
        """The prompts in ``a:2 | b`` form, for logs and Discord messages."""
        return format_prompts(self.text_prompts)

    # ---- building -----------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: object) -> RenderSpec:
        """Validate a plain dict (e.g. from JSON); unknown keys are errors with suggestions."""
        if not isinstance(data, dict):
            raise SpecError(
                f"settings must be a mapping of names to values, got {type(data).__name__}"
            )
        bad_keys = [key for key in data if not isinstance(key, str)]
        if bad_keys:
            raise SpecError(f"setting names must be text; got {type(bad_keys[0]).__name__}")
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise SpecError(
                f"schema_version: this engine reads version {SCHEMA_VERSION} settings; remove "
                f"the key or set it to {SCHEMA_VERSION}",
                "schema_version",
            )
        unknown = [key for key in data if key not in cls.model_fields]
        if unknown:
            lines = [unknown_setting_line(key) for key in unknown[:10]]
            raise SpecError("\n".join(lines), unknown[0] if len(unknown) == 1 else None)
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> RenderSpec:
        """Parse and validate JSON text; any problem is a SpecError."""
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SpecError(f"the settings are not UTF-8 text: {exc.reason}") from None
        if not isinstance(text, str):
            raise SpecError(f"expected JSON text, got {type(text).__name__}")
        if len(text) > fields.MAX_JSON_LENGTH:
            raise SpecError(f"the settings JSON is {len(text)} characters; at most "
                            f"{fields.MAX_JSON_LENGTH}")
        return cls.from_dict(read_json(text, "the settings JSON"))

    def replace(self, **changes: Any) -> RenderSpec:
        """A new spec with `changes` applied, validated again as a whole; a skip_steps left at
        DD's default follows a new steps (`follow_steps`)."""
        return type(self).from_dict(follow_steps(self.to_dict(), changes))


def _ranges(indices: list[int]) -> str:
    """[600, 601, ..., 999] -> '601..1000' (1-based positions, runs joined by commas)."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    text = ", ".join(f"{a + 1}..{b + 1}" if a != b else f"{a + 1}" for a, b in runs[:5])
    return text + (", …" if len(runs) > 5 else "")


def unknown_setting_line(key: str) -> str:
    """The error line of a key that is no RenderSpec setting, with the closest name."""
    guess = fields.closest_name(key, list(RenderSpec.model_fields))
    hint = f"did you mean '{guess}'?" if guess else SETTING_NAMES_HINT
    return f"{key[:60]}: unknown setting; {hint}"
