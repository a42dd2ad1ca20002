"""The commands, one module per command or small group; cli.py only parses and dispatches."""
