"""The ``imgclf`` command-line tool. Exit codes: 0 success, 1 the work failed, 2 usage."""
