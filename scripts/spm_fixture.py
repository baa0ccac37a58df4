#!/usr/bin/env python3
# Run: python3 scripts/spm_fixture.py [models/SmolLM2-135M-Instruct.Q4_1.gguf] [tests/fixtures/spm_tokenizer.json]
"""llama.cpp's token ids and text for a SentencePiece ("SPM", `tokenizer.ggml.model = "llama"`)
vocabulary, for tests/tokenizer.rs.

No SPM model can be downloaded where the tests run, so one is made from the default model's
byte-level BPE vocabulary: every normal token is mapped back to its bytes, kept if they are
valid UTF-8 (and not already kept: the first one wins), with spaces written as U+2581 and
score -(its id in the default model), so that earlier tokens win. Before them come ADDITIONS:
`<unk>`, `<s>`, `</s>`, the 256 byte tokens `<0x00>`..`<0xFF>`, control tokens, user-defined
tokens and an unused one. The Rust test rebuilds the same vocabulary (the fixture's
`vocab_size` and `vocab_fnv1a` check that it did).

Each of CONFIGS is written to a vocab-only GGUF (no tensors), loaded by llama.cpp with
vocab_only, and every TEXT is tokenized with special tokens recognised and no BOS; each id
list is detokenized with llama.cpp's own llama_detokenize (control tokens skipped, the leading
space of add_space_prefix removed), not llama-cpp-python's per-token `detokenize`.

    pip install gguf==0.19.0 llama-cpp-python==0.3.36
"""
import ctypes
import json
import os
import sys
import tempfile

import llama_cpp
import numpy as np
from gguf import GGUFReader, GGUFWriter

# (text, token type) before the default model's tokens; llama.cpp's types: 2 unknown,
# 3 control, 4 user-defined, 5 unused, 6 byte. "s>hi" overlaps "<s>" in "<s>hi": llama.cpp
# splits out the longer special token first, wherever it starts.
ADDITIONS = (
    [["<unk>", 2], ["<s>", 3], ["</s>", 3]]
    + [[f"<0x{b:02X}>", 6] for b in range(256)]
    + [["<start_of_turn>", 3], ["<end_of_turn>", 3], ["<|endoftext|>", 3], ["<|tool|>", 4], ["s>hi", 4], ["<unused0>", 5]]
)

# The settings each GGUF adds. Gemma writes add_space_prefix false; llama.cpp's SPM default
# is true. A general.name with "phi3" makes llama.cpp strip the whitespace after special tokens
# (all but <unk>, <s> and <|endoftext|>, which such a vocabulary must have).
CONFIGS = {
    "prefix": {"tokenizer.ggml.add_space_prefix": True},
    "no_prefix": {"tokenizer.ggml.add_space_prefix": False},
    "phi3": {"general.name": "Phi3 Mini Test"},
}

TEXTS = [
    "Hello world",
    " Hello world",
    "  two leading spaces",
    "trailing spaces   ",
    "multiple   spaces  inside  words",
    "line one\nline two\n\nline four\n",
    "\n starts with a newline",
    "tabs\tand\r\nCRLF",
    "digits 0123456789, 3.14159 and 1,000,000",
    "Punctuation: (a) [b] {c} <d> !?;:'\"-_/\\|@#$%^&*~`",
    "naïve café résumé Ångström façade",
    "日本語のテキスト and 中文",
    "emoji 😀👍🏽 🦀",
    "absent characters: \x01\x7f ℵ ⅋ 𝔘 ꙮ",
    "x\u00a0y\u3000z \u2581 already escaped \u2581\u2581",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "<s>Begin and end</s>",
    "<s>hi there",
    "text<end_of_turn>",
    "<|endoftext|>  \n after end of text </s>\t\nafter eos",
    "<end_of_turn>   spaces after a control token\n\n<start_of_turn> x",
    "<unk> is the unknown token",
    "call <|tool|> now, then <|tool|><|tool|>\n",
    "almost <start_of_turn<end_of_turn>> special",
    "<0x41> and <0x0A> written as text",
    "<unused0> is unused",
    "",
    " ",
    "The quick brown fox jumps over the lazy dog. It wasn't the dog's fault; "
    "they'd been told (twice!) that foxes don't bite.",
]


def byte_decoder():
    """The inverse of GPT-2's bytes_to_unicode: printable bytes stand for themselves, the
    others are mapped in order to U+0100 and up."""
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    rest = [b for b in range(256) if b not in printable]
    table = {chr(b): b for b in printable}
    table.update({chr(256 + n): b for n, b in enumerate(rest)})
    return table


def spm_vocab(reader):
    """(tokens, scores, types) of the synthetic SPM vocabulary."""
    decode = byte_decoder()
    tokens = [t for t, _ in ADDITIONS]
    types = [k for _, k in ADDITIONS]
    scores = [0.0] * len(tokens)
    seen = set(tokens)
    bpe_tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    bpe_types = reader.fields["tokenizer.ggml.token_type"].contents()
    for i, (token, kind) in enumerate(zip(bpe_tokens, bpe_types)):
        if kind != 1:
            continue
        try:
            text = bytes(decode[c] for c in token).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            continue
        text = text.replace(" ", "\u2581")
        if text in seen:
            continue
        seen.add(text)
        tokens.append(text)
        types.append(1)
        scores.append(-float(i))
    return tokens, scores, types


def fnv1a(tokens, scores, types):
    """FNV-1a (64-bit) over each token's UTF-8, a 0 byte, its score as a little-endian f32 and
    its type as a byte: the Rust test computes the same over the vocabulary it rebuilds."""
    h = 0xCBF29CE484222325
    for t, s, k in zip(tokens, scores, types):
        for b in t.encode() + b"\0" + np.float32(s).tobytes() + bytes([k]):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def write_gguf(path, vocab, settings):
    tokens, scores, types = vocab
    w = GGUFWriter(path, "llama")
    # The hyperparameters llama.cpp reads for a llama model even with vocab_only.
    w.add_context_length(2048)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_name(settings.get("general.name", "SPM test"))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    if "tokenizer.ggml.add_space_prefix" in settings:
        w.add_add_space_prefix(settings["tokenizer.ggml.add_space_prefix"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def detokenize(llm, ids):
    """llama.cpp's llama_detokenize: special tokens not rendered, not removed by position."""
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    arr = (llama_cpp.llama_token * max(len(ids), 1))(*ids)
    size = 64 + 64 * len(ids)
    buf = ctypes.create_string_buffer(size)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, False)
    assert 0 <= n <= size, n
    return buf.raw[:n].decode("utf-8", errors="replace")


def run_config(vocab, name, settings, tmp):
    path = os.path.join(tmp, f"spm-{name}.gguf")
    write_gguf(path, vocab, settings)
    llm = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    # llama.cpp read the file as an SPM vocabulary of the expected size.
    assert llm.metadata.get("tokenizer.ggml.model") == "llama"
    assert llm.n_vocab() == len(vocab[0]), llm.n_vocab()
    cases = []
    for text in TEXTS:
        ids = llm.tokenize(text.encode(), add_bos=False, special=True)
        cases.append({"text": text, "ids": ids, "decoded": detokenize(llm, ids)})
    return cases


def to_json(value):
    """JSON with non-ASCII text as is but control characters escaped."""
    text = json.dumps(value, ensure_ascii=False)
    return "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 else c for c in text)


def main(model_path, out_path):
    reader = GGUFReader(model_path)
    vocab = spm_vocab(reader)
    with tempfile.TemporaryDirectory() as tmp:
        cases = {name: run_config(vocab, name, settings, tmp) for name, settings in CONFIGS.items()}
    head = {
        "additions": ADDITIONS,
        "vocab_size": len(vocab[0]),
        "vocab_fnv1a": fnv1a(*vocab),
        "configs": CONFIGS,
    }
    # One case a line, so a regenerated fixture diffs by case.
    lines = ["{"] + [f" {json.dumps(k)}: {to_json(v)}," for k, v in head.items()] + [' "cases": {']
    for n, (name, items) in enumerate(cases.items()):
        lines.append(f"  {json.dumps(name)}: [")
        lines.append(",\n".join("   " + to_json(c) for c in items))
        lines.append("  ]" + ("," if n + 1 < len(cases) else ""))
    lines += [" }", "}"]
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == {**head, "cases": cases}
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        args[0] if len(args) > 0 else "models/SmolLM2-135M-Instruct.Q4_1.gguf",
        args[1] if len(args) > 1 else "tests/fixtures/spm_tokenizer.json",
    )
