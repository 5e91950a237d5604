#!/usr/bin/env python3
"""Writes tests/fixtures/evaluation/features.json: fixed feature sets and the sample-quality statistics of them
computed independently with NumPy/SciPy (the way pytorch-fid, torch-fidelity and Kynkäänniemi et al.'s code do),
against which the C# evaluation module is tested. Run: python3 scripts/make-evaluation-fixture.py"""
import json
import os

import numpy as np
import scipy.linalg

rng = np.random.default_rng(17)
d = 16
mixing = rng.normal(size=(d, d)) / np.sqrt(d)
real = rng.normal(size=(40, d)) @ mixing + 0.5
generated = rng.normal(size=(30, d)) @ (mixing + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d)) + 0.2
few = rng.normal(size=(10, d)) @ mixing  # 10 points in 16 dimensions: a covariance of rank 9


def fd_sqrtm(a, b):
    """pytorch-fid's formula: the (non-symmetric) square root of Σ1·Σ2 by scipy.linalg.sqrtm."""
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def rank_revealing(w):
    """Eigenvalues below numpy.linalg.matrix_rank's tolerance (largest · size · eps) are zero in exact arithmetic."""
    return np.where(w > w.max() * len(w) * np.finfo(float).eps, w, 0)


def psd_sqrt(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(rank_revealing(w))) @ v.T


def fd_eigh(a, b):
    """The same distance for a singular Σ1, where sqrtm is unreliable: tr (Σ1^½ Σ2 Σ1^½)^½ from eigh."""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root1 = psd_sqrt(s1)
    trace_root = np.sqrt(rank_revealing(np.linalg.eigvalsh(root1 @ s2 @ root1))).sum()
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_root)


def mmd2_unbiased(a, b):
    """torch-fidelity's KID of one subset holding all points, kernel (x·y/d + 1)^3."""
    m = a.shape[0]
    kxx = (a @ a.T / d + 1) ** 3
    kyy = (b @ b.T / d + 1) ** 3
    kxy = (a @ b.T / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m ** 2)


def precision_recall(r, g, k=3):
    """Kynkäänniemi et al. (2019): radii to the k-th nearest neighbour (the k+1-th smallest distance, itself first)."""
    def dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    real_radii = np.sort(dist(r, r), axis=1)[:, k]
    gen_radii = np.sort(dist(g, g), axis=1)[:, k]
    d_rg = dist(r, g)
    precision = (d_rg <= real_radii[:, None]).any(axis=0).mean()
    recall = (d_rg <= gen_radii[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


covariance = np.cov(real, rowvar=False)
fixture = {
    "dimension": d,
    "real": real.ravel().tolist(),
    "generated": generated.ravel().tolist(),
    "few": few.ravel().tolist(),
    "real_covariance": covariance.ravel().tolist(),
    "real_covariance_sqrtm": scipy.linalg.sqrtm(covariance).real.ravel().tolist(),
    "few_covariance_sqrt_eigh": None,
    "fd_real_generated": fd_sqrtm(real, generated),
    "fd_few_generated": fd_eigh(few, generated),
    "kid_real30_generated": mmd2_unbiased(real[:30], generated),
    "precision_recall_k3": list(precision_recall(real, generated)),
}
fixture["few_covariance_sqrt_eigh"] = psd_sqrt(np.cov(few, rowvar=False)).ravel().tolist()


def ssim(a, b):
    """Wang et al.'s SSIM on [0, 1] images: 11×11 Gaussian window (σ 1.5) over valid positions, C1 = 0.01², C2 = 0.03²."""
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    window = np.outer(g, g)

    def filt(x):
        n = x.shape[0] - 10
        return np.array([[(x[r:r + 11, c:c + 11] * window).sum() for c in range(n)] for r in range(n)])
    mx, my = filt(a), filt(b)
    vx, vy, cxy = filt(a * a) - mx ** 2, filt(b * b) - my ** 2, filt(a * b) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean())


clean = rng.uniform(size=(20, 20))
noisy = np.clip(clean + 0.1 * rng.normal(size=(20, 20)), 0, 1)
fixture["ssim_image_a"] = clean.ravel().tolist()
fixture["ssim_image_b"] = noisy.ravel().tolist()
fixture["ssim"] = ssim(clean, noisy)
path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "evaluation", "features.json")
with open(path, "w") as f:
    json.dump(fixture, f)
print(path, {k: fixture[k] for k in ("fd_real_generated", "fd_few_generated", "kid_real30_generated", "precision_recall_k3", "ssim")})
