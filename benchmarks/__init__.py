"""The benchmark suite (issues #2 and #6): `python -m benchmarks [--quick] [--only NAME]`; see run.py."""
