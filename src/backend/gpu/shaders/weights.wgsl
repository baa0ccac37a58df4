// Reading weights in the layouts the GPU keeps them in (see weights.rs). Included by every
// kernel that reads a weight; the including shader declares the binding
// `w: array<u32>` and defines exactly one of F32, F16, Q4_0, Q4_1, Q8_0.
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

#ifdef F32
const WHOLE_BLOCKS: bool = false;
fn unit_a(j: u32) -> u32 { return 8u * j; }
fn unit_b(j: u32) -> u32 { return 8u * j + 4u; }
fn w_f32(i: u32, k: u32, row_start: u32) -> f32 {
    return select(0.0, bitcast<f32>(w[row_start + min(i, k - 1u)]), i < k);
}
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let s = base + r * k;
    let e = 32u * c + 8u * j;
    return Unit(
        vec4<f32>(w_f32(e, k, s), w_f32(e + 1u, k, s), w_f32(e + 2u, k, s), w_f32(e + 3u, k, s)),
        vec4<f32>(w_f32(e + 4u, k, s), w_f32(e + 5u, k, s), w_f32(e + 6u, k, s), w_f32(e + 7u, k, s)),
    );
}
#endif

#ifdef F16
const WHOLE_BLOCKS: bool = false;
fn unit_a(j: u32) -> u32 { return 8u * j; }
fn unit_b(j: u32) -> u32 { return 8u * j + 4u; }
// Element i of the row whose first half sits at half index `h0` (halves counted from word 0).
fn w_f16(i: u32, k: u32, h0: u32) -> f32 {
    let h = h0 + min(i, k - 1u);
    let pair = unpack2x16float(w[h >> 1u]);
    return select(0.0, select(pair.x, pair.y, (h & 1u) == 1u), i < k);
}
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let h0 = 2u * base + r * k;
    let e = 32u * c + 8u * j;
    return Unit(
        vec4<f32>(w_f16(e, k, h0), w_f16(e + 1u, k, h0), w_f16(e + 2u, k, h0), w_f16(e + 3u, k, h0)),
        vec4<f32>(w_f16(e + 4u, k, h0), w_f16(e + 5u, k, h0), w_f16(e + 6u, k, h0), w_f16(e + 7u, k, h0)),
    );
}
#endif

#ifdef Q4_1
const WHOLE_BLOCKS: bool = true;
fn unit_a(j: u32) -> u32 { return 4u * j; }
fn unit_b(j: u32) -> u32 { return 16u + 4u * j; }
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = base + (r * (k / 32u) + c) * 5u;
    let dm = unpack2x16float(w[blk]);
    let q = w[blk + 1u + j];
    let lo = vec4<f32>(vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(15u));
    let hi = vec4<f32>(vec4<u32>(q >> 4u, q >> 12u, q >> 20u, q >> 28u) & vec4<u32>(15u));
    return Unit(lo * dm.x + dm.y, hi * dm.x + dm.y);
}
#endif

#ifdef Q4_0
const WHOLE_BLOCKS: bool = true;
fn unit_a(j: u32) -> u32 { return 4u * j; }
fn unit_b(j: u32) -> u32 { return 16u + 4u * j; }
fn load_unit(base: u32, k: u32, r: u32, c: u32, j: u32) -> Unit {
    let blk = base + (r * (k / 32u) + c) * 5u;
    let d = unpack2x16float(w[blk]).x;
    let q = w[blk + 1u + j];
    let lo = vec4<f32>(vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) & vec4<u32>(15u));
    let hi = vec4<f32>(vec4<u32>(q >> 4u, q >> 12u, q >> 20u, q >> 28u) & vec4<u32>(15u));
    return Unit((lo - 8.0) * d, (hi - 8.0) * d);
}
#endif

#ifdef Q8_0
const WHOLE_BLOCKS: bool = true;
fn unit_a(j: u32) -> u32 { return 4u * j; }
fn unit_b(j: u32) -> u32 { return 16u + 4u * j; }
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
