"""Throughput benchmarks: each measures our fast path and a plain baseline in the same run."""
