// Exactly the setting the package's README gives for Vite (it matters to the dev server only).
export default { optimizeDeps: { exclude: ['padlock-llm'] } };
