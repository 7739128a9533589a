"""An unmodified Faust app: no kafkascope, no OpenTelemetry imports.

Three agents read PREFIX + "in" (logs each order), PREFIX + "fwd" (forwards each to PREFIX + "out"
with ``topic.send``) and PREFIX + "relay" (yields each to its sink, PREFIX + "sunk"); two more read
"out" and "sunk" (log each). Once COUNT orders went through every path the worker stops.

Usage: faust_app.py BOOTSTRAP PREFIX COUNT [faust-otel]  (the last: also Faust's own
OpenTelemetry sensor, ``faust.contrib.opentelemetry.setup_opentelemetry``)
"""

import logging
import os
import signal
import sys

import faust

BOOTSTRAP, PREFIX, COUNT = sys.argv[1], sys.argv[2], int(sys.argv[3])
FAUST_OTEL = sys.argv[4:5] == ["faust-otel"]
sys.argv[1:] = ["worker", "--loglevel", "info", "--without-web"]

logger = logging.getLogger("orders")
app = faust.App(
    f"{PREFIX}app",
    broker=f"kafka://{BOOTSTRAP}",
    store="memory://",
    topic_partitions=1,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
)
if FAUST_OTEL:
    from faust.contrib.opentelemetry import setup_opentelemetry

    setup_opentelemetry(app)

inbound = app.topic(f"{PREFIX}in", value_serializer="json")
forwarded = app.topic(f"{PREFIX}fwd", value_serializer="json")
out = app.topic(f"{PREFIX}out", value_serializer="json")
relayed = app.topic(f"{PREFIX}relay", value_serializer="json")
sunk = app.topic(f"{PREFIX}sunk", value_serializer="json")
seen = {"in": 0, "out": 0, "sunk": 0}


def done(path: str) -> None:
    seen[path] += 1
    if all(n >= COUNT for n in seen.values()):
        os.kill(os.getpid(), signal.SIGTERM)


@app.agent(inbound)
async def handle(orders):
    async for order in orders:
        logger.info("handled order %s", order["order"])
        done("in")


@app.agent(forwarded)
async def forward(orders):
    async for order in orders:
        await out.send(value=order)


@app.agent(out)
async def handle_forwarded(orders):
    async for order in orders:
        logger.info("handled forwarded order %s", order["order"])
        done("out")


@app.agent(relayed, sink=[sunk])
async def relay(orders):
    async for order in orders:
        yield order


@app.agent(sunk)
async def handle_sunk(orders):
    async for order in orders:
        logger.info("handled sunk order %s", order["order"])
        done("sunk")


if __name__ == "__main__":
    app.main()
