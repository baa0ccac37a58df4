// The entries of every row of x at a list of ids: the `n_top` ids found by top_k.wgsl, then
// `n_extra` ids from the host. out[row][j] = x[row][id_j].
struct GatherIdsParams {
    cols: u32,
    rows: u32,
    n_top: u32,
    n_extra: u32,
}

@group(0) @binding(0) var<uniform> p: GatherIdsParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> top: array<u32>;
@group(0) @binding(3) var<storage, read> extra: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let per_row = p.n_top + p.n_extra;
    let g = gid.x;
    let row = g / per_row;
    if (row >= p.rows) {
        return;
    }
    let j = g % per_row;
    var id = 0u;
    if (j < p.n_top) {
        id = top[j];
    } else {
        id = extra[j - p.n_top];
    }
    out[g] = x[row * p.cols + id];
}
