"""`metadata.model_map_information` of a spend-log row: the model-cost-map entry (`ModelInfo`) the proxy priced the
request with, as LiteLLM 1.108.7 logs it (every field, mostly null, keys in the JSONB order the row is stored in).

Prices are the catalog's, so the map agrees with the spend the simulator computes; context windows, flags and
the supported OpenAI parameters are those of LiteLLM's public model map and provider configs.
"""

from __future__ import annotations

from typing import Any

from sentinel.simulator.catalog import EMBEDDINGS, MODELS, SimModel

Json = dict[str, Any]

# ModelInfo as the captured proxy serialises it (tests/fixtures/litellm/spend_logs_v2.json), in stored order.
MODEL_INFO_FIELDS: tuple[str, ...] = (
    "key", "rpm", "tpm", "mode", "max_tokens", "tiered_pricing", "cost_per_second", "supports_vision",
    "litellm_provider", "max_input_tokens", "off_peak_pricing", "max_output_tokens", "ocr_cost_per_page",
    "token_count_model", "output_vector_size", "supports_pdf_input", "supports_reasoning", "thinking_always_on",
    "uses_embed_content", "ocr_cost_per_credit", "supported_endpoints", "supports_image_size", "supports_web_search",
    "token_count_framing", "vertex_ai_audio_api", "input_cost_per_image", "input_cost_per_query",
    "input_cost_per_token", "search_free_requests", "supports_audio_input", "supports_tool_choice",
    "supports_tool_search", "supports_url_context", "supports_video_input", "input_cost_per_second",
    "output_cost_per_image", "output_cost_per_pixel", "output_cost_per_token", "supports_audio_output",
    "supports_computer_use", "token_count_tokenizer", "output_cost_per_second", "supports_box_questions",
    "citation_cost_per_token", "prompt_cache_min_tokens", "provider_specific_entry", "reasoning_effort_levels",
    "supported_audio_formats", "supported_openai_params", "supports_prompt_caching", "web_search_billing_unit",
    "annotation_cost_per_page", "default_reasoning_effort", "input_cost_per_character", "supports_legacy_thinking",
    "supports_response_schema", "supports_system_messages", "input_cost_per_token_flex", "ocr_cost_per_page_batches",
    "output_cost_per_character", "output_cost_per_second_2k", "output_cost_per_second_4k",
    "supports_function_calling", "supports_native_streaming", "supports_per_turn_control",
    "supports_regex_lookaround", "input_cost_per_audio_token", "input_cost_per_image_token",
    "input_cost_per_video_token", "output_cost_per_token_flex", "supports_adaptive_thinking",
    "supports_assistant_prefill", "cache_read_input_token_cost", "input_cost_per_text_message",
    "output_cost_per_audio_token", "output_cost_per_image_token", "output_cost_per_second_480p",
    "output_cost_per_second_720p", "output_cost_per_second_768p", "output_cost_per_video_token",
    "input_cost_per_token_batches", "output_cost_per_second_1080p", "input_cost_per_token_balanced",
    "input_cost_per_token_priority", "output_cost_per_token_batches", "search_context_cost_per_query",
    "supports_anthropic_compaction", "supports_low_reasoning_effort", "supports_max_reasoning_effort",
    "input_cost_per_token_ultrafast", "output_cost_per_token_balanced", "output_cost_per_token_priority",
    "supports_embedding_image_input", "supports_none_reasoning_effort", "cache_creation_input_token_cost",
    "input_cost_per_audio_per_second", "input_cost_per_audio_token_flex", "input_cost_per_video_per_second",
    "output_cost_per_reasoning_token", "output_cost_per_token_ultrafast", "supports_xhigh_reasoning_effort",
    "annotation_cost_per_page_batches", "cache_read_input_token_cost_flex", "output_cost_per_video_per_second",
    "supports_mid_conversation_system", "supports_prompt_cache_breakpoint", "cache_read_input_audio_token_cost",
    "supports_minimal_reasoning_effort", "supports_native_structured_output", "input_cost_per_audio_token_batches",
    "input_cost_per_image_token_batches", "input_cost_per_video_token_batches", "supports_parallel_function_calling",
    "cache_read_input_token_cost_batches", "input_cost_per_audio_token_priority",
    "output_cost_per_image_token_batches", "regional_endpoint_uplift_multiplier",
    "supports_anthropic_thinking_payload", "bedrock_output_config_effort_ceiling",
    "cache_creation_input_token_cost_flex", "cache_read_input_token_cost_balanced",
    "cache_read_input_token_cost_priority", "google_maps_grounding_cost_per_query",
    "output_cost_per_image_token_priority", "output_cost_per_reasoning_token_flex",
    "supports_thinking_cache_preservation", "cache_read_input_token_cost_ultrafast",
    "bedrock_converse_supports_strict_tools", "cache_read_input_audio_token_cost_flex",
    "input_cost_per_token_above_128k_tokens", "input_cost_per_token_above_200k_tokens",
    "input_cost_per_token_above_272k_tokens", "input_cost_per_token_above_512k_tokens",
    "cache_creation_input_token_cost_batches", "output_cost_per_token_above_128k_tokens",
    "output_cost_per_token_above_200k_tokens", "output_cost_per_token_above_272k_tokens",
    "output_cost_per_token_above_512k_tokens", "cache_creation_input_token_cost_priority",
    "output_cost_per_reasoning_token_priority", "regional_processing_uplift_multiplier_eu",
    "regional_processing_uplift_multiplier_us", "cache_creation_input_token_cost_above_1hr",
    "cache_creation_input_token_cost_ultrafast", "cache_read_input_audio_token_cost_batches",
    "supports_bedrock_native_structured_output", "cache_read_input_audio_token_cost_priority",
    "input_cost_per_token_above_200k_tokens_flex", "input_cost_per_token_above_272k_tokens_flex",
    "output_cost_per_character_above_128k_tokens", "input_cost_per_audio_token_above_200k_tokens",
    "output_cost_per_token_above_200k_tokens_flex", "output_cost_per_token_above_272k_tokens_flex",
    "cache_read_input_token_cost_above_200k_tokens", "cache_read_input_token_cost_above_272k_tokens",
    "cache_read_input_token_cost_above_512k_tokens", "input_cost_per_token_above_200k_tokens_batches",
    "input_cost_per_token_above_272k_tokens_batches", "input_cost_per_token_above_200k_tokens_priority",
    "input_cost_per_token_above_272k_tokens_priority", "output_cost_per_token_above_200k_tokens_batches",
    "output_cost_per_token_above_272k_tokens_batches", "input_cost_per_token_above_272k_tokens_ultrafast",
    "output_cost_per_token_above_200k_tokens_priority", "output_cost_per_token_above_272k_tokens_priority",
    "cache_creation_input_token_cost_above_200k_tokens", "cache_creation_input_token_cost_above_272k_tokens",
    "input_cost_per_audio_token_above_200k_tokens_flex", "output_cost_per_token_above_272k_tokens_ultrafast",
    "cache_read_input_token_cost_above_272k_tokens_flex", "input_cost_per_audio_token_above_200k_tokens_batches",
    "cache_read_input_token_cost_above_200k_tokens_batches", "cache_read_input_token_cost_above_272k_tokens_batches",
    "input_cost_per_audio_token_above_200k_tokens_priority", "cache_creation_input_token_cost_above_272k_tokens_flex",
    "cache_read_input_token_cost_above_200k_tokens_priority",
    "cache_read_input_token_cost_above_272k_tokens_priority",
    "cache_read_input_token_cost_above_272k_tokens_ultrafast",
    "cache_creation_input_token_cost_above_200k_tokens_batches",
    "cache_creation_input_token_cost_above_272k_tokens_batches",
    "cache_creation_input_token_cost_above_272k_tokens_priority",
    "cache_creation_input_token_cost_above_272k_tokens_ultrafast",
)  # fmt: skip

# LiteLLM's `get_supported_openai_params` per provider (the lists the captured proxy logged, bedrock's from its
# Converse config).
_OPENAI_PARAMS = (
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens",
    "modalities", "prediction", "n", "presence_penalty", "seed", "stop", "stream", "stream_options", "temperature",
    "top_p", "tools", "tool_choice", "function_call", "functions", "max_retries", "extra_headers",
    "parallel_tool_calls", "audio", "web_search_options", "service_tier", "safety_identifier", "prompt_cache_key",
    "prompt_cache_retention", "store", "response_format", "reasoning_effort",
)  # fmt: skip
_AZURE_PARAMS = (
    "temperature", "n", "stream", "stream_options", "stop", "max_tokens", "max_completion_tokens", "tools",
    "tool_choice", "presence_penalty", "frequency_penalty", "logit_bias", "user", "function_call", "functions",
    "tools", "tool_choice", "top_p", "logprobs", "top_logprobs", "response_format", "seed", "extra_headers",
    "parallel_tool_calls", "prediction", "modalities", "audio", "web_search_options", "prompt_cache_key", "store",
)  # fmt: skip
_ANTHROPIC_PARAMS = (
    "stream", "stop", "temperature", "top_p", "max_tokens", "max_completion_tokens", "tools", "tool_choice",
    "extra_headers", "parallel_tool_calls", "response_format", "user", "web_search_options", "speed",
    "context_management", "cache_control", "service_tier",
)  # fmt: skip
_GROQ_PARAMS = (
    "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens",
    "modalities", "prediction", "n", "presence_penalty", "seed", "stop", "stream", "stream_options", "temperature",
    "top_p", "tools", "tool_choice", "function_call", "functions", "extra_headers", "parallel_tool_calls", "audio",
    "service_tier", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "store", "response_format",
)  # fmt: skip
_BEDROCK_PARAMS = (
    "max_tokens", "max_completion_tokens", "stream", "stream_options", "stop", "temperature", "top_p",
    "extra_headers", "response_format", "tools", "tool_choice",
)  # fmt: skip
_PARAMS = {
    "openai": _OPENAI_PARAMS,
    "azure": _AZURE_PARAMS,
    "anthropic": _ANTHROPIC_PARAMS,
    "groq": _GROQ_PARAMS,
    "bedrock": _BEDROCK_PARAMS,
}
# The `supports_*` flags the model map sets (true) per provider's chat models.
_FLAGS = {
    "openai": (
        "vision",
        "pdf_input",
        "tool_choice",
        "prompt_caching",
        "response_schema",
        "system_messages",
        "function_calling",
        "parallel_function_calling",
    ),
    "azure": (
        "vision",
        "tool_choice",
        "prompt_caching",
        "response_schema",
        "function_calling",
        "parallel_function_calling",
    ),
    "anthropic": (
        "vision",
        "pdf_input",
        "tool_choice",
        "prompt_caching",
        "response_schema",
        "function_calling",
        "assistant_prefill",
    ),
    "bedrock": ("vision", "pdf_input", "tool_choice", "response_schema", "function_calling"),
    "groq": ("tool_choice", "response_schema", "function_calling"),
}
# Per model: the map's entry key (openai, anthropic and bedrock entries are unprefixed), context window, and the
# entries' extra prices.
_ENTRIES: dict[str, Json] = {
    "openai/gpt-4o-mini": {
        "key": "gpt-4o-mini",
        "max_tokens": 16384,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
        "input_cost_per_token_batches": 7.5e-08,
        "input_cost_per_token_priority": 2.5e-07,
        "output_cost_per_token_batches": 3e-07,
        "output_cost_per_token_priority": 1e-06,
        "cache_read_input_token_cost_priority": 1.25e-07,
        "search_context_cost_per_query": {
            "search_context_size_low": 0.025,
            "search_context_size_high": 0.025,
            "search_context_size_medium": 0.025,
        },
    },
    "openai/gpt-4o": {
        "key": "gpt-4o",
        "max_tokens": 16384,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
        "input_cost_per_token_batches": 1.25e-06,
        "input_cost_per_token_priority": 4.25e-06,
        "output_cost_per_token_batches": 5e-06,
        "output_cost_per_token_priority": 1.7e-05,
        "cache_read_input_token_cost_priority": 2.125e-06,
        "search_context_cost_per_query": {
            "search_context_size_low": 0.03,
            "search_context_size_high": 0.05,
            "search_context_size_medium": 0.035,
        },
    },
    "azure/gpt-4o": {
        "key": "azure/gpt-4o",
        "max_tokens": 16384,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
    },
    "anthropic/claude-3-5-sonnet-20240620": {
        "key": "claude-3-5-sonnet-20240620",
        "max_tokens": 8192,
        "max_input_tokens": 200000,
        "max_output_tokens": 8192,
    },
    "anthropic/claude-3-5-haiku-20241022": {
        "key": "claude-3-5-haiku-20241022",
        "max_tokens": 8192,
        "max_input_tokens": 200000,
        "max_output_tokens": 8192,
    },
    "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0": {
        "key": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "max_tokens": 4096,
        "max_input_tokens": 200000,
        "max_output_tokens": 4096,
    },
    "groq/llama-3.1-8b-instant": {
        "key": "groq/llama-3.1-8b-instant",
        "max_tokens": 8192,
        "max_input_tokens": 128000,
        "max_output_tokens": 8192,
    },
    "groq/llama-3.3-70b-versatile": {
        "key": "groq/llama-3.3-70b-versatile",
        "max_tokens": 32768,
        "max_input_tokens": 128000,
        "max_output_tokens": 32768,
    },
    "openai/text-embedding-3-small": {
        "key": "text-embedding-3-small",
        "max_tokens": 8191,
        "max_input_tokens": 8191,
        "output_vector_size": 1536,
        "input_cost_per_token_batches": 1e-08,
        "output_cost_per_token_batches": 0.0,
    },
}


def _entry(model: SimModel) -> Json:
    chat = model.endpoint != EMBEDDINGS
    values: Json = {
        "mode": "chat" if chat else "embedding",
        "litellm_provider": model.provider,
        "input_cost_per_token": model.input_cost,
        "output_cost_per_token": model.output_cost,
        "cache_read_input_token_cost": model.cache_read_cost or None,
        "cache_creation_input_token_cost": model.cache_creation_cost or None,
        "supported_openai_params": list(_PARAMS[model.provider]),
        **_ENTRIES[model.model],
    }
    if chat:
        values.update({f"supports_{flag}": True for flag in _FLAGS[model.provider]})
    unknown = set(values) - set(MODEL_INFO_FIELDS)
    if unknown:
        raise AssertionError(f"not ModelInfo fields: {sorted(unknown)}")
    return {name: values.get(name) for name in MODEL_INFO_FIELDS}


# One shared object per model: orjson serialises it for every row that names the model.
MODEL_MAP_INFORMATION: tuple[Json, ...] = tuple(
    {"model_map_key": m.model, "model_map_value": _entry(m)} for m in MODELS
)

__all__ = ["MODEL_INFO_FIELDS", "MODEL_MAP_INFORMATION"]
