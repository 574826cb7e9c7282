"""Data: loading labeled, unlabeled and evaluation sets from the Hub or local files (`loading`), streamed corpora (`streamed`), FASTA (`fasta`), and seeded, resumable batch streams (`batching`)."""
