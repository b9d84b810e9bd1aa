"""Goalline's HTTP benchmark: ``python -m bench`` (or ``scripts/bench``); see docs/performance.md.

It starts ``goalline serve`` as a user would, seeds it with the CLI and ``profiles/import``, drives
it with ``wrk`` from a separate process and reports each scenario next to a no-op endpoint served
by the same stack, so the headline figure is a ratio that holds on a noisy machine.
"""
