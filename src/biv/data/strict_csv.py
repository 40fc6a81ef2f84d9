"""Strict CSV reading: every problem is reported with the file, line and column."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd

from biv.data.sources import RawFile

_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}


def read_table(raw: RawFile, sep: str, numeric: list[str], text: tuple[str, ...] = ()) -> dict:
    """Columns of a ``sep``-separated file with a header line: ``numeric`` ones as finite float64
    arrays, ``text`` ones as str arrays. Raises ValueError for a wrong separator, missing columns,
    ragged/truncated rows, empty or non-numeric values."""
    where = raw.origin
    header = raw.data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # ragged first data row
            frame = pd.read_csv(
                io.BytesIO(raw.data), sep=sep, dtype=str, keep_default_na=False, index_col=False
            )
    except (
        pd.errors.ParserError,
        pd.errors.ParserWarning,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
    ) as err:
        kind = _SEPARATORS[sep]
        raise ValueError(f"{where}: not a valid {kind}-separated table ({err})") from None
    missing = [c for c in (*numeric, *text) if c not in frame.columns]
    if missing:
        others = [word for s, word in _SEPARATORS.items() if s != sep and s in header]
        guess = f"; the header looks {others[0]}-separated" if others else ""
        raise ValueError(
            f"{where}: missing column(s) {missing}{guess}; expected a {_SEPARATORS[sep]}-separated "
            f"header with {list((*numeric, *text))} (header read: {header[:100]!r})"
        )
    if frame.empty:
        raise ValueError(f"{where}: the file has a header but no data rows")
    out: dict[str, np.ndarray] = {}
    for column in text:
        values = frame[column]
        _check_present(where, column, values)
        out[column] = values.to_numpy(dtype=str)
    for column in numeric:
        values = frame[column]
        _check_present(where, column, values)
        number = pd.to_numeric(values.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(number)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"{where}: line {row + 2}, column {column!r}: {values.iloc[row]!r} is not a "
                "finite number"
            )
        out[column] = number
    return out


def _check_present(where: str, column: str, values: pd.Series) -> None:
    empty = (values.isna() | (values.str.strip() == "")).to_numpy()
    if empty.any():
        row = int(np.argmax(empty))
        raise ValueError(
            f"{where}: line {row + 2}, column {column!r} is empty (truncated or damaged file?)"
        )


def integer_codes(where: str, column: str, values: np.ndarray, low: int, high: int) -> np.ndarray:
    """``values`` as int64, or ValueError unless every value is an integer in [low, high]."""
    bad = (values != np.round(values)) | (values < low) | (values > high)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{where}: line {row + 2}, column {column!r}: {values[row]!r} is not an integer "
            f"in [{low}, {high}]"
        )
    return values.astype(np.int64)
