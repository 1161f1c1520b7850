from __future__ import annotations

import os
import subprocess
import sys

from bench.machine import machine


def test_the_machine_is_named_without_importing_torch() -> None:
    info = machine()
    assert info["cpu"] and info["cores"] == os.cpu_count() and info["python"]
    code = (
        "import sys; from bench.machine import machine; m = machine(); "
        "print('torch' in sys.modules, m['torch'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, version = out.stdout.split()
    assert loaded == "False" and version.startswith("2.")
