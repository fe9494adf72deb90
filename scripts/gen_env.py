#!/usr/bin/env python3
"""Write the compose stack's .env from .env.example, with a fresh random secret for every `change-me`.

    python3 scripts/gen_env.py                  # ./.env next to docker-compose.yml
    python3 scripts/gen_env.py --output /tmp/x/.env

The file is created with mode 600 and never overwritten: an existing one is left as it is (delete
it to start again; the Postgres, MLflow and Airflow passwords live on in their volumes, see
docs/deploy.md). Only the standard library: it runs before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import string
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = "change-me"
# Letters and digits only: the secrets end up in database URLs, an ini file and shell commands.
ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 32


def fernet_key() -> str:
    """Airflow's Fernet key: 32 random bytes, url-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def new_secret(name: str) -> str:
    if name == "AIRFLOW_FERNET_KEY":
        return fernet_key()
    # Some consumers (MinIO's root user, `mc`) read a leading digit or dash badly: start with a letter.
    return secrets.choice(string.ascii_letters) + "".join(
        secrets.choice(ALPHABET) for _ in range(SECRET_LENGTH - 1)
    )


def render(example: str) -> tuple[str, int]:
    """The text of .env (`example` with each `NAME=change-me` given a new secret, all else kept)
    and how many secrets were generated."""
    out, generated = [], 0
    for line in example.splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and value.strip() == PLACEHOLDER:
            line = f"{name}={new_secret(name.strip())}"
            generated += 1
        out.append(line)
    return "\n".join(out) + "\n", generated


def write_new(path: Path, text: str) -> bool:
    """Create `path` with mode 600; False (and nothing written) when it already exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # O_CREAT's mode is narrowed by the umask, never widened; make it exact
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, default=REPO_ROOT / ".env.example")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / ".env")
    args = parser.parse_args(argv)
    text, generated = render(args.example.read_text(encoding="utf-8"))
    if not write_new(args.output, text):
        print(f"{args.output} exists; left unchanged (delete it to generate a new one)", file=sys.stderr)
        return 0
    print(f"wrote {args.output} (mode 600) with {generated} generated secrets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
