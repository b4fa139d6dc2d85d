"""An application's ratings log as a data source, besides MovieLens release archives.

A log is a folder ``DIR`` (``--dataset log --source DIR``)::

    DIR/ratings/dt=2024-05-01/part-0.parquet   ratings of that UTC day (or *.csv; dt= folders optional)
    DIR/movies.parquet                         or movies.csv: movie_id, title[, genres][, year]
    DIR/dataset.json                           {"name": "my-app", "rating_values": [1, 2, 3, 4, 5]}

Ratings files hold ``user_id, movie_id, rating, timestamp`` (Unix seconds). A night with a
cutoff reads only what it needs: ``dt=`` partitions whose day starts at or after the cutoff are
never opened, the other files are read and filtered to ``timestamp < cutoff``. Nothing in
``DIR`` is ever modified or deleted.

Faults, and why they are handled this way:

* Row faults (a value that is missing or not a number, a line with too few or too many fields,
  a timestamp outside its ``dt=`` partition's day) go to ``Release.malformed`` with the file's
  path relative to ``DIR``, the line (CSV; the header is line 1) or row (Parquet, from 1), a
  reason and the row's text. The data gate adds them to the rejects table and counts them
  against ``--reject-threshold``, as it does for a release's unreadable lines: a few bad rows
  are noise, many stop the run. A bad row after the cutoff is not reported (tonight never uses it).
* A file that cannot be read at all (not Parquet, a CSV without its header or a canonical
  column, a column of a type with no numbers) raises :class:`DataContractError` naming the file
  and what to do. It is not quarantined: one rejects row could not weigh a whole day of unknown
  size against the threshold, so the night would train and publish without that day's ratings
  and nobody would notice. Stopping keeps the published table as it was; replacing the file (or
  moving it out of ``ratings/`` on purpose) and running the night again loses nothing.
"""

from recsys_core.data.ratings_log.export import check_export_target, export_log
from recsys_core.data.ratings_log.fingerprint import fingerprint_log
from recsys_core.data.ratings_log.layout import check_log_directory, list_rating_files
from recsys_core.data.ratings_log.reading import read_ratings_log
from recsys_core.data.ratings_log.spec import load_log_spec

__all__ = [
    "check_export_target",
    "check_log_directory",
    "export_log",
    "fingerprint_log",
    "list_rating_files",
    "load_log_spec",
    "read_ratings_log",
]
