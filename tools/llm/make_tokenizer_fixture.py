#!/usr/bin/env python3
"""Writes tests/fixtures/llm/tokenizer_cases.json: llama.cpp's token ids for ~1,100 strings on the
reference model, for llm_tokenizer_test to match id for id.

Run BY HAND, not by the build or CI: it needs llama.cpp's llama-tokenize, built from the llama.cpp
vendored in the llama-cpp-python source package. The fixture is committed; run this again only to
change the strings or the llama.cpp version, and commit the result with the version it records.

    python3 tools/llm/make_tokenizer_fixture.py \\
        --model build/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --llama-tokenize /path/to/llama-build/bin/llama-tokenize \\
        --out tests/fixtures/llm/tokenizer_cases.json

The strings are generated from a fixed seed: ASCII prose, digits and numbers, white-space runs,
newlines, code, accented Latin, combining marks, CJK, emoji, unusual but valid UTF-8 (controls,
unassigned and private-use code points, noncharacters, math letters, other scripts' digits), bytes
that are not UTF-8 (lone continuation bytes, truncated sequences, C0 80, ED A0 80, F8..FF), and
text holding special-token spellings. Each string is tokenized twice, with and without special
parsing, never adding BOS (llama-tokenize -f FILE --no-escape --no-bos [--no-parse-special]).

The other two pre-tokenizers are held to llama.cpp on the same vocabulary: the script writes
vocabulary-only copies of the model with tokenizer.ggml.pre = "gpt-2" and "llama-bpe" and
tokenizes all the strings joined by <|endoftext|>, with special parsing (so each string is still
tokenized on its own, between two special tokens), once per copy.

Left out on purpose: sequences that decode past U+10FFFF (F4 90.., F5..F7 leads): llama.cpp
aborts on them ("invalid codepoint"), so there is no reference to hold coproc to.

Fixture layout (JSON, one case per line so that the C++ test can read it without a JSON library):
  llama_cpp   {"llama_cpp_python": sdist version, "commit": llama.cpp's commit, "version": the
              tool's --version line}
  model       the model file's name and sha256
  joined_by   the separator of the joined text ("<|endoftext|>")
  pre_gpt-2, pre_llama-bpe   llama.cpp's ids for the joined text with that pre-tokenizer
  cases       a list of {"kind": generator, "hex": the string's bytes in hex,
              "special": ids with special parsing, "plain": ids without}
"""

import argparse
import concurrent.futures
import hashlib
import json
import pathlib
import random
import subprocess
import tempfile

SEED = 15
LLAMA_CPP_PYTHON_VERSION = "0.3.36"

WORDS = """the of and to in is was for that on as with by he at from his it an were are which this
be or has had not but first one their its after new who they have her she two been other when
there all during into school time may years more most only over city some world would where later
up such used many can state about national out known university united then made between team
american while these three including well part under year both however season music history
however quick brown fox jumps lazy dog language model token tokenizer coprocessor inference
running shared memory ring buffer request response latency throughput benchmark kernel vector
matrix attention cache sequence prompt sample temperature probability""".split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL",
                "'D", "'x", "'"]
PUNCT = list(".,;:!?-()[]{}\"'/\\@#$%^&*_+=<>|~`")
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2009", "\u2028", "\u0085",
          "\u000b", "\u000c", "\u001c", "\u001f", "\u200b", "\u180e", "\u202f", "\u205f", "\u1680"]
ACCENTED = ["café", "naïve", "résumé", "Müller", "straße", "niño", "São Paulo", "Ærøskøbing",
            "Łódź", "Dvořák", "Tiếng Việt", "Đà Nẵng", "İstanbul", "ﬁnance", "cafe\u0301",
            "n\u0303o", "A\u030a", "e\u0300\u0323", "Ελληνικά", "русский язык", "українська",
            "Ñandú", "œuvre", "ǅemal"]
CJK = ["中文", "你好，世界！", "日本語のテキスト", "ひらがな", "カタカナ", "한국어 문장", "漢字かな交じり文",
       "\U00020000\U0002a6d6", "\U00031350\U000323af", "\U0002ebf0", "１２３４", "ＡＢＣ", "〇一二三",
       "「引用」", "、。", "\u3000全角空白"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "🏳️‍🌈", "❤️", "1️⃣", "🤖", "🧠💡", "☕", "✨", "🫠", "🪿",
         "\U0001fa75", "👩🏻‍💻", "🙂🙃"]
UNUSUAL = ["\ufffd", "\ufeff", "\u200b", "\u200d", "\ue000", "\U000f0000", "\uffff", "\U0010ffff",
           "\u0378", "\U000e0001", "𝐀𝐁𝐂", "𝟘𝟙𝟚", "²³", "½", "Ⅻ", "٠١٢٣", "०१२", "๑๒๓", "\u0000",
           "\u0001", "\u007f", "\u0080", "\u009f", "\u00ad", "עברית", "العربية", "हिन्दी", "ไทย",
           "\u200e\u200f", "ᚠᛇᚻ", "ꙮ", "\U00010d40", "\U0001e4d0", "\U00011f00"]
INVALID = [b"\x80", b"\xbf", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\x80", b"\xc1\xbf",
           b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8", b"\xfe",
           b"\xff", b"\xc3\x28", b"\xe2\x28\xa1", b"\xf0\x28\x8c\x28", b"\x80\x80\x80"]
SPECIAL = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<repo_name>", "<reponame>", "<file_sep>",
           "<filename>", "<gh_stars>", "<issue_start>", "<jupyter_code>", "<empty_output>",
           "<|im_start", "im_end|>", "<|im_start|", "<||>", "<|", "|>", "<<|im_end|>>"]
CODE = [
    "def {f}({a}, {b}):\n    return {a} + {b} * {n}\n",
    "for (int i = 0; i < {n}; ++i) {{\n\t{a}[i] = {b}[i] >> 2;\n}}\n",
    "const {f} = ({a}) => {{ console.log(`{a}=${{{a}}}`); }};",
    "#include <stdio.h>\nint main(void) {{ printf(\"%d\\n\", {n}); return 0; }}",
    "SELECT {a}, COUNT(*) FROM {b} WHERE id >= {n} GROUP BY {a};",
    "if {a} != nil {{\n\treturn fmt.Errorf(\"{f}: %w\", {a})\n}}",
    "<div class=\"{a}\">{b} &amp; {f}</div>",
    "{{\"{a}\": [{n}, {n}.5, null, true], \"{b}\": \"{f}\"}}",
    "    # {f}: {a}'s value isn't {n}\n    {b} = [x**2 for x in range({n})]\n",
    "fn {f}(&mut self, {a}: u32) -> Result<(), Error> {{ Ok(()) }}",
]


def prose(rng, n_words):
    out = []
    for i in range(n_words):
        w = rng.choice(WORDS)
        if i == 0 or rng.random() < 0.1:
            w = w.capitalize()
        if rng.random() < 0.05:
            w = w.upper()
        if rng.random() < 0.08:
            w += rng.choice(CONTRACTIONS)
        out.append(w)
        if rng.random() < 0.12:
            out[-1] += rng.choice(".,;:!?")
    return " ".join(out) + rng.choice([".", "!", "?", "", "..."])


def number(rng):
    forms = [
        lambda: str(rng.randint(0, 10 ** rng.randint(1, 12))),
        lambda: f"{rng.uniform(-1e4, 1e4):.{rng.randint(0, 6)}f}",
        lambda: f"{rng.randint(1, 10**9):,}",
        lambda: f"{rng.randint(1, 31):02d}/{rng.randint(1, 12):02d}/{rng.randint(1900, 2100)}",
        lambda: f"+1 ({rng.randint(100, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        lambda: f"{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}",
        lambda: f"{rng.random():.3e}",
        lambda: f"v{rng.randint(0, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 999)}",
        lambda: f"0x{rng.getrandbits(32):08X}",
        lambda: f"{rng.randint(1, 100)}%",
        lambda: f"${rng.randint(1, 10**6)}.{rng.randint(0, 99):02d}",
        lambda: "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40))),
    ]
    return rng.choice(forms)()


def fill_code(rng):
    names = ["x", "y", "buf", "value", "request_id", "n_tokens", "kvCache", "_tmp", "i2", "élan"]
    return rng.choice(CODE).format(f=rng.choice(names), a=rng.choice(names),
                                   b=rng.choice(names), n=rng.randint(0, 4096))


def pool_mix(rng, pool, n):
    return "".join(rng.choice(pool) for _ in range(n))


def generate(rng):
    """Yields (kind, bytes)."""
    yield "empty", b""
    for _ in range(170):
        yield "prose", prose(rng, rng.randint(1, 60)).encode()
    for _ in range(110):
        sep = rng.choice([" ", "", ", ", " and ", "\n", "-", "."])
        yield "numbers", sep.join(number(rng) for _ in range(rng.randint(1, 6))).encode()
    for _ in range(50):
        yield "numbers-in-words", (prose(rng, 3) + number(rng) + rng.choice(["", "th", "px", "abc"])
                                   + " " + prose(rng, 2)).encode()
    for _ in range(110):
        parts = [rng.choice(SPACES) * rng.randint(1, 5) if rng.random() < 0.6 else rng.choice(WORDS)
                 for _ in range(rng.randint(1, 10))]
        yield "whitespace", "".join(parts).encode()
    for _ in range(50):
        yield "newlines", "".join(rng.choice(["\n", "\n\n", "\r\n", " \n", "\n ", "\t\n",
                                              prose(rng, rng.randint(1, 8))])
                                  for _ in range(rng.randint(1, 12))).encode()
    for _ in range(90):
        yield "code", "".join(fill_code(rng) for _ in range(rng.randint(1, 3))).encode()
    for _ in range(70):
        yield "accents", " ".join(rng.choice(ACCENTED + WORDS) for _ in range(rng.randint(1, 10))).encode()
    for _ in range(70):
        yield "cjk", "".join(rng.choice(CJK + [" ", "。", "1", "abc"]) for _ in range(rng.randint(1, 8))).encode()
    for _ in range(70):
        yield "emoji", "".join(rng.choice(EMOJI + [" ", "a", "!", "\n"]) for _ in range(rng.randint(1, 8))).encode()
    for _ in range(80):
        yield "unusual", "".join(rng.choice(UNUSUAL + [" ", "x", "1"]) for _ in range(rng.randint(1, 8))).encode()
    for _ in range(70):
        parts = [rng.choice(INVALID) if rng.random() < 0.5 else rng.choice(WORDS + CJK + EMOJI + [" "]).encode()
                 for _ in range(rng.randint(1, 8))]
        yield "invalid-utf8", b"".join(parts)
    for _ in range(110):
        parts = [rng.choice(SPECIAL) if rng.random() < 0.4 else rng.choice([prose(rng, 2), " ", "\n", "user", "assistant"])
                 for _ in range(rng.randint(1, 8))]
        yield "special", "".join(parts).encode()
    for _ in range(40):
        pool = WORDS + PUNCT + SPACES + ACCENTED + CJK + EMOJI + UNUSUAL + SPECIAL + CONTRACTIONS + list("0123456789")
        yield "mixed", pool_mix(rng, pool, rng.randint(1, 40)).encode()
    long_cases = ["a" * 1000, "1" * 500, " " * 300, "!" * 200, "\n" * 100, "ab" * 400,
                  "\t " * 100 + "x", "😀" * 50, "中" * 200, prose(rng, 600)]
    for s in long_cases:
        yield "long", s.encode()


def run_llama_tokenize(tool, model, data, parse_special):
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        f.write(data)
        f.flush()
        cmd = [tool, "-m", model, "-f", f.name, "--no-escape", "--no-bos", "--ids", "--log-disable"]
        if not parse_special:
            cmd.append("--no-parse-special")
        proc = subprocess.run(cmd, capture_output=True, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"llama-tokenize failed ({proc.returncode}) on {data!r}: {proc.stderr[-500:]!r}")
    last = proc.stdout.decode().strip().splitlines()[-1]
    return json.loads(last)


OTHER_PRE_TOKENIZERS = ["gpt-2", "llama-bpe"]
JOIN = b"<|endoftext|>"


def vocab_only_copy(src, dst, pre):
    """The model's metadata with tokenizer.ggml.pre replaced, and no tensors."""
    import gguf
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, arch=reader.fields["general.architecture"].contents())
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = pre if key == "tokenizer.ggml.pre" else f.contents()
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, value, f.types[0], sub_type=f.types[-1])
        else:
            writer.add_key_value(key, value, f.types[0])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--llama-tokenize", required=True)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    rng = random.Random(SEED)
    seen = set()
    cases = []
    for kind, data in generate(rng):
        if data not in seen:
            seen.add(data)
            cases.append({"kind": kind, "hex": data.hex()})

    def tokenize(case):
        data = bytes.fromhex(case["hex"])
        return (run_llama_tokenize(args.llama_tokenize, args.model, data, True),
                run_llama_tokenize(args.llama_tokenize, args.model, data, False))

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for case, (special, plain) in zip(cases, pool.map(tokenize, cases)):
            case["special"] = special
            case["plain"] = plain

    joined = JOIN.join(bytes.fromhex(c["hex"]) for c in cases)
    other = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pre in OTHER_PRE_TOKENIZERS:
            copy = str(pathlib.Path(tmp) / f"vocab-{pre}.gguf")
            vocab_only_copy(args.model, copy, pre)
            other[f"pre_{pre}"] = run_llama_tokenize(args.llama_tokenize, copy, joined, True)

    version = subprocess.run([args.llama_tokenize, "--version"], capture_output=True, text=True)
    version_line = (version.stdout + version.stderr).strip().splitlines()[0]
    commit = version_line.split("commit ")[-1].rstrip(")") if "commit " in version_line else "unknown"
    model = pathlib.Path(args.model)
    header = {
        "llama_cpp": {"llama_cpp_python": LLAMA_CPP_PYTHON_VERSION, "commit": commit,
                      "version": version_line},
        "model": {"file": model.name, "sha256": hashlib.sha256(model.read_bytes()).hexdigest()},
        "seed": SEED,
        "joined_by": JOIN.decode(),
        **other,
    }
    lines = ["{"]
    for key, value in header.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=True, separators=(',', ':'))},")
    lines.append('  "cases": [')
    lines.append(",\n".join("    " + json.dumps(c, separators=(", ", ": ")) for c in cases))
    lines.append("  ]")
    lines.append("}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"{args.out}: {len(cases)} strings, {args.out.stat().st_size} bytes, llama.cpp {commit}")


if __name__ == "__main__":
    main()
