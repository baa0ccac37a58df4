// y = x · Wᵀ for a few activation rows (decode: one row per sequence of the batch), with the
// weights dequantized in registers. Each weight row is read once for all TOKENS rows of x.
//
// Defines: the weight format (see weights.wgsl); TOKENS (1..8); one of
//   SUBGROUPS   a subgroup per row, reduced with subgroupAdd (where the adapter offers them);
//   ROW_THREAD  a thread per row and per block of TOKENS activation rows (workgroup z), no
//               reduction at all: for software adapters (lavapipe, SwiftShader), which run a
//               workgroup's invocations on one CPU thread and pay dearly for barriers; there
//               it also does prefill, TOKENS rows at a time;
//   neither     32 threads per row, reduced in workgroup memory.
#include "weights.wgsl"
#include "x4.wgsl"
#include "matmul_common.wgsl"

const WG: u32 = 256u;
// Output rows per workgroup; without subgroups, TPR = WG / ROWS threads share one row.
const ROWS: u32 = 8u;
const TPR: u32 = 32u;

// Partial sums of one output row over the units lane, lane + stride, ..., for the
// activation rows t0 .. t0 + TOKENS (those below p.tokens).
fn row_partials(row: u32, lane: u32, stride: u32, t0: u32) -> array<f32, TOKENS> {
    var acc: array<f32, TOKENS>;
    if (row >= p.total_rows) {
        return acc;
    }
    let loc = locate(row);
    let units = ((p.k + 31u) / 32u) * 4u;
    for (var u = lane; u < units; u += stride) {
        let c = u / 4u;
        let j = u % 4u;
        let wu = load_unit(loc.base, p.k, loc.r, c, j);
        let ea = 32u * c + unit_a(j);
        let eb = 32u * c + unit_b(j);
        for (var t = 0u; t < TOKENS; t++) {
            let xr = (t0 + t) * p.k;
            if (t0 + t < p.tokens) {
                acc[t] += dot(wu.a, x4(xr, ea, p.k)) + dot(wu.b, x4(xr, eb, p.k));
            }
        }
    }
    return acc;
}

fn store(row: u32, t: u32, v: f32) {
    let loc = locate(row);
    y[loc.out + t * loc.n + loc.r] = v;
}

#ifdef ROW_THREAD
@compute @workgroup_size(64)
fn main(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = gid.x + gid.y * nwg.x * 64u;
    // From workgroup_id, not global_invocation_id: the compiler then knows t0 is the same in
    // every lane, and loads the activations once for all of them instead of gathering.
    let t0 = wid.z * TOKENS;
    let acc = row_partials(row, 0u, 1u, t0);
    if (row < p.total_rows) {
        for (var t = 0u; t < TOKENS; t++) {
            if (t0 + t < p.tokens) {
                store(row, t0 + t, acc[t]);
            }
        }
    }
}
#else
#ifdef SUBGROUPS
@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) n_sg: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
) {
    let first = (wid.x + wid.y * nwg.x) * ROWS;
    // One subgroup per row: its lanes split the row, subgroupAdd sums them.
    for (var i = sg; i < ROWS; i += n_sg) {
        let row = first + i;
        let acc = row_partials(row, sg_lane, sg_size, 0u);
        for (var t = 0u; t < TOKENS; t++) {
            let s = subgroupAdd(acc[t]);
            if (sg_lane == 0u && row < p.total_rows) {
                store(row, t, s);
            }
        }
    }
}
#else
var<workgroup> red: array<f32, TOKENS * WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = (wid.x + wid.y * nwg.x) * ROWS + lid / TPR;
    let lane = lid % TPR;
    let acc = row_partials(row, lane, TPR, 0u);
    for (var t = 0u; t < TOKENS; t++) {
        red[t * WG + lid] = acc[t];
    }
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            for (var t = 0u; t < TOKENS; t++) {
                red[t * WG + lid] += red[t * WG + lid + s];
            }
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < p.total_rows) {
        for (var t = 0u; t < TOKENS; t++) {
            store(row, t, red[t * WG + lid]);
        }
    }
}
#endif
#endif
