"""Run a student's notebook with nbclient, papermill-style parameters
injected, under a per-cell and a whole-notebook time limit.

A failing cell ends the run, as it would for a person pressing "Run all";
the executed notebook keeps every output up to that point.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from grader import kernels
from grader.results import CellFailure
from grader.sandbox import ResourceLimits, kill_group
from grader.warm import WarmProcess

log = logging.getLogger("grader")

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def inject_parameters(notebook: nbformat.NotebookNode, parameters: dict[str, Any]) -> int:
    """Insert a cell assigning ``parameters`` after the ``parameters``-tagged
    cell (or first, when there is none); return the new cell's index."""
    if not parameters:
        return -1
    lines = ["# Parameters injected by the grader"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = [INJECTED_TAG]
    position = 0
    for index, existing in enumerate(notebook.cells):
        if PARAMETERS_TAG in existing.get("metadata", {}).get("tags", []):
            position = index + 1
            break
    notebook.cells.insert(position, cell)
    return position


class _BoundedClient(NotebookClient):  # type: ignore[misc]
    """Keeps at most ``output_limit`` bytes of cell output; a notebook that
    goes on printing far past it is stopped as a flood."""

    def __init__(self, *args: Any, output_limit: int, on_flood: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._output_limit = output_limit
        self._output_bytes = 0
        self._truncated = False
        self._on_flood = on_flood

    def output(self, outs: list[Any], msg: dict[str, Any], display_id: Any,
               cell_index: int) -> Any:
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + len(str(content.get("data", "")))
        self._output_bytes += size
        if self._output_bytes <= self._output_limit:
            return super().output(outs, msg, display_id, cell_index)
        if not self._truncated:
            self._truncated = True
            outs.append(nbformat.v4.new_output(
                "stream", name="stderr",
                text=f"\n[grader: output past {self._output_limit:,} bytes not kept]\n",
            ))
        if self._output_bytes > 20 * self._output_limit:
            self._on_flood()
        return None


@dataclass
class NotebookRun:
    """How the notebook's execution went."""

    notebook: nbformat.NotebookNode
    completed: bool
    failure: CellFailure | None = None
    #: "cell_error", "cell_timeout", "notebook_timeout", "output_flood" or
    #: "kernel_died".
    failure_kind: str | None = None
    kernel_start_seconds: float = 0.0
    execution_seconds: float = 0.0
    cells_run: int = 0


def _error_output(cell: nbformat.NotebookNode) -> dict[str, Any] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output
    return None


def run_notebook(
    notebook: nbformat.NotebookNode,
    *,
    workdir: Path,
    env: dict[str, str],
    cell_timeout: int,
    notebook_timeout: int,
    startup_timeout: int,
    limits: ResourceLimits,
    output_limit: int = 5_000_000,
    warm: Any = None,
) -> NotebookRun:
    """Execute every code cell in order; stop at the first failure.

    With ``warm`` (a :class:`grader.warm.WarmInterpreter`) the kernel is a
    fork of it rather than a new Python; either way it is used once.
    """
    specs = kernels.write_kernel_spec(workdir.parent / "kernelspecs")
    # IPC sockets beside the working copy: no TCP port, nothing on the network.
    # The async manager matters: a blocking client would wait for kernel
    # output inside nbclient's event loop and never see a cell time out.
    manager = AsyncKernelManager(
        kernel_name=kernels.KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]),
        transport="ipc",
        ip=str(workdir.parent / "kernel"),
        connection_file=str(workdir.parent / "kernel-connection.json"),
    )
    # The kernel's own output (not its cells'): kept only when debugging.
    devnull = open(os.environ.get("GRADER_KERNEL_LOG") or os.devnull, "ab")
    kernels.launch_settings.clear()
    kernels.launch_settings.update(
        warm=warm,
        rlimits=limits.as_rlimits(),
        stdout=devnull.fileno(),
        stderr=devnull.fileno(),
        path_prefix=env.get("PYTHONPATH", "").split(os.pathsep),
    )
    flooded = threading.Event()

    def stop_flood() -> None:
        if not flooded.is_set():
            flooded.set()
            _kill_kernel(manager)

    client = _BoundedClient(
        notebook,
        output_limit=output_limit,
        on_flood=stop_flood,
        km=manager,
        timeout=cell_timeout,
        startup_timeout=startup_timeout,
        allow_errors=False,
        record_timing=True,
        # The kernel is used once: kill it rather than wait for a clean exit.
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(workdir)}},
    )
    run = NotebookRun(notebook=notebook, completed=False)
    started = time.monotonic()
    current = {"index": -1}
    expired = threading.Event()

    def stop_kernel() -> None:
        expired.set()
        _kill_kernel(manager)

    watchdog = threading.Timer(notebook_timeout, stop_kernel)
    try:
        with client.setup_kernel(env=env, cwd=str(workdir), preexec_fn=limits.preexec()):
            run.kernel_start_seconds = time.monotonic() - started
            watchdog.start()
            for index, cell in enumerate(notebook.cells):
                current["index"] = index
                client.execute_cell(cell, index)
                if cell.cell_type == "code":
                    run.cells_run += 1
            run.completed = True
    except CellTimeoutError:
        run.failure_kind = "cell_timeout"
        run.failure = _failure(notebook, current["index"], "CellTimeoutError",
                               f"the cell ran longer than {cell_timeout} s")
    except DeadKernelError:
        if flooded.is_set():
            run.failure_kind = "output_flood"
            reason = (f"the notebook printed more than {20 * output_limit:,} bytes and "
                      "was stopped")
        elif expired.is_set():
            run.failure_kind = "notebook_timeout"
            reason = f"the notebook ran longer than {notebook_timeout} s and was stopped"
        else:
            run.failure_kind = "kernel_died"
            reason = "the kernel died (out of memory, a crash, or the process was killed)"
        run.failure = _failure(notebook, current["index"], "DeadKernelError", reason)
    except CellExecutionError as exc:
        run.failure_kind = "cell_error"
        index = current["index"]
        output = _error_output(notebook.cells[index]) if index >= 0 else None
        run.failure = CellFailure(
            index=index,
            source=notebook.cells[index].source if index >= 0 else "",
            error_name=(output or {}).get("ename", exc.ename),
            error_value=(output or {}).get("evalue", exc.evalue),
            traceback="\n".join((output or {}).get("traceback", [])) or str(exc),
        )
    except RuntimeError as exc:
        # nbclient raises RuntimeError when the kernel does not start in time.
        run.failure_kind = "kernel_died"
        run.failure = _failure(notebook, -1, type(exc).__name__, f"the kernel did not start: {exc}")
    finally:
        watchdog.cancel()
        _kill_kernel(manager)
        run.execution_seconds = time.monotonic() - started - run.kernel_start_seconds
        kernels.launch_settings.clear()
        devnull.close()
    return run


def _kill_kernel(manager: AsyncKernelManager) -> None:
    """Kill the kernel's whole process group, whichever way it was started."""
    provisioner = manager.provisioner
    process = getattr(provisioner, "process", None) if provisioner else None
    if isinstance(process, WarmProcess):
        process.kill()  # a warm fork: only its server can signal it
    elif getattr(provisioner, "pid", None):
        kill_group(provisioner.pid)


def _failure(notebook: nbformat.NotebookNode, index: int, name: str, value: str) -> CellFailure:
    source = notebook.cells[index].source if 0 <= index < len(notebook.cells) else ""
    return CellFailure(index=index, source=source, error_name=name, error_value=value, traceback="")
