"""A POSIX sh tokenizer, parser and syntax tree: pure, imports nothing of pinit."""
