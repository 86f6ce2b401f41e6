"""CLIP interrogation: an image described by ranking word lists (words/) against it with the
CLIP models the engine keeps resident, answered as a DD-style weighted prompt."""
