"""Judges against human labels: agreement figures overall and per group (``metrics``), labelled files
(``labelled``), the validation step (``evaluate``) and refusal rates corrected for a judge's measured
errors (``prevalence``)."""
