"""The kernel's warm interpreter keeps botocore's parsed package models, and
only those: a model file a student puts on the data path is read each time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grader

KERNEL_SITE = Path(grader.__file__).parent / "_sitecustom" / "kernel"

PROBE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
import grader_kernel_warmup
import botocore.loaders

loader = botocore.loaders.Loader()
first = loader.load_service_model("sts", "service-2")
again = botocore.loaders.Loader().load_service_model("sts", "service-2")

custom = os.path.join(sys.argv[2], "custom.json")
with open(custom, "w") as f:
    json.dump({"version": 1}, f)
before = botocore.loaders.JSONFileLoader().load_file(custom[:-5])
with open(custom, "w") as f:
    json.dump({"version": 2}, f)
after = botocore.loaders.JSONFileLoader().load_file(custom[:-5])

print(json.dumps({
    "package_model_shared": first is again,
    "has_assume_role": "AssumeRole" in first["operations"],
    "custom_versions": [before["version"], after["version"]],
}))
"""


def test_package_models_are_parsed_once_and_other_files_each_time(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(KERNEL_SITE), str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    facts = json.loads(completed.stdout.strip().splitlines()[-1])
    assert facts["package_model_shared"] is True
    assert facts["has_assume_role"] is True
    assert facts["custom_versions"] == [1, 2]


JOB_FACTS = """
import json, sys, warnings
import matplotlib
print(json.dumps({
    "backend": matplotlib.get_backend().lower(),
    "plain_excepthook": sys.excepthook is sys.__excepthook__,
    "warning_filters": len(warnings.filters),
}))
"""


def test_a_script_forked_from_the_kernel_interpreter_starts_like_python(tmp_path):
    """Training jobs fork from the interpreter that imported the SDK and
    pyplot for kernels; the script still gets the job's matplotlib backend
    and Python's own excepthook and warning filters."""
    from grader.kernels import kernel_interpreter

    pristine = subprocess.run(
        [sys.executable, "-c", "import warnings; print(len(warnings.filters))"],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
    )
    script = tmp_path / "facts.py"
    script.write_text(JOB_FACTS)
    site = [str(KERNEL_SITE), str(KERNEL_SITE.parent / "common")]
    warm = kernel_interpreter(site, directory=tmp_path / "warm")
    try:
        with open(tmp_path / "out.txt", "wb") as out, open("/dev/null", "rb") as devnull:
            child = warm.spawn(
                cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"},
                stdin=devnull.fileno(), stdout=out.fileno(), stderr=out.fileno(),
                rlimits={}, script=str(script),
            )
            assert child.wait(timeout=120) == 0
    finally:
        warm.close()
    facts = json.loads((tmp_path / "out.txt").read_text().strip().splitlines()[-1])
    assert facts == {
        "backend": "agg",
        "plain_excepthook": True,
        "warning_filters": int(pristine.stdout),
    }
