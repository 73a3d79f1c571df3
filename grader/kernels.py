"""Notebook kernels forked from a warm interpreter.

A kernel that imports sagemaker, boto3, pandas and xgboost spends several
seconds of CPU before the student's first cell does anything. Here a warm
interpreter imports them once per worker; every notebook gets a new fork of
it, started as ``ipykernel_launcher`` would be, so each submission still has
a fresh interpreter and a namespace of its own.

jupyter_client launches kernels through a provisioner; ``WarmProvisioner``
is registered under the entry point ``grader-warm`` and used by the kernel
spec this module writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

from grader.warm import WarmInterpreter, WarmProcess

KERNEL_NAME = "grader-python3"
KERNEL_PRELOAD = (
    "numpy",
    "pandas",
    "sklearn.metrics",
    "xgboost",
    "boto3",
    "botocore.session",
    "sagemaker",
    "sagemaker.estimator",
    "sagemaker.xgboost",
    "sagemaker.pytorch",
    "sagemaker.analytics",
    "ipykernel.kernelapp",
    "matplotlib.pyplot",
    "grader_import_hooks",
    "grader_kernel_warmup",
)

#: The warm interpreter and limits of the notebook being started. One
#: notebook starts at a time in a grading process, so one slot suffices.
launch_settings: dict[str, Any] = {}


class WarmProvisioner(LocalProvisioner):  # type: ignore[misc]
    """Starts the kernel as a fork of the warm interpreter, not a new Python."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        warm: WarmInterpreter | None = launch_settings.get("warm")
        if warm is None:
            return await super().launch_kernel(cmd, **kwargs)
        module_index = cmd.index("-m") + 1
        with open("/dev/null", "rb") as devnull:
            self.process = warm.spawn(
                cwd=Path(kwargs["cwd"]),
                env=dict(kwargs["env"]),
                stdin=devnull.fileno(),
                stdout=launch_settings["stdout"],
                stderr=launch_settings["stderr"],
                rlimits=launch_settings.get("rlimits", {}),
                module=cmd[module_index],
                args=cmd[module_index + 1:],
                install="grader_kernel_site",
                path_prefix=launch_settings.get("path_prefix", []),
            )
        self.pid = self.process.pid
        self.pgid = None  # not ours to signal: the warm server does it
        return self.connection_info

    async def send_signal(self, signum: int) -> None:
        if isinstance(self.process, WarmProcess):
            self.process.send_signal(signum)
            return
        await super().send_signal(signum)


def write_kernel_spec(directory: Path) -> Path:
    """A kernel spec for this Python that launches through WarmProvisioner."""
    spec_dir = directory / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (grader)",
        "language": "python",
        "metadata": {"kernel_provisioner": {"provisioner_name": "grader-warm"}},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return directory


def kernel_interpreter(python_path: list[str], **options: Any) -> WarmInterpreter:
    # matplotlib fixes its backend when imported: the one ipykernel would set.
    return WarmInterpreter(
        python_path=python_path,
        preload=KERNEL_PRELOAD,
        name="kernel",
        backend="module://matplotlib_inline.backend_inline",
        **options,
    )
