// Reading weights in the layouts the GPU keeps them in (see weights.rs). Included by every
// kernel that reads a weight; the including shader declares the binding
// `w: array<u32>`, and the Rust side defines the format's flags (`format_defines`): F32, F16
// or BF16 with FLOAT; the 32-element block formats with BLOCKS (the 4-bit ones with NIBBLES,
// the 5-bit ones with FIVE_BITS); the 256-element K-quants with SUPER.
//
//   Q4_1   5 words per 32-element block: [d, m as two f16][16 bytes: nibbles]  (GGUF's own bytes)
//   Q4_0   5 words: [d as f16, 0][16 bytes: nibbles]                 (GGUF's 18 bytes, padded)
//   IQ4_NL 5 words, as Q4_0; a nibble indexes a table of 16 levels
//   Q5_0   6 words: [d, 0][qh: bit 4 of each element][nibbles]       (22 bytes, padded)
//   Q5_1   6 words: [d, m][qh][nibbles]
//   Q8_0   9 words: [d as f16, 0][32 signed bytes]                   (34 bytes, padded)
//   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: GGUF's blocks of 256 (blocks.rs has their fields), Q3_K
//          and Q6_K padded at the end to 28 and 53 words
//   F16, BF16  GGUF's halves, two per word;  F32  GGUF's floats.
//
// A weight starts at word `base` of `w`, row-major, rows of `k` elements. A row is read in
// chunks of 32 elements, each as 4 units of 8 elements: unit j of a chunk holds the elements
// at chunk offsets unit_a(j) + 0..3 and unit_b(j) + 0..3 (for the 4-bit formats the low and
// the high nibbles of the same four bytes). Elements past k (F32, F16) read as 0; the block
// formats have no such elements (WHOLE_BLOCKS), which spares every read its bounds check.

struct Unit {
    a: vec4<f32>,
    b: vec4<f32>,
}

#ifdef FLOAT
// Rows of k elements; unit j of chunk c is the elements 32c + 8j .. 32c + 8j + 8.
const WHOLE_BLOCKS: bool = false;
fn unit_a(j: u32) -> u32 { return 8u * j; }
fn unit_b(j: u32) -> u32 { return 8u * j + 4u; }
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let s = row_start(base, k, r);
    let e = 32u * c + 8u * j;
    return Unit(
        vec4<f32>(w_at(s, e, k), w_at(s, e + 1u, k), w_at(s, e + 2u, k), w_at(s, e + 3u, k)),
        vec4<f32>(w_at(s, e + 4u, k), w_at(s, e + 5u, k), w_at(s, e + 6u, k), w_at(s, e + 7u, k)),
    );
}
#endif

#ifdef F32
// Where row r starts, in elements (words).
fn row_start(base: u32, k: u32, r: u32) -> u32 { return base + r * k; }
fn w_at(s: u32, i: u32, k: u32) -> f32 {
    return select(0.0, bitcast<f32>(w[s + min(i, k - 1u)]), i < k);
}
#endif

#ifdef BF16
// Where row r starts, in halves counted from word 0.
fn row_start(base: u32, k: u32, r: u32) -> u32 { return 2u * base + r * k; }
fn w_at(s: u32, i: u32, k: u32) -> f32 {
    let h = s + min(i, k - 1u);
    let word = w[h >> 1u];
    return select(0.0, bitcast<f32>(select(word << 16u, word & 0xffff0000u, (h & 1u) == 1u)), i < k);
}
#endif

#ifdef F16
// Where row r starts, in halves counted from word 0.
fn row_start(base: u32, k: u32, r: u32) -> u32 { return 2u * base + r * k; }
fn w_at(s: u32, i: u32, k: u32) -> f32 {
    let h = s + min(i, k - 1u);
    let pair = unpack2x16float(w[h >> 1u]);
    return select(0.0, select(pair.x, pair.y, (h & 1u) == 1u), i < k);
}
#endif

#ifdef BLOCKS
// 32-element blocks; unit j is the elements 4j .. 4j + 4 and 16 + 4j .. 16 + 4j + 4.
const WHOLE_BLOCKS: bool = true;
fn unit_a(j: u32) -> u32 { return 4u * j; }
fn unit_b(j: u32) -> u32 { return 16u + 4u * j; }
#endif

// The four bytes of a word, and the low nibbles of the four bytes.
fn bytes4(q: u32) -> vec4<u32> {
    return vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(255u);
}
fn nibbles4(q: u32) -> vec4<u32> {
    return vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(15u);
}
// Byte i counted from word `at`.
fn byte_at(at: u32, i: u32) -> u32 {
    return (w[at + i / 4u] >> (8u * (i % 4u))) & 255u;
}

#ifdef NIBBLES
// 5 words per block: the scale word, then 16 bytes whose low nibbles are elements 0..16 and
// high nibbles elements 16..32 (unit j: word 1 + j).
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = base + (r * (k / 32u) + c) * 5u;
    let q = w[blk + 1u + j];
    return scaled(unpack2x16float(w[blk]), vec4<f32>(nibbles4(q)), vec4<f32>(nibbles4(q >> 4u)));
}
#endif

#ifdef FIVE_BITS
// 6 words per block: the scale word, the word of fifth bits (bit e for element e), then the
// nibbles as in NIBBLES.
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = base + (r * (k / 32u) + c) * 6u;
    let q = w[blk + 2u + j];
    let qh = w[blk + 1u];
    let bit = vec4<u32>(0u, 1u, 2u, 3u);
    let lo = nibbles4(q) | (((vec4<u32>(qh >> (4u * j)) >> bit) & vec4<u32>(1u)) << vec4<u32>(4u));
    let hi = nibbles4(q >> 4u) | (((vec4<u32>(qh >> (16u + 4u * j)) >> bit) & vec4<u32>(1u)) << vec4<u32>(4u));
    return scaled(unpack2x16float(w[blk]), vec4<f32>(lo), vec4<f32>(hi));
}
#endif

#ifdef MIN
// Q4_1, Q5_1: d·q + m.
fn scaled(dm: vec2<f32>, lo: vec4<f32>, hi: vec4<f32>) -> Unit {
    return Unit(lo * dm.x + dm.y, hi * dm.x + dm.y);
}
#endif

#ifdef CENTRED
// Q4_0, Q5_0: d·(q − 2^(bits − 1)).
#ifdef Q4_0
const ZERO: f32 = 8.0;
#else
const ZERO: f32 = 16.0;
#endif
fn scaled(d: vec2<f32>, lo: vec4<f32>, hi: vec4<f32>) -> Unit {
    return Unit((lo - ZERO) * d.x, (hi - ZERO) * d.x);
}
#endif

#ifdef IQ4_NL
var<private> IQ4_NL_LEVELS: array<f32, 16> = array<f32, 16>(
    -127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0,
);
fn levels(q: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(IQ4_NL_LEVELS[u32(q.x)], IQ4_NL_LEVELS[u32(q.y)], IQ4_NL_LEVELS[u32(q.z)], IQ4_NL_LEVELS[u32(q.w)]);
}
fn scaled(d: vec2<f32>, lo: vec4<f32>, hi: vec4<f32>) -> Unit {
    return Unit(levels(lo) * d.x, levels(hi) * d.x);
}
#endif

#ifdef Q8_0
// 9 words per block: the scale word, then 32 signed bytes (unit j: words 1 + j and 5 + j).
fn bytes_i8(q: u32) -> vec4<f32> {
    let s = i32(q);
    return vec4<f32>(vec4<i32>(extractBits(s, 0u, 8u), extractBits(s, 8u, 8u), extractBits(s, 16u, 8u), extractBits(s, 24u, 8u)));
}
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = base + (r * (k / 32u) + c) * 9u;
    let d = unpack2x16float(w[blk]).x;
    return Unit(bytes_i8(w[blk + 1u + j]) * d, bytes_i8(w[blk + 5u + j]) * d);
}
#endif

#ifdef SUPER
// 256-element blocks read 32 elements (a chunk) at a time; unit j is the chunk's elements
// 8j .. 8j + 8, which are 8 consecutive bytes (two words) of whatever array holds them.
const WHOLE_BLOCKS: bool = true;
fn unit_a(j: u32) -> u32 { return 8u * j; }
fn unit_b(j: u32) -> u32 { return 8u * j + 4u; }
// The first word of the block that holds chunk c of row r, blocks of `words` words.
fn super_block(base: u32, k: u32, r: u32, c: u32, words: u32) -> u32 {
    return base + (r * (k / 256u) + c / 8u) * words;
}
#endif

#ifdef SCALE_MIN_K4
// Sub-block i's 6-bit scale and minimum in the 12 bytes from word `at` (Q4_K, Q5_K).
fn scale_min_k4(at: u32, i: u32) -> vec2<f32> {
    if (i < 4u) {
        return vec2<f32>(f32(byte_at(at, i) & 63u), f32(byte_at(at, i + 4u) & 63u));
    }
    let sc = (byte_at(at, i + 4u) & 15u) | ((byte_at(at, i - 4u) >> 6u) << 4u);
    let m = (byte_at(at, i + 4u) >> 4u) | ((byte_at(at, i) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}
#endif

#ifdef Q4_K
// 36 words: [d, dmin], 3 words of scales, 32 words of nibbles; sub-block s (= chunk) is the
// low (s even) or high nibbles of bytes 32·(s/2) ..
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = super_block(base, k, r, c, 36u);
    let s = c % 8u;
    let dm = unpack2x16float(w[blk]) * scale_min_k4(blk + 1u, s);
    let q = blk + 4u + 8u * (s / 2u) + 2u * j;
    let shift = 4u * (s % 2u);
    return Unit(vec4<f32>(nibbles4(w[q] >> shift)) * dm.x - dm.y, vec4<f32>(nibbles4(w[q + 1u] >> shift)) * dm.x - dm.y);
}
#endif

#ifdef Q5_K
// 44 words: [d, dmin], 3 words of scales, 8 words of fifth bits (bit s of byte e for element
// e of sub-block s), 32 words of nibbles as in Q4_K.
fn fifth_bits(h: u32, s: u32) -> vec4<u32> {
    return ((bytes4(h) >> vec4<u32>(s)) & vec4<u32>(1u)) << vec4<u32>(4u);
}
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = super_block(base, k, r, c, 44u);
    let s = c % 8u;
    let dm = unpack2x16float(w[blk]) * scale_min_k4(blk + 1u, s);
    let q = blk + 12u + 8u * (s / 2u) + 2u * j;
    let h = blk + 4u + 2u * j;
    let shift = 4u * (s % 2u);
    let a = nibbles4(w[q] >> shift) | fifth_bits(w[h], s);
    let b = nibbles4(w[q + 1u] >> shift) | fifth_bits(w[h + 1u], s);
    return Unit(vec4<f32>(a) * dm.x - dm.y, vec4<f32>(b) * dm.x - dm.y);
}
#endif

#ifdef Q6_K
// 53 words: 32 of low nibbles, 16 of high bit pairs, 4 of signed scales (one per 16
// elements), [d, 0]. Chunk s = 4·half + g takes its low bits from nibble g/2 of bytes
// 64·half + 32·(g mod 2) .., its high bits from bits 2g of bytes 32·half ..
fn q6(lo: u32, hi: u32, g: u32) -> vec4<f32> {
    let q = nibbles4(lo >> (4u * (g / 2u))) | (((bytes4(hi) >> vec4<u32>(2u * g)) & vec4<u32>(3u)) << vec4<u32>(4u));
    return vec4<f32>(vec4<i32>(q) - vec4<i32>(32));
}
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = super_block(base, k, r, c, 53u);
    let s = c % 8u;
    let half = s / 4u;
    let g = s % 4u;
    let si = 8u * half + 2u * g + j / 2u;
    let sc = f32(extractBits(i32(w[blk + 48u + si / 4u]), 8u * (si % 4u), 8u));
    let d = unpack2x16float(w[blk + 52u]).x * sc;
    let lo = blk + 16u * half + 8u * (g % 2u) + 2u * j;
    let hi = blk + 32u + 8u * half + 2u * j;
    return Unit(q6(w[lo], w[hi], g) * d, q6(w[lo + 1u], w[hi + 1u], g) * d);
}
#endif

#ifdef Q2_K
// 21 words: 4 of scales (low nibble s, high nibble m, one byte per 16 elements), 16 of 2-bit
// quants, [d, dmin]. Unit j of chunk c is in sub-block i = 2·(c mod 8) + j/2, at element
// 8·(j mod 2) of it; sub-block i's quants are bits 2·(i/2 mod 4) of bytes 32·(i/8) + 16·(i mod 2) ..
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = super_block(base, k, r, c, 21u);
    let i = 2u * (c % 8u) + j / 2u;
    let sm = byte_at(blk, i);
    let dm = unpack2x16float(w[blk + 20u]) * vec2<f32>(f32(sm & 15u), f32(sm >> 4u));
    let q = blk + 4u + (32u * (i / 8u) + 16u * (i % 2u) + 8u * (j % 2u)) / 4u;
    let shift = vec4<u32>(2u * ((i / 2u) % 4u));
    let a = vec4<f32>((bytes4(w[q]) >> shift) & vec4<u32>(3u));
    let b = vec4<f32>((bytes4(w[q + 1u]) >> shift) & vec4<u32>(3u));
    return Unit(a * dm.x - dm.y, b * dm.x - dm.y);
}
#endif

#ifdef Q3_K
// 28 words: 8 of high bits (hmask), 16 of 2-bit quants as in Q2_K, 3 of packed 6-bit scales,
// [d, 0]. Element e of sub-block i has its high bit in bit i/2 of hmask byte 16·(i mod 2) + e;
// a clear bit subtracts 4.
fn q3_scale(at: u32, i: u32) -> f32 {
    let low = (byte_at(at, i % 8u) >> (4u * (i / 8u))) & 15u;
    let high = (byte_at(at, 8u + i % 4u) >> (2u * (i / 4u))) & 3u;
    return f32(i32(low | (high << 4u)) - 32);
}
fn q3(q: u32, h: u32, shift: u32, bit: u32) -> vec4<f32> {
    let low = vec4<i32>((bytes4(q) >> vec4<u32>(shift)) & vec4<u32>(3u));
    let clear = vec4<i32>(((bytes4(h) >> vec4<u32>(bit)) & vec4<u32>(1u)) ^ vec4<u32>(1u));
    return vec4<f32>(low - 4 * clear);
}
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = super_block(base, k, r, c, 28u);
    let i = 2u * (c % 8u) + j / 2u;
    let d = unpack2x16float(w[blk + 27u]).x * q3_scale(blk + 24u, i);
    let q = blk + 8u + (32u * (i / 8u) + 16u * (i % 2u) + 8u * (j % 2u)) / 4u;
    let h = blk + (16u * (i % 2u) + 8u * (j % 2u)) / 4u;
    let shift = 2u * ((i / 2u) % 4u);
    return Unit(q3(w[q], w[h], shift, i / 2u) * d, q3(w[q + 1u], w[h + 1u], shift, i / 2u) * d);
}
#endif
