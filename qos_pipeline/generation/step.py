"""The generation stage as the asset runs it: every prompt x sample x prompt format through a generator,
resumable and cached (``cache``), then checked (``checks``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from qos_pipeline.checks import CheckOutcome
from qos_pipeline.generation import cache
from qos_pipeline.generation.checks import generation_checks
from qos_pipeline.generation.formats import PAPER_FORMAT, PromptFormat
from qos_pipeline.generation.interface import GenerationRequest, Generator
from qos_pipeline.generation.sampling import SamplingConfig, row_seed
from qos_pipeline.prompts.design import PROMPT_META


def generate(prompts: pd.DataFrame, generator: Generator, sampling: SamplingConfig, samples: int,
             base_seed: int, batch_size: int, run_id: str,
             progress: Callable[[int, int], None] | None = None,
             formats: Sequence[PromptFormat] | None = None, cache_dir: Path | None = None,
             ) -> tuple[pd.DataFrame, list[CheckOutcome]]:
    """``samples`` generations per prompt under each prompt format, one seed per (prompt, sample).

    With ``cache_dir``, finished batches are stored as they complete and stored rows are reused (see
    ``cache``); the seed does not depend on the format, so conditions are compared on equal draws."""
    formats = list(formats or [PAPER_FORMAT])
    effective = generator.resolve_sampling(sampling)
    requests = [GenerationRequest(str(p.prompt_id), s, str(p.prompt_text), row_seed(base_seed, str(p.prompt_id), s), f)
                for f in formats for p in prompts.itertuples(index=False) for s in range(samples)]
    rows, _ = cache.generate_rows(generator, requests, effective, batch_size, run_id,
                                      cache.RowStore(cache_dir), progress)
    df = cache.rows_frame(rows).join(prompts.set_index("prompt_id")[PROMPT_META], on="prompt_id")
    return df, generation_checks(df, prompts["prompt_id"].tolist(), samples, [f.id for f in formats])
