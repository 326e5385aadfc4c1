"""The session's clients (`wire.pool`): one per endpoint configuration, made on first use, by
one thread at a time."""

from __future__ import annotations

import subprocess
import sys
import threading

from nbchat.wire.config import ClientConfig
from nbchat.wire.pool import ClientPool

LOCAL = ClientConfig(base_url="http://127.0.0.1:9/v1", api_key_env="")


def test_one_client_per_configuration() -> None:
    pool = ClientPool()
    first = pool.get(LOCAL)
    assert pool.get(ClientConfig(base_url="http://127.0.0.1:9/v1", api_key_env="")) is first
    assert pool.get(ClientConfig(base_url="http://127.0.0.1:8/v1", api_key_env="")) is not first
    pool.close()
    assert pool.get(LOCAL) is not first, "closed clients are not handed out again"
    pool.close()


def test_threads_asking_at_once_share_one_client() -> None:
    pool, got, start = ClientPool(), [], threading.Barrier(8)

    def ask() -> None:
        start.wait()
        got.append(pool.get(LOCAL))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(got) == 8 and len({id(client) for client in got}) == 1
    pool.close()


def test_a_pool_loads_httpx_with_its_first_client_only() -> None:
    code = (
        "import sys; from nbchat.wire.pool import ClientPool; from nbchat.wire.config import "
        "ClientConfig; pool = ClientPool(); print('httpx' in sys.modules); "
        "pool.get(ClientConfig(base_url='http://127.0.0.1:9/v1', api_key_env='')); "
        "print('httpx' in sys.modules)"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["False", "True"]
