"""The `disco` command: one entry point for every process and tool of the project."""
