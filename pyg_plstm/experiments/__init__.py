"""Runnable experiments (each module has a ``main(argv)`` entry point)."""
