// Rows `ids` of an embedding table in any weight format: out[i] = table[ids[i]] as f32.
#include "weights.wgsl"

struct EmbedParams {
    k: u32,
    n_ids: u32,
    base: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: EmbedParams;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let units = ((p.k + 31u) / 32u) * 4u;
    let g = gid.x + gid.y * nwg.x * 256u;
    let i = g / units;
    if (i >= p.n_ids) {
        return;
    }
    let u = g % units;
    let c = u / 4u;
    let j = u % 4u;
    let wu = load_unit(p.base, p.k, ids[i], c, j);
    for (var e = 0u; e < 4u; e++) {
        let ea = 32u * c + unit_a(j) + e;
        let eb = 32u * c + unit_b(j) + e;
        if (ea < p.k) {
            out[i * p.k + ea] = wu.a[e];
        }
        if (eb < p.k) {
            out[i * p.k + eb] = wu.b[e];
        }
    }
}
