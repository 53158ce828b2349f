"""The model errors shared by index.encoder and index.e5model, so neither imports the other
at import time (the encoder builds the default model through index.e5model on demand)."""


class EncoderError(Exception):
    """The embedding model cannot be loaded or used; the message says what to do."""
