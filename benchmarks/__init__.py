"""hotmod's benchmarks: ``python -m benchmarks --help``."""
