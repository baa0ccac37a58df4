// Reading weights in the layouts the GPU keeps them in (see weights.rs). Included by every
// kernel that reads a weight; the including shader declares the binding
// `w: array<u32>`, and the Rust side defines the format's flags (`format_defines`): F32 or
// F16 with FLOAT; Q4_0, Q4_1 or Q8_0 with BLOCKS, the 4-bit ones with NIBBLES too.
//
//   Q4_1  5 words per 32-element block: [d, m as two f16][16 bytes: nibbles]   (GGUF's own bytes)
//   Q4_0  5 words per block: [d as f16, 0][16 bytes: nibbles]                  (GGUF's 18 bytes, padded)
//   Q8_0  9 words per block: [d as f16, 0][32 signed bytes]                    (GGUF's 34 bytes, padded)
//   F16   GGUF's halves, two per word;  F32  GGUF's floats.
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

#ifdef NIBBLES
// 5 words per block: the scale word, then 16 bytes whose low nibbles are elements 0..16 and
// high nibbles elements 16..32 (unit j: word 1 + j).
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = base + (r * (k / 32u) + c) * 5u;
    let q = w[blk + 1u + j];
    let lo = vec4<f32>(vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(15u));
    let hi = vec4<f32>(vec4<u32>(q >> 4u, q >> 12u, q >> 20u, q >> 28u) & vec4<u32>(15u));
    return scaled(unpack2x16float(w[blk]), lo, hi);
}
#endif

#ifdef Q4_1
fn scaled(dm: vec2<f32>, lo: vec4<f32>, hi: vec4<f32>) -> Unit {
    return Unit(lo * dm.x + dm.y, hi * dm.x + dm.y);
}
#endif

#ifdef Q4_0
fn scaled(d: vec2<f32>, lo: vec4<f32>, hi: vec4<f32>) -> Unit {
    return Unit((lo - 8.0) * d.x, (hi - 8.0) * d.x);
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
