// What the matrix kernels share: up to three weights of one format, read from one buffer,
// multiplied by the same activations in one dispatch (Q/K/V, gate/up). Output row `row`
// of the stacked weights belongs to weight 0, 1 or 2; each weight's output is its own
// `[tokens, rows_i]` block of `y`, starting at element `out_i`.
struct MatmulParams {
    k: u32,
    tokens: u32,
    total_rows: u32,
    _pad: u32,
    base: vec4<u32>,
    rows: vec4<u32>,
    out: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

struct Loc {
    base: u32,
    r: u32,
    n: u32,
    out: u32,
}

fn locate(row: u32) -> Loc {
    if (row < p.rows.x) {
        return Loc(p.base.x, row, p.rows.x, p.out.x);
    }
    if (row < p.rows.x + p.rows.y) {
        return Loc(p.base.y, row - p.rows.x, p.rows.y, p.out.y);
    }
    return Loc(p.base.z, row - p.rows.x - p.rows.y, p.rows.z, p.out.z);
}
