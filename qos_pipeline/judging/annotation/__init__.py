"""Human labels of a model's own outputs, the instrument's calibration sample: drawing a seeded sample for
annotators (``sample``: a CSV and a Label Studio task file), reading their labels back (``reading``: the
CSV or a Label Studio export) and keeping them (``store``: one staged file per model, added to by every
import; a relabel by the same annotator replaces the earlier label)."""
