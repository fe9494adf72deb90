"""Every HEARA_* environment variable is in one table (training/env.py VARIABLES), the README lists exactly
that table, and only training/env.py reads them from the environment."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from training import env
from training.paths import PROJECT_ROOT

FOLDERS = ("training", "serving", "dags", "scripts")
OWNER = PROJECT_ROOT / "training" / "env.py"
NAME = re.compile(r"\bHEARA_[A-Z0-9_]*[A-Z0-9]\b")


def _files(suffixes: tuple[str, ...] = (".py", ".sh")) -> list[Path]:
    return sorted(
        p
        for folder in FOLDERS
        for p in (PROJECT_ROOT / folder).rglob("*")
        if p.suffix in suffixes and p.is_file() and p != OWNER and "__pycache__" not in p.parts
    )


def test_every_heara_variable_named_in_the_code_is_in_the_table():
    named = {
        (m.group(0), str(p.relative_to(PROJECT_ROOT)))
        for p in _files()
        for m in NAME.finditer(p.read_text(encoding="utf-8"))
    }
    missing = sorted(f"{name} ({where})" for name, where in named if name not in env.VARIABLES)
    assert not missing, "add these to training/env.py VARIABLES (and the README):\n" + "\n".join(missing)
    assert {"HEARA_HOME", "HEARA_API_KEY", "HEARA_STACK_PG", "HEARA_DEMO_PORT"} <= {n for n, _ in named}


def _readme_table() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Environment variables\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def test_the_readme_lists_exactly_the_table():
    assert _readme_table() == env.markdown_table().splitlines(), (
        "README.md's 'Environment variables' table differs from training/env.py VARIABLES; "
        "regenerate it with\n"
        '  python -c "from training.env import markdown_table; print(markdown_table())"'
    )
    listed = [re.match(r"\| `(HEARA_\w+)` \|", row).group(1) for row in _readme_table()[2:]]
    assert listed == list(env.VARIABLES)


def reads_heara_environ(source: str) -> list[tuple[int, str]]:
    """(line, code) where `source` reads a HEARA_* variable from the process environment: os.environ[...],
    os.environ.get(...), os.getenv(...), os.environ.pop/setdefault(...) or `"HEARA_X" in os.environ`."""

    def names_heara(node: ast.AST) -> bool:
        return any(
            isinstance(n, ast.Constant) and isinstance(n.value, str) and NAME.fullmatch(n.value)
            for n in ast.walk(node)
        )

    def is_environ(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            or isinstance(node, ast.Name)
            and node.id == "environ"
        )

    found = []
    for node in ast.walk(ast.parse(source)):
        hit = False
        if isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(node.ctx, ast.Load):
            hit = names_heara(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            reader = node.func.attr in {"get", "pop", "setdefault"} and is_environ(node.func.value)
            reader |= node.func.attr == "getenv"
            hit = reader and bool(node.args) and names_heara(node.args[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getenv":
            hit = bool(node.args) and names_heara(node.args[0])
        elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators):
            hit = names_heara(node.left)
        if hit:
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_only_env_py_reads_heara_variables_from_the_environment():
    offenders = [
        f"{p.relative_to(PROJECT_ROOT)}:{line}: {code}"
        for p in _files((".py",))
        for line, code in reads_heara_environ(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, "read HEARA_* through training/env.py:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "code",
    [
        'os.environ["HEARA_HOME"]',
        'os.environ.get("HEARA_X", "")',
        'os.getenv("HEARA_X")',
        "getenv('HEARA_X')",
        '"HEARA_X" in os.environ',
        'environ.get("HEARA_X")',
        'os.environ.pop("HEARA_X", None)',
    ],
)
def test_the_scan_catches_each_way_of_reading(code):
    assert reads_heara_environ(code)


def test_the_scan_lets_writes_and_other_variables_through():
    # Setting a variable for a child process is not reading it.
    assert not reads_heara_environ(
        'env = {**os.environ, "HEARA_HOME": h}; os.environ.get("MLFLOW_X"); os.environ["HEARA_HOME"] = h'
    )


def test_an_unlisted_variable_cannot_be_read():
    with pytest.raises(KeyError, match="VARIABLES"):
        env._get("HEARA_NOT_A_VARIABLE")


# --- secrets: a value or a file ---------------------------------------------------------------------


@pytest.fixture
def no_secrets(monkeypatch):
    for name in ("HEARA_API_KEY", "HEARA_API_KEY_FILE", "HEARA_METRICS_TOKEN", "HEARA_METRICS_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_the_key_comes_from_the_variable_or_the_file(no_secrets, tmp_path):
    assert env.api_key() is None and env.metrics_token() is None
    no_secrets.setenv("HEARA_API_KEY", " s3cret ")
    assert env.api_key() == "s3cret"
    no_secrets.delenv("HEARA_API_KEY")
    no_secrets.setenv("HEARA_API_KEY_FILE", str(_secret_file(tmp_path / "key", "from-file\n")))
    no_secrets.setenv("HEARA_METRICS_TOKEN_FILE", str(_secret_file(tmp_path / "token", "scrape\n", 0o400)))
    assert env.api_key() == "from-file" and env.metrics_token() == "scrape"
    assert env.inline_secrets() == {}
    no_secrets.setenv("HEARA_METRICS_TOKEN_FILE", "")
    no_secrets.setenv("HEARA_METRICS_TOKEN", "t")
    assert env.inline_secrets() == {"HEARA_METRICS_TOKEN": "t"}


@pytest.mark.parametrize(
    ("text", "mode", "words"),
    [
        ("k\n", 0o640, "group or others (mode 640): `chmod 600"),
        ("k\n", 0o604, "group or others (mode 604)"),
        ("\n", 0o600, "is empty"),
        (None, 0o600, "no such file"),
    ],
)
def test_a_key_file_that_others_can_read_or_that_holds_nothing_is_refused(
    no_secrets, tmp_path, text, mode, words
):
    from training.errors import ConfigError

    path = tmp_path / "key"
    if text is not None:
        _secret_file(path, text, mode)
    no_secrets.setenv("HEARA_API_KEY_FILE", str(path))
    with pytest.raises(ConfigError, match=re.escape(f"HEARA_API_KEY_FILE={path}") + ".*" + re.escape(words)):
        env.api_key()


def test_a_directory_is_not_a_key_file(no_secrets, tmp_path):
    from training.errors import ConfigError

    no_secrets.setenv("HEARA_API_KEY_FILE", str(tmp_path))
    with pytest.raises(ConfigError, match="not a regular file"):
        env.api_key()


def test_a_key_given_both_ways_is_refused(no_secrets, tmp_path):
    from training.errors import ConfigError

    no_secrets.setenv("HEARA_API_KEY", "a")
    no_secrets.setenv("HEARA_API_KEY_FILE", str(_secret_file(tmp_path / "key", "b")))
    with pytest.raises(ConfigError, match="both HEARA_API_KEY and HEARA_API_KEY_FILE are set"):
        env.api_key()
    with pytest.raises(ConfigError, match="both"):
        env.inline_secrets()


def test_the_supervisor_pid(monkeypatch):
    monkeypatch.delenv("HEARA_SUPERVISOR_PID", raising=False)
    assert env.supervisor_pid() is None
    monkeypatch.setenv("HEARA_SUPERVISOR_PID", "4242")
    assert env.supervisor_pid() == 4242
