#!/usr/bin/env python3
# Run: python3 scripts/pretokenizer_fixture.py [models/SmolLM2-135M-Instruct.Q4_1.gguf] [tests/fixtures/pretokenizers.json]
"""llama.cpp's token ids under other pre-tokenizers (`tokenizer.ggml.pre`), for tests/tokenizer.rs.

For each pre-tokenizer name, the default model's vocabulary is written to a vocab-only GGUF
(its metadata, no tensors) with `tokenizer.ggml.pre` replaced, loaded by llama.cpp with
vocab_only, and each test string tokenized without BOS and without parsing special tokens.
The vocabulary is SmolLM2's, not Llama 3's or Qwen2's: what is tested is the pre-tokenizer
and the BPE rules each name selects in llama.cpp. SmolLM2's vocabulary was made
with GPT-2's regex, so it has no token that regex would split, and would not show most
differences; a few tokens are appended (VOCAB_ADDITIONS, written to the fixture for the Rust
test to append too):
- multi-digit tokens: Llama 3's digit runs of up to three (`\\p{N}{1,3}`) tokenize unlike
  Qwen2's single digits;
- "Ġ{Ċ" (" {\\n"): one piece of these regexes, two of GPT-2's;
- "Å¿t" ("ſt", U+017F long s): "'ſt" is one piece for llama.cpp, whose contractions are
  ASCII-only, but "'ſ" + "t" for a case-insensitive `(?i:'s|...)`;
- "zzqx", which no merge reaches: Llama 3 (llama.cpp's ignore_merges) takes a word found
  whole in the vocabulary as one token.

Every other name llama.cpp maps to the same pre-tokenizer (ALIASES) is checked to give the
same ids, and listed in the fixture so the Rust test covers it too.

    pip install gguf==0.19.0 llama-cpp-python==0.3.36
"""
import json
import os
import sys
import tempfile
import unicodedata

import llama_cpp
from gguf import GGUFReader, GGUFValueType, GGUFWriter

# The fixture's pre-tokenizers, with the other names llama.cpp (llama-vocab.cpp) gives the
# same pre-type: LLAMA3 and QWEN2.
ALIASES = {
    "llama-bpe": ["llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
    "qwen2": ["deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"],
}

# Tokens appended to the vocabulary (normal type) and merges appended after the model's.
VOCAB_ADDITIONS = {
    "tokens": ["12", "123", "20", "24", "Ġ{Ċ", "Å¿", "Å¿t", "zzqx"],
    "merges": ["1 2", "12 3", "2 0", "2 4", "Ġ{ Ċ", "Å ¿", "Å¿ t"],
}

TEXTS = [
    "12345678",
    "3.14159",
    "year 2024",
    "1234 12 123 20 24 2024",
    "mixed123abc456",
    "x=1000000; y = 0.5e-10",
    "Call 555-0199 or +44 20 7946 0958.",
    "Ⅻ ½ ²³ numbers: ١٢٣",
    "I'M here, you'RE not",
    "we'll see what they've done",
    "They'RE sure it's HIS",
    "'s 'T 'Ll at the start",
    # U+017F folds to "s": a case-insensitive (?i:'s) would take "'ſ" as a contraction.
    "it'ſ x'ſt 'ſt",
    "a\n\n  b",
    "  \n x",
    "hi   ",
    " leading space and  double  spaces",
    "tabs\tand\r\nCRLF\r\n\r\nend",
    "a\u00a0b 日本\u3000語 x\u2003 y \u00a0\u00a0\n z",
    "hello!!!\n\n",
    "a...b",
    "naïve café",
    "日本語テキスト",
    "emoji 😀👍",
    "fn main() {\n    let x = 1;\n}",
    "zzqx and zzqxzzqx, not zzq",
]


def write_vocab_only(reader, pre, path):
    """The model's metadata, with VOCAB_ADDITIONS and `tokenizer.ggml.pre` = pre; no tensors."""
    arch = reader.fields["general.architecture"].contents()
    w = GGUFWriter(path, arch)  # writes general.architecture itself
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = pre if key == "tokenizer.ggml.pre" else field.contents()
        if key == "tokenizer.ggml.tokens":
            value = value + VOCAB_ADDITIONS["tokens"]
        elif key == "tokenizer.ggml.token_type":
            value = value + [1] * len(VOCAB_ADDITIONS["tokens"])
        elif key == "tokenizer.ggml.merges":
            value = value + VOCAB_ADDITIONS["merges"]
        elif key.endswith(".vocab_size"):
            value = value + len(VOCAB_ADDITIONS["tokens"])
        vtype = field.types[0]
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(key, value, vtype, sub_type=sub)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tokenize_all(reader, pre, tmp):
    path = os.path.join(tmp, f"vocab-{pre}.gguf")
    write_vocab_only(reader, pre, path)
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    # The metadata llama.cpp read back, so a silently ignored `pre` cannot pass.
    assert llm.metadata.get("tokenizer.ggml.pre") == pre, llm.metadata.get("tokenizer.ggml.pre")
    return [llm.tokenize(t.encode(), add_bos=False, special=False) for t in TEXTS]


def to_json(value):
    """JSON with non-ASCII text as is, but non-ASCII spaces and controls escaped, so the
    fixture shows what each string holds."""
    text = json.dumps(value, ensure_ascii=False)
    hidden = lambda c: ord(c) > 0x7F and (c.isspace() or unicodedata.category(c)[0] in "CZ")
    return "".join(f"\\u{ord(c):04x}" if hidden(c) else c for c in text)


def main(model_path, out_path):
    reader = GGUFReader(model_path)
    vocab = set(reader.fields["tokenizer.ggml.tokens"].contents())
    assert not vocab & set(VOCAB_ADDITIONS["tokens"]), "an addition is already in the vocabulary"
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pre, aliases in ALIASES.items():
            ids = tokenize_all(reader, pre, tmp)
            for alias in aliases:
                assert tokenize_all(reader, alias, tmp) == ids, f"{alias} tokenizes unlike {pre}"
            cases[pre] = [{"text": t, "ids": i} for t, i in zip(TEXTS, ids)]
    # One case a line, so a regenerated fixture diffs by case.
    lines = ["{", f' "vocab_additions": {to_json(VOCAB_ADDITIONS)},', f' "aliases": {to_json(ALIASES)},']
    for n, (pre, items) in enumerate(cases.items()):
        lines.append(f" {json.dumps(pre)}: [")
        lines.append(",\n".join("  " + to_json(c) for c in items))
        lines.append(" ]" + ("," if n + 1 < len(cases) else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == {"vocab_additions": VOCAB_ADDITIONS, "aliases": ALIASES, **cases}
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        args[0] if len(args) > 0 else "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        args[1] if len(args) > 1 else "tests/fixtures/pretokenizers.json",
    )
