"""Measurement studies beside the sweep: one question each, answered on cells of a sweep file (why a method collapses,
what Bad Teaching distils toward, PBU's stopping rule, θ*'s quality per architecture, the GPU time of a block) and
one-off record migrations. Each is run as `python benchmarks/<name>.py` (docs/cli.md#measurement-scripts); their code
lives here so that the tests import it as any other module."""
