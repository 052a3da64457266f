"""Statistics that respect how the prompts were built (after Miller, "Adding Error Bars to Evals", 2024).

Every group shares the design's templates and every prompt has several samples, so outputs are not
independent: intervals come from a bootstrap clustered on templates (and, second, on templates x names),
with the samples of a prompt always moving together; group gaps are compared within the same templates and
tested by permuting names between groups; p-values of one model's comparisons are Holm-adjusted.

``draws``: the shared resampling weights; ``cells``: the count tensors of one metric cell; ``rates``:
intervals of every label rate; ``compare``: group comparisons; ``sensitivity``: names; ``models``: model
comparisons paired by prompt; ``corrected``: judge-corrected rates with the judge's uncertainty;
``multiplicity``: Holm and Benjamini-Hochberg. Pure numpy/pandas.
"""
