"""Canonical frame schemas shared by every reader and stage."""

from __future__ import annotations

import pyarrow as pa

RATINGS_DTYPES: dict[str, str] = {
    "user_id": "int64",
    "movie_id": "int64",
    "rating": "float32",
    "timestamp": "int64",
}
MOVIES_COLUMNS: tuple[str, ...] = ("movie_id", "title", "year", "genres")

RECOMMENDATIONS_SCHEMA_VERSION = "1"
RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("rank", pa.int16(), nullable=False),
        pa.field("movie_id", pa.int64(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("predicted_rating", pa.float32(), nullable=True),
        pa.field("model", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("generated_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ],
    metadata={"recsys.schema_version": RECOMMENDATIONS_SCHEMA_VERSION},
)
