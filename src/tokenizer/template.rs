//! The chat template: a GGUF's Jinja template rendered as Hugging Face renders it, in a
//! sandbox (fuel and an output cap: the template is someone else's code).

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, ErrorKind, State};

use super::{tok_err, ChatMessage, Tokenizer};
use crate::error::{Error, ErrorCode, Result};

const TEMPLATE_NAME: &str = "chat";
/// The chat template runs in a sandbox (a GGUF's template is someone else's code): at most
/// this many template instructions per rendering (a real chat of a hundred messages needs a
/// few thousand) ...
const TEMPLATE_FUEL: u64 = 1_000_000;
/// ... and at most this much output beyond the messages' own text, several times over.
const TEMPLATE_OUTPUT: usize = 1 << 20;

impl Tokenizer {
    /// Renders a chat with and without a system message of our own: the default is what
    /// stands where ours stood.
    pub(super) fn find_default_system(&self) -> Option<String> {
        const SYSTEM: &str = "\u{1}system\u{1}";
        const USER: &str = "\u{1}user\u{1}";
        let user = ChatMessage { role: "user".into(), content: USER.into() };
        let system = ChatMessage { role: "system".into(), content: SYSTEM.into() };
        let plain = self.apply_chat_template(std::slice::from_ref(&user), false).ok()?;
        let with_ours = self.apply_chat_template(&[system, user], false).ok()?;
        let (before, after) = with_ours.split_once(SYSTEM)?;
        let default = plain.strip_prefix(before)?.strip_suffix(after)?;
        (!default.trim().is_empty()).then(|| default.to_string())
    }

    /// Renders the GGUF's chat template (Jinja, as Hugging Face renders it), within its fuel
    /// and output cap.
    pub fn apply_chat_template(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        let env = self.chat.as_ref().map_err(Clone::clone)?;
        let template = env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| Error::new(ErrorCode::ChatTemplate, format!("chat template: {e:#}")))?;
        let ctx = minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        };
        let text: usize = messages.iter().map(|m| m.content.len() + m.role.len()).sum();
        let mut out = CappedOutput { bytes: Vec::new(), cap: TEMPLATE_OUTPUT + 4 * text };
        let rendered = template.render_captured_to(ctx, &mut out).map(|_| ());
        if out.bytes.len() > out.cap {
            crate::bail!(ChatTemplate, "the chat template wrote more than {} bytes", out.cap);
        }
        match rendered {
            Ok(_) => String::from_utf8(out.bytes).map_err(|_| tok_err("the chat template wrote invalid UTF-8")),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => {
                crate::bail!(ChatTemplate, "the chat template ran past its limit of {TEMPLATE_FUEL} steps")
            }
            Err(e) => crate::bail!(ChatTemplate, "cannot render the chat template: {e:#}"),
        }
    }

    /// Renders a short chat once, so that a template that runs past its fuel or output cap
    /// fails the load rather than every chat later.
    pub(super) fn check_template_limits(&self) -> Result<()> {
        let m = |role: &str, content: &str| ChatMessage { role: role.into(), content: content.into() };
        let chat = [m("system", "S"), m("user", "U"), m("assistant", "A"), m("user", "U")];
        match self.apply_chat_template(&chat, true) {
            Err(e) if e.message.contains("limit of") || e.message.contains("wrote more than") => Err(e),
            _ => Ok(()),
        }
    }
}

/// The template's output, kept up to `cap` bytes (writing past it fails the rendering).
struct CappedOutput {
    bytes: Vec<u8>,
    cap: usize,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            self.bytes.resize(self.cap + 1, 0);
            return Err(std::io::Error::other("the chat template's output cap"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn compile_template(src: &str) -> std::result::Result<Environment<'static>, Error> {
    let mut env = Environment::new();
    // Hugging Face renders chat templates with these two settings.
    env.set_trim_blocks(true);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_lstrip_blocks(true);
    env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, minijinja::Error> {
        Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
    });
    env.set_unknown_method_callback(python_methods);
    env.add_template_owned(TEMPLATE_NAME, src.to_owned())
        .map_err(|e| Error::new(ErrorCode::ChatTemplate, format!("cannot compile the chat template: {e:#}")))?;
    Ok(env)
}

/// The Python string and dict methods chat templates commonly call (templates are written
/// for Jinja2 in Python; minijinja has no such methods of its own).
fn python_methods(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> std::result::Result<Value, minijinja::Error> {
    let arg_str = |i: usize| -> std::result::Result<Option<&str>, minijinja::Error> {
        match args.get(i) {
            None => Ok(None),
            Some(v) if v.is_none() => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| {
                minijinja::Error::new(ErrorKind::InvalidOperation, format!("{method}: expected a string argument"))
            }),
        }
    };
    if let Some(s) = value.as_str() {
        let chars_arg = arg_str(0)?;
        let is_strip = |c: char| chars_arg.map_or(c.is_whitespace(), |set| set.contains(c));
        return Ok(match method {
            "strip" => Value::from(s.trim_matches(is_strip)),
            "lstrip" => Value::from(s.trim_start_matches(is_strip)),
            "rstrip" => Value::from(s.trim_end_matches(is_strip)),
            "startswith" => Value::from(s.starts_with(arg_str(0)?.unwrap_or(""))),
            "endswith" => Value::from(s.ends_with(arg_str(0)?.unwrap_or(""))),
            "upper" => Value::from(s.to_uppercase()),
            "lower" => Value::from(s.to_lowercase()),
            "title" => state.apply_filter("title", std::slice::from_ref(value))?,
            "capitalize" => state.apply_filter("capitalize", std::slice::from_ref(value))?,
            "replace" => Value::from(s.replace(arg_str(0)?.unwrap_or(""), arg_str(1)?.unwrap_or(""))),
            "split" => match arg_str(0)? {
                Some(sep) if !sep.is_empty() => Value::from(s.split(sep).map(Value::from).collect::<Vec<_>>()),
                _ => Value::from(s.split_whitespace().map(Value::from).collect::<Vec<_>>()),
            },
            _ => return Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        });
    }
    if value.kind() == ValueKind::Map {
        return match method {
            "items" => state.apply_filter("items", std::slice::from_ref(value)),
            "keys" => Ok(Value::from(value.try_iter()?.collect::<Vec<_>>())),
            "values" => {
                let mut out = Vec::new();
                for k in value.try_iter()? {
                    out.push(value.get_item(&k)?);
                }
                Ok(Value::from(out))
            }
            "get" => {
                let key = args.first().cloned().unwrap_or_default();
                let v = value.get_item(&key)?;
                Ok(if v.is_undefined() { args.get(1).cloned().unwrap_or_default() } else { v })
            }
            _ => Err(minijinja::Error::from(ErrorKind::UnknownMethod)),
        };
    }
    Err(minijinja::Error::from(ErrorKind::UnknownMethod))
}
