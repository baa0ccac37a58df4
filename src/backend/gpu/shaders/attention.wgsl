// Causal grouped-query attention of each row's query over its sequence's cached keys and
// values (positions 0..=pos, or the last `window` of them). Positions are taken a page (PAGE = 32) at a time with a
// running (online) softmax, so any context length works in fixed memory. One workgroup per
// (head, row); with ROW_THREAD one thread per (head, row), no barriers (software adapters).
// Defines: HEAD_DIM.
#include "kv_common.wgsl"

struct AttentionParams {
    n_heads: u32,
    group: u32,
    kv_row: u32,
    scale: f32,
    rows: u32,
    window: u32,
    soft_cap: f32,
    _pad2: u32,
}

// A raw q·k as the softmax takes it: scaled, then soft-capped if the model caps it.
fn score(raw: f32) -> f32 {
    let s = raw * p.scale;
    if (p.soft_cap > 0.0) {
        return p.soft_cap * tanh(clamp(s / p.soft_cap, -15.0, 15.0));
    }
    return s;
}

// The first position a query at `visible - 1` sees.
fn first_seen(visible: u32) -> u32 {
    return select(0u, visible - p.window, p.window > 0u && visible > p.window);
}

@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read> steps: array<u32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> kv: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const NONE: f32 = -3.0e38;

#ifdef ROW_THREAD
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = gid.x + gid.y * nwg.x * 64u;
    let head = g % p.n_heads;
    let row = g / p.n_heads;
    if (row >= p.rows) {
        return;
    }
    let q_cols = p.n_heads * HEAD_DIM;
    let kv_off = (head / p.group) * HEAD_DIM;
    let pos = steps[2u * row];
    let table = steps[2u * row + 1u];
    let visible = pos + 1u;
    var qv: array<f32, HEAD_DIM>;
    var acc: array<f32, HEAD_DIM>;
    for (var d = 0u; d < HEAD_DIM; d++) {
        qv[d] = q[row * q_cols + head * HEAD_DIM + d];
    }
    var m = NONE;
    var l = 0.0;
    var scores: array<f32, PAGE>;
    let first = first_seen(visible);
    for (var start = first - first % PAGE; start < visible; start += PAGE) {
        let page = steps[table + start / PAGE];
        let n = min(PAGE, visible - start);
        var page_max = NONE;
        for (var j = 0u; j < n; j++) {
            scores[j] = NONE;
            if (start + j < first) {
                continue;
            }
            let kb = key_at(page, j, p.kv_row) + kv_off;
            var s = 0.0;
            for (var d = 0u; d < HEAD_DIM; d++) {
                s += qv[d] * kv[kb + d];
            }
            scores[j] = score(s);
            page_max = max(page_max, scores[j]);
        }
        let m_new = max(m, page_max);
        let correction = exp(m - m_new);
        l *= correction;
        for (var d = 0u; d < HEAD_DIM; d++) {
            acc[d] *= correction;
        }
        for (var j = 0u; j < n; j++) {
            if (start + j < first) {
                continue;
            }
            let w = exp(scores[j] - m_new);
            l += w;
            let vb = value_at(page, j, p.kv_row) + kv_off;
            for (var d = 0u; d < HEAD_DIM; d++) {
                acc[d] += w * kv[vb + d];
            }
        }
        m = m_new;
    }
    for (var d = 0u; d < HEAD_DIM; d++) {
        out[row * q_cols + head * HEAD_DIM + d] = acc[d] / l;
    }
}
#else
const WG: u32 = 64u;
// Output dimensions each thread owns: lid, lid + WG, ...
const DPT: u32 = (HEAD_DIM + WG - 1u) / WG;

var<workgroup> qs: array<f32, HEAD_DIM>;
var<workgroup> part: array<f32, WG>;
var<workgroup> probs: array<f32, PAGE>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let head = wid.x;
    let row = wid.y;
    let q_cols = p.n_heads * HEAD_DIM;
    let kv_off = (head / p.group) * HEAD_DIM;
    let pos = steps[2u * row];
    let table = steps[2u * row + 1u];
    let visible = pos + 1u;
    for (var d = lid; d < HEAD_DIM; d += WG) {
        qs[d] = q[row * q_cols + head * HEAD_DIM + d];
    }
    workgroupBarrier();
    var m = NONE;
    var l = 0.0;
    var acc: array<f32, DPT>;
    // Two threads per position for the scores: each takes half of the dimensions.
    let slot = lid / 2u;
    let half = HEAD_DIM / 2u;
    let d0 = (lid % 2u) * half;
    let d1 = select(half, HEAD_DIM, lid % 2u == 1u);
    let first = first_seen(visible);
    for (var start = first - first % PAGE; start < visible; start += PAGE) {
        let page = steps[table + start / PAGE];
        var s = 0.0;
        if (slot < PAGE && start + slot >= first && start + slot < visible) {
            let kb = key_at(page, slot, p.kv_row) + kv_off;
            for (var d = d0; d < d1; d++) {
                s += qs[d] * kv[kb + d];
            }
        }
        part[lid] = s;
        workgroupBarrier();
        // Every thread computes the page's maximum from the same values, so all agree.
        var page_max = NONE;
        for (var j = 0u; j < PAGE; j++) {
            if (start + j >= first && start + j < visible) {
                page_max = max(page_max, score(part[2u * j] + part[2u * j + 1u]));
            }
        }
        let m_new = max(m, page_max);
        workgroupBarrier();
        if (lid < PAGE) {
            let sc = score(part[2u * lid] + part[2u * lid + 1u]);
            probs[lid] = select(0.0, exp(sc - m_new), start + lid >= first && start + lid < visible);
        }
        workgroupBarrier();
        let correction = exp(m - m_new);
        var page_sum = 0.0;
        for (var j = 0u; j < PAGE; j++) {
            page_sum += probs[j];
        }
        l = l * correction + page_sum;
        let n = min(PAGE, visible - start);
        for (var i = 0u; i < DPT; i++) {
            let d = lid + i * WG;
            if (d < HEAD_DIM) {
                var a = acc[i] * correction;
                for (var j = 0u; j < n; j++) {
                    a += probs[j] * kv[value_at(page, j, p.kv_row) + kv_off + d];
                }
                acc[i] = a;
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    for (var i = 0u; i < DPT; i++) {
        let d = lid + i * WG;
        if (d < HEAD_DIM) {
            out[row * q_cols + head * HEAD_DIM + d] = acc[i] / l;
        }
    }
}
#endif
