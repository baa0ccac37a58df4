// Four activations x[start + e .. start + e + 4], zero from `limit` (the row length) on.
// The including shader declares `x: array<f32>` and includes weights.wgsl (WHOLE_BLOCKS: rows
// are whole 32-element blocks, so no read can pass the end of a row).
fn x4(start: u32, e: u32, limit: u32) -> vec4<f32> {
    if (WHOLE_BLOCKS || e + 3u < limit) {
        return vec4<f32>(x[start + e], x[start + e + 1u], x[start + e + 2u], x[start + e + 3u]);
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        if (e + i < limit) {
            v[i] = x[start + e + i];
        }
    }
    return v;
}
