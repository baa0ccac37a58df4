// Appends this step's keys and values to each row's sequence, at its position.
#include "kv_common.wgsl"

struct KvWriteParams {
    kv_row: u32,
    rows: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: KvWriteParams;
@group(0) @binding(1) var<storage, read> steps: array<u32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> kv: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 256u;
    let row = g / p.kv_row;
    if (row >= p.rows) {
        return;
    }
    let e = g % p.kv_row;
    let pos = steps[2u * row];
    let page = steps[steps[2u * row + 1u] + pos / PAGE];
    let slot = pos % PAGE;
    kv[key_at(page, slot, p.kv_row) + e] = k[row * p.kv_row + e];
    kv[value_at(page, slot, p.kv_row) + e] = v[row * p.kv_row + e];
}
