"""What a provider's prompt cache can read, by its published rules (docs/prompt-caching.md):

- Anthropic caches a prefix ending at a `cache_control` breakpoint only when it is at least the model's
  minimum long: 2,048 tokens for Haiku models, 1,024 for Sonnet and Opus models (and, here, any other).
  Shorter prompts are neither written nor read: they are billed as plain input.
- OpenAI (and the forecast's OpenAI-compatible servers) caches prompt prefixes of 1,024 tokens and more,
  automatically, in 128-token steps: a 1,500-token prefix reads 1,408 tokens from the cache.

The forecast (lhe_tui.analysis.estimate) and the fake server's Anthropic billing (lhe_tui.testing.fake_llm_server)
both follow these rules.
"""

from __future__ import annotations

OPENAI_MIN_TOKENS = 1024
OPENAI_STEP_TOKENS = 128
ANTHROPIC_MIN_TOKENS = 1024
ANTHROPIC_HAIKU_MIN_TOKENS = 2048


def min_cacheable_tokens(provider: str, model: str) -> int:
    """The shortest prefix (tokens) the provider's cache keeps."""
    if provider == "anthropic":
        return ANTHROPIC_HAIKU_MIN_TOKENS if "haiku" in model.lower() else ANTHROPIC_MIN_TOKENS
    return OPENAI_MIN_TOKENS


def readable_tokens(provider: str, model: str, prefix_tokens: float) -> float:
    """The tokens of a `prefix_tokens`-long prefix, already sent, that the next request reads from the cache."""
    least = min_cacheable_tokens(provider, model)
    if prefix_tokens < least:
        return 0.0
    if provider == "anthropic":
        return prefix_tokens
    return least + OPENAI_STEP_TOKENS * ((prefix_tokens - least) // OPENAI_STEP_TOKENS)
