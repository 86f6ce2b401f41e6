"""Disco Diffusion 5.x engine: render CLIP-guided diffusion images, usable without Discord.

`engine.spec`, `engine.media` and `engine.errors` are torch-free (the bot uses them); the other
sub-packages are the algorithm, the engine process (`engine.jobs`) and its commands (`engine.cli`).
The import rules are contracts in pyproject.toml.
"""
__version__ = "0.1.0"
