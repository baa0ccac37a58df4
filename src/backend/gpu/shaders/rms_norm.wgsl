// out = x / sqrt(mean(x²) + eps) · weight; the weight in any format. One workgroup per
// row, or with ROW_THREAD one thread per row (software adapters: no barrier).
#include "weights.wgsl"

struct RmsNormParams {
    k: u32,
    rows: u32,
    base: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: RmsNormParams;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn write_row(start: u32, scale: f32, first: u32, stride: u32) {
    let units = ((p.k + 31u) / 32u) * 4u;
    for (var u = first; u < units; u += stride) {
        let c = u / 4u;
        let j = u % 4u;
        let wu = load_unit(p.base, p.k, 0u, c, j);
        for (var e = 0u; e < 4u; e++) {
            let ea = 32u * c + unit_a(j) + e;
            let eb = 32u * c + unit_b(j) + e;
            if (ea < p.k) {
                out[start + ea] = x[start + ea] * scale * wu.a[e];
            }
            if (eb < p.k) {
                out[start + eb] = x[start + eb] * scale * wu.b[e];
            }
        }
    }
}

#ifdef ROW_THREAD
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * 64u;
    if (row >= p.rows) {
        return;
    }
    let start = row * p.k;
    var s = 0.0;
    for (var i = 0u; i < p.k; i++) {
        let v = x[start + i];
        s += v * v;
    }
    write_row(start, 1.0 / sqrt(s / f32(p.k) + p.eps), 0u, 1u);
}
#else
const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) {
        return;
    }
    let start = row * p.k;
    var s = 0.0;
    for (var i = lid; i < p.k; i += WG) {
        let v = x[start + i];
        s += v * v;
    }
    red[lid] = s;
    workgroupBarrier();
    for (var h = WG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) {
            red[lid] += red[lid + h];
        }
        workgroupBarrier();
    }
    write_row(start, 1.0 / sqrt(red[0] / f32(p.k) + p.eps), lid, WG);
}
#endif
