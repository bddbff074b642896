"""A small 2D Gaussian mixture per landmark, fitted to the landmark model's heatmaps.

This is the 2D part of DiffPose's pose-specific initial distribution H_K (DESIGN §8.3):
where the heatmap is sharp the mixture is narrow, where it is wide or has a second
peak (a hand in front of the body, a leg hidden by the other) the mixture says so.

The fit, per landmark and frame: the heatmap logits become confidences with a sigmoid
(how MediaPipe reads them); the confidences in a `WINDOW`-cell square around the
landmark's cell, less the window's smallest (background), are the weights of the cells;
a weighted EM fits `COMPONENTS` Gaussians to the cell positions, all landmarks at once
(numpy, no loop over landmarks). Cell c stands for crop position c / 64 as in
`blazepose.refine_with_heatmap`, so the mixture and the landmark agree.

Units: heatmap cells during the fit; `to_image` maps means and covariances to image px
through the region's affine map (covariance A Σ Aᵀ).
"""

from __future__ import annotations

import numpy as np

from .roi import Roi

COMPONENTS = 2
WINDOW = 11          # cells per side of the fitted window (the map is 64 cells)
EM_ITERATIONS = 6
#: Smallest standard deviation of a component, in cells: the map cannot say more.
MIN_SIGMA_CELLS = 0.5
#: A landmark whose window holds less total confidence than this gets one broad
#: component at the landmark (`FALLBACK_SIGMA_CELLS`) rather than a fit to noise.
MIN_MASS = 0.5
FALLBACK_SIGMA_CELLS = 4.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def fit_heatmap_mixtures(heatmap: np.ndarray, cells: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit mixtures to heatmaps.

    heatmap  (64, 64, L) logits, rows = crop y, columns = crop x.
    cells    (L, 2) landmark positions in cells (x, y) around which to fit.
    Returns weights (L, M), means (L, M, 2) cells (x, y), covs (L, M, 2, 2) cells².
    """
    n = heatmap.shape[0]
    L = heatmap.shape[2]
    M = COMPONENTS
    half = WINDOW // 2
    centre = np.clip(np.round(cells).astype(int), 0, n - 1)             # (L, 2)
    offs = np.arange(-half, half + 1)
    cols = centre[:, 0, None] + offs[None]                               # (L, W)
    rows = centre[:, 1, None] + offs[None]
    inside = ((cols >= 0) & (cols < n))[:, None, :] & ((rows >= 0) & (rows < n))[:, :, None]
    cc = np.clip(cols, 0, n - 1)
    rr = np.clip(rows, 0, n - 1)
    lm = np.arange(L)[:, None, None]
    conf = _sigmoid(heatmap[rr[:, :, None], cc[:, None, :], lm])        # (L, W, W)
    conf = np.where(inside, conf, 0.0)
    floor = np.where(inside, conf, np.inf).min(axis=(1, 2), keepdims=True)
    w = np.clip(conf - floor, 0.0, None).reshape(L, -1)                  # (L, P)
    pos = np.stack(np.broadcast_arrays(cols[:, None, :], rows[:, :, None]),
                   axis=-1).reshape(L, -1, 2).astype(np.float64)         # (L, P, 2)
    mass = w.sum(axis=1)                                                 # (L,)
    wn = w / np.maximum(mass, 1e-12)[:, None]

    # Covariances are kept as their three entries (xx, xy, yy) so that inverses and
    # determinants are closed-form and elementwise: this runs on every frame.
    px, py = pos[..., 0], pos[..., 1]                                   # (L, P)
    floor2 = MIN_SIGMA_CELLS ** 2

    def moments(r: np.ndarray) -> tuple[np.ndarray, ...]:
        """Weighted moments of the cells; r (L, K, P) sums to 1 over P where it can."""
        mx, my = (r * px[:, None]).sum(-1), (r * py[:, None]).sum(-1)
        dx, dy = px[:, None] - mx[..., None], py[:, None] - my[..., None]
        return (mx, my, (r * dx * dx).sum(-1) + floor2, (r * dx * dy).sum(-1),
                (r * dy * dy).sum(-1) + floor2)

    # Start: the window's weighted mean and spread, split along the main axis.
    mx, my, sxx, sxy, syy = (a[:, 0] for a in moments(wn[:, None]))
    tr, det = sxx + syy, sxx * syy - sxy ** 2
    lam = tr / 2 + np.sqrt(np.maximum(tr ** 2 / 4 - det, 0.0))          # largest eigenvalue
    # Eigenvector of [[sxx, sxy], [sxy, syy]] for lam: (lam - syy, sxy) or (sxy, lam - sxx),
    # whichever is not (nearly) zero.
    first = (lam - syy) ** 2 + sxy ** 2 >= (lam - sxx) ** 2 + sxy ** 2
    ax = np.where(first, lam - syy, sxy)
    ay = np.where(first, sxy, lam - sxx)
    norm = np.sqrt(lam / np.maximum(ax ** 2 + ay ** 2, 1e-12))
    sign = np.linspace(-0.5, 0.5, M) if M > 1 else np.zeros(1)
    m_x = mx[:, None] + sign[None] * (ax * norm)[:, None]               # (L, M)
    m_y = my[:, None] + sign[None] * (ay * norm)[:, None]
    c_xx = np.repeat(sxx[:, None] / M + floor2, M, axis=1)
    c_xy = np.repeat(sxy[:, None] / M, M, axis=1)
    c_yy = np.repeat(syy[:, None] / M + floor2, M, axis=1)
    weights = np.full((L, M), 1.0 / M)
    for _ in range(EM_ITERATIONS):
        # E step: responsibilities of each component for each cell.
        det = c_xx * c_yy - c_xy ** 2
        dx = px[:, None] - m_x[..., None]                                 # (L, M, P)
        dy = py[:, None] - m_y[..., None]
        maha = (c_yy[..., None] * dx * dx - 2 * c_xy[..., None] * dx * dy
                + c_xx[..., None] * dy * dy) / det[..., None]
        logp = (np.log(np.maximum(weights, 1e-12)) - 0.5 * np.log(det))[..., None] - 0.5 * maha
        logp -= logp.max(axis=1, keepdims=True)
        resp = np.exp(logp)
        resp /= resp.sum(axis=1, keepdims=True)
        # M step with the cells' heatmap weights.
        r = resp * wn[:, None, :]                                         # (L, M, P)
        nk = r.sum(-1)                                                    # (L, M)
        weights = nk / np.maximum(nk.sum(-1, keepdims=True), 1e-12)
        m_x, m_y, c_xx, c_xy, c_yy = moments(r / np.maximum(nk, 1e-9)[..., None])
    means = np.stack([m_x, m_y], axis=-1)
    covs = np.stack([np.stack([c_xx, c_xy], -1), np.stack([c_xy, c_yy], -1)], -2)

    # Too little signal: one broad component at the landmark instead.
    weak = mass < MIN_MASS
    if weak.any():
        weights[weak] = np.eye(M)[0]
        means[weak] = cells[weak, None, :]
        covs[weak] = np.eye(2) * FALLBACK_SIGMA_CELLS ** 2
    return weights, means, covs


def to_image(means_cells: np.ndarray, covs_cells: np.ndarray, roi: Roi, n: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """Means (..., 2) and covariances (..., 2, 2) in cells of an n-cell map over `roi`
    -> image px and px²."""
    m = roi.crop_to_image(n)
    a = m[:, :2]
    means = means_cells @ a.T + m[:, 2]
    covs = a @ covs_cells @ a.T
    return means, covs
