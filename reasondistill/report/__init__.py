"""Reports: results tables (json, markdown), seed summaries, plots."""
