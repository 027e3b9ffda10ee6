"""The allocator thresholds set at import (heap.py): set on glibc, left alone elsewhere or when the user set them."""

from __future__ import annotations

import platform
import sys

import pytest

from llmroofline import heap


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_glibc_thresholds_are_raised(monkeypatch):
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    assert heap.keep_freed_memory() is True
    assert heap.TRIM_THRESHOLD_BYTES == 2 * heap.MMAP_THRESHOLD_BYTES == 64 * 2**20


@pytest.mark.parametrize("name", ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"])
def test_a_threshold_the_user_set_wins(monkeypatch, name):
    monkeypatch.setenv(name, "131072")
    assert heap.keep_freed_memory() is False


def test_other_systems_are_left_alone(monkeypatch):
    monkeypatch.setattr(heap.sys, "platform", "darwin")
    assert heap.keep_freed_memory() is False
