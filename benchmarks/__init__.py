"""The benchmark suite: its tests, and the workloads they measure (benchmarks.workloads)."""
