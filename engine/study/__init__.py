"""Parameter studies rendered cell by cell."""
