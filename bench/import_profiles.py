"""Benchmark ``goalline import profiles``: generate a CSV, import it twice, report the figures.

Run from the repository root with the venv's python::

    python bench/import_profiles.py --rows 1000000 --database /tmp/import.db
    python bench/import_profiles.py --rows 100000 --database postgresql://user@host/db

The CSV goes to a temporary directory (``--csv`` keeps it elsewhere). The database must be
empty: database 1 and its fields are created here. Each import runs as a user runs it, in a
fresh ``goalline`` process under ``/usr/bin/time -v``, so peak RSS is the whole process's.
The second import of the same file must create nothing (docs/performance.md, issue 4).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

GOALLINE = [sys.executable, "-m", "goalline"]
FIRST = ["Ann", "Bob", "Cy", "Dana", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon"]
CITIES = ["Moscow", "Kazan", "Paris", "Berlin", "Tashkent", "Ryazan"]
HEADER = "email,phones,_fname,_lname,_city,CRM_ID,age,interests\n"


def generate(path: Path, rows: int) -> None:
    """``rows`` distinct people: every tenth has two phones, a third has two tags."""
    rnd = random.Random(42)
    with path.open("w", newline="") as out:
        out.write(HEADER)
        for i in range(rows):
            phones = f"+7900{i:07d}" + (f";+7901{i:07d}" if i % 10 == 0 else "")
            out.write(
                f"user{i}@example.com,{phones},{rnd.choice(FIRST)},Surname{i % 977},"
                f"{rnd.choice(CITIES)},CRM-{i},{18 + i % 60},"
                f"{'sport;news' if i % 3 == 0 else 'news'}\n"
            )


def goalline(*args: str, database: str) -> str:
    done = subprocess.run(
        [*GOALLINE, *args, "--database", database], capture_output=True, text=True, check=True
    )
    return done.stdout


def timed_import(csv: Path, database: str) -> dict[str, Any]:
    command = [*GOALLINE, "import", "profiles", str(csv), "--db", "1", "--quiet", "--json"]
    command += ["--database", database]
    if os.path.exists("/usr/bin/time"):
        command = ["/usr/bin/time", "-v", *command]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"import failed ({done.returncode}):\n{done.stderr}")
    summary: dict[str, Any] = json.loads(done.stdout)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    summary["peak_rss_mib"] = round(int(peak[1]) / 1024, 1) if peak else None
    return summary


def count_profiles(database: str) -> int:
    from goalline.storage.store import open_store

    store = open_store(database)
    try:
        return int(store.call(lambda tx: tx.scalar("SELECT COUNT(*) FROM profiles"), write=False))
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", required=True, help="an empty SQLite file or PostgreSQL URL")
    parser.add_argument("--csv", type=Path, help="where to write the CSV (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="goalline-import-") as tmp:
        csv = args.csv or Path(tmp) / f"profiles-{args.rows}.csv"
        generate(csv, args.rows)
        print(f"{csv}: {args.rows:,} rows, {csv.stat().st_size / 2**20:.1f} MiB")
        goalline("db", "create", "Shop", "--id", "1", database=args.database)
        for name, kind in (("CRM_ID", "string"), ("age", "int"), ("interests", "tags")):
            goalline("db", "field", "add", "1", name, "--type", kind, database=args.database)
        for run in ("first", "second"):
            result = timed_import(csv, args.database)
            result["profiles_after"] = count_profiles(args.database)
            print(f"{run} import: {json.dumps(result)}")


if __name__ == "__main__":
    main()
