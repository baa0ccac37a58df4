//! The GGUF reader and the Llama config: the real default model, and hostile files.
// Native only (the model file, threads or a native GPU); nothing to build on wasm32.
#![cfg(not(target_arch = "wasm32"))]

#[path = "common/gguf_writer.rs"]
mod gguf_writer;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use gguf_writer::{enc_str, mini_llama, model_bytes, GgufWriter, V};
use padlock::backend::{Activation, Rope};
use padlock::gguf::{GgmlDType, GgufFile, MetaValue};
use padlock::model::config::LlamaConfig;
use padlock::{Error, ErrorCode};

fn parse(bytes: &[u8]) -> Result<GgufFile, Error> {
    GgufFile::parse(Arc::new(bytes.to_vec()))
}

fn parse_err(bytes: &[u8]) -> Error {
    match parse(bytes) {
        Ok(g) => panic!("expected an error, parsed {g:?}"),
        Err(e) => e,
    }
}

fn config_err(bytes: &[u8]) -> Error {
    let g = parse(bytes).expect("the file itself is valid");
    LlamaConfig::from_gguf(&g).expect_err("expected a config error")
}

fn real() -> GgufFile {
    parse(model_bytes()).expect("parse the default model")
}

/// Position of the rank field of the tensor table entry named `name`.
fn find_entry(bytes: &[u8], name: &str) -> usize {
    let needle = enc_str(name.as_bytes());
    let pos = bytes[..bytes.len().min(4 << 20)]
        .windows(needle.len())
        .position(|w| w == needle.as_slice())
        .expect("tensor name in the table");
    pos + needle.len()
}

/// (type field offset, offset field offset) of a tensor table entry.
fn entry_fields(bytes: &[u8], name: &str) -> (usize, usize) {
    let rank_at = find_entry(bytes, name);
    let rank = u32::from_le_bytes(bytes[rank_at..rank_at + 4].try_into().unwrap()) as usize;
    let type_at = rank_at + 4 + 8 * rank;
    (type_at, type_at + 4)
}

#[test]
fn real_model_parses() {
    let g = real();
    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.tensors().len(), 272);
    assert_eq!(g.meta_str("general.architecture").unwrap(), "llama");
    assert_eq!(g.meta_u64("llama.block_count").unwrap(), 30);
    assert_eq!(g.meta_f32("llama.rope.freq_base").unwrap(), 100000.0);
    assert_eq!(g.metadata_keys().count(), 33);
    assert_eq!(g.metadata_keys().next(), Some("general.architecture"));
    assert_eq!(g.metadata("tokenizer.ggml.tokens").and_then(MetaValue::as_array).map(|a| a.len()), Some(49152));
    assert_eq!(g.metadata("tokenizer.ggml.bos_token_id").and_then(MetaValue::as_u64), Some(1));

    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.dtype, GgmlDType::Q8_0);
    assert_eq!(embd.dims, vec![576, 49152]);
    assert_eq!(embd.n_elements(), 576 * 49152);
    assert_eq!(embd.n_bytes, 576 / 32 * 34 * 49152);
    assert_eq!(g.tensor_data(embd).len(), embd.n_bytes);
    assert_eq!(embd.offset % 32, 0);

    let q = g.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.dtype, q.dims.as_slice()), (GgmlDType::Q4_1, &[576usize, 576][..]));
    let norm = g.tensor("output_norm.weight").unwrap();
    assert_eq!(norm.dtype, GgmlDType::F32);
    // The norm weights are small positive-ish floats, not garbage: a check that offsets are absolute.
    let w: Vec<f32> = g.tensor_data(norm).chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(w.len(), 576);
    assert!(w.iter().all(|x| x.is_finite() && x.abs() < 100.0));
    assert!(g.tensor("output.weight").is_none());
    assert!(g.tensor("nope").is_none());

    // Missing and mistyped keys are ModelConfig errors naming the key.
    let e = g.meta_u64("llama.nope").unwrap_err();
    assert_eq!(e.code, ErrorCode::ModelConfig);
    assert!(e.message.contains("llama.nope"), "{e}");
    let e = g.meta_u64("general.architecture").unwrap_err();
    assert_eq!(e.code, ErrorCode::ModelConfig);
    assert!(e.message.contains("general.architecture"), "{e}");
    assert_eq!(g.meta_str("llama.block_count").unwrap_err().code, ErrorCode::ModelConfig);
    assert_eq!(g.meta_f32("llama.block_count").unwrap_err().code, ErrorCode::ModelConfig);
}

#[test]
fn real_model_config() {
    let c = LlamaConfig::from_gguf(&real()).unwrap();
    assert_eq!(
        c,
        LlamaConfig {
            architecture: "llama".into(),
            n_layers: 30,
            hidden: 576,
            ffn: 1536,
            n_heads: 9,
            n_kv_heads: 3,
            head_dim: 64,
            rope: Rope::plain(100000.0),
            rms_eps: c.rms_eps,
            vocab_size: 49152,
            context_length: 8192,
            tied_embeddings: true,
            qkv_bias: false,
            qk_norm: false,
            activation: Activation::Silu,
            embedding_scale: None,
            post_norms: false,
            attention_scale: c.attention_scale,
            window: None,
            attention_soft_cap: None,
            final_soft_cap: None,
        }
    );
    assert!((c.rms_eps - 1e-5).abs() < 1e-9);
    assert_eq!(c.attention_scale, 0.125);
}

#[test]
fn dtype_table() {
    for (t, d, bs, bb, name) in [
        (0, GgmlDType::F32, 1, 4, "F32"),
        (1, GgmlDType::F16, 1, 2, "F16"),
        (2, GgmlDType::Q4_0, 32, 18, "Q4_0"),
        (3, GgmlDType::Q4_1, 32, 20, "Q4_1"),
        (8, GgmlDType::Q8_0, 32, 34, "Q8_0"),
    ] {
        assert_eq!(GgmlDType::from_ggml_type(t).unwrap(), d);
        assert_eq!((d.block_size(), d.block_bytes(), d.name()), (bs, bb, name));
        assert_eq!(d.row_bytes(64), 64 / bs * bb);
    }
    for d in GgmlDType::ALL {
        assert_eq!(GgmlDType::from_ggml_type(d.ggml_type()).unwrap(), d);
        assert!(d.block_bytes() > 0 && d.row_bytes(256 * d.block_size()) == 256 * d.block_bytes());
    }
    let e = GgmlDType::from_ggml_type(23).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnsupportedDtype);
    assert!(e.message.contains("IQ4_XS (type 23)") && e.message.contains("Q4_1") && e.message.contains("Q6_K"), "{e}");
    assert_eq!(GgmlDType::from_ggml_type(u32::MAX).unwrap_err().code, ErrorCode::UnsupportedDtype);
}

#[test]
fn empty_magic_version() {
    assert_eq!(parse_err(&[]).code, ErrorCode::GgufEmpty);
    assert_eq!(parse_err(b"GG").code, ErrorCode::GgufBadMagic);
    let mut b = model_bytes()[..4096].to_vec();
    b[0] = b'X';
    assert_eq!(parse_err(&b).code, ErrorCode::GgufBadMagic);
    assert_eq!(parse_err(b"PK\x03\x04 this is a zip file").code, ErrorCode::GgufBadMagic);

    for v in [0u32, 1, 4, 0x0300_0000, u32::MAX] {
        let mut w = mini_llama();
        w.version = v;
        let e = parse_err(&w.to_bytes());
        assert_eq!(e.code, ErrorCode::GgufUnsupportedVersion, "version {v}");
    }
    let mut w = mini_llama();
    w.version = 2;
    assert!(parse(&w.to_bytes()).is_ok());
    // Big-endian files are named as such.
    let mut w = mini_llama();
    w.version = 0x0300_0000;
    assert!(parse_err(&w.to_bytes()).message.contains("big-endian"));
}

/// The error text of a metadata value is built only when there is an error: a file with a
/// 1 MiB key over an array of eight million bytes used to format the key once per element
/// (about 8·10^12 bytes of text, hours); now it parses at once. The bound is loose on purpose.
#[test]
fn a_long_key_over_a_long_array_parses_at_once() {
    let key = "k".repeat(1 << 20);
    let count: u64 = (1 << 23) - 16;
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // metadata entries
    b.extend(enc_str(key.as_bytes()));
    b.extend(9u32.to_le_bytes()); // array
    b.extend(0u32.to_le_bytes()); // of u8
    b.extend(count.to_le_bytes());
    b.resize(b.len() + count as usize, 7);
    let t0 = std::time::Instant::now();
    let g = parse(&b).expect("a valid file");
    assert!(t0.elapsed().as_secs() < 30, "took {:?}", t0.elapsed());
    assert!(matches!(g.metadata(&key), Some(MetaValue::Array(items)) if items.len() == count as usize));
}

#[test]
fn synthetic_model_parses_and_configures() {
    let bytes = mini_llama().to_bytes();
    let g = parse(&bytes).unwrap();
    assert_eq!(g.tensors().len(), 2 + 2 * 9);
    let c = LlamaConfig::from_gguf(&g).unwrap();
    assert_eq!((c.n_layers, c.hidden, c.ffn, c.n_heads, c.n_kv_heads, c.head_dim), (2, 64, 96, 4, 2, 16));
    assert_eq!((c.vocab_size, c.context_length, &c.rope), (32, 256, &Rope::plain(10000.0)));
    assert!(c.tied_embeddings);
    assert_eq!(
        g.metadata("general.languages"),
        Some(&MetaValue::Array(vec![MetaValue::String("en".into()), MetaValue::String("fr".into())]))
    );
    for t in g.tensors() {
        assert_eq!(g.tensor_data(t).len(), t.n_bytes, "{}", t.name);
    }

    // An untied head is read too.
    let mut w = mini_llama();
    w.tensor("output.weight", &[64, 32], 3);
    assert!(!LlamaConfig::from_gguf(&parse(&w.to_bytes()).unwrap()).unwrap().tied_embeddings);

    // Defaults: head_count_kv = head_count, freq_base = 10000, vocab from the embedding.
    let mut w = mini_llama();
    w.remove("llama.attention.head_count_kv").remove("llama.rope.freq_base");
    for i in 0..2 {
        w.tensor(&format!("blk.{i}.attn_k.weight"), &[64, 64], 3);
        w.tensor(&format!("blk.{i}.attn_v.weight"), &[64, 64], 3);
    }
    let c = LlamaConfig::from_gguf(&parse(&w.to_bytes()).unwrap()).unwrap();
    assert_eq!((c.n_kv_heads, c.rope.theta, c.vocab_size), (4, 10000.0, 32));
}

/// Every cut of the real file is an error with the right code, and never a panic.
#[test]
fn truncated_real_file() {
    let bytes = model_bytes();
    let g = real();
    let data_start = g.tensors().iter().map(|t| t.offset).min().unwrap();
    let data_end = g.tensors().iter().map(|t| t.offset + t.n_bytes).max().unwrap();
    assert_eq!(data_end, bytes.len(), "the last tensor ends the file");

    let mut cuts: Vec<usize> = (0..64).collect(); // header and first key
    let span = 2 << 20;
    cuts.extend((0..200).map(|i| 64 + i * (span / 200) + (i * 7919) % 97));
    cuts.extend([data_start - 1, data_start, data_start + 1, bytes.len() / 2, bytes.len() - 2304, bytes.len() - 1]);
    for cut in cuts {
        let expected = match cut {
            0 => ErrorCode::GgufEmpty,
            1..=3 => ErrorCode::GgufBadMagic,
            c if c < data_start => ErrorCode::GgufTruncated,
            _ => ErrorCode::GgufTensorOutOfBounds,
        };
        let r = catch_unwind(|| GgufFile::parse(Arc::new(bytes[..cut].to_vec())).map(|_| ()));
        match r {
            Err(_) => panic!("parse panicked on the file cut at {cut}"),
            Ok(Ok(())) => panic!("the file cut at {cut} parsed"),
            Ok(Err(e)) => assert_eq!(e.code, expected, "cut at {cut}: {e}"),
        }
    }
}

#[test]
fn tensor_offsets_and_types_in_real_file() {
    let bytes = model_bytes();
    let (type_at, off_at) = entry_fields(bytes, "output_norm.weight");
    let patch = |at: usize, new: &[u8]| {
        let mut b = bytes.to_vec();
        b[at..at + new.len()].copy_from_slice(new);
        b
    };
    let rel = u64::from_le_bytes(bytes[off_at..off_at + 8].try_into().unwrap());

    // Past the end, far past the end, and overflowing.
    for bad in [rel + 32, rel + (1 << 30), u64::MAX - 31] {
        let e = parse_err(&patch(off_at, &bad.to_le_bytes()));
        assert_eq!(e.code, ErrorCode::GgufTensorOutOfBounds, "offset {bad}: {e}");
        assert!(e.message.contains("output_norm.weight"), "{e}");
    }
    let e = parse_err(&patch(off_at, &(rel + 1).to_le_bytes()));
    assert_eq!(e.code, ErrorCode::GgufMisaligned);
    assert!(e.message.contains("output_norm.weight"), "{e}");

    let e = parse_err(&patch(type_at, &23u32.to_le_bytes()));
    assert_eq!(e.code, ErrorCode::UnsupportedDtype);
    assert!(e.message.contains("IQ4_XS (type 23)") && e.message.contains("output_norm.weight"), "{e}");

    // Architecture: the string "llama" patched in place.
    let arch_value = enc_str(b"llama");
    let at = bytes[..4096].windows(arch_value.len()).position(|w| w == arch_value.as_slice()).unwrap();
    let b = patch(at + 8, b"mamba");
    let e = LlamaConfig::from_gguf(&parse(&b).unwrap()).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnsupportedArchitecture);
    assert!(e.message.contains("mamba"), "{e}");
}

#[test]
fn bad_metadata() {
    let base = mini_llama();
    let with = |key: &str, v: V| {
        let mut w = base.clone();
        w.set(key, v);
        w.to_bytes()
    };
    let check = |bytes: Vec<u8>, code: ErrorCode, what: &str| {
        let e = parse_err(&bytes);
        assert_eq!(e.code, code, "{what}: {e}");
    };
    let bad = ErrorCode::GgufBadMetadata;

    check(with("x", V { tag: 13, bytes: vec![0; 8] }), bad, "type tag 13");
    check(with("x", V { tag: u32::MAX, bytes: vec![0; 8] }), bad, "type tag u32::MAX");
    check(with("x", V::array(13, &[])), bad, "array of tag 13");
    check(with("x", V { tag: 8, bytes: enc_str(b"\xff\xfe") }), bad, "invalid UTF-8 value");
    check(with("x", V { tag: 7, bytes: vec![2] }), bad, "bool 2");
    let mut deep = V::array(4, &[]);
    for _ in 0..5 {
        deep = V::array(9, &[deep]);
    }
    check(with("x", deep), bad, "deeply nested arrays");
    let mut nested = V::array(4, &[V::u32(7)]);
    nested = V::array(9, &[nested.clone(), nested]);
    assert!(parse(&with("x", nested)).is_ok(), "two levels of arrays are fine");

    for a in [V::u32(0), V::u32(3), V::u32(48), V::u64(1 << 40), V::str("32"), V::i32(-32)] {
        check(with("general.alignment", a.clone()), bad, &format!("alignment {a:?}"));
    }
    let mut w = base.clone();
    w.alignment = 64;
    w.set("general.alignment", V::u32(64));
    assert_eq!(parse(&w.to_bytes()).unwrap().alignment(), 64);

    let mut w = base.clone();
    w.kv.push(("llama.block_count".into(), V::u32(2)));
    let e = parse_err(&w.to_bytes());
    assert_eq!(e.code, bad);
    assert!(e.message.contains("duplicate") && e.message.contains("llama.block_count"), "{e}");

    // An invalid UTF-8 key.
    let mut b = base.to_bytes();
    let key = enc_str(b"general.architecture");
    let at = b.windows(key.len()).position(|w| w == key.as_slice()).unwrap();
    b[at + 8] = 0xC0;
    check(b, bad, "invalid UTF-8 key");

    // Arrays that really are in the file, but hold more elements than any model needs (each
    // would cost 32 bytes of memory per byte of file).
    let n = (1u64 << 23) + 1;
    let mut bytes = 0u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(&n.to_le_bytes());
    bytes.resize(bytes.len() + n as usize, 0);
    check(with("x", V { tag: 9, bytes }), bad, "8M u8 elements");

    // Huge lengths are refused before anything is allocated.
    let tr = ErrorCode::GgufTruncated;
    check(with("x", V { tag: 8, bytes: u64::MAX.to_le_bytes().to_vec() }), tr, "string of 2^64-1 bytes");
    check(with("x", V { tag: 8, bytes: (1u64 << 40).to_le_bytes().to_vec() }), tr, "string of 2^40 bytes");
    for (elem, count) in [(8u32, 1u64 << 60), (0, u64::MAX), (9, 1 << 40), (10, u64::MAX / 4)] {
        let mut bytes = elem.to_le_bytes().to_vec();
        bytes.extend_from_slice(&count.to_le_bytes());
        check(with("x", V { tag: 9, bytes }), tr, &format!("array of {count} x type {elem}"));
    }
    let mut b = base.to_bytes();
    b[16..24].copy_from_slice(&u64::MAX.to_le_bytes()); // metadata count
    check(b, tr, "metadata count");
    let mut b = base.to_bytes();
    b[8..16].copy_from_slice(&(1u64 << 50).to_le_bytes()); // tensor count
    check(b, tr, "tensor count");
    let mut b = base.to_bytes();
    b[24..32].copy_from_slice(&u64::MAX.to_le_bytes()); // first key's length
    check(b, tr, "key length");
}

#[test]
fn bad_tensors() {
    let base = mini_llama();
    let with = |f: &dyn Fn(&mut GgufWriter)| {
        let mut w = base.clone();
        f(&mut w);
        parse_err(&w.to_bytes())
    };
    let bt = ErrorCode::GgufBadTensor;
    type Case = (&'static str, Box<dyn Fn(&mut GgufWriter)>, ErrorCode);
    let cases: Vec<Case> = vec![
        (
            "rank 0",
            Box::new(|w| {
                w.tensor("t", &[], 0);
            }),
            bt,
        ),
        (
            "rank 5",
            Box::new(|w| {
                w.tensor("t", &[1, 1, 1, 1, 1], 0);
            }),
            bt,
        ),
        (
            "zero dim",
            Box::new(|w| {
                w.tensor("t", &[32, 0], 0);
            }),
            bt,
        ),
        (
            "overflowing elements",
            Box::new(|w| {
                w.tensor("t", &[1 << 32, 1 << 32, 1 << 32], 0);
                w.tensor_mut("t").n_bytes = 0;
            }),
            bt,
        ),
        (
            "overflowing bytes",
            Box::new(|w| {
                w.tensor("t", &[1 << 31, 1 << 31, 2], 0);
                w.tensor_mut("t").n_bytes = 0;
            }),
            bt,
        ),
        (
            "row not a multiple of the block",
            Box::new(|w| {
                w.tensor("t", &[16, 2], 2);
            }),
            bt,
        ),
        (
            "duplicate name",
            Box::new(|w| {
                let t = w.tensors[0].clone();
                w.tensors.push(t);
            }),
            bt,
        ),
        (
            "unsupported type 23 (IQ4_XS)",
            Box::new(|w| {
                w.tensor("t", &[256, 2], 23);
            }),
            ErrorCode::UnsupportedDtype,
        ),
        (
            "unsupported type 16 (IQ2_XXS)",
            Box::new(|w| {
                w.tensor("t", &[256], 16);
            }),
            ErrorCode::UnsupportedDtype,
        ),
        (
            "misaligned",
            Box::new(|w| {
                w.tensor_mut("blk.0.attn_q.weight").offset = Some(33);
            }),
            ErrorCode::GgufMisaligned,
        ),
        (
            "past the end",
            Box::new(|w| {
                w.tensor_mut("blk.1.ffn_down.weight").offset = Some(1 << 20);
            }),
            ErrorCode::GgufTensorOutOfBounds,
        ),
        (
            "overflowing offset",
            Box::new(|w| {
                w.tensor_mut("blk.1.ffn_down.weight").offset = Some(u64::MAX - 31);
            }),
            ErrorCode::GgufTensorOutOfBounds,
        ),
    ];
    for (what, f, code) in cases {
        let e = with(&*f);
        assert_eq!(e.code, code, "{what}: {e}");
    }
    // A rank of u32::MAX is refused before the dims are read.
    let mut b = base.to_bytes();
    let at = find_entry(&b, "output_norm.weight");
    b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(parse_err(&b).code, bt);

    let e = with(&|w| {
        w.tensor("blk.0.weird", &[16, 2], 2);
    });
    assert!(e.message.contains("blk.0.weird"), "{e}");
}

#[test]
fn bad_configs() {
    let base = mini_llama();
    let run = |f: &dyn Fn(&mut GgufWriter)| {
        let mut w = base.clone();
        f(&mut w);
        config_err(&w.to_bytes())
    };
    let check = |f: &dyn Fn(&mut GgufWriter), code: ErrorCode, needle: &str| {
        let e = run(f);
        assert_eq!(e.code, code, "{needle}: {e}");
        assert!(e.message.contains(needle), "message should name {needle:?}: {e}");
    };
    let mc = ErrorCode::ModelConfig;

    check(
        &|w| {
            w.set("general.architecture", V::str("gpt2"));
        },
        ErrorCode::UnsupportedArchitecture,
        "gpt2",
    );
    check(
        &|w| {
            w.set("general.architecture", V::str("mamba"));
        },
        ErrorCode::UnsupportedArchitecture,
        "mamba",
    );
    check(
        &|w| {
            w.remove("general.architecture");
        },
        mc,
        "general.architecture",
    );
    check(
        &|w| {
            w.set("general.architecture", V::u32(1));
        },
        mc,
        "general.architecture",
    );
    check(
        &|w| {
            w.remove("llama.embedding_length");
        },
        mc,
        "llama.embedding_length",
    );
    check(
        &|w| {
            w.remove("llama.attention.layer_norm_rms_epsilon");
        },
        mc,
        "layer_norm_rms_epsilon",
    );
    check(
        &|w| {
            w.set("llama.block_count", V::str("2"));
        },
        mc,
        "llama.block_count",
    );
    check(
        &|w| {
            w.set("llama.block_count", V::u32(0));
        },
        mc,
        "llama.block_count",
    );
    check(
        &|w| {
            w.set("llama.block_count", V::u64(1 << 40));
        },
        mc,
        "llama.block_count",
    );
    check(
        &|w| {
            w.set("llama.block_count", V::u32((1 << 20) + 1));
        },
        mc,
        "llama.block_count",
    );
    check(
        &|w| {
            w.set("llama.block_count", V::i32(-1));
        },
        mc,
        "llama.block_count",
    );
    check(
        &|w| {
            w.set("llama.block_count", V::u32(3));
        },
        mc,
        "blk.2.attn_norm.weight",
    );
    check(
        &|w| {
            w.set("llama.embedding_length", V::u64(u64::MAX));
        },
        mc,
        "llama.embedding_length",
    );
    check(
        &|w| {
            w.set("llama.context_length", V::u32(0));
        },
        mc,
        "llama.context_length",
    );
    check(
        &|w| {
            w.set("llama.attention.head_count", V::u32(0));
        },
        mc,
        "head_count",
    );
    check(
        &|w| {
            w.set("llama.attention.head_count", V::u32(5));
        },
        mc,
        "head_count",
    );
    check(
        &|w| {
            w.set("llama.attention.head_count_kv", V::u32(3));
        },
        mc,
        "head_count_kv",
    );
    check(
        &|w| {
            w.set("llama.attention.head_count_kv", V::u32(8));
        },
        mc,
        "head_count_kv",
    );
    check(
        &|w| {
            w.set("llama.attention.head_count_kv", V::u32(0));
        },
        mc,
        "head_count_kv",
    );
    check(
        &|w| {
            w.set("llama.attention.head_count", V::u32(64));
            w.set("llama.attention.head_count_kv", V::u32(64));
        },
        mc,
        "even",
    );
    check(
        &|w| {
            w.set("llama.rope.dimension_count", V::u32(8));
        },
        mc,
        "dimension_count",
    );
    check(
        &|w| {
            w.set("llama.attention.layer_norm_rms_epsilon", V::f32(0.0));
        },
        mc,
        "epsilon",
    );
    check(
        &|w| {
            w.set("llama.attention.layer_norm_rms_epsilon", V::f32(f32::NAN));
        },
        mc,
        "epsilon",
    );
    check(
        &|w| {
            w.set("llama.rope.freq_base", V::f32(-1.0));
        },
        mc,
        "freq_base",
    );
    check(
        &|w| {
            w.set("llama.rope.freq_base", V::u32(10000));
        },
        mc,
        "freq_base",
    );
    check(
        &|w| {
            w.set("llama.vocab_size", V::u32(33));
        },
        mc,
        "token_embd.weight",
    );

    check(
        &|w| {
            w.remove_tensor("blk.1.ffn_up.weight");
        },
        mc,
        "blk.1.ffn_up.weight",
    );
    check(
        &|w| {
            w.remove_tensor("token_embd.weight");
        },
        mc,
        "token_embd.weight",
    );
    check(
        &|w| {
            w.remove_tensor("output_norm.weight");
        },
        mc,
        "output_norm.weight",
    );
    check(
        &|w| {
            w.tensor("token_embd.weight", &[64, 32, 1], 8);
        },
        mc,
        "token_embd.weight",
    );
    check(
        &|w| {
            w.tensor("blk.0.attn_q.weight", &[64, 32], 3);
        },
        mc,
        "blk.0.attn_q.weight",
    );
    check(
        &|w| {
            w.tensor("blk.1.attn_k.weight", &[64, 64], 3);
        },
        mc,
        "blk.1.attn_k.weight",
    );
    check(
        &|w| {
            w.tensor("blk.0.attn_output.weight", &[64, 64, 1], 3);
        },
        mc,
        "blk.0.attn_output.weight",
    );
    check(
        &|w| {
            w.tensor("blk.0.ffn_down.weight", &[64, 96], 3);
        },
        mc,
        "blk.0.ffn_down.weight",
    );
    check(
        &|w| {
            w.tensor("output.weight", &[64, 31], 0);
        },
        mc,
        "output.weight",
    );
    check(
        &|w| {
            w.tensor("blk.0.ffn_norm.weight", &[64], 1);
        },
        mc,
        "blk.0.ffn_norm.weight",
    );
    check(
        &|w| {
            w.tensor("output_norm.weight", &[64], 1);
        },
        mc,
        "F32",
    );

    // The message says what was expected and what was found.
    let e = run(&|w| {
        w.tensor("blk.0.attn_q.weight", &[64, 32], 3);
    });
    assert!(e.message.contains("[64, 32]") && e.message.contains("[64, 64]"), "{e}");
}

/// Random byte flips in a small valid file never panic: every outcome is Ok or a typed error.
#[test]
fn random_byte_flips_never_panic() {
    let base = mini_llama().to_bytes();
    let region = base.len().min(64 << 10);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // Knuth's MMIX LCG; the high bits are the good ones.
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let (mut ok, mut errs) = (0, 0);
    for iter in 0..4000 {
        let mut b = base.clone();
        // Most flips in the header and metadata, where they matter most.
        let hot = if iter % 2 == 0 { 1024.min(region) } else { region };
        for _ in 0..1 + next() % 4 {
            let at = next() % hot;
            b[at] ^= (1 + next() % 255) as u8;
        }
        if iter % 7 == 0 {
            b.truncate(next() % (b.len() + 1));
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            let g = GgufFile::parse(Arc::new(b.clone()))?;
            for t in g.tensors() {
                assert_eq!(g.tensor_data(t).len(), t.n_bytes);
            }
            LlamaConfig::from_gguf(&g).map(|_| ())
        }));
        match r {
            Err(_) => panic!("iteration {iter}: panic on a corrupted file"),
            Ok(Ok(())) => ok += 1,
            Ok(Err(_)) => errs += 1,
        }
    }
    eprintln!("byte flips: {ok} parsed and configured, {errs} typed errors");
    // Both outcomes must occur, or the test is not testing anything.
    assert!(ok > 0 && errs > 0, "ok {ok}, errors {errs}");
}

#[test]
fn a_weight_that_is_not_finite_fails_the_load_naming_the_tensor() {
    use padlock::backend::cpu::CpuBackend;
    use padlock::model::llama::Llama;
    // The writer's filler bytes make arbitrary f16 scales (some NaN): zero every tensor's data.
    let mut clean = mini_llama().to_bytes();
    for t in parse(&clean.clone()).unwrap().tensors() {
        clean[t.offset..t.offset + t.n_bytes].fill(0);
    }
    if let Err(e) = Llama::load(CpuBackend::new(), &parse(&clean).unwrap(), &mut |_| {}) {
        panic!("the clean file does not load: {e}");
    }
    // A Q4_1 block's scale, a Q4_1 block's minimum, an F32 norm: each NaN or infinite.
    for (tensor, at, value) in [
        ("blk.1.ffn_down.weight", 0, half::f16::NAN.to_le_bytes().to_vec()),
        ("blk.0.attn_q.weight", 22, half::f16::INFINITY.to_le_bytes().to_vec()),
        ("blk.1.attn_norm.weight", 8, f32::NAN.to_le_bytes().to_vec()),
    ] {
        let mut bytes = clean.clone();
        let info = parse(&clean).unwrap().tensor(tensor).unwrap().clone();
        bytes[info.offset + at..info.offset + at + value.len()].copy_from_slice(&value);
        let err = Llama::load(CpuBackend::new(), &parse(&bytes).unwrap(), &mut |_| {}).err().unwrap();
        assert_eq!(err.code, ErrorCode::ModelWeights, "{err}");
        assert!(err.message.contains(tensor), "{err}");
    }
}
