"""Tests of the vendor-neutral model (``emu/model/``), one file per module; this package exists so
they can share ``scenarios``."""
