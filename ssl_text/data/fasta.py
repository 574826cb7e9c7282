"""Reading FASTA files into `datasets.Dataset`s: plain functions, no Biopython.

A record is a `>` header line followed by zero or more sequence lines (wrapped at any width).
Sequences are normalised the same way everywhere (`normalize_sequence`): whitespace and line
wraps removed, letters upper-cased, a terminal `*` (stop) dropped, alignment gaps (`-`, `.`)
removed, and any letter or symbol outside the residue alphabet replaced by `X`. What was
changed is counted in a `FastaSummary`, which `load_fasta` logs.

Labels come either from the header, through a regular expression (`label_regex`, the named
group `label` or else group 1 or else the whole match), or from the file (`file_labels`: file
path, file name or glob pattern -> class name), e.g. AMP's `AMP.tr.fa` and `DECOY.tr.fa`.
"""

from __future__ import annotations

import fnmatch
import gzip
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import datasets

logger = logging.getLogger(__name__)

FASTA_EXTENSIONS = (".fa", ".fasta", ".faa", ".fas", ".fna")
STANDARD_RESIDUES = "ACDEFGHIKLMNPQRSTVWY"
AMBIGUOUS_RESIDUES = "XBZUO"  # unknown, Asx, Glx, selenocysteine, pyrrolysine
RESIDUES = frozenset(STANDARD_RESIDUES + AMBIGUOUS_RESIDUES)
_GAPS = frozenset("-.")
_WHITESPACE = re.compile(r"\s+")


class FastaError(ValueError):
    """A FASTA file is malformed or its labels do not match the spec."""


@dataclass
class FastaSummary:
    """What reading and normalisation did, for one or more files."""

    files: int = 0
    records: int = 0
    empty_records: int = 0  # headers with no sequence: skipped
    residues: int = 0
    lowercase_sequences: int = 0
    unknown_residues: int = 0  # letters/symbols outside the alphabet, now X
    sequences_with_unknown: int = 0
    gaps_removed: int = 0
    unknown_symbols: dict[str, int] = field(default_factory=dict)

    def add(self, other: "FastaSummary") -> "FastaSummary":
        for name in ("files", "records", "empty_records", "residues", "lowercase_sequences",
                     "unknown_residues", "sequences_with_unknown", "gaps_removed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for sym, n in other.unknown_symbols.items():
            self.unknown_symbols[sym] = self.unknown_symbols.get(sym, 0) + n
        return self

    def __str__(self) -> str:
        text = f"{self.records:,} sequences ({self.residues:,} residues)"
        text += f" from {self.files} file(s)" if self.files else ""
        notes = []
        if self.empty_records:
            notes.append(f"{self.empty_records} empty records skipped")
        if self.lowercase_sequences:
            notes.append(f"{self.lowercase_sequences} lowercase sequences upper-cased")
        if self.unknown_residues:
            symbols = ", ".join(f"{s!r} x{n}" for s, n in sorted(self.unknown_symbols.items()))
            notes.append(
                f"{self.unknown_residues} unknown letters mapped to X in {self.sequences_with_unknown} "
                f"sequences ({symbols})"
            )
        if self.gaps_removed:
            notes.append(f"{self.gaps_removed} gap characters removed")
        return text + (": " + "; ".join(notes) if notes else "")


def normalize_sequence(sequence: str, summary: FastaSummary | None = None) -> str:
    """Upper-case, strip whitespace, a terminal `*` and gaps; map symbols outside the alphabet to X."""
    seq = _WHITESPACE.sub("", sequence)
    upper = seq.upper()
    if summary is not None and upper != seq:
        summary.lowercase_sequences += 1
    seq = upper.rstrip("*")
    if all(ch in RESIDUES for ch in seq):  # the common case, fast
        if summary is not None:
            summary.residues += len(seq)
        return seq
    out, unknown = [], 0
    for ch in seq:
        if ch in RESIDUES:
            out.append(ch)
        elif ch in _GAPS:
            if summary is not None:
                summary.gaps_removed += 1
        else:
            out.append("X")
            unknown += 1
            if summary is not None:
                summary.unknown_symbols[ch] = summary.unknown_symbols.get(ch, 0) + 1
    seq = "".join(out)
    if summary is not None:
        summary.residues += len(seq)
        summary.unknown_residues += unknown
        summary.sequences_with_unknown += int(unknown > 0)
    return seq


def parse_fasta(lines: Iterable[str], source: str = "<fasta>") -> Iterator[tuple[str, str]]:
    """Yield `(header, raw_sequence)` per record; the header without `>`, wrapped lines joined.

    Blank lines and `;` comment lines are ignored; sequence text before the first header is an error.
    """
    header, chunks = None, []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip() or line.startswith(";"):
            continue
        if line.startswith(">"):
            if header is not None:
                yield header, "".join(chunks)
            header, chunks = line[1:].strip(), []
        elif header is None:
            raise FastaError(f"{source}, line {number}: sequence text before the first '>' header; is this FASTA?")
        else:
            chunks.append(line.strip())
    if header is not None:
        yield header, "".join(chunks)


def record_lines(path: str) -> Iterator[int]:
    """The header line (from 1) of each record `read_fasta` keeps (those with a sequence), for error messages."""
    header_line, chunks = None, []
    with _open(path) as handle:
        for number, line in enumerate(handle, 1):
            if line.startswith(">"):
                if header_line is not None and normalize_sequence("".join(chunks)):
                    yield header_line
                header_line, chunks = number, []
            elif line.strip() and not line.startswith(";"):
                chunks.append(line.strip())
    if header_line is not None and normalize_sequence("".join(chunks)):
        yield header_line


def _open(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def is_fasta_path(path: str) -> bool:
    name = path.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(FASTA_EXTENSIONS)


def label_from_header(header: str, pattern: re.Pattern) -> str | None:
    """The class in a header: named group `label`, else group 1, else the whole match; None if no match."""
    match = pattern.search(header)
    if match is None:
        return None
    if "label" in pattern.groupindex:
        return match.group("label")
    return match.group(1) if pattern.groups else match.group(0)


def label_of_file(path: str, file_labels: dict[str, str]) -> str:
    """The class `file_labels` gives `path`: a key equal to the path or its file name, or a glob on either."""
    name = os.path.basename(path)
    found = {
        label
        for key, label in file_labels.items()
        if key in (path, name) or os.path.normpath(key) == os.path.normpath(path)
        or fnmatch.fnmatch(name, key) or fnmatch.fnmatch(path, key)
    }
    if len(found) != 1:
        problem = "no key of `file_labels` matches it" if not found else f"several keys give different labels {sorted(found)}"
        raise FastaError(
            f"{path}: {problem}; `file_labels` maps a file path, file name or glob (e.g. 'AMP.*.fa') to "
            f"its class; keys are {sorted(file_labels)}."
        )
    return found.pop()


def read_fasta(
    path: str,
    label_regex: str | re.Pattern | None = None,
    file_label: str | None = None,
    summary: FastaSummary | None = None,
) -> list[dict]:
    """Records of one file as dicts: `id`, `description`, `sequence` (normalised) and `label` when known.

    Empty records are skipped (and counted). A header that `label_regex` does not match is an error.
    """
    pattern = re.compile(label_regex) if isinstance(label_regex, str) else label_regex
    summary = summary if summary is not None else FastaSummary()
    summary.files += 1
    rows = []
    with _open(path) as handle:
        for header, raw in parse_fasta(handle, path):
            sequence = normalize_sequence(raw, summary)
            if not sequence:
                summary.empty_records += 1
                continue
            parts = header.split(None, 1)
            row = {"id": parts[0] if parts else "", "description": parts[1] if len(parts) > 1 else "", "sequence": sequence}
            if file_label is not None:
                row["label"] = file_label
            elif pattern is not None:
                label = label_from_header(header, pattern)
                if label is None:
                    raise FastaError(
                        f"{path}: header {header!r} does not match `fasta_label_regex` {pattern.pattern!r}; "
                        "fix the pattern (a named group (?P<label>...) marks the class) or the header."
                    )
                row["label"] = label
            summary.records += 1
            rows.append(row)
    return rows


def load_fasta(
    files: list[str],
    label_regex: str | None = None,
    file_labels: dict[str, str] | None = None,
) -> tuple[datasets.Dataset, FastaSummary]:
    """Read FASTA files into one Dataset with columns id, description, sequence, text (= sequence)
    and, when `label_regex` or `file_labels` is given, label."""
    if label_regex is not None and file_labels is not None:
        raise FastaError("give either `fasta_label_regex` (label in the header) or `file_labels` (label per file), not both.")
    summary = FastaSummary()
    rows: list[dict] = []
    for path in files:
        file_label = label_of_file(path, file_labels) if file_labels is not None else None
        rows.extend(read_fasta(path, label_regex, file_label, summary))
    if not rows:
        raise FastaError(f"no sequences in {files}; the files are empty or hold only empty records.")
    columns = {key: [row[key] for row in rows] for key in ("id", "description", "sequence")}
    columns["text"] = columns["sequence"]
    if label_regex is not None or file_labels is not None:
        columns["label"] = [row["label"] for row in rows]
    if summary.empty_records or summary.unknown_residues or summary.lowercase_sequences or summary.gaps_removed:
        logger.warning("FASTA %s", summary)
    else:
        logger.info("FASTA %s", summary)
    return datasets.Dataset.from_dict(columns), summary
