// Rotary position embedding: for each row, head and pair i, (a, b) ← (a·cos − b·sin,
// a·sin + b·cos), where a, b are a head's elements 2i and 2i+1 (GGUF llama), or with HALVES
// i and i + head_dim/2 (NeoX, Qwen). The angles come from the host (`table`: cos, sin per
// row and pair, computed exactly as the CPU backend computes them).
struct RopeParams {
    cols: u32,
    head_dim: u32,
    rows: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: RopeParams;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    // One thread per pair: cols / 2 pairs per row.
    let g = gid.x + gid.y * nwg.x * 256u;
    let pairs = p.cols / 2u;
    let row = g / pairs;
    if (row >= p.rows) {
        return;
    }
    let half = p.head_dim / 2u;
    let pair = g % pairs;
    let i = pair % half;
    let head = row * p.cols + (pair / half) * p.head_dim;
#ifdef HALVES
    let ea = head + i;
    let eb = ea + half;
#else
    let ea = head + 2u * i;
    let eb = ea + 1u;
#endif
    let cs = row * half + i;
    let c = table[2u * cs];
    let s = table[2u * cs + 1u];
    let a = x[ea];
    let b = x[eb];
    out[ea] = a * c - b * s;
    out[eb] = a * s + b * c;
}
