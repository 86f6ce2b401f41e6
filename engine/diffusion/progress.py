"""Step callbacks for the command line: a tqdm bar per image, DD's progress.png every
display_rate steps, and intermediate saves."""
from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from engine.diffusion.images import to_pil, write_preview
from engine.diffusion.sampling import StepInfo
from engine.media.files import save_png


class TqdmProgress:
    """Callable as `callback(context, info)` by DiscoPipeline."""

    def __init__(self, disable: bool = False):
        self.disable = disable
        self.bar: tqdm | None = None
        self.image_index = -1

    def __call__(self, context, info: StepInfo) -> None:
        if context.index != self.image_index:
            self.close()
            self.image_index = context.index
            self.bar = tqdm(total=info.total, initial=info.step - 1, unit="step", disable=self.disable,
                            desc=f"image {context.index + 1}/{context.spec.n_batches}")
        self.bar.update(1)
        display_rate = context.spec.display_rate
        if display_rate and (info.step % display_rate == 0 or info.step == info.total):
            losses = {k: float(v) for k, v in info.losses.items() if k in ("clip", "tv", "range")}
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
            write_preview(info.pred_xstart, context.out_dir / "progress.png", max_side=512)
        save_partial(context, info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def save_partial(context, info: StepInfo) -> Path | None:
    """DD's intermediate_saves: this step's x̂₀ as partials/{batch}({run})_{image}-{step}.png
    when the step is one of the spec's saves; the path, or None."""
    if info.step not in context.partial_steps:
        return None
    name = f"{context.spec.batch_name}({context.run})_{context.index}-{info.step:04}.png"
    return save_png(to_pil(info.pred_xstart), context.out_dir / "partials" / name, {})
