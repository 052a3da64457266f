"""Stage 2, generation: chat-model outputs for every prompt, N samples each, under prompt formats.

``interface``: the ``Generator`` protocol and its request/result rows; ``sampling``: decoding settings
and per-row seeds; ``formats``: prompt-format conditions; ``hf``: the Hugging Face generator on top of
``decoding`` (batched, seeded, out-of-memory back-off); ``cache``: resumable, cached rows; ``checks`` and
``step``: the stage as the asset runs it. ``models/``: the registry, checkpoint folders, loading,
the embedded default model and checkpoint discovery. Pure: no dagster; torch only when a model loads.
"""
