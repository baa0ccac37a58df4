// Element-wise ops on two same-shaped tensors. Defines: ADD (a + b), SILU_MUL (silu(a) · b,
// SwiGLU) or GELU_MUL (gelu_tanh(a) · b, GeGLU); ADD_ROW, a + the row vector at word `base` of
// b (a bias, F32, in a weight buffer) on every row; SCALE, a · factor, or SOFT_CAP,
// factor · tanh(a / factor) with −∞ kept (b unused).
struct ElementwiseParams {
    n: u32,
    cols: u32,
    base: u32,
    factor: f32,
}

@group(0) @binding(0) var<uniform> p: ElementwiseParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// tanh, its argument clamped where tanh(x) is ±1 in f32 (an implementation computing it
// from exp(2x) would overflow to inf/inf beyond).
fn safe_tanh(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}

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
#ifdef GELU_MUL
    // As ggml: 0 below -10 and the identity above 10.
    let g = a[i];
    var act = select(0.0, g, g >= 10.0);
    if (g > -10.0 && g < 10.0) {
        act = 0.5 * g * (1.0 + safe_tanh(0.7978846 * g * (1.0 + 0.044715 * g * g)));
    }
    out[i] = act * b[i];
#endif
#ifdef SCALE
    out[i] = a[i] * p.factor;
#endif
#ifdef SOFT_CAP
    let v = a[i];
    out[i] = select(p.factor * safe_tanh(v / p.factor), v, v < -3.0e38);
#endif
}
