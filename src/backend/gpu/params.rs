//! The parameter block of each kernel (binding 0, a uniform), as a `#[repr(C)]` struct that
//! mirrors the WGSL struct of the same name field for field. WGSL lays a uniform struct out
//! in 16-byte units, so every struct here is a multiple of 16 bytes, padded with `_pad`
//! fields that the WGSL declares too. A test checks each mirror against its shader: names,
//! order, types and offsets.

use bytemuck::{Pod, Zeroable};

/// A kernel's parameter block: its bytes are what binding 0 of the kernel reads. What it
/// mirrors is only read by the test that checks the mirror.
pub(crate) trait KernelParams: Pod {
    /// The shader file that declares the mirrored struct.
    #[cfg(test)]
    const WGSL_FILE: &'static str;
    /// The WGSL struct's name (the Rust struct's).
    #[cfg(test)]
    const WGSL_STRUCT: &'static str;
    /// The fields as (name, Rust type, byte offset), in order.
    #[cfg(test)]
    const FIELDS: &'static [(&'static str, &'static str, usize)];
}

/// Declares a parameter struct, its `KernelParams` description and the check that its size
/// is whole 16-byte units.
macro_rules! kernel_params {
    ($(#[$doc:meta])* $name:ident in $file:literal { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
        pub(crate) struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl KernelParams for $name {
            #[cfg(test)]
            const WGSL_FILE: &'static str = $file;
            #[cfg(test)]
            const WGSL_STRUCT: &'static str = stringify!($name);
            #[cfg(test)]
            const FIELDS: &'static [(&'static str, &'static str, usize)] =
                &[$((stringify!($field), stringify!($ty), std::mem::offset_of!($name, $field))),*];
        }

        const _: () = assert!(std::mem::size_of::<$name>() % 16 == 0);
    };
}

kernel_params! {
    /// Mirrors `AttentionParams` in attention.wgsl.
    AttentionParams in "attention.wgsl" {
        n_heads: u32,
        /// Query heads per KV head.
        group: u32,
        /// Floats per cached position (KV heads × head_dim).
        kv_row: u32,
        /// What q·k is multiplied by (1/√head_dim for most models).
        scale: f32,
        rows: u32,
        /// How many of the latest positions a query sees; 0: all of them.
        window: u32,
        /// Scores s become soft_cap·tanh(s/soft_cap); 0: not capped.
        soft_cap: f32,
        _pad2: u32,
    }
}

kernel_params! {
    /// Mirrors `ElementwiseParams` in elementwise.wgsl.
    ElementwiseParams in "elementwise.wgsl" {
        n: u32,
        /// ADD_ROW: the row length, and the row vector's first word in its buffer.
        cols: u32,
        base: u32,
        /// SCALE: what every element is multiplied by; SOFT_CAP: the cap.
        factor: f32,
    }
}

kernel_params! {
    /// Mirrors `EmbedParams` in embed.wgsl.
    EmbedParams in "embed.wgsl" {
        /// Elements per table row.
        k: u32,
        n_ids: u32,
        /// The table's first word in its buffer.
        base: u32,
        _pad: u32,
    }
}

kernel_params! {
    /// Mirrors `GatherIdsParams` in gather_ids.wgsl.
    GatherIdsParams in "gather_ids.wgsl" {
        cols: u32,
        rows: u32,
        /// Ids found by top_k.wgsl.
        n_top: u32,
        /// Ids from the host.
        n_extra: u32,
    }
}

kernel_params! {
    /// Mirrors `GatherRowsParams` in gather_rows.wgsl.
    GatherRowsParams in "gather_rows.wgsl" {
        cols: u32,
        n_rows: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

kernel_params! {
    /// Mirrors `KvWriteParams` in kv_write.wgsl.
    KvWriteParams in "kv_write.wgsl" {
        kv_row: u32,
        rows: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

kernel_params! {
    /// Mirrors `MatmulParams` in matmul_common.wgsl (matvec.wgsl and matmul.wgsl): up to
    /// three weights of one buffer, lane i of each vector for weight i.
    MatmulParams in "matmul_common.wgsl" {
        k: u32,
        /// Activation rows.
        tokens: u32,
        /// Output rows of all the weights together.
        total_rows: u32,
        _pad: u32,
        /// Each weight's first word in the buffer.
        base: [u32; 4],
        /// Each weight's rows.
        rows: [u32; 4],
        /// Where each weight's output block starts, in floats.
        out: [u32; 4],
    }
}

kernel_params! {
    /// Mirrors `RmsNormParams` in rms_norm.wgsl.
    RmsNormParams in "rms_norm.wgsl" {
        k: u32,
        rows: u32,
        /// The weight's first word in its buffer.
        base: u32,
        eps: f32,
    }
}

kernel_params! {
    /// Mirrors `RopeParams` in rope.wgsl.
    RopeParams in "rope.wgsl" {
        cols: u32,
        head_dim: u32,
        rows: u32,
        _pad: u32,
    }
}

kernel_params! {
    /// Mirrors `TopKParams` in top_k.wgsl.
    TopKParams in "top_k.wgsl" {
        /// Entries per row.
        n: u32,
        k: u32,
        /// The row searched.
        row: u32,
        _pad: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of `struct NAME { ... }` in `wgsl`, as (name, type).
    fn wgsl_fields(wgsl: &str, name: &str) -> Vec<(String, String)> {
        let start = wgsl.find(&format!("struct {name} {{")).unwrap_or_else(|| panic!("no struct {name}"));
        let body = &wgsl[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        body.lines()
            .map(|l| l.trim().trim_end_matches(','))
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, t) = l.split_once(':').unwrap();
                (n.trim().to_string(), t.trim().to_string())
            })
            .collect()
    }

    /// The WGSL type a Rust field type stands for, and its size and alignment in a uniform.
    fn wgsl_type(rust: &str) -> (&'static str, usize, usize) {
        match rust {
            "u32" => ("u32", 4, 4),
            "f32" => ("f32", 4, 4),
            "[u32; 4]" => ("vec4<u32>", 16, 16),
            other => panic!("no WGSL type for {other}"),
        }
    }

    fn check<P: KernelParams>() {
        let source = super::super::shaders::source(P::WGSL_FILE).unwrap();
        let wgsl = wgsl_fields(source, P::WGSL_STRUCT);
        let names: Vec<&str> = P::FIELDS.iter().map(|f| f.0).collect();
        let wgsl_names: Vec<&str> = wgsl.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, wgsl_names, "{} in {}", P::WGSL_STRUCT, P::WGSL_FILE);
        let mut end = 0usize;
        for ((name, rust, offset), (_, ty)) in P::FIELDS.iter().zip(&wgsl) {
            let (want, size, align) = wgsl_type(rust);
            assert_eq!(ty, want, "{}.{name}", P::WGSL_STRUCT);
            let wgsl_offset = end.next_multiple_of(align);
            assert_eq!(*offset, wgsl_offset, "{}.{name}", P::WGSL_STRUCT);
            end = wgsl_offset + size;
        }
        assert_eq!(std::mem::size_of::<P>(), end.next_multiple_of(16), "{}", P::WGSL_STRUCT);
    }

    #[test]
    fn every_parameter_struct_mirrors_its_wgsl_struct() {
        check::<AttentionParams>();
        check::<ElementwiseParams>();
        check::<EmbedParams>();
        check::<GatherIdsParams>();
        check::<GatherRowsParams>();
        check::<KvWriteParams>();
        check::<MatmulParams>();
        check::<RmsNormParams>();
        check::<RopeParams>();
        check::<TopKParams>();
    }

    #[test]
    fn a_struct_is_its_fields_little_endian_back_to_back() {
        let p = RmsNormParams { k: 576, rows: 3, base: 7, eps: 1e-5 };
        let mut want = Vec::new();
        for w in [576u32, 3, 7, 1e-5f32.to_bits()] {
            want.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(bytemuck::bytes_of(&p), &want[..]);
    }
}
