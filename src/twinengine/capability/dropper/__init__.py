"""The daily content drop: validate, dedupe, tag, index, publish, report."""
