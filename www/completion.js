// One streamed answer through the package's public API (engine.chat.completions.create), gathered
// into what the page shows: the text, each token with PAD's explanation, the usage and what
// steered it. Stopping (an aborted signal) is not an error here: the answer so far is kept.

/**
 * Streams `request` (a chat request without `stream`) and calls onToken(piece, explanation) per
 * token. Resolves to { text, finishReason ('stop' | 'length' | 'cancelled'), tokens: [{ piece,
 * ...explanation }], count, usage, personalization, firstTokenMs }; rejects with the engine's
 * PadlockError on anything but a stop.
 */
export async function streamCompletion(engine, request, { signal, onToken = () => {} } = {}) {
  const started = performance.now();
  const result = { text: '', finishReason: null, tokens: [], count: 0, usage: null, personalization: null, firstTokenMs: null };
  try {
    const stream = await engine.chat.completions.create({ ...request, stream: true, signal });
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      const piece = choice.delta.content;
      // The first chunk only carries the role, with empty content.
      if (piece || choice.explanation) {
        result.count += 1;
        result.firstTokenMs ??= performance.now() - started;
        result.text += piece ?? '';
        result.tokens.push({ piece: piece ?? '', ...(choice.explanation ?? {}) });
        onToken(piece ?? '', choice.explanation ?? null, result);
      }
      if (choice.finish_reason) result.finishReason = choice.finish_reason;
      if (chunk.usage) result.usage = chunk.usage;
      if (chunk.personalization) result.personalization = chunk.personalization;
    }
  } catch (err) {
    if (err?.name !== 'AbortError') throw err;
    result.finishReason = 'cancelled';
  }
  return result;
}
