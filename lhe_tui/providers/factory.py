"""Build the provider a RunConfig names; API keys come from the environment only."""

from __future__ import annotations

import os
from dataclasses import replace

from lhe_tui.common.errors import ConfigError
from lhe_tui.providers.base import GenerationSettings, Provider
from lhe_tui.providers.served import check_served_base_url
from lhe_tui.core.config import RunConfig


def generation_settings(config: RunConfig) -> GenerationSettings:
    return GenerationSettings(mode=config.mode, temperature=config.temperature, top_p=config.top_p,  # type: ignore[arg-type]
                              max_tokens=config.max_tokens, reasoning_effort=config.reasoning_effort,
                              thinking_budget=config.thinking_budget, timeout=config.timeout,
                              enable_thinking=config.enable_thinking, extra_body=dict(config.extra_body),
                              deadline=config.deadline, max_reply_chars=config.max_reply_chars,
                              prompt_cache=config.prompt_cache)


def check_credentials(config: RunConfig) -> None:
    """Fail before anything starts when a key is needed and missing, or when an app `lhe-tui serve` started
    is given a base URL the server was not started with (providers.served)."""
    if config.provider != "sim":
        check_served_base_url(config.base_url)
    if config.provider == "openai":
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL")
        if not os.environ.get("OPENAI_API_KEY") and not base_url:
            raise ConfigError("OPENAI_API_KEY is not set (needed for --provider openai; "
                              "an OpenAI-compatible server given with --base-url may need none)")
    elif config.provider == "anthropic" and not os.environ.get("ANTHROPIC_API_KEY"):
        raise ConfigError("ANTHROPIC_API_KEY is not set (needed for --provider anthropic)")


def make_provider(config: RunConfig, base_url: str | None = None) -> Provider:
    """`base_url` overrides the config's (the local provider passes its own server's address). Several
    servers (`config.endpoints`, and no override): one provider each behind an EndpointRouter."""
    if len(config.endpoints) > 1 and base_url is None and config.provider != "sim":
        from lhe_tui.providers.endpoints import EndpointRouter

        one = replace(config, endpoints=())
        return EndpointRouter([(url, make_provider(one, url)) for url in config.endpoints],
                              concurrency=config.endpoint_concurrency)
    settings = generation_settings(config)
    if config.provider == "sim":
        from lhe_tui.providers.sim import SimProvider, SimSettings

        return SimProvider(config.model_label, settings, SimSettings(
            seed=config.seed, base_error=config.sim_base_error, growth=config.sim_growth,
            conditioning=config.sim_conditioning, format_miss=config.sim_format_miss, token_delay=config.sim_delay))
    check_credentials(config)
    check_served_base_url(base_url)
    if config.provider in ("openai", "local"):
        from lhe_tui.providers.openai_chat import OpenAIChatProvider

        url = base_url or config.base_url or os.environ.get("OPENAI_BASE_URL")
        key = os.environ.get("OPENAI_API_KEY") or "no-key-needed"
        if config.provider == "local":
            # Never the OpenAI API: our own server (local_provider.prepare_own_server) or --base-url.
            url = base_url or config.base_url
            if not url:
                raise ConfigError("--provider local has no server to talk to: pass --base-url, or let lhe-tui "
                                  "start one (run, resume and probe do)")
            key = "no-key-needed"
        return OpenAIChatProvider(config.model_label or "local", settings, api_key=key, base_url=url)
    if config.provider == "anthropic":
        from lhe_tui.providers.anthropic_messages import AnthropicProvider

        return AnthropicProvider(config.model, settings, api_key=os.environ["ANTHROPIC_API_KEY"],
                                 base_url=base_url or config.base_url)
    raise ConfigError(f"unknown provider {config.provider!r}")
