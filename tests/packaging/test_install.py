"""A new user's install, as the README gives it: the wheel built from this checkout, with every
extra and ``opentelemetry-distro``, from PyPI into a new virtual environment of Python 3.11 with
the pip that Python ships (``ensurepip``: 23.2.1), not upgraded. Then a small real check there.

Python 3.11 is the oldest Python kafkascope supports, and its pip the oldest resolver a new
user meets: with a dependency on contrib's kafka-python instrumentation (which pins
``opentelemetry-instrumentation`` to its own release, one behind the rest) this install ended
in ``ResolutionImpossible`` after 32 s. pip's own cache keeps a second run short.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Venv:
    """The new virtual environment, kafkascope installed."""

    bin: Path
    env: dict[str, str]

    def run(self, program: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run one of the environment's programs (``env``: more variables); its output."""
        return subprocess.run(
            [str(self.bin / program), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def python(self, code: str) -> str:
        """What ``code`` prints, run by the environment's Python (which must succeed)."""
        done = self.run("python", "-c", code)
        assert done.returncode == 0, done.stderr
        return done.stdout


def _python311() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if found is None:
        pytest.skip("needs Python 3.11 (python3.11 on PATH), the oldest Python kafkascope supports")
    return found


def _extras(wheel: Path) -> list[str]:
    """Every extra the wheel declares."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode())
    return sorted(metadata.get_all("Provides-Extra") or [])


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """Build the wheel, make the environment and install into it with its own pip."""
    root = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root), str(REPO)],
        env=env,
        check=True,
        timeout=300,
    )
    (wheel,) = root.glob("kafkascope-*.whl")
    subprocess.run([_python311(), "-m", "venv", str(root / "venv")], env=env, check=True)
    made = Venv(root / "venv" / "bin", env)
    bundled = made.python("import ensurepip; print(ensurepip.version())").strip()
    assert made.python("import pip; print(pip.__version__)").strip() == bundled
    wanted = f"kafkascope[{','.join(_extras(wheel))}] @ {wheel.as_uri()}"
    done = subprocess.run(
        [str(made.bin / "python"), "-m", "pip", "install", wanted, "opentelemetry-distro"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"pip {bundled}: {wanted}\n{done.stdout[-4000:]}{done.stderr}"
    return made


def test_every_extra_is_in_the_install(venv: Venv):
    assert venv.python("import aiokafka, confluent_kafka, kafka, mypy, pytest") == ""


def test_the_installed_requirements_are_consistent(venv: Venv):
    done = venv.run("python", "-m", "pip", "check")
    assert done.returncode == 0, done.stdout


def test_kafkascope_imports_from_the_installed_wheel(venv: Venv):
    found = venv.python("import kafkascope; print(kafkascope.__file__)").strip()
    assert Path(found).is_relative_to(venv.bin.parent)


def test_the_command_prints_its_help(venv: Venv):
    done = venv.run("kafkascope", "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: kafkascope ")


def test_every_entry_point_is_registered_and_loads(venv: Venv):
    code = (
        "import json\n"
        "from importlib.metadata import entry_points\n"
        "found = {}\n"
        "for group in ('console_scripts', 'opentelemetry_instrumentor',\n"
        "              'opentelemetry_post_instrument', 'pytest11'):\n"
        "    for ep in entry_points(group=group):\n"
        "        if ep.value.startswith('kafkascope'):\n"
        "            ep.load()\n"
        "            found[group] = f'{ep.name} = {ep.value}'\n"
        "print(json.dumps(found))\n"
    )
    assert json.loads(venv.python(code)) == {
        "console_scripts": "kafkascope = kafkascope.cli:main",
        "opentelemetry_instrumentor": "kafkascope = kafkascope.instrumentor:KafkascopeInstrumentor",
        "opentelemetry_post_instrument": (
            "kafkascope = kafkascope.instrumentor:take_over_from_contrib"
        ),
        "pytest11": "kafkascope = kafkascope.testing",
    }


def test_opentelemetry_instrument_turns_kafkascope_on(venv: Venv):
    done = venv.run(
        "opentelemetry-instrument",
        str(venv.bin / "python"),
        "-c",
        "from kafkascope.instrumentor import KafkascopeInstrumentor as K\n"
        "print(K().is_instrumented_by_opentelemetry)",
        OTEL_TRACES_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    assert (done.returncode, done.stdout) == (0, "True\n"), done.stderr


def test_contribs_kafka_instrumentations_are_not_installed(venv: Venv):
    # each would double the spans of kafkascope's zero-code instrumentation (taken over if
    # the user installs one; none comes with kafkascope)
    code = (
        "import importlib.util as u\n"
        "print([m for m in ('kafka', 'aiokafka', 'confluent_kafka')\n"
        "       if u.find_spec('opentelemetry.instrumentation.' + m)])"
    )
    assert venv.python(code) == "[]\n"
