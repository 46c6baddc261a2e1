"""kdreg's built-in plugins, installed as ``kdreg_plugins``.

They are ordinary plugins: kdreg's ``pyproject.toml`` registers them through the same
entry-point groups a third-party package uses, and they use only the public API.
"""
