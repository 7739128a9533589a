"""devstack's free ports: outside the kernel's ephemeral range, never handed out twice."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from devstack._process import free_port


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_free_ports_lie_below_the_range_the_kernel_hands_out_itself() -> None:
    low, _ = _ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert all(1_024 < port < low for port in ports), sorted(ports)[-5:]


def test_no_port_is_handed_out_twice_even_to_threads_asking_at_once() -> None:
    ports: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [free_port() for _ in range(300)]
        with lock:
            ports.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ports) == len(set(ports)) == 1_200


def test_a_free_port_can_be_bound_and_then_serves() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
