"""`grader pack`: what grade accepts is exactly what pack produces, and a
folder grade would refuse is refused with the same one-line message."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import SUBMISSIONS
from grader.batch import unpack_zip
from grader.errors import GraderError, SubmissionError
from grader.pack import MAX_PACKED_FILE_BYTES, pack
from grader.submission import open_submission

LOOKED = "(looked in the folder and one level down)"

#: What each bundled example packs to; a new example must be added here.
PACKED = {
    "channel_mismatch": ["assignment2.ipynb", "train.py"],
    "generic_estimator": ["assignment2.ipynb", "train.py"],
    "hyperparameter_names": ["assignment2.ipynb", "train.py"],
    "model_outside_model_dir": ["assignment2.ipynb", "train.py"],
    "no_metric_definitions": ["assignment2.ipynb", "train.py"],
    "pytorch_estimator": ["assignment2.ipynb", "src/requirements.txt", "src/train.py"],
    "reference": ["assignment2.ipynb", "train.py"],
}


def _add_junk(folder: Path) -> None:
    """What a student's working folder collects besides their work."""
    (folder / "data").mkdir()
    (folder / "data" / "train.csv").write_text("1,0.5,0.25\n0,0.1,0.2\n")
    (folder / "data" / "validation.csv").write_text("1,0.5,0.25\n")
    (folder / "data" / "train.py").write_text("# a stray copy, never the script\n")
    checkpoints = folder / ".ipynb_checkpoints"
    checkpoints.mkdir()
    shutil.copyfile(
        folder / "assignment2.ipynb", checkpoints / "assignment2-checkpoint.ipynb"
    )
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\x00" * 64)
    (folder / "model.tar.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 64)
    (folder / "xgboost-model").write_bytes(b"binary booster")
    (folder / "scores.csv").write_text("round,auc\n1,0.9\n")
    (folder / ".DS_Store").write_bytes(b"\x00")
    (folder / ".grader-report").mkdir()
    (folder / ".grader-report" / "results.json").write_text("{}")


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(SUBMISSIONS / name, target)
    return target


def _zip_names(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as bundle:
        return sorted(bundle.namelist())


def _files_under(root: Path) -> list[str]:
    files = (p for p in root.rglob("*") if p.is_file())
    return sorted(p.relative_to(root).as_posix() for p in files)


def test_every_example_is_listed():
    examples = sorted(p.name for p in SUBMISSIONS.iterdir() if p.is_dir())
    assert examples == sorted(PACKED)


@pytest.mark.parametrize("name", sorted(PACKED))
def test_packed_example_is_what_grade_accepts(name, tmp_path, rubric):
    folder = _copy(name, tmp_path / "work")
    _add_junk(folder)

    packed = pack(folder, rubric)

    assert packed.archive == tmp_path / "work" / f"{name}.zip"
    assert packed.files == PACKED[name]
    assert _zip_names(packed.archive) == PACKED[name]
    unpacked = unpack_zip(packed.archive, tmp_path / "unpacked")
    assert _files_under(unpacked) == PACKED[name]
    submission = open_submission(unpacked, rubric)
    assert submission.script_path.relative_to(unpacked).as_posix() == PACKED[name][-1]
    for relative in PACKED[name]:
        assert (unpacked / relative).read_bytes() == (folder / relative).read_bytes()

    left_out = dict(packed.left_out)
    assert left_out["data/"].startswith("data")
    assert left_out["model.tar.gz"].startswith("model file")
    assert left_out["xgboost-model"].startswith("model file")
    assert left_out["scores.csv"].startswith("data")
    assert left_out[".ipynb_checkpoints/"] == "notebook checkpoints"
    assert left_out["__pycache__/"] == "Python cache"
    assert left_out[".grader-report/"] == "grader check report"
    assert left_out["expected.yaml"] == "not read by the grader"


def test_source_dir_brings_its_python_files(tmp_path, rubric):
    folder = _copy("pytorch_estimator", tmp_path)
    source = folder / "src"
    (source / "helpers").mkdir()
    (source / "helpers" / "__init__.py").write_text("")
    (source / "helpers" / "features.py").write_text("SCALE = 2\n")
    (source / "helpers" / "__pycache__").mkdir()
    (source / "helpers" / "__pycache__" / "features.cpython-311.pyc").write_bytes(b"\0")
    (source / "vendored.py").write_bytes(b"#" * (MAX_PACKED_FILE_BYTES + 1))
    (source / "model").mkdir()
    (source / "model" / "xgboost-model.json").write_text("{}")
    (source / "notes.txt").write_text("try eta 0.3")
    (source / ".env").write_text("SECRET=1")
    (folder / "requirements.txt").write_text("xgboost\n")
    (folder / "scratch").mkdir()
    (folder / "scratch" / "plot.py").write_text("import matplotlib\n")

    packed = pack(folder, rubric, out=tmp_path / "out" / "handin.zip")

    assert packed.files == [
        "assignment2.ipynb",
        "requirements.txt",
        "src/helpers/__init__.py",
        "src/helpers/features.py",
        "src/requirements.txt",
        "src/train.py",
    ]
    assert _zip_names(tmp_path / "out" / "handin.zip") == packed.files
    left_out = dict(packed.left_out)
    assert left_out["src/vendored.py"] == "larger than 5 MB"
    assert left_out["src/model/xgboost-model.json"].startswith("model file")
    assert left_out["src/helpers/__pycache__/"] == "Python cache"
    assert left_out["src/.env"] == "hidden file"
    assert left_out["src/notes.txt"] == "not read by the grader"
    assert left_out["scratch/plot.py"] == "not read by the grader"


def test_packing_twice_gives_the_same_zip(tmp_path, rubric):
    folder = _copy("reference", tmp_path)
    first = pack(folder, rubric, out=tmp_path / "one.zip").archive.read_bytes()
    (folder / "train.py").touch()
    second = pack(folder, rubric, out=tmp_path / "two.zip").archive.read_bytes()
    assert first == second


def test_large_notebook_is_packed_with_a_warning(tmp_path, rubric):
    folder = _copy("reference", tmp_path)
    notebook = json.loads((folder / "assignment2.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    cell["outputs"] = [{
        "output_type": "stream", "name": "stdout", "text": "x" * MAX_PACKED_FILE_BYTES,
    }]
    (folder / "assignment2.ipynb").write_text(json.dumps(notebook))

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("grader")
    logger.addHandler(handler)
    try:
        packed = pack(folder, rubric)
    finally:
        logger.removeHandler(handler)

    assert packed.files == ["assignment2.ipynb", "train.py"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("assignment2.ipynb is 5.0 MB; it is packed as is")


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_notebook", "{folder} has no notebook matching '*.ipynb'"),
        ("notebook_only_in_checkpoints",
         "{folder} has no notebook matching '*.ipynb'"),
        ("several_notebooks",
         "{folder} has several notebooks (assignment2.ipynb, draft.ipynb); "
         "keep exactly one"),
        ("not_json", "assignment2.ipynb is not a valid Jupyter notebook ("),
        ("no_script", "{folder} has no train.py " + LOOKED),
        ("script_only_in_data", "{folder} has no train.py " + LOOKED),
    ],
)
def test_refusals_name_the_problem(breakage, message, tmp_path, rubric):
    folder = _copy("reference", tmp_path)
    _add_junk(folder)
    notebook = folder / "assignment2.ipynb"
    if breakage == "no_notebook":
        notebook.unlink()
    elif breakage == "notebook_only_in_checkpoints":
        notebook.unlink()
        assert any((folder / ".ipynb_checkpoints").glob("*.ipynb"))
    elif breakage == "several_notebooks":
        shutil.copyfile(notebook, folder / "draft.ipynb")
    elif breakage == "not_json":
        notebook.write_text("{this is not json")
    elif breakage == "no_script":
        (folder / "train.py").unlink()
    else:
        (folder / "train.py").rename(folder / "data" / "train.py")

    with pytest.raises(SubmissionError) as raised:
        pack(folder, rubric)

    text = str(raised.value)
    assert "\n" not in text and "grader-pack" not in text
    assert text.startswith(message.format(folder=folder))
    assert not (tmp_path / "reference.zip").exists()


def test_refuses_what_is_not_a_folder_or_not_a_zip(tmp_path, rubric):
    with pytest.raises(SubmissionError, match="is not a folder"):
        pack(tmp_path / "absent", rubric)
    folder = _copy("reference", tmp_path)
    with pytest.raises(GraderError, match=r"^handin.tar: the packed submission"):
        pack(folder, rubric, out=tmp_path / "handin.tar")


def _grader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def test_cli_packs_here_and_prints_the_files(tmp_path):
    folder = _copy("pytorch_estimator", tmp_path)
    _add_junk(folder)

    completed = _grader("pack", cwd=folder)

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[:4] == [
        f"Packed 3 files into {tmp_path / 'pytorch_estimator.zip'}",
        "  assignment2.ipynb",
        "  src/requirements.txt",
        "  src/train.py",
    ]
    assert lines[4] == "Left out:"
    assert "  data/ (data; the grader brings its own)" in lines


def test_cli_refusal_is_one_line_and_exit_2(tmp_path):
    folder = _copy("reference", tmp_path)
    (folder / "train.py").unlink()

    out = tmp_path / "a.zip"
    completed = _grader("pack", str(folder), "--out", str(out), cwd=tmp_path)

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.strip() == (
        f"grader: error: {folder} has no train.py {LOOKED}"
    )
    assert not out.exists()
