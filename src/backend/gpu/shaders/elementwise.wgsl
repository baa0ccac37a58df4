// Element-wise ops on two same-shaped tensors. Defines: ADD (a + b) or SILU_MUL
// (silu(a) · b, the SwiGLU gate); or ADD_ROW, a + the row vector at word `base` of b (a bias,
// F32, in a weight buffer) on every row.
struct ElementwiseParams {
    n: u32,
    cols: u32,
    base: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: ElementwiseParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
#ifdef ADD
    out[i] = a[i] + b[i];
#endif
#ifdef ADD_ROW
    out[i] = a[i] + b[p.base + i % p.cols];
#endif
#ifdef SILU_MUL
    let g = a[i];
    out[i] = g / (1.0 + exp(-g)) * b[i];
#endif
}
