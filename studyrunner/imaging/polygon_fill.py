"""Scan-line fill of one closed polygon on a pixel grid (voxel centres at whole indices).

A pixel is filled when its centre lies inside the polygon or on its boundary: the rule of
``skimage.draw.polygon``, against which the tests compare this fill pixel for pixel. The
interior is found with the even-odd crossing rule of the classic scan-line algorithm
(Foley, van Dam, Feiner, Hughes, Computer Graphics: Principles and Practice, 2nd ed.,
section 3.6): on each pixel row, the crossings of the row's centre line with the edges are
sorted and paired; an edge counts for rows ``min(y0, y1) <= y < max(y0, y1)`` so a
vertex on the line is counted once. The interval between a pair is closed (centres on a
sloped edge are filled); centres on a horizontal edge and on a vertex are added.

Why not ``skimage.draw.polygon`` itself: it tests every pixel of the polygon's bounding box
against every vertex, which for the dense contours of a hospital RTSTRUCT (a point every
half voxel) costs 7 ms per contour on a 92 x 92 slice and 140 ms on a 512 x 512 slice
(400 points); this fill is linear in the points plus the filled rows (under 0.2 ms).
"""

from __future__ import annotations

import numpy as np

# Coordinates (in pixels) closer than this to a whole number are taken as on it: ContourData
# is stored as decimal strings, so a centre on the boundary comes back a few 1e-9 off.
ON_GRID_EPS = 1e-6


def fill_polygon(columns: np.ndarray, rows: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A boolean ``shape`` (rows, columns) array filled inside the closed polygon whose
    vertices are ``(columns[i], rows[i])`` in pixel units; parts outside the array are cut."""
    x = np.asarray(columns, dtype=float)
    y = np.asarray(rows, dtype=float)
    n_rows, n_cols = shape
    out = np.zeros(shape, dtype=bool)
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    row_idx, starts, ends = _row_intervals(x, y, x1, y1, n_rows)
    flat = (y == y1) & _on_grid(y) & (y >= 0) & (y <= n_rows - 1)
    row_idx = np.concatenate([row_idx, np.round(y[flat]).astype(int)])
    starts = np.concatenate([starts, np.minimum(x, x1)[flat]])
    ends = np.concatenate([ends, np.maximum(x, x1)[flat]])
    first = np.clip(np.ceil(starts - ON_GRID_EPS), 0, n_cols).astype(int)
    stop = np.clip(np.floor(ends + ON_GRID_EPS) + 1, 0, n_cols).astype(int)
    keep = first < stop
    if keep.any():
        top, bottom = int(row_idx[keep].min()), int(row_idx[keep].max()) + 1
        base = (row_idx[keep] - top) * (n_cols + 1)
        cells = (bottom - top) * (n_cols + 1)
        diff = np.bincount(base + first[keep], minlength=cells) - np.bincount(base + stop[keep], minlength=cells)
        out[top:bottom] = np.cumsum(diff.reshape(bottom - top, n_cols + 1)[:, :n_cols], axis=1) > 0
    vertices = _on_grid(x) & _on_grid(y)
    vx, vy = np.round(x[vertices]).astype(int), np.round(y[vertices]).astype(int)
    inside = (vx >= 0) & (vx < n_cols) & (vy >= 0) & (vy < n_rows)
    out[vy[inside], vx[inside]] = True
    return out


def _on_grid(values: np.ndarray) -> np.ndarray:
    return np.abs(values - np.round(values)) <= ON_GRID_EPS


def _row_intervals(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray,
                   n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, x_start, x_end) of every inside interval on the pixel rows 0..n_rows-1: each
    edge crosses rows ceil(y_low) .. ceil(y_high) - 1; a row's sorted crossings are paired."""
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    first_row = np.clip(np.ceil(low), 0, n_rows).astype(int)
    end_row = np.clip(np.ceil(high), 0, n_rows).astype(int)
    counts = np.maximum(end_row - first_row, 0)
    edge = np.repeat(np.arange(len(x0)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    row = first_row[edge] + offsets
    t = (row - y0[edge]) / (y1[edge] - y0[edge])  # counts > 0 only for edges with y0 != y1
    crossing = x0[edge] + t * (x1[edge] - x0[edge])
    order = np.lexsort((crossing, row))
    row, crossing = row[order], crossing[order]
    # Every row holds an even number of crossings (a closed polygon), so pairs never straddle rows.
    return row[0::2], crossing[0::2], crossing[1::2]
