"""Shared fixtures: tiny IDX datasets written on the fly, and a scratch copy of the project."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import http.server
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from scalelab.data import sources

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT.parent / "shared/data/fsdd/recordings"  # the local copy of the spoken digits (CI has it)
SHAKESPEARE = ROOT.parent / "shared/data/tinyshakespeare/input.txt"  # Tiny Shakespeare (CI has it)
BIN = Path(sys.executable).parent  # the venv's bin: python, dvc, mlflow
PROJECT_FILES = ("conf", "pipelines", "src", "dvc.yaml", ".gitignore")


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX (magic 0,0,0x08,ndim; big-endian dims; data)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool = True) -> Path:
    """Write `array` as an IDX file (gzipped if `gz`) at `path` and return the path."""
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def require_dataset(marker: Path, how: str) -> None:
    """Skip unless `marker` exists; in CI (SCALELAB_REQUIRE_DATASETS=1) fail instead: never silent."""
    if not marker.exists():
        if os.environ.get("SCALELAB_REQUIRE_DATASETS") == "1":
            pytest.fail(f"{marker} is missing: {how}")
        pytest.skip(f"{marker} is missing ({how})")


@pytest.fixture
def fsdd() -> Path:
    """The folder of the 3,000 FSDD WAVs."""
    require_dataset(FSDD, "the FSDD copy lives in ../shared/data/fsdd beside the checkout")
    return FSDD


@pytest.fixture
def shakespeare() -> Path:
    """The local copy of Tiny Shakespeare's input.txt."""
    require_dataset(SHAKESPEARE, "the Tiny Shakespeare copy lives in ../shared/data/tinyshakespeare")
    return SHAKESPEARE


def speech_subset(fsdd: Path, folder: Path) -> Path:
    """120 recordings: 2 speakers x 10 digits x takes 0, 1 (test) and 5-8 (train and validation)."""
    folder.mkdir()
    for digit in range(10):
        for speaker in ("jackson", "theo"):
            for take in (0, 1, 5, 6, 7, 8):
                shutil.copy2(fsdd / f"{digit}_{speaker}_{take}.wav", folder)
    return folder


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A real HTTP server on loopback serving a folder; yields (base URL, folder, request log)."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            requests.append(self.path)

    handler = functools.partial(Handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder, requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tiny_idx(tmp_path: Path) -> Callable[..., tuple[Path, sources.IdxSpec]]:
    """Make a folder with a tiny MNIST-style dataset (40 train / 20 test 6x6 images) and its spec."""

    def make(folder: Path | None = None, seed: int = 0) -> tuple[Path, sources.IdxSpec]:
        folder = folder or tmp_path / "idx"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        arrays = {
            "train-images-idx3-ubyte": rng.integers(0, 256, (40, 6, 6), dtype=np.uint8),
            "train-labels-idx1-ubyte": np.tile(np.arange(10, dtype=np.uint8), 4),
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (20, 6, 6), dtype=np.uint8),
            "t10k-labels-idx1-ubyte": np.tile(np.arange(10, dtype=np.uint8), 2),
        }
        digests = {}
        for stem, array in arrays.items():
            write_idx(folder / f"{stem}.gz", array)
            digests[stem] = sources.idx.sha256(idx_bytes(array))
        spec = sources.IdxSpec(
            sha256=digests, class_names=sources.DIGIT_NAMES, counts=(40, 20), image_shape=(6, 6)
        )
        return folder, spec

    return make


def run_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: the venv first on PATH, no inherited MLflow URI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """Run `cmd` in `cwd` with `run_env`, capturing text output; fail with it on error."""
    result = subprocess.run(cmd, cwd=cwd, env=run_env(**env), capture_output=True, text=True)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def start_queue(project: Path, workers: int) -> None:
    """`dvc queue start -j workers`, returning at once.

    Its workers are daemons that inherit its stdout and stderr: captured, they would hold the
    pipes open and `run` would wait for the whole queue to finish.
    """
    cmd = ["dvc", "queue", "start", "-j", str(workers)]
    subprocess.run(
        cmd, cwd=project, env=run_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )


def wait_until(event: Callable[[], T | None], what: str, timeout: float = 120, every: float = 0.2) -> T:
    """Poll `event()` until it returns something truthy, and return that; fail the test naming
    `what` if it has not happened within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := event()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(every)
    return found


def wait_for_http(
    server: subprocess.Popen, url: str, what: str, timeout: float = 120, log: Path | None = None
) -> None:
    """Wait until `url` answers; fail naming `what` (and showing `log`) if `server` exits first
    or `url` stays silent for `timeout` seconds."""

    def answers() -> bool:
        if server.poll() is not None:
            pytest.fail(f"{what} exited before answering" + (f":\n{log.read_text()}" if log else ""))
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            return False

    wait_until(answers, f"{what} answering at {url}", timeout=timeout, every=0.3)


def run_queue(project: Path, workers: int, timeout: float = 600) -> str:
    """`dvc queue start -j workers`, then wait until nothing is queued or running; the final status."""
    start_queue(project, workers)

    def finished() -> str | None:
        status = run(["dvc", "queue", "status"], project).stdout
        return None if any(word in status for word in ("Queued", "Running")) else status

    return wait_until(finished, "the DVC queue finishing", timeout, every=3)


def start(cmd: list[str], cwd: Path, **popen: object) -> subprocess.Popen:
    """Start `cmd` in the background with `run_env`, stdout and stderr merged as text."""
    return subprocess.Popen(
        cmd, cwd=cwd, env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )


DEFAULT_STUDY = "  - experiment: mnist1d_mlp"


def make_project(repo: Path, vcs: bool = True) -> Path:
    """Make `repo` a scratch git + DVC repo holding a copy of the project's pipeline (not its results);
    with `vcs=False`, a plain folder (the stages run without git and DVC).

    Its default study is the digits smoke study, the quickest to train: tests that need another
    name it, and tests/test_config.py checks the real default.
    """
    repo.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, repo / name)
    config = repo / "conf/config.yaml"
    text = config.read_text()
    assert DEFAULT_STUDY in text, "conf/config.yaml no longer names the default study as tests expect"
    config.write_text(text.replace(DEFAULT_STUDY, "  - experiment: digits_mlp"))
    if not vcs:
        return repo
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["git", "config", "user.name", "scalelab tests"], repo)  # dvc exp commits need one
    run(["git", "config", "user.email", "tests@scalelab.invalid"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "config", "core.analytics", "false"], repo)
    run(["dvc", "config", "hydra.enabled", "true"], repo)
    return repo


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared copy of scikit-learn's digits (the embedded smoke-study dataset), once per module."""
    from scalelab.config import DataConfig
    from scalelab.data.prepare import prepare

    root = tmp_path_factory.mktemp("digits")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return root / prepare(DataConfig(name="digits", test_fraction=0.2))


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared made-up corpus (data=text, 16-character windows, 2,170 windows to train on),
    once per module: quick enough for language-model training tests."""
    from scalelab.config import DataConfig
    from scalelab.data.prepare import prepare

    root = tmp_path_factory.mktemp("text")
    rng = np.random.default_rng(0)
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis", "nobler"]
    corpus = root / "corpus.txt"
    lines = (" ".join(rng.choice(words, 10)) for _ in range(800))
    corpus.write_text("\n".join(lines) + "\n")
    config = DataConfig(_target_="scalelab.data.text.text_file", name="text", root=str(corpus), context=16)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return root / prepare(dataclasses.replace(config, val_fraction=0.05, test_fraction=0.05))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch git + DVC repo holding a copy of the project's pipeline (not its results)."""
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def prepared_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch project whose digits are prepared (`python -m pipelines.prepare`): copy, never use."""
    repo = make_project(tmp_path_factory.mktemp("prepared") / "project")
    run(["python", "-m", "pipelines.prepare"], repo)
    return repo


def copy_project(template: Path, dest: Path) -> Path:
    """A copy of the scratch project `template`, git and DVC repos included."""
    return Path(shutil.copytree(template, dest, symlinks=True))


@pytest.fixture
def prepared_project(prepared_template: Path, tmp_path: Path) -> Path:
    """`project`, with the digits smoke study's data already prepared."""
    return copy_project(prepared_template, tmp_path / "project")


def live_store(project: Path):
    """A client on `project`'s SQLite store while a child process may be creating it.

    Two processes migrating a fresh store at once corrupt it (`_alembic_tmp_experiments already
    exists`): open it through scalelab's creation lock, as the child does.
    """
    from mlflow import MlflowClient

    from scalelab.tracking.store import ensure_store

    uri = f"sqlite:///{project}/mlflow.db"
    ensure_store(uri)
    return MlflowClient(uri)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    """Nothing answers on loopback port `port`."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def alive(pid: int) -> bool:
    """Running, and not a zombie (a container's init may never reap an orphan)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real `mlflow server` on loopback (SQLite store, proxied artifacts); yields its URL.

    Started in its own process group, without the job-execution workers (MLflow 3.17 starts
    ~8 of them by default, ~900 MB, for features the tests do not use), and
    stopped by killing that group.
    """
    store = tmp_path / "server"
    store.mkdir()
    port = free_port()
    cmd = [
        "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{store}/mlflow.db",
        "--artifacts-destination", str(store / "artifacts"),
    ]  # fmt: skip
    env = run_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    log = (store / "server.log").open("w")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(server, f"{url}/health", "mlflow server", timeout=90, log=store / "server.log")
        yield url
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        log.close()
