// The paged KV cache (see kv.rs). One buffer per layer holds pages of PAGE positions;
// page n stores its keys, then its values: [PAGE][kv_row] f32 each. `steps` describes the
// batch: for row r, steps[2r] is its position and steps[2r + 1] the index in `steps` where
// its sequence's page table starts (one page index per PAGE positions).
const PAGE: u32 = 32u;

fn key_at(page: u32, slot: u32, kv_row: u32) -> u32 {
    return (page * 2u * PAGE + slot) * kv_row;
}

fn value_at(page: u32, slot: u32, kv_row: u32) -> u32 {
    return ((page * 2u + 1u) * PAGE + slot) * kv_row;
}
