"""The engine process: queued jobs claimed from storage, rendered and reported.

The only engine package that imports storage."""
