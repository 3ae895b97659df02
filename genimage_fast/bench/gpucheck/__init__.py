"""`make gpu-check`: one time-boxed run that validates a GPU machine (see runner.py, benchmarks/README.md)."""
