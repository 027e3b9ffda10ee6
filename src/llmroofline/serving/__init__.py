"""Serving as operators run it: requests arriving at a rate, mixed lengths, chunked prefill,
prefix caching, speculative decoding and disaggregated prefill/decode, above the per-step engine."""

from .api import Serving, serve, serve_at_concurrency
from .closed import serve_closed

__all__ = ["Serving", "serve", "serve_at_concurrency", "serve_closed"]
