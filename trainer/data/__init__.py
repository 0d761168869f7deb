"""Data import: public corpora and the app's export become `dialogue_format.Example` records.

Every importer yields `Example`s (the normalised JSONL schema); `records` reads and
writes that schema with line-numbered validation, `dedup` drops repeated exchanges and
`split` makes train/validation/test splits that keep whole conversations together.
"""
