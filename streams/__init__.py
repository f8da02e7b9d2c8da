"""The Faust app, agents, tables, web views and CLI: the only package that wires the others."""
