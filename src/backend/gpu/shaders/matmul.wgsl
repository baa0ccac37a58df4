// y = x · Wᵀ for many activation rows (prefill): tiles of TM rows of x by TN output rows,
// 32 elements of k at a time, the weight tile dequantized once into workgroup memory and
// shared by all TM activation rows. Defines: the weight format (see weights.wgsl).
#include "weights.wgsl"
#include "x4.wgsl"
#include "matmul_common.wgsl"

const TM: u32 = 32u;
const TN: u32 = 64u;
const PAD: u32 = 33u; // row stride of the tiles (32 + 1 against bank conflicts)

var<workgroup> xs: array<f32, TM * PAD>;
var<workgroup> ws: array<f32, TN * PAD>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row0 = wid.x * TN;
    let t0 = wid.y * TM;
    // This thread's outputs: activation rows t0 + ty*2 + {0,1}, output rows row0 + tx*4 + {0..3}.
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc: array<array<f32, 4>, 2>;
    let chunks = (p.k + 31u) / 32u;
    // What this thread loads: unit j of weight row row0 + wr, and four activations.
    let wr = lid / 4u;
    let j = lid % 4u;
    let wrow = row0 + wr;
    let wloc = locate(min(wrow, p.total_rows - 1u));
    let xt = lid / 8u;
    let xe = (lid % 8u) * 4u;
    for (var c = 0u; c < chunks; c++) {
        var wu = Unit(vec4<f32>(0.0), vec4<f32>(0.0));
        if (wrow < p.total_rows) {
            wu = load_unit(wloc.base, p.k, wloc.r, c, j);
        }
        for (var i = 0u; i < 4u; i++) {
            ws[wr * PAD + unit_a(j) + i] = wu.a[i];
            ws[wr * PAD + unit_b(j) + i] = wu.b[i];
        }
        var xv = vec4<f32>(0.0);
        if (t0 + xt < p.tokens) {
            xv = x4((t0 + xt) * p.k, 32u * c + xe, p.k);
        }
        for (var i = 0u; i < 4u; i++) {
            xs[xt * PAD + xe + i] = xv[i];
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 32u; kk++) {
            let a0 = xs[(ty * 2u) * PAD + kk];
            let a1 = xs[(ty * 2u + 1u) * PAD + kk];
            for (var r = 0u; r < 4u; r++) {
                let b = ws[(tx * 4u + r) * PAD + kk];
                acc[0][r] += a0 * b;
                acc[1][r] += a1 * b;
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 2u; i++) {
        let t = t0 + ty * 2u + i;
        for (var r = 0u; r < 4u; r++) {
            let row = row0 + tx * 4u + r;
            if (t < p.tokens && row < p.total_rows) {
                let loc = locate(row);
                y[loc.out + t * loc.n + loc.r] = acc[i][r];
            }
        }
    }
}
