"""Training-free views of an image: its centred Fourier spectrum with low-pass squares, and its exact
SVD (explained variance, rank-k reconstruction). Pure torch; the FFT tokenizer and the page share them."""

from __future__ import annotations

import torch

from tefviz.errors import InputError


def centred_spectrum(images: torch.Tensor) -> torch.Tensor:
    """(..., H, W) real -> (..., H, W) complex orthonormal 2-D FFT with the zero frequency at the
    centre (index H // 2, W // 2)."""
    spec = torch.fft.fft2(images.float(), norm="ortho")
    return torch.fft.fftshift(spec, dim=(-2, -1))


def square_bounds(size: int, side: int) -> tuple[int, int]:
    """[lo, hi) of the centred square of `side` in a shifted spectrum of `size`."""
    if not 0 < side <= size:
        raise InputError(f"the low-pass square must be 1..{size} wide, got {side}")
    lo = size // 2 - side // 2
    return lo, lo + side


def square_energy_fractions(images: torch.Tensor, sides: list[int]) -> torch.Tensor:
    """(B, H, W) -> (B, len(sides)): share of spectral energy inside each centred square."""
    power = centred_spectrum(images).abs().square()
    total = power.flatten(-2).sum(-1).clamp_min(1e-12)
    n = images.shape[-1]
    out = []
    for side in sides:
        lo, hi = square_bounds(n, side)
        out.append(power[..., lo:hi, lo:hi].flatten(-2).sum(-1) / total)
    return torch.stack(out, -1)


def lowpass_side_for_energy(images: torch.Tensor, p: float, step: int) -> torch.Tensor:
    """(B, H, W) -> (B,) the smallest multiple of `step` whose centred square holds >= p of the
    spectral energy (the full spectrum when none does before)."""
    if not 0.0 < p <= 1.0:
        raise InputError(f"energy share p must lie in (0, 1], got {p}")
    n = images.shape[-1]
    sides = list(range(step, n + 1, step))
    fractions = square_energy_fractions(images, sides)
    enough = fractions >= p - 1e-6
    enough[..., -1] = True
    first = enough.float().argmax(-1)
    return torch.tensor(sides, device=images.device)[first]


def conjugate_closed(mask: torch.Tensor) -> torch.Tensor:
    """A (..., H, W) bool mask over an *unshifted* spectrum, with every frequency's conjugate
    partner added: index (i, j) also keeps (-i mod H, -j mod W)."""
    mirrored = torch.roll(torch.flip(mask, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))
    return mask | mirrored


def lowpass_reconstruction(image: torch.Tensor, side: int) -> torch.Tensor:
    """(H, W) -> (H, W): the image rebuilt from the frequencies inside the centred square and
    their conjugate partners.

    The kept set is K ∪ conj(K), K the centred square of `side` that the FFT tokenizer crops
    ([lo, lo + side) of the shifted spectrum, see `square_bounds`) and conj(K) its mirror through
    the zero frequency. For a real image F(-f) = conj(F(f)), so the partners carry nothing the
    square does not; but an even side holds frequency -side/2 and not +side/2, and without the
    partners the inverse FFT is complex (taking its real part would leave the -side/2 row and
    column at half weight). With them the set is Hermitian-symmetric and the result is the real
    image whose spectrum is exactly F on K ∪ conj(K) and zero elsewhere. An odd side (and the full
    square) is already symmetric: K ∪ conj(K) = K."""
    spec = torch.fft.fft2(image.float(), norm="ortho")
    lo, hi = square_bounds(image.shape[-1], side)
    square = torch.zeros(spec.shape, dtype=torch.bool, device=spec.device)
    square[..., lo:hi, lo:hi] = True
    keep = conjugate_closed(torch.fft.ifftshift(square, dim=(-2, -1)))
    return torch.fft.ifft2(spec * keep, norm="ortho").real


def log_magnitude(image: torch.Tensor) -> torch.Tensor:
    """log(1 + |F|) of the centred spectrum, for display."""
    return torch.log1p(centred_spectrum(image).abs())


def signed_log_channels(spec: torch.Tensor) -> torch.Tensor:
    """complex (..., H, W) -> (..., 2, H, W): sign * log1p|.| of the real and imaginary parts (the
    FFT tokenizer's input; deliberately no ImageNet-style normalisation, which the thesis found
    ruinous for spectra)."""
    parts = torch.stack([spec.real, spec.imag], -3)
    return parts.sign() * torch.log1p(parts.abs())


def oriented_svd(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched SVD of (..., H, W) with a fixed sign per component (the largest-magnitude entry
    of each left vector is positive), so the same image always gives the same factors."""
    u, s, vh = torch.linalg.svd(images.float(), full_matrices=False)
    idx = u.abs().argmax(-2, keepdim=True)
    sign = torch.gather(u, -2, idx).sign()
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    return u * sign, s, vh * sign.transpose(-1, -2)


def explained_variance(s: torch.Tensor) -> torch.Tensor:
    """Singular values (..., k) -> each component's share s_i^2 / sum s^2."""
    sq = s.float().square()
    return sq / sq.sum(-1, keepdim=True).clamp_min(1e-12)


def rank_for_variance(s: torch.Tensor, p: float) -> torch.Tensor:
    """The smallest k whose first k components explain >= p of the variance."""
    if not 0.0 < p <= 1.0:
        raise InputError(f"explained-variance share p must lie in (0, 1], got {p}")
    cum = explained_variance(s).cumsum(-1)
    return (cum < p - 1e-6).sum(-1).clamp_max(s.shape[-1] - 1) + 1


def rank_k_reconstruction(image: torch.Tensor, k: int) -> torch.Tensor:
    """(H, W) -> (H, W): the best rank-k approximation."""
    u, s, vh = oriented_svd(image)
    if not 1 <= k <= s.shape[-1]:
        raise InputError(f"rank k must lie in 1..{s.shape[-1]}, got {k}")
    return (u[..., :k] * s[..., None, :k]) @ vh[..., :k, :]
