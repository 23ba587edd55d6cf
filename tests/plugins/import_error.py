"""A plugin that cannot be imported."""
import emu_no_such_module_anywhere  # noqa: F401
