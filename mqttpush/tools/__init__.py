"""The tools around the library: command line, live views, demo, bench, broker, security.

The ``mqttpush`` command, ``watch``, the seed's demo agents, the benchmark suite, a
development broker and the secure profile's material. The library (everything in
:mod:`mqttpush` outside this package) never imports them.
"""
