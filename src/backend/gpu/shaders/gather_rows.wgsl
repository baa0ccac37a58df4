// out[i] = x[rows[i]] (whole rows of `cols` floats).
struct GatherRowsParams {
    cols: u32,
    n_rows: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: GatherRowsParams;
@group(0) @binding(1) var<storage, read> rows: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 256u;
    let i = g / p.cols;
    if (i >= p.n_rows) {
        return;
    }
    let c = g % p.cols;
    out[i * p.cols + c] = x[rows[i] * p.cols + c];
}
