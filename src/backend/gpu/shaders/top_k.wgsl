// The ids of the k largest entries of one row of x (ties: lower id first), in no particular
// order, by radix selection: four passes over the row find the exact k-th largest value a
// byte at a time (on an order-preserving integer key), then one pass collects the entries
// above it and, in id order, as many entries equal to it as are needed. One workgroup.
struct TopKParams {
    n: u32,
    k: u32,
    row: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: TopKParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

const WG: u32 = 256u;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> counts: array<u32, 512>;
var<workgroup> chosen: vec2<u32>;

// Larger float, larger key (the order of f32::total_cmp).
fn key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if ((b & 0x80000000u) != 0u) {
        return ~b;
    }
    return b | 0x80000000u;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    let base = p.row * p.n;
    var prefix = 0u;
    var mask = 0u;
    var remaining = p.k;
    for (var round = 0u; round < 4u; round++) {
        let shift = 24u - 8u * round;
        atomicStore(&hist[lid], 0u);
        workgroupBarrier();
        for (var i = lid; i < p.n; i += WG) {
            let kk = key(x[base + i]);
            if ((kk & mask) == prefix) {
                atomicAdd(&hist[(kk >> shift) & 255u], 1u);
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            var above = 0u;
            var d = 255u;
            loop {
                let h = atomicLoad(&hist[d]);
                if (above + h >= remaining || d == 0u) {
                    break;
                }
                above += h;
                d -= 1u;
            }
            chosen = vec2<u32>(prefix | (d << shift), remaining - above);
        }
        let c = workgroupUniformLoad(&chosen);
        prefix = c.x;
        remaining = c.y;
        mask |= 255u << shift;
    }
    // `prefix` is now the key of the k-th largest entry; `remaining` entries equal to it are taken.
    let chunk = (p.n + WG - 1u) / WG;
    let s0 = min(lid * chunk, p.n);
    let s1 = min(s0 + chunk, p.n);
    var gt = 0u;
    var eq = 0u;
    for (var i = s0; i < s1; i++) {
        let kk = key(x[base + i]);
        gt += u32(kk > prefix);
        eq += u32(kk == prefix);
    }
    counts[lid] = gt;
    counts[WG + lid] = eq;
    workgroupBarrier();
    if (lid == 0u) {
        var sg = 0u;
        var se = 0u;
        for (var t = 0u; t < WG; t++) {
            let g = counts[t];
            let e = counts[WG + t];
            counts[t] = sg;
            counts[WG + t] = se;
            sg += g;
            se += e;
        }
    }
    workgroupBarrier();
    var og = counts[lid];
    var oe = counts[WG + lid];
    let first_eq = p.k - remaining;
    for (var i = s0; i < s1; i++) {
        let kk = key(x[base + i]);
        if (kk > prefix) {
            out[og] = i;
            og++;
        } else if (kk == prefix) {
            if (oe < remaining) {
                out[first_eq + oe] = i;
            }
            oe++;
        }
    }
}
