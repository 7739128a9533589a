"""The full stack for end-to-end tests: Kafka, Jaeger v2, the Collector and Prometheus.

``stack`` starts them once per session (building the Collector and Jaeger first if they are not
cached) and stops each by its PID at the end. ``pipeline_factory`` starts the pipeline's
services on fresh topics, so tests never share messages or metric series; their log tails are
printed at teardown, which pytest shows when a test fails.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devstack.stack import Stack
from examples.pipeline.launcher import Pipeline


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every server of the stack, on free 127.0.0.1 ports, for the whole session."""
    with Stack.up(tmp_path_factory.mktemp("stack")) as running:
        print(f"\n[e2e] stack up in {running.up_seconds:.1f}s under {running.workdir}")
        yield running
        # On the way out: where the logs are, should a test have failed.
        for name, path in running.log_paths().items():
            print(f"[e2e] {name} log: {path}")


@contextlib.contextmanager
def running_pipeline(stack: Stack, workdir: Path) -> Iterator[Pipeline]:
    """The pipeline's consumers on topics with a fresh prefix; stopped by PID on exit."""
    pipeline = Pipeline(stack.endpoints, workdir, prefix=f"e2e{uuid.uuid4().hex[:8]}.")
    try:
        yield pipeline.start()
    finally:
        pipeline.stop()
        print(pipeline.log_tails())


@pytest.fixture
def pipeline_factory(stack: Stack, tmp_path: Path) -> Iterator[Callable[[], Pipeline]]:
    """``pipeline_factory()``: a running pipeline of this test, stopped at teardown."""
    with contextlib.ExitStack() as pipelines:

        def start() -> Pipeline:
            return pipelines.enter_context(running_pipeline(stack, tmp_path / "pipeline"))

        yield start
