"""One metric cell as arrays: label counts per (template, name), and its bootstrap draws.

A cell is one model version x prompt format x generation config x design x judge (``tables.CELL_KEYS``):
rates are computed within a cell and groups compared within one. The counts come from the ``judged`` view
aggregated by (template, name, label), so every sample of a prompt stays in its (template, name) slot and
moves with it in every resample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qos_pipeline.metrics.stats.draws import multiplicities, name_weights
from qos_pipeline.taxonomy import ALL_LABELS, HARMFUL_REFUSAL, REFUSAL

LABELS = list(ALL_LABELS)
MEASURES = {"refusal": [REFUSAL], "harmful_refusal": [HARMFUL_REFUSAL], "any_refusal": [REFUSAL, HARMFUL_REFUSAL]}
"""The refusal measures of every comparison table; the same names mean the same labels everywhere."""


@dataclass
class Cell:
    """Counts of one cell: ``counts[t, n, l]`` rows of template t, name n judged label l."""

    key: tuple
    templates: list[str]
    names: list[str]
    groups: np.ndarray  # the group of each name
    names_info: pd.DataFrame  # name, name_group, gender, popularity (index aligned with ``names``)
    counts: np.ndarray
    draws: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict, repr=False)  # sums of ``counts``, computed once

    @property
    def n(self) -> np.ndarray:
        """(T, N) rows per template x name (computed once: ``counts`` never changes)."""
        if "n" not in self.memo:
            self.memo["n"] = self.counts.sum(axis=2)
        return self.memo["n"]

    def measure(self, name: str) -> np.ndarray:
        """(T, N) rows labelled with the measure's labels."""
        if ("measure", name) not in self.memo:
            self.memo["measure", name] = self.counts[:, :, [LABELS.index(lab) for lab in MEASURES[name]]].sum(axis=2)
        return self.memo["measure", name]

    def draw(self, resamples: int, seed: int) -> None:
        """Template weights W (B, T) and name weights V (B, N), shared by every table of the cell."""
        self.draws = {"W": multiplicities(self.templates, resamples, seed),
                      "V": name_weights(self.names, self.groups, resamples, seed)}

    @property
    def group_list(self) -> list[str]:
        """The cell's groups, sorted: the column order of ``group_draws`` and of every per-group loop."""
        return sorted(set(self.groups))

    def group_draws(self, measure: str, by_name: bool, templates: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, G) resampled measure rows and rows per group (``group_list`` order), templates resampled and,
        with ``by_name``, names within groups too; ``templates``: a (T,) mask of the templates counted (the
        ones a pair of groups shares), all when None. Computed once per cell and mask, shared by every table."""
        every = templates is None or bool(np.all(templates))
        key = ("groups", measure, by_name) if every else ("groups", measure, by_name, np.asarray(templates).tobytes())
        if key not in self.draws:
            W, V = self.draws["W"], self.draws["V"]
            K, n = self.measure(measure), self.n
            if not every:
                W, K, n = W[:, templates], K[templates], n[templates]
            onehot = (self.groups[:, None] == np.array(self.group_list)[None, :]).astype(float)
            k, n = W @ K, W @ n
            if by_name:
                k, n = k * V, n * V
            self.draws[key] = (k @ onehot, n @ onehot)
        return self.draws[key]


def cells_from_counts(df: pd.DataFrame, cell_keys: list[str]) -> list[Cell]:
    """``df``: one row per (cell keys, template_id, name_group, name, gender, popularity, label) with ``k``."""
    out = []
    for key, part in df.groupby(cell_keys, sort=True):
        templates = sorted(part["template_id"].unique())
        info = (part[["name", "name_group", "gender", "popularity"]].drop_duplicates("name")
                .sort_values(["name_group", "name"]).reset_index(drop=True))
        t_idx = pd.Index(templates).get_indexer(part["template_id"])
        n_idx = pd.Index(info["name"]).get_indexer(part["name"])
        l_idx = pd.Index(LABELS).get_indexer(pd.Index(part["label"]))
        counts = np.zeros((len(templates), len(info), len(LABELS)))
        np.add.at(counts, (t_idx, n_idx, l_idx), part["k"].to_numpy(dtype=float))
        out.append(Cell(key if isinstance(key, tuple) else (key,), templates, info["name"].tolist(),
                        info["name_group"].to_numpy(), info, counts))
    return out


def cells_from_db(con, cell_keys: list[str], source: str) -> list[Cell]:
    """The cells of ``cells_from_counts`` aggregated in DuckDB from ``source`` (a table or view with the cell
    keys, template_id, name_group, name, gender, popularity, label), fetched as integer indices cell by
    cell: a large audit has millions of (cell, template, name, label) rows, which as text in a frame cost
    hundreds of MB. Templates and names are ordered as ``cells_from_counts`` orders them."""
    keys = ", ".join(cell_keys)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE stats_counts AS
        SELECT dense_rank() OVER (ORDER BY {keys}) AS cell_no, *
        FROM (SELECT {keys}, template_id, name_group, name, any_value(gender) AS gender,
                     any_value(popularity) AS popularity, label, count(*) AS k FROM {source}
              WHERE {' AND '.join(f'{k} IS NOT NULL' for k in cell_keys)} GROUP BY ALL)""")
    out = []
    for row in con.execute(f"SELECT DISTINCT cell_no, {keys} FROM stats_counts ORDER BY cell_no").fetchall():
        number, key = row[0], tuple(row[1:])
        templates = [t for (t,) in con.execute(
            "SELECT DISTINCT template_id FROM stats_counts WHERE cell_no = ? ORDER BY 1", [number]).fetchall()]
        info = con.execute("""
            SELECT name, any_value(name_group) AS name_group, any_value(gender) AS gender,
                   any_value(popularity) AS popularity
            FROM stats_counts WHERE cell_no = ? GROUP BY name ORDER BY name_group, name""", [number]).df()
        idx = con.execute("""
            WITH t AS (SELECT template_id, row_number() OVER (ORDER BY template_id) - 1 AS ti
                       FROM (SELECT DISTINCT template_id FROM stats_counts WHERE cell_no = $c)),
                 n AS (SELECT name, row_number() OVER (ORDER BY name_group, name) - 1 AS ni
                       FROM (SELECT name, any_value(name_group) AS name_group FROM stats_counts
                             WHERE cell_no = $c GROUP BY name))
            SELECT ti, ni, list_position($labels, label) - 1 AS li, k
            FROM stats_counts JOIN t USING (template_id) JOIN n USING (name) WHERE cell_no = $c""",
            {"c": number, "labels": LABELS}).fetchnumpy()
        counts = np.zeros((len(templates), len(info), len(LABELS)))
        np.add.at(counts, (idx["ti"].astype(int), idx["ni"].astype(int), idx["li"].astype(int)),
                  idx["k"].astype(float))
        out.append(Cell(key, templates, info["name"].tolist(), info["name_group"].to_numpy(), info, counts))
    con.execute("DROP TABLE stats_counts")
    return out
