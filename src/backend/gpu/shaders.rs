//! The WGSL kernels (`shaders/*.wgsl`), the small preprocessor that makes their variants,
//! and the pipeline cache.
//!
//! Variants come from defines, never from copies of a file: a define is a flag tested with
//! `#ifdef NAME` / `#ifndef NAME` / `#else` / `#endif`, or a value, emitted as
//! `const NAME: u32 = V;` at the top. `#include "file.wgsl"` pastes a shared file (once).
//! The bind group layout is read from the preprocessed source itself (`@binding(N) var<...>`),
//! so the WGSL is the one place that says what a kernel binds.

use std::collections::HashMap;
use std::rc::Rc;

use crate::error::Result;
use crate::gguf::GgmlDType;

const SOURCES: &[(&str, &str)] = &[
    ("attention.wgsl", include_str!("shaders/attention.wgsl")),
    ("elementwise.wgsl", include_str!("shaders/elementwise.wgsl")),
    ("embed.wgsl", include_str!("shaders/embed.wgsl")),
    ("gather_ids.wgsl", include_str!("shaders/gather_ids.wgsl")),
    ("gather_rows.wgsl", include_str!("shaders/gather_rows.wgsl")),
    ("kv_common.wgsl", include_str!("shaders/kv_common.wgsl")),
    ("kv_write.wgsl", include_str!("shaders/kv_write.wgsl")),
    ("matmul.wgsl", include_str!("shaders/matmul.wgsl")),
    ("matmul_common.wgsl", include_str!("shaders/matmul_common.wgsl")),
    ("matvec.wgsl", include_str!("shaders/matvec.wgsl")),
    ("rms_norm.wgsl", include_str!("shaders/rms_norm.wgsl")),
    ("rope.wgsl", include_str!("shaders/rope.wgsl")),
    ("top_k.wgsl", include_str!("shaders/top_k.wgsl")),
    ("weights.wgsl", include_str!("shaders/weights.wgsl")),
    ("x4.wgsl", include_str!("shaders/x4.wgsl")),
];

/// The text of a kernel file, as written (before preprocessing).
pub(crate) fn source(name: &str) -> Result<&'static str> {
    match SOURCES.iter().find(|(n, _)| *n == name) {
        Some((_, s)) => Ok(s),
        None => crate::bail!(Backend, "no shader named {name}"),
    }
}

/// The flags that select a weight format in `weights.wgsl`.
pub(crate) fn format_defines(dtype: GgmlDType) -> &'static [&'static str] {
    match dtype {
        GgmlDType::F32 => &["F32", "FLOAT"],
        GgmlDType::F16 => &["F16", "FLOAT"],
        GgmlDType::BF16 => &["BF16", "FLOAT"],
        GgmlDType::Q4_0 => &["Q4_0", "BLOCKS", "NIBBLES", "CENTRED"],
        GgmlDType::Q4_1 => &["Q4_1", "BLOCKS", "NIBBLES", "MIN"],
        GgmlDType::IQ4_NL => &["IQ4_NL", "BLOCKS", "NIBBLES"],
        GgmlDType::Q5_0 => &["Q5_0", "BLOCKS", "FIVE_BITS", "CENTRED"],
        GgmlDType::Q5_1 => &["Q5_1", "BLOCKS", "FIVE_BITS", "MIN"],
        GgmlDType::Q8_0 => &["Q8_0", "BLOCKS"],
        GgmlDType::Q2_K => &["Q2_K", "SUPER"],
        GgmlDType::Q3_K => &["Q3_K", "SUPER"],
        GgmlDType::Q4_K => &["Q4_K", "SUPER", "SCALE_MIN_K4"],
        GgmlDType::Q5_K => &["Q5_K", "SUPER", "SCALE_MIN_K4"],
        GgmlDType::Q6_K => &["Q6_K", "SUPER"],
    }
}

/// A kernel file and the defines that pick its variant; the key of the pipeline cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Variant {
    pub file: &'static str,
    /// (name, None) is a flag, (name, Some(v)) a `u32` constant.
    pub defines: Vec<(&'static str, Option<u32>)>,
}

impl Variant {
    pub fn new(file: &'static str) -> Self {
        Variant { file, defines: Vec::new() }
    }

    pub fn flag(mut self, name: &'static str) -> Self {
        self.defines.push((name, None));
        self
    }

    pub fn flags(mut self, names: &[&'static str]) -> Self {
        self.defines.extend(names.iter().map(|&n| (n, None)));
        self
    }

    pub fn value(mut self, name: &'static str, v: u32) -> Self {
        self.defines.push((name, Some(v)));
        self
    }
}

/// The WGSL text of a variant: constants, then the file with includes pasted and
/// conditional sections resolved.
pub(crate) fn preprocess(variant: &Variant) -> Result<String> {
    preprocess_with(variant, &source)
}

fn preprocess_with(variant: &Variant, lookup: &dyn Fn(&str) -> Result<&'static str>) -> Result<String> {
    let mut out = String::new();
    for (name, value) in &variant.defines {
        if let Some(v) = value {
            out.push_str(&format!("const {name}: u32 = {v}u;\n"));
        }
    }
    let mut included = Vec::new();
    expand(variant.file, &variant.defines, lookup, &mut included, &mut out)?;
    Ok(out)
}

fn expand(
    file: &str,
    defines: &[(&'static str, Option<u32>)],
    lookup: &dyn Fn(&str) -> Result<&'static str>,
    included: &mut Vec<String>,
    out: &mut String,
) -> Result<()> {
    included.push(file.to_string());
    let defined = |name: &str| defines.iter().any(|(n, _)| *n == name);
    // One entry per open #if: (this section is emitted, the enclosing section is emitted).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let active = |stack: &[(bool, bool)]| stack.last().is_none_or(|s| s.0);
    for (number, line) in lookup(file)?.lines().enumerate() {
        let t = line.trim();
        let directive = |d: &str| t.strip_prefix(d).map(str::trim);
        if let Some(name) = directive("#ifdef ") {
            let on = active(&stack);
            stack.push((on && defined(name), on));
        } else if let Some(name) = directive("#ifndef ") {
            let on = active(&stack);
            stack.push((on && !defined(name), on));
        } else if t == "#else" {
            match stack.last_mut() {
                Some(s) => s.0 = s.1 && !s.0,
                None => crate::bail!(Backend, "{file}:{}: #else without #if", number + 1),
            }
        } else if t == "#endif" {
            if stack.pop().is_none() {
                crate::bail!(Backend, "{file}:{}: #endif without #if", number + 1);
            }
        } else if let Some(name) = directive("#include ") {
            let name = name.trim_matches('"');
            if active(&stack) && !included.iter().any(|f| f == name) {
                expand(name, defines, lookup, included, out)?;
            }
        } else if t.starts_with('#') {
            crate::bail!(Backend, "{file}:{}: unknown directive {t}", number + 1);
        } else if active(&stack) {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !stack.is_empty() {
        crate::bail!(Backend, "{file}: #if without #endif");
    }
    Ok(())
}

/// How a kernel binds one resource, as its WGSL declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindKind {
    Uniform,
    Read,
    ReadWrite,
}

/// The bindings of group 0, in binding order, from the declarations in `wgsl`.
pub(crate) fn bindings(wgsl: &str) -> Result<Vec<BindKind>> {
    let mut found: Vec<(u32, BindKind)> = Vec::new();
    for line in wgsl.lines() {
        let Some(at) = line.find("@binding(") else { continue };
        let rest = &line[at + "@binding(".len()..];
        let number: u32 = rest
            .split(')')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| crate::Error::new(crate::ErrorCode::Backend, format!("bad binding: {line}")))?;
        let kind = if line.contains("var<uniform>") {
            BindKind::Uniform
        } else if line.contains("var<storage, read_write>") {
            BindKind::ReadWrite
        } else if line.contains("var<storage, read>") || line.contains("var<storage>") {
            BindKind::Read
        } else {
            crate::bail!(Backend, "unsupported binding: {line}");
        };
        found.push((number, kind));
    }
    found.sort_by_key(|b| b.0);
    if found.iter().enumerate().any(|(i, b)| b.0 != i as u32) {
        crate::bail!(Backend, "bindings must be numbered 0, 1, 2, ...");
    }
    Ok(found.into_iter().map(|b| b.1).collect())
}

/// A compiled variant: its pipeline and the layout its bind groups are made for.
pub(crate) struct Pipeline {
    pub id: u64,
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub bindings: Vec<BindKind>,
}

/// Pipelines, created on first use and kept for the backend's life.
#[derive(Default)]
pub(crate) struct PipelineCache {
    pipelines: HashMap<Variant, Rc<Pipeline>>,
}

impl PipelineCache {
    pub fn get(&mut self, device: &wgpu::Device, variant: &Variant) -> Result<Rc<Pipeline>> {
        if let Some(p) = self.pipelines.get(variant) {
            return Ok(p.clone());
        }
        let wgsl = preprocess(variant)?;
        let kinds = bindings(&wgsl)?;
        let label = format!("{}{:?}", variant.file, variant.defines);
        let entries: Vec<wgpu::BindGroupLayoutEntry> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match kind {
                        BindKind::Uniform => wgpu::BufferBindingType::Uniform,
                        BindKind::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        BindKind::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(&label), entries: &entries });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(&label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(wgsl.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        let p = Rc::new(Pipeline { id: self.pipelines.len() as u64, pipeline, layout, bindings: kinds });
        self.pipelines.insert(variant.clone(), p.clone());
        Ok(p)
    }

    pub fn len(&self) -> usize {
        self.pipelines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_preprocesses_and_declares_its_bindings() {
        let formats = GgmlDType::ALL.map(format_defines);
        let mut variants = vec![
            Variant::new("attention.wgsl").value("HEAD_DIM", 64),
            Variant::new("elementwise.wgsl").flag("ADD"),
            Variant::new("elementwise.wgsl").flag("SILU_MUL"),
            Variant::new("gather_ids.wgsl"),
            Variant::new("gather_rows.wgsl"),
            Variant::new("kv_write.wgsl"),
            Variant::new("rope.wgsl"),
            Variant::new("top_k.wgsl"),
        ];
        for f in formats {
            variants.push(Variant::new("embed.wgsl").flags(f));
            variants.push(Variant::new("rms_norm.wgsl").flags(f));
            variants.push(Variant::new("matmul.wgsl").flags(f));
            variants.push(Variant::new("matvec.wgsl").flags(f).value("TOKENS", 3));
            variants.push(Variant::new("matvec.wgsl").flags(f).value("TOKENS", 1).flag("SUBGROUPS"));
            variants.push(Variant::new("matvec.wgsl").flags(f).value("TOKENS", 8).flag("ROW_THREAD"));
            variants.push(Variant::new("rms_norm.wgsl").flags(f).flag("ROW_THREAD"));
        }
        variants.push(Variant::new("attention.wgsl").value("HEAD_DIM", 128).flag("ROW_THREAD"));
        for v in &variants {
            let wgsl = preprocess(v).unwrap();
            assert!(!wgsl.contains('#'), "{v:?} left a directive");
            let b = bindings(&wgsl).unwrap();
            assert_eq!(b[0], BindKind::Uniform, "{v:?}");
            assert_eq!(*b.last().unwrap(), BindKind::ReadWrite, "{v:?}");
            // Exactly one weight format's functions.
            if wgsl.contains("fn load_unit") {
                assert_eq!(wgsl.matches("fn load_unit").count(), 1, "{v:?}");
                assert_eq!(wgsl.matches("const WHOLE_BLOCKS").count(), 1, "{v:?}");
            }
        }
        let q41 = format_defines(GgmlDType::Q4_1);
        let sub = preprocess(&Variant::new("matvec.wgsl").flags(q41).value("TOKENS", 1).flag("SUBGROUPS")).unwrap();
        assert!(sub.contains("subgroupAdd(") && !sub.contains("var<workgroup> red"));
        let plain = preprocess(&Variant::new("matvec.wgsl").flags(q41).value("TOKENS", 1)).unwrap();
        assert!(!plain.contains("subgroupAdd(") && plain.contains("const TOKENS: u32 = 1u;"));
    }

    fn fake(name: &str) -> Result<&'static str> {
        Ok(match name {
            "a" => {
                "x\n#ifdef ON\ny\n#ifndef OFF\nz\n#else\nw\n#endif\n#else\nv\n#endif\n#include \"b\"\n#include \"b\""
            }
            "b" => "from b",
            "open" => "#ifdef X\nx",
            "stray" => "#endif",
            "unknown" => "#define X 1",
            "loop" => "#include \"loop\"\nonce",
            _ => crate::bail!(Backend, "no {name}"),
        })
    }

    #[test]
    fn directives_nest_and_includes_paste_once() {
        let run = |v: Variant| preprocess_with(&v, &fake).unwrap();
        assert_eq!(run(Variant::new("a").flag("ON")), "x\ny\nz\nfrom b\n");
        assert_eq!(run(Variant::new("a").flag("ON").flag("OFF")), "x\ny\nw\nfrom b\n");
        assert_eq!(run(Variant::new("a").value("N", 7)), "const N: u32 = 7u;\nx\nv\nfrom b\n");
        assert_eq!(run(Variant::new("loop")), "once\n");
        for bad in ["open", "stray", "unknown", "missing"] {
            assert!(preprocess_with(&Variant::new(bad), &fake).is_err(), "{bad}");
        }
        assert!(preprocess(&Variant::new("no_such.wgsl")).is_err());
    }
}
