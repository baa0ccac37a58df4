// Must not type-check: max_tokens is a number.
import { createEngine } from 'padlock-llm';

const engine = await createEngine({ model: '/m.gguf' });
await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: '5' });
