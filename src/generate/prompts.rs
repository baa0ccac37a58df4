//! The prompts of a generation's contexts: a conversation rendered with the file's chat
//! template for the base context, and conditioned on the principles for every other.
//!
//! The contexts of a conversation are rendered so that the next turn's prompt starts with
//! this turn's prompt and answer: the preference contexts put their principles into the
//! system message, or (guideline style) around every user message. That is what lets a
//! generation reuse the caches the last one kept (`Generation::conversation`).

use crate::align::plan::Plan;
use crate::align::{conditioned_turns, ContextStyle};
use crate::backend::Backend;
use crate::error::Result;
use crate::generate::{Engine, GenerateOptions};
use crate::tokenizer::ChatMessage;

/// `[system?, user]`: the one-turn conversation of a prompt.
pub fn one_turn(user: &str, system: Option<&str>) -> Vec<ChatMessage> {
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = system {
        messages.push(ChatMessage { role: "system".into(), content: system.into() });
    }
    messages.push(ChatMessage { role: "user".into(), content: user.into() });
    messages
}

/// Checks that `messages` is a conversation a model can answer: an optional system message
/// first, then user and assistant messages, the last one from the user.
pub fn check_conversation(messages: &[ChatMessage]) -> Result<()> {
    let Some(last) = messages.last() else {
        crate::bail!(InvalidArgument, "messages: the conversation is empty");
    };
    for (i, m) in messages.iter().enumerate() {
        match m.role.as_str() {
            "system" if i == 0 => {}
            "system" => crate::bail!(InvalidArgument, "messages[{i}]: a system message may only come first"),
            "user" | "assistant" => {}
            other => crate::bail!(
                InvalidArgument,
                "messages[{i}].role: {other:?} is not one of \"system\", \"user\", \"assistant\""
            ),
        }
    }
    if last.role != "user" {
        crate::bail!(InvalidArgument, "messages: the last message must be the user's (it is {:?})", last.role);
    }
    Ok(())
}

impl<B: Backend> Engine<B> {
    /// The token ids of a conversation, rendered with the file's own chat template and the
    /// assistant's turn opened.
    pub fn conversation_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        self.tokenizer.encode_chat(messages, true)
    }

    /// The token ids of a one-turn chat.
    pub fn chat_prompt(&self, user: &str, system: Option<&str>) -> Result<Vec<u32>> {
        self.conversation_prompt(&one_turn(user, system))
    }

    /// The prompts of every context a generation advances: the base context first, then
    /// (for PAD and best-of-n) one per reward context (`Personalization::reward_contexts`),
    /// then the unconditioned reference context if the base context is conditioned
    /// (`Personalization::uses_reference_context`).
    pub fn contexts(&self, user: &str, options: &GenerateOptions) -> Result<Vec<Vec<u32>>> {
        self.prompts(user, options.system.as_deref(), &Plan::new(&options.personalization)?)
    }

    /// [`contexts`](Self::contexts) for a plan made already.
    pub fn prompts(&self, user: &str, system: Option<&str>, plan: &Plan) -> Result<Vec<Vec<u32>>> {
        self.conversation_prompts(&one_turn(user, system), plan)
    }

    /// [`prompts`](Self::prompts) of a whole conversation.
    pub fn conversation_prompts(&self, messages: &[ChatMessage], plan: &Plan) -> Result<Vec<Vec<u32>>> {
        check_conversation(messages)?;
        let mut contexts = vec![match &plan.base {
            Some((principles, style)) => self.conditioned_conversation(*style, principles, messages)?,
            None => self.conversation_prompt(messages)?,
        }];
        let style = plan.personalization.persrm_context;
        for c in &plan.contexts {
            contexts.push(self.conditioned_conversation(style, &c.principles, messages)?);
        }
        if plan.reference {
            contexts.push(self.conversation_prompt(messages)?);
        }
        Ok(contexts)
    }

    /// The token ids of a one-turn chat conditioned on `principles` in `style`.
    pub fn conditioned_prompt<S: AsRef<str>>(
        &self,
        style: ContextStyle,
        principles: &[S],
        user: &str,
        system: Option<&str>,
    ) -> Result<Vec<u32>> {
        self.conditioned_conversation(style, principles, &one_turn(user, system))
    }

    /// A conversation conditioned on `principles` in `style` (see `align::conditioned_turns`;
    /// guideline style wraps every user message). Without a system message of the caller's,
    /// the principles follow the template's default one: replacing it would make the context
    /// differ from the plain chat by more than the principles (SmolLM2 loses its assistant
    /// persona), and PAD's rewards and preference prompting would carry that difference too.
    fn conditioned_conversation<S: AsRef<str>>(
        &self,
        style: ContextStyle,
        principles: &[S],
        messages: &[ChatMessage],
    ) -> Result<Vec<u32>> {
        let (system, turns) = match messages.split_first() {
            Some((first, rest)) if first.role == "system" => (Some(first.content.as_str()), rest),
            _ => (None, messages),
        };
        let system = system.or(self.tokenizer.default_system_message());
        let mut conditioned = vec![ChatMessage { role: "system".into(), content: String::new() }];
        let mut conditioned_system = system.map(String::from);
        for m in turns {
            if m.role == "user" {
                let (s, user) = conditioned_turns(style, principles, &m.content, system);
                conditioned_system = s;
                conditioned.push(ChatMessage { role: "user".into(), content: user });
            } else {
                conditioned.push(m.clone());
            }
        }
        match conditioned_system {
            Some(s) => conditioned[0].content = s,
            None => {
                conditioned.remove(0);
            }
        }
        self.conversation_prompt(&conditioned)
    }
}
