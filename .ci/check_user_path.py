"""After the README's commands ran in the clone: is the published table what the README promises?

Checks the table the default `make run` published under ./data (relative, as a user has it):
every ml-100k user has exactly 10 rows ranked 1..10, no movie the user rated, scores
non-increasing, and `_latest.json` points at it.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pandas as pd

latest_path = Path("data/recommendations/_latest.json")
latest = json.loads(latest_path.read_text())
table = pd.read_parquet(latest["path"])
assert Path(latest["path"]).resolve().is_relative_to(Path("data").resolve()), latest["path"]
assert latest["dataset"] == "ml-100k" and latest["top_n"] == 10, latest
assert len(table) == latest["rows"] == 943 * 10, (len(table), latest["rows"])
assert table["user_id"].nunique() == latest["users"] == 943
assert table.groupby("user_id")["rank"].apply(lambda r: sorted(r) == list(range(1, 11))).all()
assert (table.sort_values(["user_id", "rank"]).groupby("user_id")["score"].diff().dropna() <= 1e-6).all()
with zipfile.ZipFile("../shared/datasets/ml-100k.zip") as zf:
    name = next(n for n in zf.namelist() if n.endswith("u.data"))
    rated = pd.read_csv(io.BytesIO(zf.read(name)), sep="\t", names=["user_id", "movie_id", "rating", "ts"])
seen = table.merge(rated, on=["user_id", "movie_id"])
assert seen.empty, f"{len(seen)} published rows are movies the user already rated"
print(f"user path OK: {len(table):,} rows for {table.user_id.nunique()} users, run {latest['run_id']}")
