"""The run report: one JSON schema for machines, Markdown/HTML/terminal renderings for people."""
