"""Statistics that respect how the prompts were built (after Miller, "Adding Error Bars to Evals", 2024).

Every group shares the design's templates and every prompt has several samples, so outputs are not
independent: intervals come from a bootstrap clustered on templates (and, second, on templates x names),
with the samples of a prompt always moving together; group gaps are compared within the same templates and
tested by permuting names between groups; p-values are Holm-adjusted within a pre-specified primary family
and, apart, the exploratory rest.

``draws``: the shared resampling weights; ``cells``: the count tensors of one metric cell; ``rates``:
intervals of every label rate; ``design``: shared templates and permutation floors; ``compare``: group
comparisons; ``mixed``: the mixed-model cross-check (Laplace); ``sensitivity``: names; ``models``: model
comparisons paired by prompt; ``corrected``: judge-corrected rates with the judge's uncertainty;
``multiplicity``: families, Holm and Benjamini-Hochberg. numpy/pandas/scipy.
"""
