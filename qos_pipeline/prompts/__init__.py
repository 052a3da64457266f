"""Stage 1, prompts: designs (names x templates from ``assets/``) rendered into the prompt table.

``design``: reading and validating designs, rendering prompts; ``checks``: the prompts' pandera schema
and completeness check; ``step``: the stage as the asset runs it (render, then check).
"""
