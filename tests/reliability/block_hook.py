"""Loaded into a test worker (`celery worker --include tests.reliability.block_hook`), never by the project.

If FLEXMARKET_TEST_BLOCK names a function ("grid.network.run_power_flow"), the first call of it in any process
of the worker writes that process's pid to FLEXMARKET_TEST_BLOCK_MARKER and blocks until the process is killed;
later calls (a marker exists) run normally. That freezes one run in `running` where the harness can kill it.
"""

import functools
import importlib
import os
import time

BLOCK = "FLEXMARKET_TEST_BLOCK"
MARKER = "FLEXMARKET_TEST_BLOCK_MARKER"


def _install(target: str, marker: str) -> None:
    module_name, name = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    original = getattr(module, name)

    @functools.wraps(original)
    def block_once(*args, **kwargs):
        try:
            handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return original(*args, **kwargs)
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        while True:
            time.sleep(1)

    setattr(module, name, block_once)


if os.environ.get(BLOCK):
    _install(os.environ[BLOCK], os.environ[MARKER])
