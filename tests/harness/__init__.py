"""Test harness: the bad-input corpus, the BI reader process, checksums of a data directory and
the API fuzzers. Used by the tests and by ``scripts/``; not part of the installed product."""
