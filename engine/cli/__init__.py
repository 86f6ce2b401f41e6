"""The engine's `disco` subcommands: render, animate, study, models, engine, bench."""
