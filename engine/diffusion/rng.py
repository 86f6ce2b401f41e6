"""The random streams of a render, seeded once and checkpointed with the sampler state."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Generators:
    """The two random streams of a render: geometry on the CPU, noise on the device."""

    cpu: torch.Generator
    device: torch.Generator

    @classmethod
    def seeded(cls, seed: int, device: torch.device | str) -> "Generators":
        cpu = torch.Generator("cpu").manual_seed(seed)
        dev = torch.Generator(device).manual_seed(seed) if torch.device(device).type != "cpu" \
            else torch.Generator("cpu").manual_seed(seed + 0x9E3779B9)
        return cls(cpu=cpu, device=dev)

    def get_state(self) -> dict[str, torch.Tensor]:
        return {"cpu": self.cpu.get_state(), "device": self.device.get_state()}

    def set_state(self, state: dict[str, torch.Tensor]) -> None:
        self.cpu.set_state(state["cpu"])
        self.device.set_state(state["device"])
