"""An unmodified aiokafka service: no kafkascope, no OpenTelemetry imports.

Usage: plain_aiokafka.py BOOTSTRAP TOPIC COUNT {produce|iterate}
"""

import asyncio
import logging
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

log = logging.getLogger("shipping")


async def main() -> None:
    bootstrap, topic, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    logging.getLogger().setLevel(logging.INFO)
    if mode == "produce":
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        try:
            for i in range(count):
                await producer.send_and_wait(topic, f"parcel {i}".encode())
        finally:
            await producer.stop()
        return
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id="shipping", auto_offset_reset="earliest"
    )
    await consumer.start()
    handled = 0
    try:
        async with asyncio.timeout(30):
            async for message in consumer:
                log.info("shipped %s at offset %s", message.value.decode(), message.offset)
                handled += 1
                if handled == count:
                    break
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(main())
