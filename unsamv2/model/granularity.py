"""The granularity prompt: Fourier features of g, an MLP, and the extra sparse prompt token.

UnSAMv2 (docs/architecture.md#model) turns the scalar granularity g in [0, 1] into one 256-d prompt token:

    fourier(g) = [sin(f_0 g), cos(f_0 g), sin(f_1 g), cos(f_1 g), ...],  f_k = 100^(k/64), k = 0..63
    token(g)   = MLP(fourier(g)) + type_embedding          (MLP 128 -> 192 -> 192 -> 256, ReLU, dropout)

The token is appended to SAM-2's sparse prompt tokens, after the point tokens and the padding
point (and before box-corner tokens if a caller passes boxes separately, as the reference does).
"""

from __future__ import annotations

import torch
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from torch import Tensor, nn

NUM_FREQUENCIES = 64
TEMPERATURE = 100.0


def fourier_frequencies(num_frequencies: int = NUM_FREQUENCIES,
                        temperature: float = TEMPERATURE) -> Tensor:
    """Frequencies f_k = temperature^(k / num_frequencies), k = 0..num_frequencies-1, float32 (K,)."""
    return temperature ** (torch.arange(num_frequencies) / num_frequencies)


def fourier_features(granularity: Tensor, num_frequencies: int = NUM_FREQUENCIES,
                     temperature: float = TEMPERATURE) -> Tensor:
    """Fourier features of g: (...,) float -> (..., 2K) float, interleaved [sin f_0 g, cos f_0 g, ...].

    No 2*pi factor (as in the reference). Gradients do not flow into g (g is an input, not a
    parameter).
    """
    freqs = fourier_frequencies(num_frequencies, temperature).to(granularity.device)
    with torch.no_grad():
        angles = granularity.to(torch.float32)[..., None] * freqs  # (..., K)
        pairs = torch.stack((torch.sin(angles), torch.cos(angles)), dim=-1)  # (..., K, 2)
    return pairs.flatten(-2)


class GranularityEncoder(nn.Module):
    """g -> one prompt token: MLP(Fourier features of g) + a learned type embedding.

    forward(granularity: (B,) float in [0, 1]) -> (B, embed_dim) float.
    ``mlp`` is an ``nn.Sequential`` [Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear], so its
    parameters sit at indices 0, 3 and 6 (the reference checkpoint's layout).
    """

    def __init__(self, embed_dim: int = 256, num_frequencies: int = NUM_FREQUENCIES,
                 temperature: float = TEMPERATURE, hidden_dim: int | None = None,
                 dropout: float = 0.1) -> None:
        super().__init__()
        fourier_dim = 2 * num_frequencies
        hidden = hidden_dim if hidden_dim is not None else (fourier_dim + embed_dim) // 2
        self.num_frequencies = num_frequencies
        self.temperature = float(temperature)
        self.mlp = nn.Sequential(
            nn.Linear(fourier_dim, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, embed_dim),
        )
        self.type_embedding = nn.Embedding(1, embed_dim)

    def forward(self, granularity: Tensor) -> Tensor:
        features = fourier_features(granularity, self.num_frequencies, self.temperature)
        features = features.to(self.type_embedding.weight.dtype)
        return self.mlp(features) + self.type_embedding.weight


class GranularityPromptEncoder(PromptEncoder):
    """SAM-2's prompt encoder plus the granularity token (SAM-2's parameters and keys unchanged).

    ``forward(points, boxes, masks, granularity=None)``: as SAM-2's, and when a granularity
    (B,) / scalar tensor is given — or set with :meth:`use_granularity` by the model's
    ``granularity_prompt`` context, which is how g reaches SAM-2's video code — one token
    per prompt is appended after the point tokens. Without g the output equals SAM-2's.
    """

    def __init__(self, *, embed_dim: int, image_embedding_size: tuple[int, int],
                 input_image_size: tuple[int, int], mask_in_chans: int,
                 num_frequencies: int = NUM_FREQUENCIES, temperature: float = TEMPERATURE,
                 dropout: float = 0.1) -> None:
        super().__init__(embed_dim=embed_dim, image_embedding_size=image_embedding_size,
                         input_image_size=input_image_size, mask_in_chans=mask_in_chans)
        self.granularity_encoder = GranularityEncoder(
            embed_dim=embed_dim, num_frequencies=num_frequencies, temperature=temperature,
            dropout=dropout)
        self._active_granularity: Tensor | None = None

    def use_granularity(self, granularity: Tensor | None) -> None:
        """Set (or clear, with None) the g used when ``forward`` is called without one."""
        self._active_granularity = granularity

    def forward(self, points: tuple[Tensor, Tensor] | None, boxes: Tensor | None,
                masks: Tensor | None, granularity: Tensor | None = None,
                ) -> tuple[Tensor, Tensor]:
        if granularity is None:
            granularity = self._active_granularity
        batch = self._get_batch_size(points, boxes, masks)
        sparse = torch.empty((batch, 0, self.embed_dim), device=self._get_device())
        if points is not None:
            coords, labels = points
            sparse = torch.cat([sparse, self._embed_points(coords, labels, pad=boxes is None)], dim=1)
        if granularity is not None:
            sparse = torch.cat([sparse, self._granularity_token(granularity, batch, sparse)], dim=1)
        if boxes is not None:
            sparse = torch.cat([sparse, self._embed_boxes(boxes)], dim=1)
        if masks is not None:
            dense = self._embed_masks(masks)
        else:
            height, width = self.image_embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, height, width)
        return sparse, dense

    def _granularity_token(self, granularity: Tensor, batch: int, like: Tensor) -> Tensor:
        """(B, 1, C) token for a scalar or (B,) granularity."""
        g = torch.as_tensor(granularity, dtype=torch.float32, device=like.device).reshape(-1)
        if g.numel() == 1 and batch != 1:
            g = g.expand(batch)
        if g.shape[0] != batch:
            raise ValueError(f"granularity has {g.shape[0]} values for {batch} prompts")
        return self.granularity_encoder(g).to(like.dtype)[:, None, :]
