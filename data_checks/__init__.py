"""Data contracts: Great Expectations suites and the helpers that run them.

All Great Expectations use lives in this package. Suites are JSON files in ``suites/``;
each expectation's ``meta.severity`` says what a failure means:
  contract -> the run stops with a readable report
  row      -> failing rows are quarantined to a rejects table with ``meta.reason``
"""
